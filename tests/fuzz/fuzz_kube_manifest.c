/* libFuzzer target: lib/kube_manifest.c (YAML or JSON Kubernetes manifests, several documents,
 * Lists, aliases). Properties checked on every input, not only "no crash": a parse that succeeds
 * gives objects that are JSON objects; each document written out as JSON by yajl reads back
 * with kj_parse; a failure leaves the result untouched and explains itself. */
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
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
