/* Unit tests of cri/image/ref.c (Docker's normalisation) and manifest.c (every manifest kind,
 * the image config, platform selection, JSON-path errors). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "test_util.h"

#include "digest.h"
#include "manifest.h"
#include "ref.h"

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define D3 "sha256:3333333333333333333333333333333333333333333333333333333333333333"

static void expect_ref(const char *in, const char *full, const char *domain, const char *path)
{
	struct kimg_ref r;
	struct kelp_err err = {0};
	if (kimg_ref_parse(in, &r, &err) < 0)
		failf("%s: %s", in, err.msg);
	if (strcmp(r.full, full) || strcmp(r.domain, domain) || strcmp(r.path, path))
		failf("%s: got %s (%s, %s), want %s", in, r.full, r.domain, r.path, full);
	kimg_ref_free(&r);
}

static void expect_bad_ref(const char *in, const char *msg_part)
{
	struct kimg_ref r;
	struct kelp_err err = {0};
	if (kimg_ref_parse(in, &r, &err) == 0)
		failf("%s: accepted as %s", in, r.full);
	if (!strstr(err.msg, msg_part))
		failf("%s: error \"%s\" lacks \"%s\"", in, err.msg, msg_part);
}

static void test_ref_normalise(void **state)
{
	(void)state;
	expect_ref("busybox", "docker.io/library/busybox:latest", "docker.io", "library/busybox");
	expect_ref("busybox:1.36", "docker.io/library/busybox:1.36", "docker.io", "library/busybox");
	expect_ref("user/app", "docker.io/user/app:latest", "docker.io", "user/app");
	expect_ref("index.docker.io/library/busybox", "docker.io/library/busybox:latest", "docker.io", "library/busybox");
	expect_ref("registry.k8s.io/pause:3.9", "registry.k8s.io/pause:3.9", "registry.k8s.io", "pause");
	expect_ref("localhost/x", "localhost/x:latest", "localhost", "x");
	expect_ref("127.0.0.1:5000/a/b/c", "127.0.0.1:5000/a/b/c:latest", "127.0.0.1:5000", "a/b/c");
	expect_ref("busybox@" D1, "docker.io/library/busybox@" D1, "docker.io", "library/busybox");
	expect_ref("127.0.0.1:5000/x:t@" D1, "127.0.0.1:5000/x:t@" D1, "127.0.0.1:5000", "x");
	expect_ref("a.b/my_app-x__y.z", "a.b/my_app-x__y.z:latest", "a.b", "my_app-x__y.z");
	struct kimg_ref r;
	assert_int_equal(kimg_ref_parse("busybox@" D1, &r, NULL), 0);
	assert_null(r.tag);
	assert_string_equal(r.digest, D1);
	assert_string_equal(r.name, "docker.io/library/busybox");
	kimg_ref_free(&r);
	assert_string_equal(kimg_ref_registry_host("docker.io"), "registry-1.docker.io");
	assert_string_equal(kimg_ref_registry_host("quay.io"), "quay.io");
}

static void test_ref_bad(void **state)
{
	(void)state;
	expect_bad_ref("", "empty");
	expect_bad_ref("Busybox", "bad repository name");
	expect_bad_ref("busybox:", "bad tag");
	expect_bad_ref("busybox:-x", "bad tag");
	expect_bad_ref("busybox@sha256:abc", "bad digest");
	expect_bad_ref("busybox@md5:" D1, "bad digest");
	expect_bad_ref("a..b", "bad repository name");
	expect_bad_ref("x/", "repository name");
	expect_bad_ref("host:99999999/x", "bad registry host");
	expect_bad_ref("host.io/", "no repository name");
	expect_bad_ref("a/../b", "bad repository name");
}

static void test_digest(void **state)
{
	(void)state;
	char d[KIMG_DIGEST_LEN + 1];
	kimg_digest_buf("abc", 3, d);
	assert_string_equal(d, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	assert_true(kimg_digest_valid(d));
	assert_false(kimg_digest_valid("sha256:BA7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
	assert_false(kimg_digest_valid("sha512:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
	struct kimg_hash *h = kimg_hash_new();
	kimg_hash_update(h, "a", 1);
	kimg_hash_update(h, "bc", 2);
	char d2[KIMG_DIGEST_LEN + 1];
	kimg_hash_final(h, d2);
	kimg_hash_free(h);
	assert_string_equal(d, d2);
}

static const char index_json[] =
	"{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_INDEX "\",\"manifests\":["
	"{\"mediaType\":\"" MT_OCI_MANIFEST "\",\"digest\":\"" D1 "\",\"size\":10,\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}},"
	"{\"mediaType\":\"" MT_OCI_MANIFEST "\",\"digest\":\"" D2 "\",\"size\":11,\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\"}},"
	"{\"mediaType\":\"" MT_OCI_MANIFEST "\",\"digest\":\"" D3 "\",\"size\":12,\"platform\":{\"os\":\"linux\",\"architecture\":\"arm\",\"variant\":\"v7\"}}]}";

static void select_for(const char *plat, const char *want_digest)
{
	struct kimg_manifest m;
	struct kimg_platform p;
	struct kelp_err err = {0};
	assert_int_equal(kimg_manifest_parse(index_json, strlen(index_json), NULL, &m, &err), 0);
	assert_int_equal(m.kind, KIMG_INDEX);
	assert_int_equal(kimg_platform_parse(plat, &p, &err), 0);
	size_t i;
	int r = kimg_platform_select(&m, &p, &i, &err);
	if (want_digest) {
		if (r < 0)
			failf("%s: %s", plat, err.msg);
		assert_string_equal(m.entries[i].digest, want_digest);
	} else {
		assert_int_equal(r, -1);
		assert_int_equal(err.code, ENOENT);
		if (!strstr(err.msg, "linux/amd64, linux/arm64, linux/arm/v7"))
			failf("error lists no platforms: %s", err.msg);
	}
	kimg_platform_free(&p);
	kimg_manifest_free(&m);
}

static void test_index_select(void **state)
{
	(void)state;
	select_for("linux/amd64", D1);
	select_for("linux/arm64", D2);
	select_for("linux/arm64/v8", D2);
	select_for("linux/arm/v7", D3);
	select_for("linux/arm/v6", NULL);
	select_for("linux/s390x", NULL);
	select_for("windows/amd64", NULL);
	/* the node's own platform parses and is linux */
	struct kimg_platform p;
	assert_int_equal(kimg_platform_parse(NULL, &p, NULL), 0);
	assert_string_equal(p.os, "linux");
	kimg_platform_free(&p);
	struct kelp_err err = {0};
	assert_int_equal(kimg_platform_parse("linux", &p, &err), -1);
	assert_int_equal(kimg_platform_parse("a/b/c/d", &p, &err), -1);
}

