/* Unit tests of lib/kube_manifest.c: YAML and JSON manifests into the lib/json tree, scalar typing,
 * several documents, List items, errors with file, line and column, alias bombs, directories;
 * km_parse_each gives the same objects one by one. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_util.h"

#include "cleanup.h"
#include "fs.h"
#include "kube_manifest.h"

static struct km_file parse_ok(const char *text)
{
	struct km_file f;
	struct kelp_err err = {0};
	if (km_parse(text, strlen(text), "svc.yaml", &f, &err) < 0)
		failf("km_parse: %s", err.msg);
	return f;
}

static void parse_fails(const char *text, const char *want_msg)
{
	struct km_file f;
	struct kelp_err err = {0};
	if (km_parse(text, strlen(text), "bad.yaml", &f, &err) == 0) {
		km_file_free(&f);
		failf("km_parse accepted: %s", text);
	}
	if (!strstr(err.msg, want_msg))
		failf("error '%s' lacks '%s'", err.msg, want_msg);
}

static yajl_val get(yajl_val root, const char *a, const char *b)
{
	const char *path[] = {a, b, NULL};
	return yajl_tree_get(root, path, yajl_t_any);
}

static void test_scalars_typed_like_kubectl(void **state)
{
	(void)state;
	struct km_file f = parse_ok("a: 80\nb: \"80\"\nc: '80'\nd: true\ne: no\nf: ~\ng: null\nh:\n"
				    "i: 1.5\nj: 0x1F\nk: -7\nl: 1e3\nm: 80Mi\nn: 99999999999999999999\n"
				    "o: !!str 12\np: .inf\nq: TCP\nr: 0o17\n");
	assert_int_equal(f.n_docs, 1);
	yajl_val r = f.docs[0].v;
	assert_true(YAJL_IS_INTEGER(get(r, "a", NULL)));
	assert_int_equal(YAJL_GET_INTEGER(get(r, "a", NULL)), 80);
	assert_true(YAJL_IS_STRING(get(r, "b", NULL)));
	assert_true(YAJL_IS_STRING(get(r, "c", NULL)));
	assert_true(YAJL_IS_TRUE(get(r, "d", NULL)));
	assert_true(YAJL_IS_FALSE(get(r, "e", NULL)));
	assert_true(YAJL_IS_NULL(get(r, "f", NULL)));
	assert_true(YAJL_IS_NULL(get(r, "g", NULL)));
	assert_true(YAJL_IS_NULL(get(r, "h", NULL)));
	assert_true(YAJL_IS_DOUBLE(get(r, "i", NULL)));
	assert_false(YAJL_IS_INTEGER(get(r, "i", NULL)));
	assert_int_equal(YAJL_GET_INTEGER(get(r, "j", NULL)), 31);
	assert_int_equal(YAJL_GET_INTEGER(get(r, "k", NULL)), -7);
	assert_false(YAJL_IS_INTEGER(get(r, "l", NULL)));
	assert_true(YAJL_GET_DOUBLE(get(r, "l", NULL)) == 1000.0);
	assert_string_equal(YAJL_GET_STRING(get(r, "m", NULL)), "80Mi");
	/* too large for an integer: a number that kj_int64 refuses, not a wrapped value */
	assert_true(YAJL_IS_NUMBER(get(r, "n", NULL)));
	assert_false(YAJL_IS_INTEGER(get(r, "n", NULL)));
	assert_true(YAJL_IS_STRING(get(r, "o", NULL)) || YAJL_IS_INTEGER(get(r, "o", NULL)));
	assert_true(YAJL_IS_DOUBLE(get(r, "p", NULL)));
	assert_string_equal(YAJL_GET_STRING(get(r, "q", NULL)), "TCP");
	assert_int_equal(YAJL_GET_INTEGER(get(r, "r", NULL)), 15);
	km_file_free(&f);
}

static void test_kj_getters_name_the_path(void **state)
{
	(void)state;
	struct km_file f = parse_ok("kind: Service\nspec:\n  ports:\n  - port: 80\n  - port: http\n");
	assert_int_equal(f.n_objects, 1);
	struct kj spec, ports, p1, port;
	struct kelp_err err = {0};
	assert_int_equal(kj_field(&f.objects[0].node, "spec", &spec, &err), 1);
	assert_int_equal(kj_field(&spec, "ports", &ports, &err), 1);
	kj_index(&ports, 1, &p1);
	assert_int_equal(kj_field(&p1, "port", &port, &err), 1);
	int32_t v;
	assert_int_equal(kj_int32(&port, &v, &err), -1);
	assert_non_null(strstr(err.msg, "spec.ports[1].port: expected"));
	km_file_free(&f);
}

