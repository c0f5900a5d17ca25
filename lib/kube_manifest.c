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
#include "kube_manifest_fast.h"

#define KM_FILE_MAX (64u << 20)
#define KM_DEPTH_MAX 256
/* Aliases may add this many values beyond the document's own: enough for any real manifest,
 * too few for a "billion laughs" document to exhaust memory. */
#define KM_ALIAS_EXTRA 100000
/* mappings up to this many keys check for duplicates as each key comes */
#define KM_SMALL_MAP 16

/* Every value, string and array of a file's trees comes from one arena, freed at once by
 * km_file_free: a 10,000-object List is millions of small values, and malloc was most of the
 * time. (So these trees are never given to yajl_tree_free.) */
struct km_chunk {
	struct km_chunk *next;
	size_t used, cap;
	max_align_t data[];
};

struct km_arena {
	struct km_chunk *head;
};

#define KM_CHUNK (256u << 10)

static void *arena_alloc(struct km_arena *a, size_t n)
{
	n = (n + 15) & ~(size_t)15;
	struct km_chunk *c = a->head;
	if (!c || c->cap - c->used < n) {
		size_t cap = n > KM_CHUNK ? n : KM_CHUNK;
		c = malloc(sizeof(*c) + cap);
		if (!c)
			return NULL;
		c->cap = cap;
		c->used = 0;
		c->next = a->head;
		a->head = c;
	}
	void *p = (char *)c->data + c->used;
	c->used += n;
	return p;
}

/* Back to an earlier point of the arena: what was allocated since is gone (mark NULL: all). */
static void arena_rewind(struct km_arena *a, struct km_chunk *mark, size_t used)
{
	while (a->head && a->head != mark) {
		struct km_chunk *c = a->head;
		a->head = c->next;
		free(c);
	}
	if (a->head)
		a->head->used = used;
}

static char *arena_strdup(struct km_arena *a, const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = arena_alloc(a, n);
	if (p)
		memcpy(p, s, n);
	return p;
}

static void arena_free(struct km_arena *a)
{
	if (!a)
		return;
	for (struct km_chunk *c = a->head, *next; c; c = next) {
		next = c->next;
		free(c);
	}
	free(a);
}

