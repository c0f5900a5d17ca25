/* libFuzzer target: lib/kube_manifest.c (YAML or JSON Kubernetes manifests, several documents,
 * Lists, aliases). Properties checked on every input, not only "no crash": a parse that succeeds
 * gives objects that are JSON objects; each document written out as JSON by yajl reads back
 * with kj_parse; a failure leaves the result untouched and explains itself. And the fast readers
 * (lib/kube_manifest_fast.c: block YAML, and JSON through yajl) against libyaml: wherever they
 * do not give up, both agree on success or failure, and on success their trees, objects and line
 * numbers are the same; the one exception is JSON that libyaml refuses and yajl reads (a key of
 * over 1024 characters), which yajl's own tree parser must then accept too. km_parse_each
 * (objects handed out as they complete) gives km_parse's objects, or its error. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "kube_manifest.h"

/* false when the tree holds what JSON cannot say (.inf, .nan) */
static bool gen_value(yajl_gen g, yajl_val v)
{
	bool ok = true;
	switch (v->type) {
	case yajl_t_string:
		yajl_gen_string(g, (const unsigned char *)v->u.string, strlen(v->u.string));
		break;
	case yajl_t_number:
		/* the YAML spelling (0x1F, +5, .5) is not JSON: write the value */
		if (YAJL_IS_INTEGER(v))
			yajl_gen_integer(g, v->u.number.i);
		else if (yajl_gen_double(g, v->u.number.d) != yajl_gen_status_ok)
			ok = false;
		break;
	case yajl_t_object:
		yajl_gen_map_open(g);
		for (size_t i = 0; i < v->u.object.len; i++) {
			yajl_gen_string(g, (const unsigned char *)v->u.object.keys[i], strlen(v->u.object.keys[i]));
			ok = gen_value(g, v->u.object.values[i]) && ok;
		}
		yajl_gen_map_close(g);
		break;
	case yajl_t_array:
		yajl_gen_array_open(g);
		for (size_t i = 0; i < v->u.array.len; i++)
			ok = gen_value(g, v->u.array.values[i]) && ok;
		yajl_gen_array_close(g);
		break;
	case yajl_t_true:
	case yajl_t_false:
		yajl_gen_bool(g, v->type == yajl_t_true);
		break;
	default:
		yajl_gen_null(g);
	}
	return ok;
}

static bool same_value(yajl_val a, yajl_val b)
{
	if (a->type != b->type)
		return false;
	switch (a->type) {
	case yajl_t_string:
		return strcmp(a->u.string, b->u.string) == 0;
	case yajl_t_number:
		return strcmp(a->u.number.r, b->u.number.r) == 0 && a->u.number.flags == b->u.number.flags &&
		       (!YAJL_IS_INTEGER(a) || a->u.number.i == b->u.number.i);
	case yajl_t_object:
		if (a->u.object.len != b->u.object.len)
			return false;
		for (size_t i = 0; i < a->u.object.len; i++)
			if (strcmp(a->u.object.keys[i], b->u.object.keys[i]) != 0 ||
			    !same_value(a->u.object.values[i], b->u.object.values[i]))
				return false;
		return true;
	case yajl_t_array:
		if (a->u.array.len != b->u.array.len)
			return false;
		for (size_t i = 0; i < a->u.array.len; i++)
			if (!same_value(a->u.array.values[i], b->u.array.values[i]))
				return false;
		return true;
	default:
		return true;
	}
}

/* The fast readers (block YAML, and JSON through yajl) where they read the input, against
 * libyaml. */
static void differential(const uint8_t *data, size_t size)
{
	struct km_file fast = {0}, slow = {0};
	struct kelp_err ef = {0}, es = {0};
	int rf = km_parse_with((const char *)data, size, "fuzz.yaml", KM_READ_FAST, &fast, &ef);
	if (rf == KM_NOT_FAST)
		return;
	int rs = km_parse_with((const char *)data, size, "fuzz.yaml", KM_READ_LIBYAML, &slow, &es);
	if (rf == 0 && rs != 0 && km_looks_json((const char *)data, size)) {
		/* libyaml refuses some valid JSON (a key over 1024 characters): then yajl must agree
		 * that the input is JSON */
		struct kj back = {0};
		struct kelp_err ej;
		if (kj_parse((const char *)data, size, "fuzz.json", &back, &ej) < 0 && !strstr(ej.msg, "NUL")) {
			fprintf(stderr, "DIVERGENCE: the JSON reader accepted what yajl refuses: %s\n", ej.msg);
			abort();
		}
		if (back.v)
			yajl_tree_free(back.v);
		km_file_free(&fast);
		return;
	}
	if (rf != rs) {
		fprintf(stderr, "DIVERGENCE: fast reader %d (%s), libyaml %d (%s)\n", rf, ef.msg, rs, es.msg);
		abort();
	}
	if (rf == 0) {
		if (fast.n_docs != slow.n_docs || fast.n_objects != slow.n_objects)
			abort();
		for (size_t d = 0; d < fast.n_docs; d++)
			if (!same_value(fast.docs[d].v, slow.docs[d].v)) {
				fprintf(stderr, "DIVERGENCE: document %zu differs\n", d + 1);
				abort();
			}
		for (size_t i = 0; i < fast.n_objects; i++)
			if (fast.objects[i].line != slow.objects[i].line ||
			    strcmp(fast.objects[i].where, slow.objects[i].where) != 0) {
				fprintf(stderr, "DIVERGENCE: object %zu at %d (%s), libyaml %d (%s)\n", i, fast.objects[i].line,
					fast.objects[i].where, slow.objects[i].line, slow.objects[i].where);
				abort();
			}
		km_file_free(&fast);
		km_file_free(&slow);
	}
}

