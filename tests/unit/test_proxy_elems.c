/* Unit tests of proxy/elems.c: what a service becomes in kelp-proxy's sets and maps (the count
 * and content of elements), for the kinds of service and endpoint states. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_util.h"

#include "elems.h"
#include "kube_manifest.h"
#include "model.h"

struct fixture {
	struct kp_service *svc;
	struct kp_slice *sl[2];
	size_t n_sl;
	struct kp_elemvec v;
};

static void load(struct fixture *f, const char *text)
{
	struct km_file kf;
	struct kelp_err err = {0};
	memset(f, 0, sizeof(*f));
	if (km_parse(text, strlen(text), "t.yaml", &kf, &err) < 0)
		failf("km_parse: %s", err.msg);
	for (size_t i = 0; i < kf.n_objects; i++) {
		int r = kp_object_kind(&kf.objects[i]) == KP_KIND_SERVICE ? kp_service_parse(&kf.objects[i].node, &f->svc, &err)
									  : kp_slice_parse(&kf.objects[i].node, &f->sl[f->n_sl++], &err);
		if (r < 0)
			failf("refused: %s", err.msg);
	}
	km_file_free(&kf);
	kp_service_elems("n1", f->svc, f->sl, f->n_sl, &f->v);
}

static void unload(struct fixture *f)
{
	kp_service_free(f->svc);
	for (size_t i = 0; i < f->n_sl; i++)
		kp_slice_free(f->sl[i]);
	kp_elemvec_free(&f->v);
}

static size_t count(const struct fixture *f, int set)
{
	size_t n = 0;
	for (size_t i = 0; i < f->v.n; i++)
		n += f->v.v[i].set == set;
	return n;
}

static const struct kp_elem *first(const struct fixture *f, int set)
{
	for (size_t i = 0; i < f->v.n; i++)
		if (f->v.v[i].set == set)
			return &f->v.v[i];
	failf("no element in set %d", set);
	return NULL;
}

#define SLICE(eps)                                                                                          \
	"---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: web-1, labels: "    \
	"{kubernetes.io/service-name: web}}\naddressType: IPv4\nports: [{name: http, port: 8080}]\nendpoints:\n" eps

static void test_cluster_ip(void **state)
{
	(void)state;
	struct fixture f;
	load(&f, "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  clusterIP: 10.96.0.10\n"
		 "  ports: [{name: http, port: 80, targetPort: 8080}]\n" SLICE(
			 "- {addresses: [10.1.0.1]}\n- {addresses: [10.1.0.2]}\n- {addresses: [10.1.0.3], conditions: {ready: false}}\n"));
	/* 1 verdict map entry, 2 ready endpoints (the unready one is left out), 2 hairpin pairs */
	assert_int_equal(f.v.n, 5);
	assert_int_equal(count(&f, KS_SVC), 1);
	assert_int_equal(count(&f, KS_EPS_SVC), 2);
	assert_int_equal(count(&f, KS_HAIRPIN), 2);
	const struct kp_elem *v = first(&f, KS_SVC);
	uint8_t key[12] = {10, 96, 0, 10, IPPROTO_TCP, 0, 0, 0, 0, 80, 0, 0};
	assert_int_equal(v->klen, 12);
	assert_memory_equal(v->key, key, 12);
	struct kp_group g;
	assert_true(kp_elem_group(v, &g));
	assert_int_equal(g.n, 2);
	assert_int_equal(g.path, KP_PATH_CLUSTER);
	assert_int_equal(g.timeout, 0);
	const struct kp_elem *e = first(&f, KS_EPS_SVC);
	uint8_t ekey[16] = {10, 96, 0, 10, IPPROTO_TCP, 0, 0, 0, 0, 80, 0, 0, 0, 0, 0, 0};
	uint8_t edata[8] = {10, 1, 0, 1, 0x1f, 0x90, 0, 0}; /* 10.1.0.1 . 8080, bucket 0 */
	assert_memory_equal(e->key, ekey, 16);
	assert_memory_equal(e->data, edata, 8);
	unload(&f);
}

static void test_no_endpoints_and_terminating(void **state)
{
	(void)state;
	struct fixture f;
	load(&f, "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  clusterIP: 10.96.0.10\n"
		 "  ports: [{name: http, port: 80}]\n" SLICE("- {addresses: [10.1.0.1], conditions: {ready: false}}\n"));
	/* not ready and not terminating: nothing usable, the service is rejected */
	assert_int_equal(f.v.n, 1);
	assert_int_equal(count(&f, KS_NOEP), 1);
	unload(&f);
	load(&f, "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  clusterIP: 10.96.0.10\n"
		 "  ports: [{name: http, port: 80}]\n" SLICE("- {addresses: [10.1.0.1], conditions: {ready: false, serving: true, terminating: true}}\n"
							     "- {addresses: [10.1.0.2], conditions: {ready: false, serving: false, terminating: true}}\n"));
	/* no ready endpoint: the serving terminating one takes the traffic */
	assert_int_equal(count(&f, KS_EPS_SVC), 1);
	assert_int_equal(count(&f, KS_NOEP), 0);
	unload(&f);
	load(&f, "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  clusterIP: None\n  ports: [{name: http, port: 80}]\n" SLICE(
			 "- {addresses: [10.1.0.1]}\n"));
	assert_int_equal(f.v.n, 0); /* headless: nothing */
	unload(&f);
}

