/* Unit tests of kelp-portmap's runtimeConfig.portMappings parser: defaults, Go's
 * case-insensitive keys (containerd 1.6 sends "HostPort"), hostIP forms, every rejected shape. */
#include <netinet/in.h>
#include <sys/socket.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_util.h"

#include "cleanup.h"
#include "portmap/config.h"

static int parse(const char *rc, struct mapping *m, size_t *n, struct cni_err *err)
{
	/* the whole network configuration, runtimeConfig taken from it as cni_run does */
	cleanup_free char *text = rc ? xasprintf("{\"name\":\"pm\",\"runtimeConfig\":%s}", rc) : xasprintf("{}");
	struct cni_req req = {0};
	if (kj_parse(text, strlen(text), "network configuration", &req.conf, &err->k) < 0 ||
	    kj_field(&req.conf, "runtimeConfig", &req.runtime_config, &err->k) < 0)
		failf("bad test JSON %s", text);
	int r = pm_parse_mappings(&req, m, n, err);
	yajl_tree_free(req.conf.v);
	return r;
}

static void test_accepted(void **state)
{
	(void)state;
	struct mapping m[PM_MAX];
	size_t n = 99;
	struct cni_err err = {0};
	assert_int_equal(parse(NULL, m, &n, &err), 0);
	assert_int_equal(n, 0);
	assert_int_equal(parse("{\"bandwidth\":{}}", m, &n, &err), 0);
	assert_int_equal(n, 0);
	assert_int_equal(parse("{\"portMappings\":[{\"hostPort\":8080,\"containerPort\":80},"
			       "{\"HostPort\":53,\"ContainerPort\":5353,\"Protocol\":\"UDP\",\"HostIP\":\"127.0.0.1\"},"
			       "{\"hostPort\":9,\"containerPort\":9,\"protocol\":\"sctp\",\"hostIP\":\"fd00::1\"},"
			       "{\"hostPort\":65535,\"containerPort\":1,\"hostIP\":\"0.0.0.0\"},"
			       "{\"hostPort\":1,\"containerPort\":65535,\"hostIP\":\"::\"},"
			       "{\"hostPort\":2,\"containerPort\":2,\"hostIP\":\"\"}]}",
			       m, &n, &err),
			 0);
	assert_int_equal(n, 6);
	assert_int_equal(m[0].host_port, 8080);
	assert_int_equal(m[0].container_port, 80);
	assert_int_equal(m[0].proto, IPPROTO_TCP); /* the default */
	assert_false(m[0].has_host_ip);
	assert_int_equal(m[1].host_port, 53);
	assert_int_equal(m[1].container_port, 5353);
	assert_int_equal(m[1].proto, IPPROTO_UDP);
	assert_true(m[1].has_host_ip);
	assert_int_equal(m[1].host_ip.family, AF_INET);
	assert_true(m[1].host_ip.a == 0x7f000001);
	assert_int_equal(m[2].proto, IPPROTO_SCTP);
	assert_true(m[2].has_host_ip && m[2].host_ip.family == AF_INET6);
	/* the wildcard forms mean every address, as in the reference plugin */
	assert_false(m[3].has_host_ip);
	assert_false(m[4].has_host_ip);
	assert_false(m[5].has_host_ip);
	/* PM_MAX mappings are fine */
	char buf[PM_MAX * 48 + 64];
	size_t o = (size_t)snprintf(buf, sizeof(buf), "{\"portMappings\":[");
	for (int i = 0; i < PM_MAX; i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s{\"hostPort\":%d,\"containerPort\":80}", i ? "," : "", 1000 + i);
	snprintf(buf + o, sizeof(buf) - o, "]}");
	assert_int_equal(parse(buf, m, &n, &err), 0);
	assert_int_equal(n, PM_MAX);
	assert_int_equal(m[PM_MAX - 1].host_port, 1000 + PM_MAX - 1);
}

static void test_rejected(void **state)
{
	(void)state;
	const char *bad[][2] = {
		{"{\"portMappings\":{}}", "runtimeConfig.portMappings: expected an array, got an object"},
		{"{\"portMappings\":[80]}", "runtimeConfig.portMappings[0]: expected an object, got a number"},
		{"{\"portMappings\":[{\"containerPort\":80}]}", "runtimeConfig.portMappings[0].hostPort: needs a port 1-65535, got 0"},
		{"{\"portMappings\":[{\"hostPort\":0,\"containerPort\":80}]}",
		 "runtimeConfig.portMappings[0].hostPort: needs a port 1-65535, got 0"},
		{"{\"portMappings\":[{\"hostPort\":80,\"containerPort\":80},{\"hostPort\":80,\"containerPort\":65536}]}",
		 "runtimeConfig.portMappings[1].containerPort: needs a port 1-65535, got 65536"},
		{"{\"portMappings\":[{\"hostPort\":-1,\"containerPort\":80}]}",
		 "runtimeConfig.portMappings[0].hostPort: needs a port 1-65535, got -1"},
		{"{\"portMappings\":[{\"hostPort\":\"80\",\"containerPort\":80}]}",
		 "runtimeConfig.portMappings[0].hostPort: expected an integer, got a string"},
		{"{\"portMappings\":[{\"hostPort\":80,\"containerPort\":80,\"protocol\":\"icmp\"}]}",
		 "runtimeConfig.portMappings[0].protocol: \"icmp\" is not tcp, udp or sctp"},
		{"{\"portMappings\":[{\"hostPort\":80,\"containerPort\":80,\"protocol\":6}]}",
		 "runtimeConfig.portMappings[0].protocol: expected a string, got a number"},
		{"{\"portMappings\":[{\"hostPort\":80,\"containerPort\":80,\"hostIP\":\"10.0.0.300\"}]}",
		 "runtimeConfig.portMappings[0].hostIP: \"10.0.0.300\" is not an IP address"},
		{"{\"portMappings\":[{\"hostPort\":80,\"containerPort\":80,\"hostIP\":\"10.0.0.0/8\"}]}",
		 "runtimeConfig.portMappings[0].hostIP: \"10.0.0.0/8\" is not an IP address"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct mapping m[PM_MAX];
		size_t n;
		struct cni_err err = {0};
		if (parse(bad[i][0], m, &n, &err) == 0)
			failf("accepted %s", bad[i][0]);
		if (err.code != CNI_ERR_CONFIG || strcmp(err.k.msg, bad[i][1]) != 0)
			failf("%s: got code %d \"%s\", want 7 \"%s\"", bad[i][0], err.code, err.k.msg, bad[i][1]);
	}
	/* one more than PM_MAX */
	char buf[(PM_MAX + 1) * 48 + 64];
	size_t o = (size_t)snprintf(buf, sizeof(buf), "{\"portMappings\":[");
	for (int i = 0; i <= PM_MAX; i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s{\"hostPort\":%d,\"containerPort\":80}", i ? "," : "", 1000 + i);
	snprintf(buf + o, sizeof(buf) - o, "]}");
	struct mapping m[PM_MAX];
	size_t n;
	struct cni_err err = {0};
	assert_int_equal(parse(buf, m, &n, &err), -1);
	assert_string_equal(err.k.msg, "runtimeConfig.portMappings: more than 128 mappings");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accepted),
		cmocka_unit_test(test_rejected),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