static void test_documents_and_lists(void **state)
{
	(void)state;
	struct km_file f = parse_ok("---\n# only a comment\n---\napiVersion: v1\nkind: Service\nmetadata:\n"
				    "  name: a\n---\n---\napiVersion: v1\nkind: List\nitems:\n- kind: Service\n"
				    "  metadata: {name: b, namespace: x}\n- kind: EndpointSlice\n  metadata: {name: c}\n");
	assert_int_equal(f.n_docs, 2);
	assert_int_equal(f.n_objects, 3);
	char buf[128];
	assert_string_equal(km_object_name(&f.objects[0], buf, sizeof(buf)), "Service default/a");
	assert_string_equal(km_object_name(&f.objects[1], buf, sizeof(buf)), "Service x/b");
	assert_string_equal(km_object_name(&f.objects[2], buf, sizeof(buf)), "EndpointSlice default/c");
	assert_string_equal(f.objects[0].where, "svc.yaml (document 1)");
	assert_string_equal(f.objects[2].where, "svc.yaml (document 2, items[1])");
	assert_int_equal(f.objects[0].line, 4);
	assert_int_equal(f.objects[1].line, 13);
	assert_int_equal(f.objects[2].line, 15);
	assert_string_equal(f.objects[2].node.path, "");
	km_file_free(&f);
}

static void test_json_input(void **state)
{
	(void)state;
	struct km_file f = parse_ok("{\"kind\": \"ServiceList\", \"items\": [{\"kind\": \"Service\", \"spec\": "
				    "{\"ports\": [{\"port\": 53, \"protocol\": \"UDP\"}]}}]}");
	assert_int_equal(f.n_objects, 1);
	assert_string_equal(f.objects[0].where, "svc.yaml (items[0])");
	const char *p[] = {"spec", "ports", NULL};
	yajl_val ports = yajl_tree_get(f.objects[0].node.v, p, yajl_t_array);
	assert_non_null(ports);
	assert_int_equal(YAJL_GET_INTEGER(get(ports->u.array.values[0], "port", NULL)), 53);
	km_file_free(&f);
}

static void test_errors_name_file_line_column(void **state)
{
	(void)state;
	parse_fails("kind: Service\nspec:\n  ports: [80\n", "bad.yaml:");
	parse_fails("a: 1\nb:\n  c: 1\n  c: 2\n", "bad.yaml:4:3: duplicate key 'c'");
	parse_fails("- a\n- b\n", "bad.yaml:1:1: a document is not a mapping");
	parse_fails("kind: List\nitems: [1]\n", "bad.yaml: items[0]: expected an object");
	parse_fails("a: !!int abc\n", "does not match its tag");
	parse_fails("? [a, b]\n: c\n", "not a plain string");
	/* a tab where YAML wants spaces: libyaml's own message, with its position */
	parse_fails("a:\n\t- b\n", "bad.yaml:2:");
}

static void test_alias_bomb_refused(void **state)
{
	(void)state;
	const char *bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
			   "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
			   "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
			   "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
			   "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
			   "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n";
	parse_fails(bomb, "aliases expand to too many values");
	/* a few aliases are fine */
	struct km_file f = parse_ok("a: &l {app: web}\nb: *l\n");
	assert_string_equal(YAJL_GET_STRING(get(f.docs[0].v, "b", "app")), "web");
	km_file_free(&f);
}

static void test_nul_in_string_refused(void **state)
{
	(void)state;
	struct km_file f;
	struct kelp_err err = {0};
	const char text[] = "a: \"x\\0y\"\n";
	assert_int_equal(km_parse(text, sizeof(text) - 1, "n.yaml", &f, &err), -1);
	assert_non_null(strstr(err.msg, "NUL"));
}