/* km_parse_each against km_parse: after the last fn(NULL), the same objects in the same order
 * (trees, lines, where in its long form), or the same error with every handed-out object taken
 * back. Objects are compared as text: their trees are gone after the call. */
struct each_state {
	char *text;
	size_t len;
	FILE *o;
	size_t n; /* objects since the last reset */
};

static void object_text(FILE *o, const struct km_object *obj, const char *where)
{
	yajl_gen g = kg_new(false);
	if (!g)
		abort();
	gen_value(g, obj->node.v);
	size_t len = 0;
	char *t = kg_finish(g, &len);
	fprintf(o, "%s|%s@%d\n", t ? t : "?", where, obj->line);
	free(t);
}

static void each_record(void *ctx, const struct km_object *o)
{
	struct each_state *st = ctx;
	if (!o) {
		fclose(st->o);
		free(st->text);
		st->text = NULL;
		if (!(st->o = open_memstream(&st->text, &st->len)))
			abort();
		st->n = 0;
		return;
	}
	if (!strstr(o->where, " (document "))
		abort();
	object_text(st->o, o, o->where);
	st->n++;
}

static void each_differential(const uint8_t *data, size_t size)
{
	struct km_file f = {0};
	struct kelp_err err = {0}, err2 = {0};
	int r = km_parse((const char *)data, size, "fuzz.yaml", &f, &err);
	struct each_state st = {0};
	if (!(st.o = open_memstream(&st.text, &st.len)))
		abort();
	int r2 = km_parse_each((const char *)data, size, "fuzz.yaml", each_record, &st, &err2);
	fclose(st.o);
	char *want = NULL;
	size_t wlen = 0;
	FILE *w = open_memstream(&want, &wlen);
	if (!w)
		abort();
	for (size_t i = 0; r == 0 && i < f.n_objects; i++) {
		char where[600];
		km_where_long(&f.objects[i], where, sizeof(where));
		object_text(w, &f.objects[i], where);
	}
	fclose(w);
	if (r != r2 || (r == 0 && strcmp(want, st.text)) || (r < 0 && (strcmp(err.msg, err2.msg) || st.n))) {
		fprintf(stderr, "EACH: km_parse %d (%s), km_parse_each %d (%s)\nkm_parse:\n%s\nkm_parse_each:\n%s\n", r,
			err.msg, r2, err2.msg, want, st.text);
		abort();
	}
	free(want);
	free(st.text);
	km_file_free(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	differential(data, size);
	each_differential(data, size);

	struct km_file f = {0};
	struct kelp_err err = {0};
	if (km_parse((const char *)data, size, "fuzz.yaml", &f, &err) < 0) {
		if (!err.msg[0] || f.docs || f.objects)
			abort();
		return 0;
	}
	for (size_t i = 0; i < f.n_objects; i++) {
		if (!f.objects[i].node.v || !YAJL_IS_OBJECT(f.objects[i].node.v) || !f.objects[i].where[0])
			abort();
		char name[256];
		km_object_name(&f.objects[i], name, sizeof(name));
	}
	for (size_t d = 0; d < f.n_docs; d++) {
		yajl_gen g = kg_new(false);
		if (!g)
			abort();
		bool ok = gen_value(g, f.docs[d].v);
		size_t len = 0;
		char *text = kg_finish(g, &len);
		if (ok) {
			struct kj back;
			if (kj_parse(text, len, "roundtrip", &back, &err) == 0)
				yajl_tree_free(back.v);
			else if (!strstr(err.msg, "NUL"))
				abort();
		}
		free(text);
	}
	km_file_free(&f);
	return 0;
}