static yajl_val new_val(struct km_arena *a, yajl_type t)
{
	yajl_val v = arena_alloc(a, sizeof(*v));
	if (v) {
		memset(v, 0, sizeof(*v));
		v->type = t;
	}
	return v;
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

/* ---- the tree, built from libyaml's events ------------------------------------------------
 * Straight from the event stream into yajl values: no libyaml document in between, which
 * halves the memory and most of the time of a large List. */

struct frame {
	yajl_val v;
	/* v's arrays while it is open: buffers kept from one node to the next at this depth (one
	 * malloc per depth, not per mapping), copied into the arena at the exact size by pop */
	const char **kbuf;
	yajl_val *vbuf;
	size_t bcap;
	char *key;      /* a mapping's key waiting for its value */
	char *anchor;   /* registered when the node is complete */
	bool items;     /* the root mapping's "items" sequence: its elements' lines are kept */
	size_t streamed; /* items frame: how many of its elements were handed out (km_parse_each) */
	bool marked;    /* an item to hand out when complete: the arena as it was before it */
	struct km_chunk *mark;
	size_t mark_used;
};

struct anchor {
	char *name;
	yajl_val v; /* owned by the tree; copied on each alias */
};

struct builder {
	struct km_arena *arena;
	const char *what;
	struct kelp_err *err;
	bool failed;
	struct frame stack[KM_DEPTH_MAX + 1];
	int depth;
	struct anchor *anchors;
	size_t n_anchors;
	size_t values, budget;
	int *item_lines;
	size_t n_item_lines;
	int root_line; /* of the document's root node */
	/* km_parse_each: objects go to each as they complete, and their memory is reused */
	km_object_fn each;
	void *each_ctx;
	size_t docs_done;    /* documents handed out so far, for "(document N, ...)" */
	size_t streamed;     /* this document's items handed out before its end */
	bool stream_stopped; /* this document: an item could not be (an anchor, not a mapping) */
};

static int fail_at(struct builder *b, yaml_mark_t m, const char *fmt, const char *arg)
{
	char msg[256];
	snprintf(msg, sizeof(msg), fmt, arg);
	b->failed = true;
	return kelp_fail(b->err, EINVAL, "%s:%zu:%zu: %s", b->what, m.line + 1, m.column + 1, msg);
}

static int oom(struct builder *b)
{
	b->failed = true;
	return kelp_error(b->err, ENOMEM, "%s", b->what);
}

static void anchors_clear(struct builder *b)
{
	for (size_t i = 0; i < b->n_anchors; i++)
		free(b->anchors[i].name);
	free(b->anchors);
	b->anchors = NULL;
	b->n_anchors = 0;
}

static int count_value(struct builder *b, yaml_mark_t m)
{
	if (++b->values > b->budget)
		return fail_at(b, m, "aliases expand to too many values%s", "");
	return 0;
}

static yajl_val scalar(struct builder *b, const yaml_event_t *e)
{
	const char *s = (const char *)e->data.scalar.value;
	const char *tag = (const char *)e->data.scalar.tag;
	/* only a plain, untagged (or "!!str"-less) scalar is resolved by its form */
	bool resolve = e->data.scalar.plain_implicit && e->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !tag;
	bool want_int = tag && strcmp(tag, YAML_INT_TAG) == 0, want_float = tag && strcmp(tag, YAML_FLOAT_TAG) == 0;
	bool want_bool = tag && strcmp(tag, YAML_BOOL_TAG) == 0, want_null = tag && strcmp(tag, YAML_NULL_TAG) == 0;
	/* most scalars are names and addresses: decide by the first byte and the length before any
	 * comparison (the words below are at most 5 bytes) */
	char c0 = s[0];
	size_t len = e->data.scalar.length;
	bool maybe_word = c0 == '\0' || (len <= 5 && strchr("~nNtTfFyYoO", c0));
	bool maybe_num = (c0 >= '0' && c0 <= '9') || c0 == '-' || c0 == '+' || c0 == '.';

	if ((resolve || want_null) && maybe_word && one_of(s, nulls))
		return new_val(b->arena, yajl_t_null);
	if ((resolve || want_bool) && maybe_word && one_of(s, trues))
		return new_val(b->arena, yajl_t_true);
	if ((resolve || want_bool) && maybe_word && one_of(s, falses))
		return new_val(b->arena, yajl_t_false);
	if (((resolve && maybe_num) || want_int || want_float)) {
		long long i = 0;
		double d = 0;
		bool int_ok;
		if (parse_number(s, &i, &int_ok, &d)) {
			if (want_int && !int_ok) {
				fail_at(b, e->start_mark, "not an integer: '%.64s'", s);
				return NULL;
			}
			yajl_val v = new_val(b->arena, yajl_t_number);
			if (!v || !(v->u.number.r = arena_strdup(b->arena, s)))
				return NULL;
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
		fail_at(b, e->start_mark, "a value does not match its tag: '%.64s'", s);
		return NULL;
	}
	/* a NUL inside would silently cut the C string: refuse it, as lib/json does */
	if (strlen(s) != e->data.scalar.length) {
		fail_at(b, e->start_mark, "a string holds a NUL character%s", "");
		return NULL;
	}
	yajl_val v = new_val(b->arena, yajl_t_string);
	if (v && !(v->u.string = arena_strdup(b->arena, s)))
		return NULL;
	return v;
}

/* A deep copy for an alias, counted against the budget. */
static yajl_val copy_value(struct builder *b, yajl_val v, yaml_mark_t m)
{
	if (count_value(b, m) < 0)
		return NULL;
	struct km_arena *a = b->arena;
	yajl_val c = new_val(a, v->type);
	if (!c)
		return NULL;
	switch (v->type) {
	case yajl_t_string:
		if (!(c->u.string = arena_strdup(a, v->u.string)))
			return NULL;
		break;
	case yajl_t_number:
		c->u.number = v->u.number;
		if (!(c->u.number.r = arena_strdup(a, v->u.number.r)))
			return NULL;
		break;
	case yajl_t_object:
		if (v->u.object.len && (!(c->u.object.keys = arena_alloc(a, v->u.object.len * sizeof(char *))) ||
					!(c->u.object.values = arena_alloc(a, v->u.object.len * sizeof(yajl_val)))))
			return NULL;
		for (size_t i = 0; i < v->u.object.len; i++) {
			/* keys are never written: the copy can share them */
			c->u.object.keys[i] = v->u.object.keys[i];
			if (!(c->u.object.values[i] = copy_value(b, v->u.object.values[i], m)))
				return NULL;
		}
		c->u.object.len = v->u.object.len;
		break;
	case yajl_t_array:
		if (v->u.array.len && !(c->u.array.values = arena_alloc(a, v->u.array.len * sizeof(yajl_val))))
			return NULL;
		for (size_t i = 0; i < v->u.array.len; i++)
			if (!(c->u.array.values[i] = copy_value(b, v->u.array.values[i], m)))
				return NULL;
		c->u.array.len = v->u.array.len;
		break;
	default:
		break;
	}
	return c;
}

/* Room for one more entry in the frame's buffers (both grow together). */
static int frame_grow(struct frame *f)
{
	size_t cap = f->bcap ? f->bcap * 2 : 8;
	const char **k = realloc(f->kbuf, cap * sizeof(*k));
	if (!k)
		return -1;
	f->kbuf = k;
	yajl_val *v = realloc(f->vbuf, cap * sizeof(*v));
	if (!v)
		return -1;
	f->vbuf = v;
	f->bcap = cap;
	if (f->v->type == yajl_t_object) {
		f->v->u.object.keys = k;
		f->v->u.object.values = v;
	} else {
		f->v->u.array.values = v;
	}
	return 0;
}

/* Put a complete value into the frame on top (or return it as the document's root when the
 * stack is empty, through *root). Takes ownership of v in every case. */
static int attach(struct builder *b, yajl_val v, const char *anchor, yaml_mark_t m, yajl_val *root)
{
	if (anchor) {
		struct anchor *a = realloc(b->anchors, (b->n_anchors + 1) * sizeof(*a));
		char *name = a ? strdup(anchor) : NULL;
		if (a)
			b->anchors = a;
		if (!name)
			return oom(b);
		b->anchors[b->n_anchors].name = name;
		b->anchors[b->n_anchors++].v = v;
	}
	if (b->depth == 0) {
		*root = v;
		return 0;
	}
	struct frame *f = &b->stack[b->depth - 1];
	if (f->v->type == yajl_t_array) {
		/* an item kept in the tree (a scalar, an alias, one with an anchor): the later ones
		 * stay too, so that the kept ones come after the handed-out ones, in order */
		if (f->items)
			b->stream_stopped = true;
		if (f->v->u.array.len == f->bcap && frame_grow(f) < 0)
			return oom(b);
		f->v->u.array.values[f->v->u.array.len++] = v;
		return 0;
	}
	if (!f->key) { /* v is a key */
		if (v->type != yajl_t_string && v->type != yajl_t_number && v->type != yajl_t_true &&
		    v->type != yajl_t_false && v->type != yajl_t_null)
			return fail_at(b, m, "a mapping key is not a plain string%s", "");
		/* "80: x" or "true: x" are keys all the same: keep their text */
		const char *text = v->type == yajl_t_string ? v->u.string
				   : v->type == yajl_t_number ? v->u.number.r
				   : v->type == yajl_t_true   ? "true"
				   : v->type == yajl_t_false  ? "false"
							      : "null";
		/* a small mapping checks each key as it comes, to point at the duplicate itself;
		 * a large one is checked once, sorted, when it ends */
		if (f->v->u.object.len < KM_SMALL_MAP)
			for (size_t i = 0; i < f->v->u.object.len; i++)
				if (f->v->u.object.keys[i][0] == text[0] && strcmp(f->v->u.object.keys[i], text) == 0)
					return fail_at(b, m, "duplicate key '%.64s'", text);
		/* the key's text is in the arena already (a string or a number's spelling) */
		f->key = (char *)text;
		return 0;
	}
	if (f->v->u.object.len == f->bcap && frame_grow(f) < 0)
		return oom(b);
	f->v->u.object.keys[f->v->u.object.len] = f->key;
	f->v->u.object.values[f->v->u.object.len++] = v;
	f->key = NULL;
	return 0;
}

static int cmp_keyp(const void *a, const void *b)
{
	return strcmp(**(const char *const *const *)a, **(const char *const *const *)b);
}

/* Duplicate keys are an error (kubectl refuses them too). Small mappings were checked key by
 * key (attach); sorted pointers make a large one n log n. */
static int check_duplicates(struct builder *b, const struct frame *f, yaml_mark_t m)
{
	size_t n = f->v->u.object.len;
	if (n <= KM_SMALL_MAP)
		return 0;
	const char **keys = f->v->u.object.keys;
	const char **ptrs[n];
	for (size_t i = 0; i < n; i++)
		ptrs[i] = &keys[i];
	qsort(ptrs, n, sizeof(ptrs[0]), cmp_keyp);
	for (size_t i = 1; i < n; i++)
		if (strcmp(*ptrs[i - 1], *ptrs[i]) == 0)
			return fail_at(b, m, "duplicate key '%.64s'", *ptrs[i]);
	return 0;
}

static void stack_clear(struct builder *b)
{
	while (b->depth > 0)
		free(b->stack[--b->depth].anchor);
	for (size_t i = 0; i < sizeof(b->stack) / sizeof(b->stack[0]); i++) {
		free(b->stack[i].kbuf);
		free(b->stack[i].vbuf);
		b->stack[i].kbuf = NULL;
		b->stack[i].vbuf = NULL;
		b->stack[i].bcap = 0;
	}
}

static int push(struct builder *b, yajl_type t, const unsigned char *anchor, yaml_mark_t m)
{
	if (b->depth >= KM_DEPTH_MAX)
		return fail_at(b, m, "nested deeper than %s levels", "256");
	if (count_value(b, m) < 0)
		return -1;
	/* km_parse_each: a List item is handed out when complete, unless an anchor could be
	 * aliased later (its tree must then stay); once one cannot, the document's later ones
	 * stay in the tree too, to keep their order */
	bool item = b->depth >= 1 && b->stack[b->depth - 1].items;
	bool mark = false;
	if (b->each && item && !b->stream_stopped) {
		if (t == yajl_t_object && !anchor && !b->n_anchors)
			mark = true;
		else
			b->stream_stopped = true;
	}
	struct km_chunk *mark_chunk = b->arena->head;
	size_t mark_used = mark_chunk ? mark_chunk->used : 0;
	yajl_val v = new_val(b->arena, t);
	char *a = anchor ? strdup((const char *)anchor) : NULL;
	if (!v || (anchor && !a)) {
		free(a);
		return oom(b);
	}
	if (item) {
		int *l = realloc(b->item_lines, (b->n_item_lines + 1) * sizeof(int));
		if (!l) {
			free(a);
			return oom(b);
		}
		b->item_lines = l;
		b->item_lines[b->n_item_lines++] = (int)m.line + 1;
	}
	struct frame *f = &b->stack[b->depth];
	const char **kbuf = f->kbuf;
	yajl_val *vbuf = f->vbuf;
	size_t bcap = f->bcap;
	memset(f, 0, sizeof(*f));
	f->kbuf = kbuf;
	f->vbuf = vbuf;
	f->bcap = bcap;
	if (t == yajl_t_object) {
		v->u.object.keys = kbuf;
		v->u.object.values = vbuf;
	} else {
		v->u.array.values = vbuf;
	}
	f->v = v;
	f->anchor = a;
	f->marked = mark;
	f->mark = mark_chunk;
	f->mark_used = mark_used;
	/* the root mapping's "items": its elements are a List's objects */
	if (t == yajl_t_array && b->depth == 1 && b->stack[0].key && strcmp(b->stack[0].key, "items") == 0)
		f->items = true;
	b->depth++;
	return 0;
}

/* A complete List item (the frame on top is the items sequence) to b->each. */
static void hand_out_item(struct builder *b, yajl_val v)
{
	struct frame *items = &b->stack[b->depth - 1];
	size_t i = items->streamed + items->v->u.array.len;
	struct km_object o = {.file = b->what, .line = i < b->n_item_lines ? b->item_lines[i] : b->root_line};
	o.node.v = v;
	snprintf(o.where, sizeof(o.where), "%s (document %zu, items[%zu])", b->what, b->docs_done + 1, i);
	b->each(b->each_ctx, &o);
	items->streamed++;
	b->streamed++;
}

static void *arena_copy(struct km_arena *a, const void *p, size_t n)
{
	void *c = arena_alloc(a, n ? n : 1);
	if (c && n)
		memcpy(c, p, n);
	return c;
}

/* Close the frame on top and hand its value to its parent. */
static int pop(struct builder *b, yaml_mark_t m, yajl_val *root)
{
	struct frame f = b->stack[--b->depth];
	int r = -1;
	yajl_val v = f.v;
	if (v->type == yajl_t_object) {
		if (check_duplicates(b, &f, m) < 0)
			goto out;
		size_t n = v->u.object.len;
		const char **keys = arena_copy(b->arena, v->u.object.keys, n * sizeof(char *));
		yajl_val *values = keys ? arena_copy(b->arena, v->u.object.values, n * sizeof(yajl_val)) : NULL;
		if (!values) {
			oom(b);
			goto out;
		}
		v->u.object.keys = keys;
		v->u.object.values = values;
	} else {
		size_t n = v->u.array.len;
		yajl_val *values = arena_copy(b->arena, v->u.array.values, n * sizeof(yajl_val));
		if (!values) {
			oom(b);
			goto out;
		}
		v->u.array.values = values;
	}
	if (f.marked && !b->n_anchors) {
		hand_out_item(b, v);
		arena_rewind(b->arena, f.mark, f.mark_used);
		return 0;
	}
	if (f.marked)
		b->stream_stopped = true; /* an anchor inside: it must stay, and the later items too */
	r = attach(b, v, f.anchor, m, root);
	free(f.anchor);
	return r;
out:
	free(f.anchor);
	return r;
}

/* Lines of each document and of each List item, for km_object.line. */
struct doc_lines {
	int doc;
	int *items;
	size_t n_items;
};

/* A List's (or *List's) items; NULL when root is no List. */
static yajl_val list_items(yajl_val root)
{
	const char *kind_path[] = {"kind", NULL}, *items_path[] = {"items", NULL};
	yajl_val k = yajl_tree_get(root, kind_path, yajl_t_string);
	size_t klen = k ? strlen(k->u.string) : 0;
	if (klen < 4 || strcmp(k->u.string + klen - 4, "List") != 0)
		return NULL;
	return yajl_tree_get(root, items_path, yajl_t_array);
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
static int collect_objects(struct km_file *f, const char *what, const struct doc_lines *lines, struct kelp_err *err)
{
	for (size_t d = 0; d < f->n_docs; d++) {
		yajl_val root = f->docs[d].v;
		yajl_val items = list_items(root);
		if (items) {
			for (size_t i = 0; i < items->u.array.len; i++) {
				yajl_val it = items->u.array.values[i];
				if (!YAJL_IS_OBJECT(it))
					return kelp_fail(err, EINVAL, "%s: items[%zu]: expected an object", what, i);
				int line = i < lines[d].n_items ? lines[d].items[i] : lines[d].doc;
				if (add_object(f, what, d, f->n_docs, (long)i, line, it, err) < 0)
					return -1;
			}
		} else if (add_object(f, what, d, f->n_docs, -1, lines[d].doc, root, err) < 0) {
			return -1;
		}
	}
	return 0;
}

void km_file_free(struct km_file *f)
{
	if (!f)
		return;
	arena_free(f->arena);
	free(f->docs);
	free(f->objects);
	free(f->path);
	memset(f, 0, sizeof(*f));
}

/* One event into the tree; *root gets a completed document's root. */
static int feed(struct builder *b, yaml_event_t *e, yajl_val *root)
{
	if (b->depth == 0)
		b->root_line = (int)e->start_mark.line + 1;
	switch (e->type) {
	case YAML_SEQUENCE_START_EVENT:
		return push(b, yajl_t_array, e->data.sequence_start.anchor, e->start_mark);
	case YAML_MAPPING_START_EVENT:
		/* a collection cannot be a key */
		if (b->depth > 0 && b->stack[b->depth - 1].v->type == yajl_t_object && !b->stack[b->depth - 1].key)
			return fail_at(b, e->start_mark, "a mapping key is not a plain string%s", "");
		return push(b, yajl_t_object, e->data.mapping_start.anchor, e->start_mark);
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		return pop(b, e->start_mark, root);
	case YAML_SCALAR_EVENT: {
		if (count_value(b, e->start_mark) < 0)
			return -1;
		yajl_val v = scalar(b, e);
		if (!v)
			return b->failed ? -1 : oom(b);
		return attach(b, v, (const char *)e->data.scalar.anchor, e->start_mark, root);
	}
	case YAML_ALIAS_EVENT: {
		const char *name = (const char *)e->data.alias.anchor;
		for (size_t i = b->n_anchors; i-- > 0;)
			if (strcmp(b->anchors[i].name, name) == 0) {
				yajl_val v = copy_value(b, b->anchors[i].v, e->start_mark);
				if (!v)
					return b->failed ? -1 : oom(b);
				return attach(b, v, NULL, e->start_mark, root);
			}
		return fail_at(b, e->start_mark, "an alias to an unknown anchor '%.64s'", name);
	}
	default:
		return 0;
	}
}

/* One parse of a buffer: the builder and what it has made so far. */
struct parse {
	struct km_file f;
	struct builder b;
	struct doc_lines *lines;
	size_t n_lines;
	const char *what;
	struct kelp_err *err;
	bool restart; /* km_parse_each: a document whose items went out was no List after all */
};

/* km_parse_each: a complete document's objects to b->each (a List's items not handed out yet,
 * or the document itself), then its memory is reused. */
static int hand_out_document(struct parse *p, yajl_val root)
{
	struct builder *b = &p->b;
	yajl_val items = list_items(root);
	bool list = items != NULL;
	if (!list && b->streamed) {
		/* its "items" were no List's: read the buffer again the plain way */
		p->restart = true;
		return -1;
	}
	size_t doc = ++b->docs_done;
	if (list) {
		for (size_t k = 0; k < items->u.array.len; k++) {
			size_t i = b->streamed + k;
			yajl_val it = items->u.array.values[k];
			if (!YAJL_IS_OBJECT(it))
				return kelp_fail(p->err, EINVAL, "%s: items[%zu]: expected an object", p->what, i);
			struct km_object o = {.file = p->what, .line = i < b->n_item_lines ? b->item_lines[i] : b->root_line};
			o.node.v = it;
			snprintf(o.where, sizeof(o.where), "%s (document %zu, items[%zu])", p->what, doc, i);
			b->each(b->each_ctx, &o);
		}
	} else {
		struct km_object o = {.file = p->what, .line = b->root_line};
		o.node.v = root;
		snprintf(o.where, sizeof(o.where), "%s (document %zu)", p->what, doc);
		b->each(b->each_ctx, &o);
	}
	arena_rewind(b->arena, NULL, 0);
	return 0;
}

/* One event from either reader into the tree; a completed document joins f.docs. */
static int on_event(void *arg, yaml_event_t *e)
{
	struct parse *p = arg;
	yajl_val root = NULL;
	if (e->type == YAML_DOCUMENT_START_EVENT) {
		p->b.values = 0;
		p->b.streamed = 0;
		p->b.stream_stopped = false;
		anchors_clear(&p->b);
	} else if (e->type == YAML_DOCUMENT_END_EVENT || e->type == YAML_STREAM_END_EVENT) {
		anchors_clear(&p->b);
	} else if (feed(&p->b, e, &root) < 0) {
		return -1;
	}
	if (!root)
		return 0;
	/* an empty document ("---" alone, or a comment) is skipped, as kubectl does */
	if (root->type == yajl_t_object && p->b.each) {
		int r = hand_out_document(p, root);
		free(p->b.item_lines);
		p->b.item_lines = NULL;
		p->b.n_item_lines = 0;
		p->b.streamed = 0;
		p->b.stream_stopped = false;
		return r;
	} else if (root->type == yajl_t_object) {
		struct kj *docs = realloc(p->f.docs, (p->f.n_docs + 1) * sizeof(*docs));
		struct doc_lines *dl = realloc(p->lines, (p->f.n_docs + 1) * sizeof(*dl));
		if (docs)
			p->f.docs = docs;
		if (dl)
			p->lines = dl;
		if (!docs || !dl)
			return kelp_error(p->err, ENOMEM, "%s", p->what);
		memset(&p->f.docs[p->f.n_docs], 0, sizeof(p->f.docs[0]));
		p->f.docs[p->f.n_docs].v = root;
		p->lines[p->n_lines++] = (struct doc_lines){p->b.root_line, p->b.item_lines, p->b.n_item_lines};
		p->f.n_docs++;
	} else if (root->type != yajl_t_null) {
		return kelp_fail(p->err, EINVAL, "%s:%d:1: a document is not a mapping (an object)", p->what,
				 p->b.root_line);
	}
	p->b.item_lines = NULL;
	p->b.n_item_lines = 0;
	return 0;
}

static int read_libyaml(struct parse *p, const char *buf, size_t len)
{
	yaml_parser_t parser;
	if (!yaml_parser_initialize(&parser))
		return kelp_error(p->err, ENOMEM, "%s: YAML parser", p->what);
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	int r = 0;
	for (bool end = false; !end && r == 0;) {
		yaml_event_t e;
		if (!yaml_parser_parse(&parser, &e)) {
			r = kelp_fail(p->err, EINVAL, "%s:%zu:%zu: %s%s%s", p->what, parser.problem_mark.line + 1,
				      parser.problem_mark.column + 1, parser.problem ? parser.problem : "YAML error",
				      parser.context ? " " : "", parser.context ? parser.context : "");
			break;
		}
		end = e.type == YAML_STREAM_END_EVENT;
		r = on_event(p, &e);
		yaml_event_delete(&e);
	}
	yaml_parser_delete(&parser);
	return r;
}

bool km_looks_json(const char *buf, size_t len)
{
	size_t i = 0;
	while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\n' || buf[i] == '\r'))
		i++;
	return i < len && (buf[i] == '{' || buf[i] == '[');
}

/* 0, -1 with err set, or KMF_GIVE_UP (fast reader only) */
#define KM_RESTART 2

/* each: km_parse_each's (objects handed out as they complete, nothing kept in ret) */
static int parse_once(const char *buf, size_t len, const char *what, bool fast, km_object_fn each, void *each_ctx,
		      struct km_file *ret, struct kelp_err *err)
{
	struct parse p = {.what = what, .err = err};
	p.b = (struct builder){.what = what, .err = err, .each = each, .each_ctx = each_ctx};
	if (!(p.f.path = strdup(what)) || !(p.f.arena = calloc(1, sizeof(struct km_arena)))) {
		free(p.f.path);
		return kelp_error(err, ENOMEM, "%s", what);
	}
	p.b.arena = p.f.arena;
	/* a document's values are bounded by the input (each needs a byte or more), aliases add at
	 * most KM_ALIAS_EXTRA */
	p.b.budget = len + KM_ALIAS_EXTRA;
	int r;
	if (!fast)
		r = read_libyaml(&p, buf, len);
	else if (km_looks_json(buf, len))
		r = kmf_scan_json(buf, len, on_event, &p);
	else
		r = kmf_scan(buf, len, on_event, &p);
	if (p.restart)
		r = KM_RESTART;
	if (r == 0 && collect_objects(&p.f, what, p.lines, err) < 0)
		r = -1;
	if (r == 0) {
		*ret = p.f;
		memset(&p.f, 0, sizeof(p.f));
	}
	stack_clear(&p.b);
	anchors_clear(&p.b);
	free(p.b.item_lines);
	for (size_t i = 0; i < p.n_lines; i++)
		free(p.lines[i].items);
	free(p.lines);
	km_file_free(&p.f);
	return r;
}

int km_parse_with(const char *buf, size_t len, const char *what, enum km_reader how, struct km_file *ret,
		  struct kelp_err *err)
{
	if (how != KM_READ_LIBYAML) {
		int r = parse_once(buf, len, what, true, NULL, NULL, ret, err);
		if (r == 0 || how == KM_READ_FAST)
			return r == KMF_GIVE_UP ? KM_NOT_FAST : r;
	}
	/* outside the fast reader's subset, or wrong: libyaml reads it again and says what is wrong
	 * in its own words */
	return parse_once(buf, len, what, false, NULL, NULL, ret, err);
}

void km_where_long(const struct km_object *o, char *buf, size_t size)
{
	size_t fl = strlen(o->file);
	const char *rest = strncmp(o->where, o->file, fl) == 0 ? o->where + fl : "";
	if (!*rest)
		snprintf(buf, size, "%s (document 1)", o->file);
	else if (!strncmp(rest, " (items[", 8))
		snprintf(buf, size, "%s (document 1, %s", o->file, rest + 2);
	else
		snprintf(buf, size, "%s", o->where);
}

int km_parse_each(const char *buf, size_t len, const char *what, km_object_fn each, void *ctx, struct kelp_err *err)
{
	struct km_file f;
	int r = parse_once(buf, len, what, true, each, ctx, &f, err);
	if (r != 0 && r != KM_RESTART) {
		/* the fast reader gave up or failed: libyaml reads it all again */
		each(ctx, NULL);
		r = parse_once(buf, len, what, false, each, ctx, &f, err);
	}
	if (r == KM_RESTART) {
		each(ctx, NULL);
		if (km_parse(buf, len, what, &f, err) < 0)
			return -1;
		for (size_t i = 0; i < f.n_objects; i++) {
			struct km_object o = f.objects[i];
			km_where_long(&f.objects[i], o.where, sizeof(o.where));
			each(ctx, &o);
		}
		km_file_free(&f);
		return 0;
	}
	if (r != 0) {
		each(ctx, NULL);
		return -1;
	}
	km_file_free(&f);
	return 0;
}

int km_read_file_each(const char *path, km_object_fn each, void *ctx, struct kelp_err *err)
{
	cleanup_free char *buf = NULL;
	size_t len;
	if (kelp_read_file_at(AT_FDCWD, path, KM_FILE_MAX, &buf, &len, err) < 0)
		return -1;
	return km_parse_each(buf, len, path, each, ctx, err);
}

int km_parse(const char *buf, size_t len, const char *what, struct km_file *ret, struct kelp_err *err)
{
	return km_parse_with(buf, len, what, KM_READ_AUTO, ret, err);
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