static void test_list_files(void **state)
{
	(void)state;
	char dir[] = "/tmp/kt-manifest-XXXXXX";
	assert_non_null(mkdtemp(dir));
	struct kelp_err err = {0};
	const char *names[] = {"b.yaml", "a.json", "c.yml", "notes.txt", ".hidden.yaml", "d.yaml~"};
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(dfd >= 0);
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		assert_int_equal(kelp_atomic_write(dfd, names[i], "kind: Service\n", 14, 0644, &err), 0);
	char **files = NULL;
	size_t n = 0;
	assert_int_equal(km_list_files(dir, &files, &n, &err), 0);
	assert_int_equal(n, 3);
	char want[3][64];
	snprintf(want[0], 64, "%s/a.json", dir);
	snprintf(want[1], 64, "%s/b.yaml", dir);
	snprintf(want[2], 64, "%s/c.yml", dir);
	for (size_t i = 0; i < 3; i++)
		assert_string_equal(files[i], want[i]);
	assert_null(files[3]);
	struct km_file f;
	assert_int_equal(km_read_file(files[1], &f, &err), 0);
	assert_int_equal(f.n_objects, 1);
	assert_string_equal(f.objects[0].file, files[1]);
	km_file_free(&f);
	for (size_t i = 0; i < n; i++)
		free(files[i]);
	free(files);
	/* a single file is its own list */
	assert_int_equal(km_list_files(want[2], &files, &n, &err), 0);
	assert_int_equal(n, 1);
	free(files[0]);
	free(files);
	assert_int_equal(km_list_files("/nonexistent/kt", &files, &n, &err), -1);
	assert_int_equal(err.code, ENOENT);
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		assert_int_equal(unlinkat(dfd, names[i], 0), 0);
	close(dfd);
	assert_int_equal(rmdir(dir), 0);
}

/* A tree as text, to compare the two readers' results. */
static void dump(yajl_val v, FILE *o)
{
	switch (v->type) {
	case yajl_t_string:
		fprintf(o, "s'%s'", v->u.string);
		break;
	case yajl_t_number:
		fprintf(o, "n%s/%d", v->u.number.r, v->u.number.flags);
		break;
	case yajl_t_object:
		fputc('{', o);
		for (size_t i = 0; i < v->u.object.len; i++) {
			fprintf(o, "%s:", v->u.object.keys[i]);
			dump(v->u.object.values[i], o);
			fputc(',', o);
		}
		fputc('}', o);
		break;
	case yajl_t_array:
		fputc('[', o);
		for (size_t i = 0; i < v->u.array.len; i++) {
			dump(v->u.array.values[i], o);
			fputc(',', o);
		}
		fputc(']', o);
		break;
	default:
		fprintf(o, "%d", (int)v->type);
	}
}

static char *file_text(const struct km_file *f)
{
	char *text = NULL;
	size_t len;
	FILE *o = open_memstream(&text, &len);
	assert_non_null(o);
	for (size_t d = 0; d < f->n_docs; d++)
		dump(f->docs[d].v, o);
	for (size_t i = 0; i < f->n_objects; i++)
		fprintf(o, "|%s@%d", f->objects[i].where, f->objects[i].line);
	fclose(o);
	return text;
}

/* Each input is read by a fast reader (not given up) and gives libyaml's objects and lines. */
static void fast_matches_libyaml(const char *const *inputs, size_t n, const char *what)
{
	for (size_t i = 0; i < n; i++) {
		struct km_file fast, slow;
		struct kelp_err err = {0};
		int r = km_parse_with(inputs[i], strlen(inputs[i]), what, KM_READ_FAST, &fast, &err);
		if (r != 0)
			failf("%s input %zu: fast reader %s: %s", what, i, r == KM_NOT_FAST ? "gave up" : "failed", err.msg);
		assert_int_equal(km_parse_with(inputs[i], strlen(inputs[i]), what, KM_READ_LIBYAML, &slow, &err), 0);
		cleanup_free char *a = file_text(&fast);
		cleanup_free char *b = file_text(&slow);
		if (strcmp(a, b) != 0)
			failf("%s input %zu: fast %s\nlibyaml %s", what, i, a, b);
		km_file_free(&fast);
		km_file_free(&slow);
	}
}

/* ---- km_parse_each: objects handed out as they complete ---- */

struct each_log {
	FILE *o;
	char *text;
	size_t len;
	int resets;
};

static void each_fn(void *ctx, const struct km_object *o)
{
	struct each_log *l = ctx;
	if (!o) {
		/* forget: start the log again */
		fclose(l->o);
		free(l->text);
		l->text = NULL;
		l->o = open_memstream(&l->text, &l->len);
		l->resets++;
		return;
	}
	dump(o->node.v, l->o);
	fprintf(l->o, "|%s@%d\n", o->where, o->line);
}