static void test_manifest_kinds(void **state)
{
	(void)state;
	static const char docker_m[] = "{\"schemaVersion\":2,\"mediaType\":\"" MT_DOCKER_MANIFEST "\","
				       "\"config\":{\"mediaType\":\"" MT_DOCKER_CONFIG "\",\"digest\":\"" D1 "\",\"size\":5},"
				       "\"layers\":[{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar.gzip\",\"digest\":\"" D2 "\",\"size\":100},"
				       "{\"mediaType\":\"" MT_OCI_LAYER "+zstd\",\"digest\":\"" D3 "\",\"size\":7}]}";
	struct kimg_manifest m;
	struct kelp_err err = {0};
	if (kimg_manifest_parse(docker_m, strlen(docker_m), NULL, &m, &err) < 0)
		failf("%s", err.msg);
	assert_int_equal(m.kind, KIMG_MANIFEST);
	assert_int_equal(m.n_layers, 2);
	assert_string_equal(m.config.digest, D1);
	assert_int_equal(m.layers[0].size, 100);
	kimg_manifest_free(&m);

	/* no mediaType in the document: the shape (or the Content-Type) tells */
	static const char oci_m[] = "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" MT_OCI_CONFIG "\",\"digest\":\"" D1 "\",\"size\":5},\"layers\":[]}";
	assert_int_equal(kimg_manifest_parse(oci_m, strlen(oci_m), "application/json", &m, &err), 0);
	assert_string_equal(m.media_type, MT_OCI_MANIFEST);
	kimg_manifest_free(&m);
	static const char list[] = "{\"schemaVersion\":2,\"manifests\":[]}";
	assert_int_equal(kimg_manifest_parse(list, strlen(list), MT_DOCKER_LIST, &m, &err), 0);
	assert_int_equal(m.kind, KIMG_INDEX);
	assert_string_equal(m.media_type, MT_DOCKER_LIST);
	kimg_manifest_free(&m);
}