static void test_node_port_local_affinity(void **state)
{
	(void)state;
	struct fixture f;
	load(&f, "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  type: LoadBalancer\n  clusterIP: 10.96.0.10\n"
		 "  externalIPs: [192.0.2.1]\n  externalTrafficPolicy: Local\n  sessionAffinity: ClientIP\n"
		 "  ports: [{name: http, port: 80, nodePort: 30080}]\n"
		 "status: {loadBalancer: {ingress: [{ip: 192.0.2.2}]}}\n" SLICE("- {addresses: [10.1.0.1], nodeName: n1}\n"
										  "- {addresses: [10.1.0.2], nodeName: n2}\n"));
	/* cluster IP: both endpoints; external IP, LB IP, node port: the local one only, source kept */
	assert_int_equal(count(&f, KS_SVC), 1);
	assert_int_equal(count(&f, KS_EPS_SVC), 2);
	assert_int_equal(count(&f, KS_EXT), 2);
	assert_int_equal(count(&f, KS_EPS_EXT), 2);
	assert_int_equal(count(&f, KS_NODEPORT), 1);
	assert_int_equal(count(&f, KS_EPS_NP), 1);
	assert_int_equal(count(&f, KS_EXTMASQ), 0);
	assert_int_equal(count(&f, KS_NPMASQ), 0);
	struct kp_group g;
	assert_true(kp_elem_group(first(&f, KS_NODEPORT), &g));
	assert_int_equal(g.n, 1);
	assert_int_equal(g.timeout, 10800);
	assert_int_equal(g.path, KP_PATH_NODEPORT);
	unload(&f);

	/* Local with no endpoint on this node: dropped (not rejected), masquerade for Cluster */
	load(&f, "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  type: NodePort\n  clusterIP: 10.96.0.10\n"
		 "  externalTrafficPolicy: Local\n  ports: [{name: http, port: 80, nodePort: 30080}]\n" SLICE(
			 "- {addresses: [10.1.0.2], nodeName: n2}\n"));
	const struct kp_elem *np = first(&f, KS_NODEPORT);
	assert_int_equal(np->data[0], KV_DROP);
	assert_int_equal(count(&f, KS_EPS_NP), 0);
	unload(&f);
	load(&f, "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  type: NodePort\n  clusterIP: 10.96.0.10\n"
		 "  ports: [{name: http, port: 80, nodePort: 30080}]\n" SLICE("- {addresses: [10.1.0.2], nodeName: n2}\n"));
	assert_int_equal(count(&f, KS_NPMASQ), 1);
	assert_int_equal(count(&f, KS_EPS_NP), 1);
	unload(&f);
}

static void test_source_ranges(void **state)
{
	(void)state;
	struct fixture f;
	load(&f, "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  type: LoadBalancer\n  clusterIP: 10.96.0.10\n"
		 "  loadBalancerSourceRanges: [198.51.100.0/24]\n  ports: [{name: http, port: 80, nodePort: 30080}]\n"
		 "status: {loadBalancer: {ingress: [{ip: 192.0.2.2}]}}\n" SLICE("- {addresses: [10.1.0.1]}\n"));
	assert_int_equal(count(&f, KS_LBGUARD), 1);
	assert_int_equal(count(&f, KS_LBALLOW), 1);
	const struct kp_elem *a = first(&f, KS_LBALLOW);
	uint8_t lo[4] = {198, 51, 100, 0}, hi[4] = {198, 51, 100, 255};
	assert_int_equal(a->klen, 16);
	assert_memory_equal(a->key + 12, lo, 4);
	assert_memory_equal(a->key_end + 12, hi, 4);
	unload(&f);
}

/* Hairpin pairs only for endpoints that can send from this node ("n1"): on it, or of unknown
 * place; an endpoint its slice puts on another node gets none. */
static void test_hairpin_only_local(void **state)
{
	(void)state;
	struct fixture f;
	load(&f, "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  clusterIP: 10.96.0.10\n"
		 "  ports: [{name: http, port: 80, targetPort: 8080}]\n" SLICE(
			 "- {addresses: [10.1.0.1], nodeName: n1}\n- {addresses: [10.1.0.2], nodeName: n2}\n"
			 "- {addresses: [10.1.0.3]}\n"));
	assert_int_equal(count(&f, KS_EPS_SVC), 3); /* every endpoint still serves */
	assert_int_equal(count(&f, KS_HAIRPIN), 2);
	for (size_t i = 0; i < f.v.n; i++) {
		const struct kp_elem *e = &f.v.v[i];
		if (e->set != KS_HAIRPIN)
			continue;
		assert_int_equal(e->klen, 8);
		assert_memory_equal(e->key, e->key + 4, 4);
		assert_true(e->key[3] == 1 || e->key[3] == 3);
	}
	unload(&f);
	/* without a node name every endpoint gets its pair */
	load(&f, "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  clusterIP: 10.96.0.10\n"
		 "  ports: [{name: http, port: 80, targetPort: 8080}]\n" SLICE("- {addresses: [10.1.0.1], nodeName: n2}\n"));
	kp_elemvec_free(&f.v);
	kp_service_elems(NULL, f.svc, f.sl, f.n_sl, &f.v);
	assert_int_equal(count(&f, KS_HAIRPIN), 1);
	unload(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cluster_ip),
		cmocka_unit_test(test_no_endpoints_and_terminating),
		cmocka_unit_test(test_node_port_local_affinity),
		cmocka_unit_test(test_source_ranges),
		cmocka_unit_test(test_hairpin_only_local),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
