#include "manifest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "cleanup.h"
#include "digest.h"
#include "json.h"

static void desc_free(struct kimg_desc *d)
{
	free(d->media_type);
	free(d->digest);
	free(d->ref_name);
	kimg_platform_free(&d->platform);
}

void kimg_platform_free(struct kimg_platform *p)
{
	free(p->os);
	free(p->arch);
	free(p->variant);
	memset(p, 0, sizeof(*p));
}

void kimg_manifest_free(struct kimg_manifest *m)
{
	free(m->media_type);
	desc_free(&m->config);
	for (size_t i = 0; i < m->n_layers; i++)
		desc_free(&m->layers[i]);
	for (size_t i = 0; i < m->n_entries; i++)
		desc_free(&m->entries[i]);
	free(m->layers);
	free(m->entries);
	memset(m, 0, sizeof(*m));
}

void kimg_config_free(struct kimg_config *c)
{
	free(c->os);
	free(c->arch);
	free(c->variant);
	strv_free(c->diff_ids);
	memset(c, 0, sizeof(*c));
}

bool kimg_layer_type_ok(const char *t)
{
	static const char *const ok[] = {
		MT_OCI_LAYER, MT_OCI_LAYER "+gzip", MT_OCI_LAYER "+zstd",
		"application/vnd.docker.image.rootfs.diff.tar.gzip", "application/vnd.docker.image.rootfs.diff.tar",
	};
	for (size_t i = 0; i < ARRAY_SIZE(ok); i++)
		if (!strcmp(t, ok[i]))
			return true;
	return false;
}

static int parse_desc(const struct kj *n, bool with_platform, struct kimg_desc *ret, struct kelp_err *err)
{
	struct kimg_desc d = {0};
	struct kj f;
	if (kj_expect_object(n, err) < 0 || kj_req_string(n, "mediaType", &d.media_type, err) < 0 ||
	    kj_req_string(n, "digest", &d.digest, err) < 0 || kj_required(n, "size", &f, err) < 0 ||
	    kj_int64(&f, &d.size, err) < 0)
		goto fail;
	if (!kimg_digest_valid(d.digest)) {
		kj_field(n, "digest", &f, NULL);
		kelp_fail(err, EINVAL, "%s: unsupported digest %s (want sha256:<64 hex digits>)", f.path, d.digest);
		goto fail;
	}
	if (d.size < 0) {
		kelp_fail(err, EINVAL, "%s: negative size", f.path);
		goto fail;
	}
	if (with_platform) {
		int r = kj_field(n, "platform", &f, err);
		if (r < 0)
			goto fail;
		if (r > 0 && (kj_req_string(&f, "os", &d.platform.os, err) < 0 ||
			      kj_req_string(&f, "architecture", &d.platform.arch, err) < 0 ||
			      kj_opt_string(&f, "variant", &d.platform.variant, err) < 0))
			goto fail;
	}
	struct kj ann, name;
	if (kj_field(n, "annotations", &ann, err) > 0 && kj_field(&ann, "org.opencontainers.image.ref.name", &name, NULL) > 0 &&
	    kj_string(&name, &d.ref_name, err) < 0)
		goto fail;
	*ret = d;
	return 0;
fail:
	desc_free(&d);
	return -1;
}