/* km_parse_each gives km_parse's objects, in order, with the same trees and lines; resets
 * counts the fn(NULL) calls. */
static void each_matches(const char *text, const char *what, int resets)
{
	struct km_file f;
	struct kelp_err err = {0};
	if (km_parse(text, strlen(text), what, &f, &err) < 0)
		failf("km_parse: %s", err.msg);
	char *want = NULL;
	size_t wlen;
	FILE *w = open_memstream(&want, &wlen);
	for (size_t i = 0; i < f.n_objects; i++) {
		char where[600];
		km_where_long(&f.objects[i], where, sizeof(where));
		dump(f.objects[i].node.v, w);
		fprintf(w, "|%s@%d\n", where, f.objects[i].line);
	}
	fclose(w);
	km_file_free(&f);
	struct each_log l = {0};
	l.o = open_memstream(&l.text, &l.len);
	if (km_parse_each(text, strlen(text), what, each_fn, &l, &err) < 0)
		failf("km_parse_each: %s", err.msg);
	fclose(l.o);
	if (strcmp(want, l.text))
		failf("%s: km_parse_each gave\n%s\nkm_parse\n%s", what, l.text, want);
	if (l.resets != resets)
		failf("%s: %d resets, expected %d", what, l.resets, resets);
	free(want);
	free(l.text);
}

static void test_parse_each(void **state)
{
	(void)state;
	/* a kubectl List: every item handed out as it completes */
	each_matches("apiVersion: v1\nitems:\n- kind: Service\n  metadata:\n    name: a\n- kind: Service\n  metadata:\n"
		     "    name: b\n  spec:\n    ports:\n    - port: 80\nkind: List\nmetadata:\n  resourceVersion: \"\"\n",
		     "l.yaml", 0);
	/* flow style is libyaml's: the fast reader gives up at once, and libyaml streams */
	each_matches("kind: List\nitems:\n- {kind: Service, metadata: {name: a}}\n- {kind: Service, spec: {ports: [{port: 80}]}}\n",
		     "f.yaml", 1);
	/* the same as JSON, the kind first (as an API server answers) */
	each_matches("{\"kind\": \"ServiceList\", \"apiVersion\": \"v1\", \"metadata\": {}, \"items\": "
		     "[{\"kind\": \"Service\", \"metadata\": {\"name\": \"a\"}}, {\"kind\": \"Service\", "
		     "\"metadata\": {\"name\": \"b\"}}]}",
		     "l.json", 0);
	/* documents around a List keep their order */
	each_matches("kind: Service\nmetadata:\n  name: a\n---\nkind: List\nitems:\n- kind: Service\n  metadata:\n    name: b\n"
		     "- kind: Service\n  metadata:\n    name: c\n---\n---\nkind: Service\nmetadata:\n  name: d\n",
		     "m.yaml", 0);
	/* an anchor in an item: it and the later items stay in the tree (an alias may copy it) */
	each_matches("kind: List\nitems:\n- kind: Service\n  metadata: {name: a}\n- kind: Service\n  metadata: &m {name: b}\n"
		     "- kind: Service\n  metadata: *m\n- kind: Service\n  metadata: {name: d}\n",
		     "a.yaml", 1 /* the fast reader leaves anchors to libyaml */);
	/* "items" in something that is no List: read again the plain way */
	each_matches("kind: Thing\nitems:\n- a: 1\n- b: 2\n", "t.yaml", 1);
	/* the fast reader gives up half-way (a comment), after an item went out: libyaml reads it
	 * all again */
	each_matches("kind: List\nitems:\n- kind: Service\n  metadata:\n    name: a\n# a comment\n- kind: Service\n"
		     "  metadata:\n    name: b\n",
		     "c.yaml", 1);

	/* errors: km_parse's, and what was handed out is taken back */
	static const char *const bad[] = {
		"kind: List\nitems:\n- kind: Service\n  metadata: {name: a}\n- 3\n",
		/* a kept item first, handed-out ones after it: the error names the first */
		"kind: List\nitems:\n- kin\n- kind: Service\n  metadata:\n    name: a\n- kind: Service\n  metadata:\n    name: b\n",
		"kind: List\nitems:\n- kind: Service\n  metadata: {name: a}\n- kind: [Service\n",
		"kind: List\nitems:\n- kind: Service\n  kind: Service\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct km_file f;
		struct kelp_err want = {0}, got = {0};
		assert_int_equal(km_parse(bad[i], strlen(bad[i]), "b.yaml", &f, &want), -1);
		struct each_log l = {0};
		l.o = open_memstream(&l.text, &l.len);
		assert_int_equal(km_parse_each(bad[i], strlen(bad[i]), "b.yaml", each_fn, &l, &got), -1);
		fclose(l.o);
		assert_string_equal(got.msg, want.msg);
		if (l.text[0])
			failf("bad input %zu: objects left after the error: %s", i, l.text);
		assert_true(l.resets >= 1);
		free(l.text);
	}
}

