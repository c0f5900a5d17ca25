/* Unit tests of cri/image/config.c: kelpd.yaml with mirrors and plain-HTTP registries, the
 * defaults when the file is missing, and errors that name the file, line and key. Also checks
 * that the shipped config/kelpd.yaml parses. */
#include <errno.h>
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

#include "config.h"

static char path[64];

static void write_conf(const char *text)
{
	FILE *f = fopen(path, "we");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int setup(void **state)
{
	(void)state;
	snprintf(path, sizeof(path), "/tmp/kelp-test-config.XXXXXX");
	int fd = mkstemp(path);
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(path);
	return 0;
}

static void test_full(void **state)
{
	(void)state;
	write_conf("root: /srv/kelp\nplatform: linux/arm64\nmax_concurrent_downloads: 5\n"
		   "registries:\n  registry.k8s.io:\n    mirrors:\n      - http://127.0.0.1:5000\n      - https://m.example\n"
		   "  \"10.0.0.5:5000\":\n    plain_http: true\n");
	struct kelpd_config c;
	struct kelp_err err = {0};
	if (kelpd_config_load(path, false, &c, &err) < 0)
		failf("%s", err.msg);
	assert_string_equal(c.root, "/srv/kelp");
	assert_string_equal(c.platform, "linux/arm64");
	assert_int_equal(c.max_downloads, 5);
	assert_int_equal(c.n_registries, 2);
	const struct kimg_registry_conf *r = kelpd_config_registry(&c, "registry.k8s.io");
	assert_non_null(r);
	assert_string_equal(r->mirrors[0], "http://127.0.0.1:5000");
	assert_string_equal(r->mirrors[1], "https://m.example");
	assert_null(r->mirrors[2]);
	assert_false(r->plain_http);
	r = kelpd_config_registry(&c, "10.0.0.5:5000");
	assert_non_null(r);
	assert_true(r->plain_http);
	assert_null(kelpd_config_registry(&c, "docker.io"));
	kelpd_config_free(&c);
}

static void test_defaults(void **state)
{
	(void)state;
	struct kelpd_config c;
	struct kelp_err err = {0};
	assert_int_equal(kelpd_config_load("/nonexistent/kelpd.yaml", true, &c, &err), 0);
	assert_string_equal(c.root, KELPD_ROOT_DEFAULT);
	assert_null(c.platform);
	assert_int_equal(c.max_downloads, 3);
	kelpd_config_free(&c);
	assert_int_equal(kelpd_config_load("/nonexistent/kelpd.yaml", false, &c, &err), -1);
	assert_int_equal(err.code, ENOENT);
	/* the shipped default (tests run from the source tree) */
	if (access("config/kelpd.yaml", F_OK) < 0)
		skip_because("config/kelpd.yaml not found: not run from the source tree");
	if (kelpd_config_load("config/kelpd.yaml", false, &c, &err) < 0)
		failf("config/kelpd.yaml: %s", err.msg);
	assert_string_equal(c.root, "/var/lib/kelp");
	assert_int_equal(c.max_downloads, 3);
	kelpd_config_free(&c);
}

static void expect_bad(const char *text, const char *msg_part)
{
	write_conf(text);
	struct kelpd_config c;
	struct kelp_err err = {0};
	if (kelpd_config_load(path, false, &c, &err) == 0)
		failf("accepted: %s", text);
	if (!strstr(err.msg, msg_part) || !strstr(err.msg, path))
		failf("error \"%s\" lacks \"%s\" or the file name", err.msg, msg_part);
}

static void test_bad(void **state)
{
	(void)state;
	expect_bad("root: relative/path\n", ":1: root: must be an absolute path");
	expect_bad("rooot: /x\n", ":1: rooot: unknown key");
	expect_bad("registries:\n  a.io:\n    mirrors: [ftp://x]\n", ":3: registries.a.io.mirrors: a mirror is an http:// or https:// URL");
	expect_bad("registries:\n  a.io:\n    plain_http: maybe\n", ":3: registries.a.io.plain_http: expected true or false");
	expect_bad("registries:\n  a.io:\n    mirror: []\n", "registries.a.io.mirror: unknown key");
	expect_bad("max_concurrent_downloads: 0\n", "expected a number from 1 to 64");
	expect_bad("root: [\n", ":");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