static int parse_desc_array(const struct kj *root, const char *key, bool with_platform, struct kimg_desc **ret,
			    size_t *ret_n, struct kelp_err *err)
{
	struct kj arr;
	if (kj_required(root, key, &arr, err) < 0 || kj_expect_array(&arr, err) < 0)
		return -1;
	size_t n = kj_len(&arr);
	struct kimg_desc *v = xcalloc(n, sizeof(*v));
	for (size_t i = 0; i < n; i++) {
		struct kj e;
		kj_index(&arr, i, &e);
		if (parse_desc(&e, with_platform, &v[i], err) < 0) {
			for (size_t j = 0; j < i; j++)
				desc_free(&v[j]);
			free(v);
			return -1;
		}
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

int kimg_manifest_parse(const char *buf, size_t len, const char *content_type, struct kimg_manifest *ret,
			struct kelp_err *err)
{
	struct kj root;
	if (kj_parse(buf, len, "manifest", &root, err) < 0)
		return -1;
	struct kimg_manifest m = {0};
	int rc = -1;
	if (kj_expect_object(&root, err) < 0 || kj_opt_string(&root, "mediaType", &m.media_type, err) < 0)
		goto out;
	int64_t schema = 0;
	bool have_schema = false;
	if (kj_opt_int64(&root, "schemaVersion", &schema, &have_schema, err) < 0)
		goto out;
	if (!have_schema || schema != 2) {
		kelp_fail(err, EINVAL, "manifest: schemaVersion %lld is not supported (want 2)", (long long)schema);
		goto out;
	}
	if (!m.media_type) {
		/* OCI lets the document omit mediaType: the header or the shape tells */
		struct kj probe;
		if (content_type && *content_type && strncmp(content_type, "application/json", 16) &&
		    strncmp(content_type, "text/plain", 10))
			m.media_type = strndup(content_type, strcspn(content_type, ";"));
		else if (kj_field(&root, "manifests", &probe, NULL) > 0)
			m.media_type = xstrdup(MT_OCI_INDEX);
		else
			m.media_type = xstrdup(MT_OCI_MANIFEST);
		if (!m.media_type)
			abort();
	}
	if (!strcmp(m.media_type, MT_OCI_INDEX) || !strcmp(m.media_type, MT_DOCKER_LIST)) {
		m.kind = KIMG_INDEX;
		if (parse_desc_array(&root, "manifests", true, &m.entries, &m.n_entries, err) < 0)
			goto out;
	} else if (!strcmp(m.media_type, MT_OCI_MANIFEST) || !strcmp(m.media_type, MT_DOCKER_MANIFEST)) {
		m.kind = KIMG_MANIFEST;
		struct kj cfg;
		if (kj_required(&root, "config", &cfg, err) < 0 || parse_desc(&cfg, false, &m.config, err) < 0 ||
		    parse_desc_array(&root, "layers", false, &m.layers, &m.n_layers, err) < 0)
			goto out;
		for (size_t i = 0; i < m.n_layers; i++)
			if (!kimg_layer_type_ok(m.layers[i].media_type)) {
				kelp_fail(err, EINVAL, "layers[%zu].mediaType: unsupported layer type %s", i, m.layers[i].media_type);
				goto out;
			}
	} else {
		kelp_fail(err, EINVAL, "manifest: unsupported media type %s", m.media_type);
		goto out;
	}
	*ret = m;
	memset(&m, 0, sizeof(m));
	rc = 0;
out:
	kimg_manifest_free(&m);
	yajl_tree_free(root.v);
	return rc;
}

int kimg_config_parse(const char *buf, size_t len, struct kimg_config *ret, struct kelp_err *err)
{
	struct kj root, rootfs, ids;
	if (kj_parse(buf, len, "image config", &root, err) < 0)
		return -1;
	struct kimg_config c = {0};
	cleanup_free char *type = NULL;
	int rc = -1;
	if (kj_expect_object(&root, err) < 0 || kj_opt_string(&root, "os", &c.os, err) < 0 ||
	    kj_opt_string(&root, "architecture", &c.arch, err) < 0 || kj_opt_string(&root, "variant", &c.variant, err) < 0 ||
	    kj_required(&root, "rootfs", &rootfs, err) < 0 || kj_req_string(&rootfs, "type", &type, err) < 0 ||
	    kj_required(&rootfs, "diff_ids", &ids, err) < 0 || kj_string_array(&ids, &c.diff_ids, &c.n_diff_ids, err) < 0)
		goto out;
	if (strcmp(type, "layers")) {
		kelp_fail(err, EINVAL, "rootfs.type: \"%s\" is not \"layers\"", type);
		goto out;
	}
	for (size_t i = 0; i < c.n_diff_ids; i++)
		if (!kimg_digest_valid(c.diff_ids[i])) {
			kelp_fail(err, EINVAL, "rootfs.diff_ids[%zu]: bad digest %s", i, c.diff_ids[i]);
			goto out;
		}
	*ret = c;
	memset(&c, 0, sizeof(c));
	rc = 0;
out:
	kimg_config_free(&c);
	yajl_tree_free(root.v);
	return rc;
}

static void node_platform(struct kimg_platform *p)
{
	struct utsname u;
	const char *m = uname(&u) == 0 ? u.machine : "x86_64";
	static const struct {
		const char *machine, *arch, *variant;
	} map[] = {
		{"x86_64", "amd64", NULL}, {"aarch64", "arm64", "v8"}, {"armv7l", "arm", "v7"}, {"armv6l", "arm", "v6"},
		{"i686", "386", NULL},     {"i386", "386", NULL},      {"ppc64le", "ppc64le", NULL},
		{"s390x", "s390x", NULL},  {"riscv64", "riscv64", NULL},
	};
	p->os = xstrdup("linux");
	for (size_t i = 0; i < ARRAY_SIZE(map); i++)
		if (!strcmp(m, map[i].machine)) {
			p->arch = xstrdup(map[i].arch);
			p->variant = map[i].variant ? xstrdup(map[i].variant) : NULL;
			return;
		}
	p->arch = xstrdup(m);
}

int kimg_platform_parse(const char *s, struct kimg_platform *ret, struct kelp_err *err)
{
	struct kimg_platform p = {0};
	if (!s || !*s) {
		node_platform(&p);
		*ret = p;
		return 0;
	}
	cleanup_free char *copy = xstrdup(s);
	char *save = NULL, *parts[4] = {0};
	int n = 0;
	for (char *t = strtok_r(copy, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
		if (n == 3)
			return kelp_fail(err, EINVAL, "platform %s: want os/arch[/variant]", s);
		parts[n++] = t;
	}
	if (n < 2)
		return kelp_fail(err, EINVAL, "platform %s: want os/arch[/variant]", s);
	p.os = xstrdup(parts[0]);
	p.arch = xstrdup(parts[1]);
	if (n == 3)
		p.variant = xstrdup(parts[2]);
	else if (!strcmp(p.arch, "arm64"))
		p.variant = xstrdup("v8");
	*ret = p;
	return 0;
}

/* arm64 images often say no variant; "v8" is what that means. */
static bool variant_matches(const struct kimg_platform *want, const struct kimg_platform *have)
{
	if (!want->variant || !have->variant)
		return !have->variant || !want->variant || !strcmp(want->arch, "arm64");
	return !strcmp(want->variant, have->variant);
}

int kimg_platform_select(const struct kimg_manifest *index, const struct kimg_platform *want, size_t *ret_i,
			 struct kelp_err *err)
{
	ssize_t best = -1;
	int best_score = -1;
	for (size_t i = 0; i < index->n_entries; i++) {
		const struct kimg_platform *p = &index->entries[i].platform;
		if (!p->os || strcmp(p->os, want->os) || strcmp(p->arch, want->arch) || !variant_matches(want, p))
			continue;
		/* an exact variant beats a missing one */
		int score = (p->variant && want->variant && !strcmp(p->variant, want->variant)) ? 2 : 1;
		if (score > best_score) {
			best = (ssize_t)i;
			best_score = score;
		}
	}
	if (best >= 0) {
		*ret_i = (size_t)best;
		return 0;
	}
	char have[512] = "";
	size_t off = 0;
	for (size_t i = 0; i < index->n_entries && off < sizeof(have) - 1; i++) {
		const struct kimg_platform *p = &index->entries[i].platform;
		int w = snprintf(have + off, sizeof(have) - off, "%s%s/%s%s%s", i ? ", " : "", p->os ? p->os : "?",
				 p->arch ? p->arch : "?", p->variant ? "/" : "", p->variant ? p->variant : "");
		if (w < 0)
			break;
		off += (size_t)w;
	}
	return kelp_fail(err, ENOENT, "no manifest for platform %s/%s%s%s in the index (it has: %s)", want->os, want->arch,
			 want->variant ? "/" : "", want->variant ? want->variant : "", index->n_entries ? have : "nothing");
}
