#include "kube_manifest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "cleanup.h"
#include "fs.h"

#define KM_FILE_MAX (64u << 20)
#define KM_DEPTH_MAX 256
/* Aliases may add this many values beyond the document's own: enough for any real manifest,
 * too few for a "billion laughs" document to exhaust memory. */
#define KM_ALIAS_EXTRA 100000

struct conv {
	yaml_document_t *doc;
	const char *what;
	size_t budget;
	bool failed; /* err holds the reason; else a NULL result means out of memory */
	struct kelp_err *err;
};

static yajl_val new_val(yajl_type t)
{
	yajl_val v = calloc(1, sizeof(*v));
	if (v)
		v->type = t;
	return v;
}

static int at(struct conv *c, const yaml_node_t *n, const char *fmt, const char *arg)
{
	char msg[256];
	snprintf(msg, sizeof(msg), fmt, arg);
	c->failed = true;
	return kelp_fail(c->err, EINVAL, "%s:%zu:%zu: %s", c->what, n->start_mark.line + 1, n->start_mark.column + 1,
			 msg);
}

static bool one_of(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(s, *list) == 0)
			return true;
	return false;
}

static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
static const char *const trues[] = {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON", NULL};
static const char *const falses[] = {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF", NULL};

/* A number in YAML 1.2 core form; false when s is not one. */
static bool parse_number(const char *s, long long *ri, bool *int_ok, double *rd)
{
	const char *p = s;
	char *end;
	*int_ok = false;
	if (one_of(s, (const char *const[]){".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", NULL})) {
		*rd = INFINITY;
		return true;
	}
	if (one_of(s, (const char *const[]){"-.inf", "-.Inf", "-.INF", NULL})) {
		*rd = -INFINITY;
		return true;
	}
	if (one_of(s, (const char *const[]){".nan", ".NaN", ".NAN", NULL})) {
		*rd = NAN;
		return true;
	}
	if (strncmp(s, "0x", 2) == 0 || strncmp(s, "0o", 2) == 0) {
		int base = s[1] == 'x' ? 16 : 8;
		if (!s[2])
			return false;
		errno = 0;
		unsigned long long u = strtoull(s + 2, &end, base);
		if (*end || s[2] == '-' || s[2] == '+' || s[2] == ' ')
			return false;
		*rd = (double)u;
		if (errno == 0 && u <= (unsigned long long)LLONG_MAX) {
			*ri = (long long)u;
			*int_ok = true;
		}
		return true;
	}
	if (*p == '-' || *p == '+')
		p++;
	bool digits = false, frac = false;
	while (*p >= '0' && *p <= '9')
		p++, digits = true;
	if (*p == '.') {
		frac = true;
		p++;
		while (*p >= '0' && *p <= '9')
			p++, digits = true;
	}
	if (!digits)
		return false;
	if (*p == 'e' || *p == 'E') {
		frac = true;
		p++;
		if (*p == '-' || *p == '+')
			p++;
		if (!(*p >= '0' && *p <= '9'))
			return false;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (*p)
		return false;
	errno = 0;
	*rd = strtod(s, NULL);
	if (!frac) {
		errno = 0;
		long long i = strtoll(s, &end, 10);
		if (errno == 0 && !*end) {
			*ri = i;
			*int_ok = true;
		}
	}
	return true;
}

static yajl_val scalar(struct conv *c, const yaml_node_t *n)
{
	const char *s = (const char *)n->data.scalar.value;
	const char *tag = (const char *)n->tag;
	bool plain = n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
	/* libyaml gives untagged scalars the str tag: only a plain one is resolved by its form. */
	bool resolve = plain && (!tag || strcmp(tag, YAML_STR_TAG) == 0);
	bool want_int = tag && strcmp(tag, YAML_INT_TAG) == 0, want_float = tag && strcmp(tag, YAML_FLOAT_TAG) == 0;
	bool want_bool = tag && strcmp(tag, YAML_BOOL_TAG) == 0, want_null = tag && strcmp(tag, YAML_NULL_TAG) == 0;

	if ((resolve || want_null) && one_of(s, nulls))
		return new_val(yajl_t_null);
	if ((resolve || want_bool) && one_of(s, trues))
		return new_val(yajl_t_true);
	if ((resolve || want_bool) && one_of(s, falses))
		return new_val(yajl_t_false);
	if (resolve || want_int || want_float) {
		long long i = 0;
		double d = 0;
		bool int_ok;
		if (parse_number(s, &i, &int_ok, &d)) {
			if (want_int && !int_ok) {
				at(c, n, "not an integer: '%.64s'", s);
				return NULL;
			}
			yajl_val v = new_val(yajl_t_number);
			if (!v)
				return NULL;
			v->u.number.r = strdup(s);
			if (!v->u.number.r) {
				free(v);
				return NULL;
			}
			v->u.number.d = d;
			v->u.number.flags = YAJL_NUMBER_DOUBLE_VALID;
			if (int_ok && !want_float) {
				v->u.number.i = i;
				v->u.number.flags |= YAJL_NUMBER_INT_VALID;
			}
			return v;
		}
	}
	if (want_int || want_float || want_bool || want_null) {
		at(c, n, "a value does not match its tag: '%.64s'", s);
		return NULL;
	}
	/* A NUL inside would silently cut the C string: refuse it, as lib/json does. */
	if (strlen(s) != n->data.scalar.length) {
		at(c, n, "a string holds a NUL character%s", "");
		return NULL;
	}
	yajl_val v = new_val(yajl_t_string);
	if (v && !(v->u.string = strdup(s))) {
		free(v);
		return NULL;
	}
	return v;
}

static yajl_val convert(struct conv *c, yaml_node_t *n, int depth);

static yajl_val sequence(struct conv *c, yaml_node_t *n, int depth)
{
	size_t len = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	yajl_val v = new_val(yajl_t_array);
	if (!v)
		return NULL;
	if (len && !(v->u.array.values = calloc(len, sizeof(yajl_val)))) {
		free(v);
		return NULL;
	}
	for (size_t i = 0; i < len; i++) {
		yaml_node_t *item = yaml_document_get_node(c->doc, n->data.sequence.items.start[i]);
		yajl_val iv = item ? convert(c, item, depth + 1) : NULL;
		if (!iv) {
			yajl_tree_free(v);
			return NULL;
		}
		v->u.array.values[v->u.array.len++] = iv;
	}
	return v;
}

static yajl_val mapping(struct conv *c, yaml_node_t *n, int depth)
{
	size_t len = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
	yajl_val v = new_val(yajl_t_object);
	if (!v)
		return NULL;
	if (len && (!(v->u.object.keys = calloc(len, sizeof(char *))) ||
		    !(v->u.object.values = calloc(len, sizeof(yajl_val))))) {
		yajl_tree_free(v);
		return NULL;
	}
	for (size_t i = 0; i < len; i++) {
		yaml_node_pair_t *p = &n->data.mapping.pairs.start[i];
		yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
		yaml_node_t *val = yaml_document_get_node(c->doc, p->value);
		if (!k || !val || k->type != YAML_SCALAR_NODE) {
			at(c, k ? k : n, "a mapping key is not a plain string%s", "");
			goto fail;
		}
		const char *key = (const char *)k->data.scalar.value;
		for (size_t j = 0; j < v->u.object.len; j++)
			if (strcmp(v->u.object.keys[j], key) == 0) {
				at(c, k, "duplicate key '%.64s'", key);
				goto fail;
			}
		char *kcopy = strdup(key);
		if (!kcopy)
			goto oom;
		yajl_val vv = convert(c, val, depth + 1);
		if (!vv) {
			free(kcopy);
			goto fail;
		}
		v->u.object.keys[v->u.object.len] = kcopy;
		v->u.object.values[v->u.object.len++] = vv;
	}
	return v;
oom:
	kelp_error(c->err, ENOMEM, "%s", c->what);
	c->failed = true;
fail:
	yajl_tree_free(v);
	return NULL;
}

/* NULL with c->err set. */
static yajl_val convert(struct conv *c, yaml_node_t *n, int depth)
{
	if (depth > KM_DEPTH_MAX) {
		at(c, n, "nested deeper than %s levels (or an alias refers to itself)", "256");
		return NULL;
	}
	if (c->budget == 0) {
		at(c, n, "aliases expand to too many values%s", "");
		return NULL;
	}
	c->budget--;
	yajl_val v = NULL;
	switch (n->type) {
	case YAML_SCALAR_NODE:
		v = scalar(c, n);
		break;
	case YAML_SEQUENCE_NODE:
		v = sequence(c, n, depth);
		break;
	case YAML_MAPPING_NODE:
		v = mapping(c, n, depth);
		break;
	default:
		at(c, n, "an empty node%s", "");
		return NULL;
	}
	if (!v && !c->failed) {
		kelp_error(c->err, ENOMEM, "%s", c->what);
		c->failed = true;
	}
	return v;
}

static const char *kind_of(yajl_val obj)
{
	const char *path[] = {"kind", NULL};
	yajl_val k = yajl_tree_get(obj, path, yajl_t_string);
	return k ? k->u.string : NULL;
}

static int add_object(struct km_file *f, const char *what, size_t doc, size_t n_docs, long item, int line,
		      yajl_val v, struct kelp_err *err)
{
	struct km_object *grown = realloc(f->objects, (f->n_objects + 1) * sizeof(*grown));
	if (!grown)
		return kelp_error(err, ENOMEM, "%s", what);
	f->objects = grown;
	struct km_object *o = &f->objects[f->n_objects++];
	memset(o, 0, sizeof(*o));
	o->file = f->path;
	o->line = line;
	o->node.v = v;
	if (item >= 0 && n_docs > 1)
		snprintf(o->where, sizeof(o->where), "%s (document %zu, items[%ld])", what, doc + 1, item);
	else if (item >= 0)
		snprintf(o->where, sizeof(o->where), "%s (items[%ld])", what, item);
	else if (n_docs > 1)
		snprintf(o->where, sizeof(o->where), "%s (document %zu)", what, doc + 1);
	else
		snprintf(o->where, sizeof(o->where), "%s", what);
	return 0;
}

/* Objects of each document: the document itself, or a List's items. */
static int collect_objects(struct km_file *f, const char *what, const int *lines, const int *const *item_lines,
			   struct kelp_err *err)
{
	for (size_t d = 0; d < f->n_docs; d++) {
		yajl_val root = f->docs[d].v;
		const char *kind = kind_of(root);
		size_t klen = kind ? strlen(kind) : 0;
		const char *items_path[] = {"items", NULL};
		yajl_val items = yajl_tree_get(root, items_path, yajl_t_array);
		if (kind && klen >= 4 && strcmp(kind + klen - 4, "List") == 0 && items) {
			for (size_t i = 0; i < items->u.array.len; i++) {
				yajl_val it = items->u.array.values[i];
				if (!YAJL_IS_OBJECT(it))
					return kelp_fail(err, EINVAL, "%s: items[%zu]: expected an object", what, i);
				if (add_object(f, what, d, f->n_docs, (long)i, item_lines[d] ? item_lines[d][i] : lines[d], it,
					       err) < 0)
					return -1;
			}
		} else if (add_object(f, what, d, f->n_docs, -1, lines[d], root, err) < 0) {
			return -1;
		}
	}
	return 0;
}

void km_file_free(struct km_file *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->n_docs; i++)
		yajl_tree_free(f->docs[i].v);
	free(f->docs);
	free(f->objects);
	free(f->path);
	memset(f, 0, sizeof(*f));
}

/* Each document's line, and for a List the line of each item, so errors can point at it. */
struct lines {
	int *doc;
	int **items;
	size_t n;
};

static void lines_free(struct lines *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->items[i]);
	free(l->items);
	free(l->doc);
}

static int item_lines(yaml_document_t *doc, yaml_node_t *root, int **ret)
{
	*ret = NULL;
	if (root->type != YAML_MAPPING_NODE)
		return 0;
	for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(doc, p->key), *v = yaml_document_get_node(doc, p->value);
		if (!k || !v || k->type != YAML_SCALAR_NODE || strcmp((char *)k->data.scalar.value, "items") != 0 ||
		    v->type != YAML_SEQUENCE_NODE)
			continue;
		size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
		if (!(*ret = calloc(n + 1, sizeof(int))))
			return -1;
		for (size_t i = 0; i < n; i++) {
			yaml_node_t *it = yaml_document_get_node(doc, v->data.sequence.items.start[i]);
			(*ret)[i] = it ? (int)it->start_mark.line + 1 : 0;
		}
	}
	return 0;
}

