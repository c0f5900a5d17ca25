/* Unit tests of kelp-host-local's config parser (defaults, legacy form, every rejected shape)
 * and its on-disk store (reserve, list, release, last_reserved_ip). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_util.h"

#include "cleanup.h"
#include "fs.h"
#include "host-local/config.h"
#include "host-local/store.h"

static int parse(const char *ipam, struct hl_conf *c, struct cni_err *err)
{
	cleanup_free char *text = xasprintf("{\"name\":\"net\",\"ipam\":%s}", ipam);
	struct cni_req req = {0};
	req.name = "net";
	if (kj_parse(text, strlen(text), "conf", &req.conf, &err->k) < 0)
		failf("bad test JSON %s", text);
	int r = hl_conf_parse(&req, c, err);
	yajl_tree_free(req.conf.v);
	return r;
}

static void test_defaults(void **state)
{
	(void)state;
	struct hl_conf c;
	struct cni_err err = {0};
	assert_int_equal(parse("{\"ranges\":[[{\"subnet\":\"10.1.0.7/24\"}],[{\"subnet\":\"fd00::/64\",\"gateway\":\"fd00::fe\"}]],"
			       "\"routes\":[{\"dst\":\"0.0.0.0/0\"}],\"dataDir\":\"/tmp/x\"}", &c, &err), 0);
	assert_string_equal(c.data_dir, "/tmp/x/net");
	assert_int_equal(c.n_sets, 2);
	assert_true(c.sets[0].r[0].subnet.a == 0x0a010000); /* masked */
	assert_true(c.sets[0].r[0].start == 0x0a010001);
	assert_true(c.sets[0].r[0].end == 0x0a0100fe);
	assert_true(c.sets[0].r[0].gw.a == 0x0a010001);
	assert_true(c.sets[1].r[0].gw.a == (((cni_u128)0xfd00 << 112) | 0xfe));
	assert_int_equal(c.n_routes, 1);
	hl_conf_free(&c);
	/* the older single-range form, default data dir */
	assert_int_equal(parse("{\"subnet\":\"10.2.0.0/16\",\"rangeStart\":\"10.2.1.10\",\"rangeEnd\":\"10.2.1.20\"}", &c, &err), 0);
	assert_string_equal(c.data_dir, "/var/lib/cni/networks/net");
	assert_true(c.sets[0].r[0].start == 0x0a02010a && c.sets[0].r[0].end == 0x0a020114);
	hl_conf_free(&c);
}

static void test_rejected(void **state)
{
	(void)state;
	const char *bad[][2] = {
		{"{}", "ipam.ranges: required field is missing (or ipam.subnet)"},
		{"{\"ranges\":[]}", "ipam.ranges: needs 1 to 4 range sets"},
		{"{\"ranges\":[[{\"subnet\":\"10.0.0.0\"}]]}", "ipam.ranges[0][0].subnet: \"10.0.0.0\" is not an IP prefix (address/length)"},
		{"{\"ranges\":[[{\"subnet\":\"10.0.0.0/31\"}]]}", "ipam.ranges[0][0].subnet: /31 is too small to allocate from"},
		{"{\"ranges\":[[{\"subnet\":\"10.0.0.0/24\",\"rangeStart\":\"10.0.1.1\"}]]}", "ipam.ranges[0][0].rangeStart: not inside subnet"},
		{"{\"ranges\":[[{\"subnet\":\"10.0.0.0/24\",\"rangeStart\":\"10.0.0.9\",\"rangeEnd\":\"10.0.0.3\"}]]}",
		 "ipam.ranges[0][0]: rangeStart is after rangeEnd"},
		{"{\"ranges\":[[{\"subnet\":\"10.0.0.0/24\"},{\"subnet\":\"fd00::/64\"}]]}", "ipam.ranges[0]: mixes IPv4 and IPv6 in one range set"},
		{"{\"ranges\":[[{\"subnet\":\"10.0.0.0/16\"}],[{\"subnet\":\"10.0.5.0/24\"}]]}",
		 "ipam.ranges: range 10.0.0.0/16 (set 0) overlaps range 10.0.5.0/24 (set 1)"},
		{"{\"ranges\":[[{\"subnet\":\"10.0.0.0/24\"},{\"subnet\":\"10.0.0.0/25\"}]]}",
		 "ipam.ranges: range 10.0.0.0/24 (set 0) overlaps range 10.0.0.0/25 (set 0)"},
		{"{\"subnet\":\"10.0.0.0/24\",\"dataDir\":\"rel\"}", "ipam.dataDir: \"rel\" is not an absolute path"},
		{"{\"subnet\":\"10.0.0.0/24\",\"routes\":[{\"gw\":\"10.0.0.1\"}]}", "ipam.routes[0].dst: required field is missing"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct hl_conf c;
		struct cni_err err = {0};
		int r = parse(bad[i][0], &c, &err);
		hl_conf_free(&c);
		if (r == 0)
			failf("accepted %s", bad[i][0]);
		if (err.code != CNI_ERR_CONFIG || strcmp(err.k.msg, bad[i][1]) != 0)
			failf("%s: got code %d \"%s\", want 7 \"%s\"", bad[i][0], err.code, err.k.msg, bad[i][1]);
	}
}

static void test_store(void **state)
{
	(void)state;
	char dir[] = "/tmp/kelp-test-hl.XXXXXX";
	assert_non_null(mkdtemp(dir));
	cleanup_free char *sub = xasprintf("%s/a/net", dir);
	struct hl_store st;
	struct cni_err err = {0};
	assert_int_equal(hl_store_open(sub, false, &st, &err), -1);
	assert_int_equal(err.k.code, ENOENT);
	assert_int_equal(hl_store_open(sub, true, &st, &err), 0);
	struct cni_ip a, b, last;
	cni_ip_parse("10.0.0.5/24", true, &a);
	cni_ip_parse("fd00::5/64", true, &b);
	assert_int_equal(hl_store_reserve(&st, &a, "c1", "eth0", &err), 0);
	assert_int_equal(hl_store_reserve(&st, &a, "c2", "eth0", &err), 1);
	assert_int_equal(hl_store_reserve(&st, &b, "c2", "net1", &err), 0);
	assert_int_equal(hl_store_set_last(&st, 0, &a, &err), 0);
	assert_int_equal(hl_store_last(&st, 0, &last), 0);
	assert_true(cni_ip_equal(&last, &a));
	assert_int_equal(hl_store_last(&st, 1, &last), -1);
	struct hl_alloc *al;
	size_t n;
	assert_int_equal(hl_store_list(&st, &al, &n, &err), 0);
	assert_int_equal(n, 2);
	for (size_t i = 0; i < n; i++) {
		if (al[i].ip.family == AF_INET) {
			assert_string_equal(al[i].id, "c1");
			assert_string_equal(al[i].ifname, "eth0");
		} else {
			assert_string_equal(al[i].id, "c2");
			assert_string_equal(al[i].ifname, "net1");
		}
	}
	hl_allocs_free(al, n);
	assert_int_equal(hl_store_release_ip(&st, &a, &err), 0);
	assert_int_equal(hl_store_release_ip(&st, &a, &err), 0); /* twice is fine */
	assert_int_equal(hl_store_list(&st, &al, &n, &err), 0);
	assert_int_equal(n, 1);
	hl_allocs_free(al, n);
	hl_store_close(&st);
	struct kelp_err kerr;
	assert_int_equal(kelp_rm_rf_at(AT_FDCWD, dir, &kerr), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_rejected),
		cmocka_unit_test(test_store),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
