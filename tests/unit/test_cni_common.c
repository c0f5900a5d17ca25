/* Unit tests of cni-plugins/common: addresses and prefixes, version order, result JSON per
 * version, and the exec protocol (environment checks, error JSON, VERSION) through cni_run. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_util.h"

#include "cleanup.h"
#include "cni.h"
#include "fs.h"

static void test_ip_parse(void **state)
{
	(void)state;
	struct cni_ip ip;
	char buf[CNI_IP_STRLEN];
	assert_int_equal(cni_ip_parse("10.1.2.3/24", true, &ip), 0);
	assert_int_equal(ip.family, AF_INET);
	assert_int_equal(ip.prefix, 24);
	assert_string_equal(cni_ip_fmt(&ip, true, buf), "10.1.2.3/24");
	assert_true(cni_ip_first(&ip) == 0x0a010200);
	assert_true(cni_ip_last(&ip) == 0x0a0102ff);
	assert_int_equal(cni_ip_parse("fd00::1/64", true, &ip), 0);
	assert_int_equal(ip.family, AF_INET6);
	assert_string_equal(cni_ip_fmt(&ip, false, buf), "fd00::1");
	assert_int_equal(cni_ip_parse("10.1.2.3", true, &ip), -1);
	assert_int_equal(cni_ip_parse("10.1.2.3/33", true, &ip), -1);
	assert_int_equal(cni_ip_parse("10.1.2.300", false, &ip), -1);
	assert_int_equal(cni_ip_parse("fd00::/129", true, &ip), -1);
	assert_int_equal(cni_ip_parse("10.0.0.0/x", true, &ip), -1);
	struct cni_ip net, in, out;
	cni_ip_parse("10.0.0.0/8", true, &net);
	cni_ip_parse("10.255.0.1", false, &in);
	cni_ip_parse("11.0.0.1", false, &out);
	assert_true(cni_ip_contains(&net, &in));
	assert_false(cni_ip_contains(&net, &out));
	cni_ip_parse("::/0", true, &net);
	assert_false(cni_ip_contains(&net, &in)); /* other family */
}

static void test_versions(void **state)
{
	(void)state;
	assert_true(cni_version_cmp("0.3.1", "0.4.0") < 0);
	assert_true(cni_version_cmp("1.1.0", "1.0.0") > 0);
	assert_int_equal(cni_version_cmp("1.0.0", "1.0.0"), 0);
	assert_true(cni_version_cmp("1.10.0", "1.9.0") > 0);
	assert_true(cni_version_supported("0.3.0"));
	assert_true(cni_version_supported("1.1.0"));
	assert_false(cni_version_supported("0.2.0"));
	assert_false(cni_version_supported("1.1"));
	assert_true(cni_ifname_valid("eth0"));
	assert_true(cni_ifname_valid("abcdefghijklmno")); /* 15 */
	assert_false(cni_ifname_valid("abcdefghijklmnop")); /* 16 */
	assert_false(cni_ifname_valid("a/b"));
	assert_false(cni_ifname_valid("a b"));
	assert_false(cni_ifname_valid(""));
	assert_false(cni_ifname_valid(".."));
	assert_true(cni_containerid_valid("abc-1.2_3"));
	assert_false(cni_containerid_valid("-abc"));
	assert_false(cni_containerid_valid("a/b"));
}

static const char *full_result =
	"{\"cniVersion\":\"1.1.0\",\"interfaces\":[{\"name\":\"br0\",\"mac\":\"aa:bb:cc:dd:ee:ff\",\"mtu\":1400},"
	"{\"name\":\"eth0\",\"sandbox\":\"/run/netns/x\"}],"
	"\"ips\":[{\"address\":\"10.0.0.2/24\",\"gateway\":\"10.0.0.1\",\"interface\":1},{\"address\":\"fd00::2/64\",\"interface\":1}],"
	"\"routes\":[{\"dst\":\"0.0.0.0/0\",\"gw\":\"10.0.0.1\",\"priority\":5,\"mtu\":1300}],"
	"\"dns\":{\"nameservers\":[\"10.0.0.53\"],\"domain\":\"cluster.local\",\"search\":[\"a\",\"b\"]}}";