int km_parse(const char *buf, size_t len, const char *what, struct km_file *ret, struct kelp_err *err)
{
	struct km_file f = {0};
	struct lines ln = {0};
	yaml_parser_t parser;
	int r = -1;

	if (!(f.path = strdup(what)))
		return kelp_error(err, ENOMEM, "%s", what);
	if (!yaml_parser_initialize(&parser)) {
		free(f.path);
		return kelp_error(err, ENOMEM, "%s: YAML parser", what);
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	for (;;) {
		yaml_document_t doc;
		if (!yaml_parser_load(&parser, &doc)) {
			kelp_fail(err, EINVAL, "%s:%zu:%zu: %s%s%s", what, parser.problem_mark.line + 1,
				  parser.problem_mark.column + 1, parser.problem ? parser.problem : "YAML error",
				  parser.context ? " " : "", parser.context ? parser.context : "");
			goto out;
		}
		yaml_node_t *root = yaml_document_get_root_node(&doc);
		if (!root) { /* the end of the stream */
			yaml_document_delete(&doc);
			break;
		}
		struct conv c = {.doc = &doc,
				 .what = what,
				 .budget = (size_t)(doc.nodes.top - doc.nodes.start) + KM_ALIAS_EXTRA,
				 .err = err};
		yajl_val v = NULL;
		/* An empty document ("---" alone, or a comment) is skipped, as kubectl does. */
		bool empty = root->type == YAML_SCALAR_NODE && root->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
			     one_of((const char *)root->data.scalar.value, nulls);
		if (!empty) {
			if (root->type != YAML_MAPPING_NODE) {
				at(&c, root, "a document is not a mapping (an object)%s", "");
				yaml_document_delete(&doc);
				goto out;
			}
			v = convert(&c, root, 0);
		}
		int line = (int)root->start_mark.line + 1;
		int *il = NULL;
		if (v && item_lines(&doc, root, &il) < 0) {
			yajl_tree_free(v);
			v = NULL;
			kelp_error(err, ENOMEM, "%s", what);
		}
		yaml_document_delete(&doc);
		if (empty)
			continue;
		if (!v)
			goto out;
		struct kj *docs = realloc(f.docs, (f.n_docs + 1) * sizeof(*docs));
		int *dl = realloc(ln.doc, (ln.n + 1) * sizeof(int));
		int **items = dl ? realloc(ln.items, (ln.n + 1) * sizeof(int *)) : NULL;
		if (docs)
			f.docs = docs;
		if (dl)
			ln.doc = dl;
		if (items)
			ln.items = items;
		if (!docs || !dl || !items) {
			yajl_tree_free(v);
			free(il);
			kelp_error(err, ENOMEM, "%s", what);
			goto out;
		}
		memset(&f.docs[f.n_docs], 0, sizeof(f.docs[0]));
		f.docs[f.n_docs++].v = v;
		ln.doc[ln.n] = line;
		ln.items[ln.n++] = il;
	}
	if (collect_objects(&f, what, ln.doc, (const int *const *)ln.items, err) < 0)
		goto out;
	*ret = f;
	memset(&f, 0, sizeof(f));
	r = 0;
out:
	yaml_parser_delete(&parser);
	lines_free(&ln);
	km_file_free(&f);
	return r;
}

int km_read_file(const char *path, struct km_file *ret, struct kelp_err *err)
{
	cleanup_free char *buf = NULL;
	size_t len;
	if (kelp_read_file_at(AT_FDCWD, path, KM_FILE_MAX, &buf, &len, err) < 0)
		return -1;
	return km_parse(buf, len, path, ret, err);
}

static bool manifest_name(const char *name)
{
	size_t n = strlen(name);
	if (name[0] == '.')
		return false;
	return (n > 5 && strcmp(name + n - 5, ".yaml") == 0) || (n > 4 && strcmp(name + n - 4, ".yml") == 0) ||
	       (n > 5 && strcmp(name + n - 5, ".json") == 0);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int km_list_files(const char *path, char ***ret, size_t *ret_n, struct kelp_err *err)
{
	struct stat st;
	char **list = NULL;
	size_t n = 0;

	if (stat(path, &st) < 0)
		return kelp_error(err, errno, "%s", path);
	if (!S_ISDIR(st.st_mode)) {
		if (!(list = calloc(2, sizeof(char *))) || !(list[0] = strdup(path))) {
			free(list);
			return kelp_error(err, ENOMEM, "%s", path);
		}
		*ret = list;
		if (ret_n)
			*ret_n = 1;
		return 0;
	}
	DIR *d = opendir(path);
	if (!d)
		return kelp_error(err, errno, "open directory %s", path);
	struct dirent *de;
	errno = 0;
	while ((de = readdir(d))) {
		if (!manifest_name(de->d_name))
			continue;
		char *full = NULL;
		char **grown = realloc(list, (n + 2) * sizeof(char *));
		if (!grown || asprintf(&full, "%s/%s", path, de->d_name) < 0) {
			if (grown)
				list = grown;
			goto oom;
		}
		list = grown;
		list[n++] = full;
		list[n] = NULL;
		errno = 0;
	}
	if (errno) {
		int e = errno;
		closedir(d);
		for (size_t i = 0; i < n; i++)
			free(list[i]);
		free(list);
		return kelp_error(err, e, "read directory %s", path);
	}
	closedir(d);
	if (!list && !(list = calloc(1, sizeof(char *))))
		return kelp_error(err, ENOMEM, "%s", path);
	qsort(list, n, sizeof(char *), cmp_str);
	*ret = list;
	if (ret_n)
		*ret_n = n;
	return 0;
oom:
	closedir(d);
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
	return kelp_error(err, ENOMEM, "%s", path);
}

const char *km_object_name(const struct km_object *o, char *buf, size_t size)
{
	const char *kind_p[] = {"kind", NULL}, *ns_p[] = {"metadata", "namespace", NULL},
		   *name_p[] = {"metadata", "name", NULL};
	yajl_val kind = yajl_tree_get(o->node.v, kind_p, yajl_t_string);
	yajl_val ns = yajl_tree_get(o->node.v, ns_p, yajl_t_string);
	yajl_val name = yajl_tree_get(o->node.v, name_p, yajl_t_string);
	snprintf(buf, size, "%s %s/%s", kind ? kind->u.string : "(no kind)", ns ? ns->u.string : "default",
		 name ? name->u.string : "(no name)");
	return buf;
}