/* The block YAML kubectl writes goes through the fast reader, and gives libyaml's tree. */
static void test_fast_reader_matches_libyaml(void **state)
{
	(void)state;
	const char *inputs[] = {
		"apiVersion: v1\nkind: Service\nmetadata:\n  creationTimestamp: \"2026-11-30T12:00:00Z\"\n"
		"  labels:\n    app: web\n  name: web\n  namespace: shop\nspec:\n  clusterIP: 10.96.0.11\n"
		"  clusterIPs:\n  - 10.96.0.11\n  ports:\n  - name: http\n    nodePort: 30000\n    port: 80\n"
		"    protocol: TCP\n    targetPort: 8080\n  selector:\n    app: web\n  type: NodePort\n"
		"status:\n  loadBalancer: {}\n---\naddressType: IPv4\nendpoints:\n- addresses:\n  - 10.1.0.5\n"
		"  conditions:\n    ready: true\n  nodeName: n1\n- addresses:\n  - 10.1.0.6\n  conditions:\n"
		"    ready: false\nkind: EndpointSlice\nports:\n- port: 8080\n",
		"apiVersion: v1\nitems:\n- kind: Service\n  metadata:\n    name: a\n- kind: Service\n  metadata:\n"
		"    name: b\n  spec: {}\nkind: List\nmetadata:\n  resourceVersion: \"\"\n",
		"a: -1\nb: -x\nc: 0x1F\nd: .5\ne: yes\nf: ~\ng: Null\nh: 1e3\ni: 'it''s'\nj: \"80\"\nk: []\n"
		"l b: c  d  \nm: b:c\nn: http://x/y\no:\np:\n    q: 1\n    r:\n    - 1\n    -   s: 2\n        t: 3\n",
		"---\n---\na: 1\n---\n",
		"",
		"\n\n",
	};
	fast_matches_libyaml(inputs, ARRAY_SIZE(inputs), "k.yaml");
}

/* What the fast reader leaves to libyaml: still read (or refused) by km_parse as before. */
static void test_fast_reader_gives_up(void **state)
{
	(void)state;
	const char *outside[] = {
		"# a comment\na: 1\n", "a: 1 # a comment\n", "a: &x 1\nb: *x\n", "a: !!str 1\n", "a: |\n  text\n",
		"a: >\n  text\n", "a: {b: 1}\n", "a: [1, 2]\n", "a: b\n  c\n", "a: \"x\\ty\"\n", "a: \"x\n  y\"\n",
		"a:\tb\n", "a: 1\r\n", "a: caf\xc3\xa9\n", "\xef\xbb\xbf" "a: 1\n", "- a\n", "  a: 1\n",
		"a: 1\n...\n", "--- a: 1\n", "? a\n: 1\n", "\"a\": 1\n", "a:\n  -\n    b: 1\n", "a:\n- - b\n",
		"%YAML 1.1\n---\na: 1\n",
	};
	for (size_t i = 0; i < ARRAY_SIZE(outside); i++) {
		struct km_file f;
		struct kelp_err err = {0};
		int r = km_parse_with(outside[i], strlen(outside[i]), "k.yaml", KM_READ_FAST, &f, &err);
		if (r != KM_NOT_FAST)
			failf("input %zu (%s): fast reader returned %d, not KM_NOT_FAST", i, outside[i], r);
	}
	/* km_parse reads them with libyaml */
	struct km_file f = parse_ok("# a comment\na: &x {b: 1}\nc: *x\nd: |\n  two\n  lines\n");
	assert_string_equal(get(f.docs[0].v, "d", NULL)->u.string, "two\nlines\n");
	assert_int_equal(get(f.docs[0].v, "c", "b")->u.number.i, 1);
	km_file_free(&f);
	/* errors found by the fast reader's builder come out in libyaml's words and place */
	parse_fails("a: 1\nb: 2\na: 3\n", "bad.yaml:3:1: duplicate key 'a'");
	parse_fails("a: 1\n b: 2\n", "bad.yaml:2:");
}