static char *roundtrip(const char *in, const char *version)
{
	struct kj root;
	struct kelp_err err = {0};
	struct cni_result r;
	if (kj_parse(in, strlen(in), "result", &root, &err) < 0 || cni_result_parse(&root, &r, &err) < 0)
		failf("parse: %s", err.msg);
	yajl_tree_free(root.v);
	char *out = cni_result_json(&r, version, NULL);
	cni_result_free(&r);
	return out;
}

static void test_result_versions(void **state)
{
	(void)state;
	cleanup_free char *v11 = roundtrip(full_result, "1.1.0");
	assert_string_equal(v11,
			    "{\"cniVersion\":\"1.1.0\",\"interfaces\":[{\"name\":\"br0\",\"mac\":\"aa:bb:cc:dd:ee:ff\",\"mtu\":1400},"
			    "{\"name\":\"eth0\",\"sandbox\":\"/run/netns/x\"}],\"ips\":[{\"interface\":1,\"address\":\"10.0.0.2/24\","
			    "\"gateway\":\"10.0.0.1\"},{\"interface\":1,\"address\":\"fd00::2/64\"}],\"routes\":[{\"dst\":\"0.0.0.0/0\","
			    "\"gw\":\"10.0.0.1\",\"mtu\":1300,\"priority\":5}],\"dns\":{\"nameservers\":[\"10.0.0.53\"],"
			    "\"domain\":\"cluster.local\",\"search\":[\"a\",\"b\"]}}");
	/* 1.0.0: no route attributes of 1.1 */
	cleanup_free char *v10 = roundtrip(full_result, "1.0.0");
	assert_null(strstr(v10, "priority"));
	assert_non_null(strstr(v10, "\"mtu\":1400"));
	assert_null(strstr(v10, "\"version\""));
	/* 0.3.x / 0.4.0: ips carry "version", interfaces no mtu */
	cleanup_free char *v04 = roundtrip(full_result, "0.4.0");
	assert_non_null(strstr(v04, "{\"version\":\"4\",\"interface\":1,\"address\":\"10.0.0.2/24\""));
	assert_non_null(strstr(v04, "{\"version\":\"6\",\"interface\":1,\"address\":\"fd00::2/64\"}"));
	assert_null(strstr(v04, "1400"));
	cleanup_free char *v030 = roundtrip(v04, "0.3.0");
	assert_non_null(strstr(v030, "\"cniVersion\":\"0.3.0\""));
}

