/* libFuzzer target: what a registry (or an OCI layout being imported) sends about an image:
 * index / manifest list, manifest (OCI and Docker schema 2) and image config. Byte 0 picks the
 * parser and the HTTP Content-Type given with it; the rest is the document (or, for the last
 * selector, an "os/arch[/variant]" platform string as a user gives it). Parsed indexes also
 * go through platform selection, parsed manifests through the layer media type check. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "manifest.h"

static const char *const content_types[] = {NULL, MT_OCI_INDEX, MT_OCI_MANIFEST, MT_DOCKER_LIST,
					    MT_DOCKER_MANIFEST, "application/json"};

static void select_platforms(const struct kimg_manifest *m)
{
	static const struct kimg_platform want[] = {
		{"linux", "amd64", NULL}, {"linux", "arm64", "v8"}, {"linux", "arm", "v7"}, {"windows", "amd64", NULL}};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		struct kelp_err err = {0};
		size_t idx;
		(void)kimg_platform_select(m, &want[i], &idx, &err);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const char *buf = (const char *)data + 1;
	size_t len = size - 1;
	struct kelp_err err = {0};
	size_t nct = sizeof(content_types) / sizeof(content_types[0]);
	unsigned sel = data[0] % (nct + 2);
	if (sel == nct + 1) {
		char *str = strndup(buf, len);
		if (!str)
			abort();
		struct kimg_platform p = {0};
		if (kimg_platform_parse(str, &p, &err) == 0)
			kimg_platform_free(&p);
		free(str);
		return 0;
	}
	if (sel == nct) {
		struct kimg_config c = {0};
		if (kimg_config_parse(buf, len, &c, &err) == 0)
			kimg_config_free(&c);
		return 0;
	}
	/* As the store's callers do: the struct is freed only after a successful parse. */
	struct kimg_manifest m = {0};
	if (kimg_manifest_parse(buf, len, content_types[sel], &m, &err) < 0)
		return 0;
	if (m.kind == KIMG_INDEX)
		select_platforms(&m);
	for (size_t i = 0; i < m.n_layers; i++)
		(void)kimg_layer_type_ok(m.layers[i].media_type);
	kimg_manifest_free(&m);
	return 0;
}