/* JSON goes through yajl: the same tree as libyaml's, strings never typed, lines kept. */
static void test_json_reader(void **state)
{
	(void)state;
	const char *inputs[] = {
		"{\"a\": 1, \"b\": [1, 2.5, -3e2, true, false, null], \"c\": {\"d\": \"x\\ny\\u00e9\"}, \"e\": \"80\"}",
		"{\"apiVersion\":\"v1\",\"kind\":\"List\",\"items\":[\n{\"kind\":\"Service\",\"metadata\":{\"name\":\"a\"}},\n\n"
		"{\"kind\":\"Service\",\"metadata\":{\"name\":\"b\"}}]}\n",
		"  \n {\"a\": {}, \"b\": [], \"c\": [[[]]], \"d\": \"\", \"e\": \"yes\", \"f\": 12345678901234567890123}",
		/* a CR alone is a line break to libyaml too (tests/fuzz/crashes/fuzz_kube_manifest-1, -2:
		 * the JSON reader counted only LF, so the objects' lines differed) */
		"\r{ }",
		"\r\n\r{\"kind\":\"List\",\"items\":[\r{\"a\":1},\r\n{\"b\":2},\n\r{\"c\":3}]}",
	};
	fast_matches_libyaml(inputs, ARRAY_SIZE(inputs), "k.json");
	/* the List's items on their lines */
	struct km_file f = parse_ok(inputs[1]);
	assert_int_equal(f.n_objects, 2);
	assert_int_equal(f.objects[0].line, 2);
	assert_int_equal(f.objects[1].line, 4);
	km_file_free(&f);
	/* a key of 2,000 characters is valid JSON, which libyaml refuses and yajl reads */
	char big[2100];
	memset(big, 'k', sizeof(big));
	big[0] = '{';
	big[1] = '"';
	memcpy(big + 2002, "\": 1}", 6);
	big[2008] = '\0';
	f = parse_ok(big);
	assert_int_equal(f.docs[0].v->u.object.len, 1);
	assert_int_equal(strlen(f.docs[0].v->u.object.keys[0]), 2000);
	km_file_free(&f);
	/* left to libyaml: not JSON after all, surrogate escapes; errors are libyaml's */
	const char *outside[] = {"{\"a\": 1,}", "{\"a\": \"\\ud83d\\ude00\"}", "{\"a\": 1} {\"b\": 2}", "{a: 1}",
				 "{\"a\": \"x\xe2\x80\xa8y\"}", "{\"a\": \"x\xc2\x85y\"}"};
	for (size_t i = 0; i < ARRAY_SIZE(outside); i++) {
		struct kelp_err err = {0};
		int r = km_parse_with(outside[i], strlen(outside[i]), "k.json", KM_READ_FAST, &f, &err);
		if (r != KM_NOT_FAST)
			failf("%s: JSON reader returned %d, not KM_NOT_FAST", outside[i], r);
	}
	parse_fails("{\"a\": 1, \"a\": 2}", "bad.yaml:1:10: duplicate key 'a'");
	parse_fails("[1, 2]", "bad.yaml:1:1: a document is not a mapping");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scalars_typed_like_kubectl),
		cmocka_unit_test(test_kj_getters_name_the_path),
		cmocka_unit_test(test_documents_and_lists),
		cmocka_unit_test(test_json_input),
		cmocka_unit_test(test_errors_name_file_line_column),
		cmocka_unit_test(test_alias_bomb_refused),
		cmocka_unit_test(test_nul_in_string_refused),
		cmocka_unit_test(test_list_files),
		cmocka_unit_test(test_fast_reader_matches_libyaml),
		cmocka_unit_test(test_fast_reader_gives_up),
		cmocka_unit_test(test_json_reader),
		cmocka_unit_test(test_parse_each),
	};
	return cmocka_run_group_tests_name("kube_manifest", tests, NULL, NULL);
}