static void expect_bad_manifest(const char *doc, const char *msg_part)
{
	struct kimg_manifest m;
	struct kelp_err err = {0};
	if (kimg_manifest_parse(doc, strlen(doc), NULL, &m, &err) == 0)
		failf("accepted: %s", doc);
	if (!strstr(err.msg, msg_part))
		failf("error \"%s\" lacks \"%s\"", err.msg, msg_part);
}

static void test_manifest_bad(void **state)
{
	(void)state;
	expect_bad_manifest("{", "manifest");
	expect_bad_manifest("{\"schemaVersion\":1}", "schemaVersion 1");
	expect_bad_manifest("{\"schemaVersion\":2,\"mediaType\":\"text/html\"}", "unsupported media type text/html");
	expect_bad_manifest("{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_MANIFEST "\",\"layers\":[]}", "config: required field is missing");
	expect_bad_manifest("{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_MANIFEST "\",\"config\":{\"mediaType\":\"x\",\"digest\":\"" D1 "\",\"size\":1},"
			    "\"layers\":[{\"mediaType\":\"" MT_OCI_LAYER "\",\"digest\":\"sha256:12\",\"size\":1}]}",
			    "layers[0].digest: unsupported digest");
	expect_bad_manifest("{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_MANIFEST "\",\"config\":{\"mediaType\":\"x\",\"digest\":\"" D1 "\",\"size\":1},"
			    "\"layers\":[{\"mediaType\":\"" MT_OCI_LAYER "\",\"digest\":\"" D2 "\",\"size\":\"1\"}]}",
			    "layers[0].size");
	expect_bad_manifest("{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_MANIFEST "\",\"config\":{\"mediaType\":\"x\",\"digest\":\"" D1 "\",\"size\":1},"
			    "\"layers\":[{\"mediaType\":\"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip\",\"digest\":\"" D2 "\",\"size\":1}]}",
			    "unsupported layer type");
	expect_bad_manifest("{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_INDEX "\",\"manifests\":[{\"mediaType\":\"x\",\"digest\":\"" D1 "\",\"size\":1,\"platform\":{\"os\":\"linux\"}}]}",
			    "manifests[0].platform.architecture: required field is missing");
}

static void test_config(void **state)
{
	(void)state;
	static const char cfg[] = "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" D1 "\",\"" D2 "\"]}}";
	struct kimg_config c;
	struct kelp_err err = {0};
	if (kimg_config_parse(cfg, strlen(cfg), &c, &err) < 0)
		failf("%s", err.msg);
	assert_int_equal(c.n_diff_ids, 2);
	assert_string_equal(c.diff_ids[1], D2);
	assert_string_equal(c.arch, "amd64");
	kimg_config_free(&c);
	static const char bad[] = "{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:x\"]}}";
	assert_int_equal(kimg_config_parse(bad, strlen(bad), &c, &err), -1);
	assert_non_null(strstr(err.msg, "rootfs.diff_ids[0]"));
	static const char bad2[] = "{\"rootfs\":{\"type\":\"x\",\"diff_ids\":[]}}";
	assert_int_equal(kimg_config_parse(bad2, strlen(bad2), &c, &err), -1);
	assert_non_null(strstr(err.msg, "rootfs.type"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ref_normalise), cmocka_unit_test(test_ref_bad),      cmocka_unit_test(test_digest),
		cmocka_unit_test(test_index_select),  cmocka_unit_test(test_manifest_kinds), cmocka_unit_test(test_manifest_bad),
		cmocka_unit_test(test_config),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