static void test_result_bad(void **state)
{
	(void)state;
	const char *bad[][2] = {
		{"{\"ips\":[{\"address\":\"10.0.0.2\"}]}", "ips[0].address: \"10.0.0.2\" is not an IP prefix (address/length)"},
		{"{\"ips\":[{\"gateway\":\"10.0.0.1\"}]}", "ips[0].address: required field is missing"},
		{"{\"routes\":[{\"dst\":\"0.0.0.0/0\",\"gw\":\"x\"}]}", "routes[0].gw: \"x\" is not an IP address"},
		{"{\"interfaces\":[{\"name\":\"a\"}],\"ips\":[{\"address\":\"1.2.3.4/8\",\"interface\":3}]}",
		 "ips[0].interface: 3 is not an index of interfaces"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct kj root;
		struct kelp_err err = {0};
		struct cni_result r;
		assert_int_equal(kj_parse(bad[i][0], strlen(bad[i][0]), "r", &root, &err), 0);
		if (cni_result_parse(&root, &r, &err) == 0)
			failf("accepted %s", bad[i][0]);
		if (strcmp(err.msg, bad[i][1]) != 0)
			failf("%s: got \"%s\", want \"%s\"", bad[i][0], err.msg, bad[i][1]);
		yajl_tree_free(root.v);
	}
}

/* A plugin whose handlers record that they ran. */
static int calls;
static int f_add(struct cni_req *req, struct cni_result *ret, struct cni_err *err)
{
	(void)req;
	(void)err;
	struct cni_ip ip;
	cni_ip_parse("10.0.0.9/24", true, &ip);
	ret->ips[0].addr = ip;
	ret->ips[0].iface = -1;
	ret->n_ips = 1;
	calls++;
	return 0;
}
static int f_other(struct cni_req *req, struct cni_err *err)
{
	(void)req;
	(void)err;
	calls++;
	return 0;
}
static const struct cni_plugin fake = {"fake", false, f_add, f_other, f_other, f_other, f_other, NULL};

static char *run(const char *const *env, const char *in, int *ret_rc)
{
	int fd = memfd_create("out", MFD_CLOEXEC);
	assert_true(fd >= 0);
	*ret_rc = cni_run(&fake, (char *const *)env, in, strlen(in), fd);
	char *out = NULL;
	size_t len;
	struct kelp_err err;
	lseek(fd, 0, SEEK_SET);
	assert_int_equal(kelp_read_fd(fd, 1 << 16, &out, &len, &err), 0);
	close(fd);
	return out;
}

#define CONF(v) "{\"cniVersion\":\"" v "\",\"name\":\"n\",\"type\":\"fake\"}"

static void expect_error(const char *const *env, const char *in, const char *want)
{
	int rc;
	int before = calls;
	cleanup_free char *out = run(env, in, &rc);
	if (rc != 1 || strcmp(out, want) != 0)
		failf("rc %d, output %s, want %s", rc, out, want);
	if (calls != before)
		failf("a handler ran despite the error");
}

static void test_exec_errors(void **state)
{
	(void)state;
	const char *add[] = {"CNI_COMMAND=ADD", "CNI_CONTAINERID=c1", "CNI_NETNS=/run/netns/x", "CNI_IFNAME=eth0", NULL};
	expect_error((const char *[]){NULL}, CONF("1.1.0"),
		     "{\"cniVersion\":\"1.1.0\",\"code\":4,\"msg\":\"CNI_COMMAND is not set (one of ADD DEL CHECK STATUS GC VERSION)\"}\n");
	expect_error((const char *[]){"CNI_COMMAND=FOO", NULL}, CONF("1.1.0"),
		     "{\"cniVersion\":\"1.1.0\",\"code\":4,\"msg\":\"CNI_COMMAND \\\"FOO\\\" is not one of ADD DEL CHECK STATUS GC VERSION\"}\n");
	expect_error((const char *[]){"CNI_COMMAND=ADD", "CNI_NETNS=/x", "CNI_IFNAME=eth0", NULL}, CONF("1.1.0"),
		     "{\"cniVersion\":\"1.1.0\",\"code\":4,\"msg\":\"CNI_CONTAINERID is required for ADD\"}\n");
	expect_error((const char *[]){"CNI_COMMAND=ADD", "CNI_CONTAINERID=c", "CNI_NETNS=/x", "CNI_IFNAME=abcdefghijklmnop", NULL},
		     CONF("1.1.0"),
		     "{\"cniVersion\":\"1.1.0\",\"code\":4,\"msg\":\"CNI_IFNAME \\\"abcdefghijklmnop\\\" is not a valid interface name (1-15 bytes, no '/', ':' or spaces)\"}\n");
	expect_error((const char *[]){"CNI_COMMAND=ADD", "CNI_CONTAINERID=c", "CNI_IFNAME=eth0", NULL}, CONF("1.1.0"),
		     "{\"cniVersion\":\"1.1.0\",\"code\":4,\"msg\":\"CNI_NETNS is required for ADD\"}\n");
	expect_error(add, "{not json",
		     "{\"cniVersion\":\"1.1.0\",\"code\":6,\"msg\":\"parse network configuration: lexical error: invalid string in json text.\"}\n");
	expect_error(add, "", "{\"cniVersion\":\"1.1.0\",\"code\":6,\"msg\":\"no network configuration on stdin\"}\n");
	expect_error(add, CONF("0.2.0"),
		     "{\"cniVersion\":\"1.1.0\",\"code\":1,\"msg\":\"cniVersion: unsupported version \\\"0.2.0\\\" (supported: 0.3.0 0.3.1 0.4.0 1.0.0 1.1.0)\"}\n");
	expect_error(add, "{\"cniVersion\":\"1.0.0\",\"type\":\"fake\"}",
		     "{\"cniVersion\":\"1.0.0\",\"code\":7,\"msg\":\"name: required field is missing\"}\n");
	const char *check[] = {"CNI_COMMAND=CHECK", "CNI_CONTAINERID=c1", "CNI_NETNS=/x", "CNI_IFNAME=eth0", NULL};
	expect_error(check, CONF("0.3.1"),
		     "{\"cniVersion\":\"0.3.1\",\"code\":1,\"msg\":\"CHECK needs cniVersion 0.4.0 or later, config has 0.3.1\"}\n");
	expect_error((const char *[]){"CNI_COMMAND=GC", NULL}, CONF("1.0.0"),
		     "{\"cniVersion\":\"1.0.0\",\"code\":1,\"msg\":\"GC needs cniVersion 1.1.0 or later, config has 1.0.0\"}\n");
}

static void test_exec_ok(void **state)
{
	(void)state;
	const char *add[] = {"CNI_COMMAND=ADD", "CNI_CONTAINERID=c1", "CNI_NETNS=/run/netns/x", "CNI_IFNAME=eth0", NULL};
	int rc;
	calls = 0;
	cleanup_free char *o1 = run(add, CONF("0.4.0"), &rc);
	assert_int_equal(rc, 0);
	assert_string_equal(o1, "{\"cniVersion\":\"0.4.0\",\"ips\":[{\"version\":\"4\",\"address\":\"10.0.0.9/24\"}],\"dns\":{}}\n");
	/* a config carrying only cniVersions: the newest shared version answers */
	cleanup_free char *o2 = run(add, "{\"cniVersions\":[\"0.3.1\",\"1.0.0\",\"9.9.9\"],\"name\":\"n\",\"type\":\"fake\"}", &rc);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(o2, "\"cniVersion\":\"1.0.0\""));
	cleanup_free char *o3 = run((const char *[]){"CNI_COMMAND=VERSION", NULL}, "{\"cniVersion\":\"1.0.0\"}", &rc);
	assert_int_equal(rc, 0);
	assert_string_equal(o3, "{\"cniVersion\":\"1.0.0\",\"supportedVersions\":[\"0.3.0\",\"0.3.1\",\"0.4.0\",\"1.0.0\",\"1.1.0\"]}\n");
	assert_int_equal(calls, 2);
	/* disableCheck / disableGC: the plugin does nothing and succeeds */
	const char *check[] = {"CNI_COMMAND=CHECK", "CNI_CONTAINERID=c1", "CNI_NETNS=/x", "CNI_IFNAME=eth0", NULL};
	cleanup_free char *o4 = run(check, "{\"cniVersion\":\"1.1.0\",\"name\":\"n\",\"type\":\"fake\",\"disableCheck\":true}", &rc);
	assert_int_equal(rc, 0);
	cleanup_free char *o5 = run((const char *[]){"CNI_COMMAND=GC", NULL},
				    "{\"cniVersion\":\"1.1.0\",\"name\":\"n\",\"type\":\"fake\",\"disableGC\":true}", &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(calls, 2);
	cleanup_free char *o6 = run(check, CONF("1.1.0"), &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(calls, 3);
	/* DEL without CNI_NETNS is fine */
	cleanup_free char *o7 = run((const char *[]){"CNI_COMMAND=DEL", "CNI_CONTAINERID=c1", "CNI_IFNAME=eth0", NULL}, CONF("1.1.0"), &rc);
	assert_int_equal(rc, 0);
	assert_string_equal(o7, "");
	assert_int_equal(calls, 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ip_parse),	cmocka_unit_test(test_versions),   cmocka_unit_test(test_result_versions),
		cmocka_unit_test(test_result_bad),	cmocka_unit_test(test_exec_errors), cmocka_unit_test(test_exec_ok),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
