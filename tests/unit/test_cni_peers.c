/* Unit tests of kelp-vxlan's peers file parser (vx_peers_parse): a valid file, every refused
 * shape, and the leak fuzz_cni_peers found (tests/fuzz/crashes/fuzz_cni_peers-1: a node with a
 * name and no vtepMAC; under `make asan` LeakSanitizer checks that nothing is left). */
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
#include "vxlan/overlay.h"

static void test_valid(void **state)
{
	(void)state;
	const char *text = "{\"nodes\":[{\"name\":\"n1\",\"underlayIP\":\"192.168.253.1\",\"podSubnet\":\"10.80.1.7/24\","
			   "\"vtepMAC\":\"02:00:00:00:53:01\"},{\"name\":\"n2\",\"underlayIP\":\"192.168.253.2\","
			   "\"podSubnet\":\"10.80.2.0/24\",\"vtepMAC\":\"02:00:00:00:53:02\"}]}";
	struct vx_peers p;
	struct cni_err err = {0};
	assert_int_equal(vx_peers_parse(text, strlen(text), "peers.json", &p, &err), 0);
	assert_int_equal(p.n, 2);
	const struct vx_peer *n2 = vx_peers_find(&p, "n2");
	assert_non_null(n2);
	assert_true(n2->underlay.a == 0xc0a8fd02);
	assert_true(vx_peers_find(&p, "n1")->subnet.a == 0x0a500100); /* masked to the subnet */
	assert_int_equal(n2->mac[5], 2);
	assert_null(vx_peers_find(&p, "n3"));
	vx_peers_free(&p);
}

static void test_refused(void **state)
{
	(void)state;
	const char *bad[][2] = {
		{"{}", "nodes: required field is missing"},
		{"{\"nodes\":{}}", "nodes: expected an array, got an object"},
		{"{\"nodes\":[{\"name\":\"x\"}]}", "nodes[0].vtepMAC: required field is missing"},
		{"{\"nodes\":[{\"name\":\"x\",\"vtepMAC\":\"02:00:00:00:00:01\",\"underlayIP\":\"fd00::1\","
		 "\"podSubnet\":\"10.80.1.0/24\"}]}",
		 "nodes[0].underlayIP"},
		{"{\"nodes\":[{\"name\":\"x\",\"vtepMAC\":\"zz\",\"underlayIP\":\"10.0.0.1\",\"podSubnet\":\"10.80.1.0/24\"}]}",
		 "nodes[0].vtepMAC: \"zz\" is not a MAC address"},
		{"{\"nodes\":[{\"name\":\"x\",\"vtepMAC\":\"02:00:00:00:00:01\",\"underlayIP\":\"10.0.0.1\",\"podSubnet\":\"10.80.1.0/24\"},"
		 "{\"name\":\"x\",\"vtepMAC\":\"02:00:00:00:00:02\",\"underlayIP\":\"10.0.0.2\",\"podSubnet\":\"10.80.2.0/24\"}]}",
		 "nodes[1].name: node x is listed twice"},
		{"{\"nodes\":[{\"name\":\"x\",\"vtepMAC\":\"02:00:00:00:00:01\",\"underlayIP\":\"10.0.0.1\",\"podSubnet\":\"10.80.1.0/24\"},"
		 "{\"name\":\"y\",\"vtepMAC\":\"02:00:00:00:00:02\",\"underlayIP\":\"10.0.0.2\",\"podSubnet\":\"10.80.0.0/16\"}]}",
		 "nodes[1].podSubnet: overlaps the pod subnet of node x"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct vx_peers p;
		struct cni_err err = {0};
		if (vx_peers_parse(bad[i][0], strlen(bad[i][0]), "peers.json", &p, &err) == 0)
			failf("accepted %s", bad[i][0]);
		if (err.code != CNI_ERR_CONFIG || !strstr(err.k.msg, bad[i][1]))
			failf("%s: got code %d \"%s\", want 7 \"%s\"", bad[i][0], err.code, err.k.msg, bad[i][1]);
		assert_null(p.v);
		assert_int_equal(p.n, 0);
	}
}

/* The reproducer, replayed: refused, and (under ASan) nothing leaked. */
static void test_fuzz_reproducer(void **state)
{
	(void)state;
	cleanup_free char *text = NULL;
	size_t len;
	struct kelp_err kerr;
	if (kelp_read_file_at(AT_FDCWD, "tests/fuzz/crashes/fuzz_cni_peers-1", 4096, &text, &len, &kerr) < 0)
		failf("%s", kerr.msg);
	struct vx_peers p;
	struct cni_err err = {0};
	assert_int_equal(vx_peers_parse(text, len, "fuzz_cni_peers-1", &p, &err), -1);
	assert_non_null(strstr(err.k.msg, "vtepMAC: required field is missing"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_fuzz_reproducer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
