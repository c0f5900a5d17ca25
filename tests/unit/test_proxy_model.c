/* Unit tests of proxy/model.c: Services and EndpointSlices from manifests into the model, and
 * every refusal naming its field. */
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

#include "kube_manifest.h"
#include "model.h"

static const char *svc_head = "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: ns1}\n";

/* Parse one object of text as a Service (or slice). */
static int parse(const char *text, struct kp_service **svc, struct kp_slice **sl, struct kelp_err *err)
{
	struct km_file f;
	if (km_parse(text, strlen(text), "t.yaml", &f, err) < 0)
		failf("km_parse: %s", err->msg);
	assert_int_equal(f.n_objects, 1);
	int r = svc ? kp_service_parse(&f.objects[0].node, svc, err) : kp_slice_parse(&f.objects[0].node, sl, err);
	km_file_free(&f);
	return r;
}

static struct kp_service *svc_ok(const char *spec)
{
	char text[4096];
	snprintf(text, sizeof(text), "%s%s", svc_head, spec);
	struct kp_service *s = NULL;
	struct kelp_err err = {0};
	if (parse(text, &s, NULL, &err) < 0)
		failf("refused: %s", err.msg);
	return s;
}

static void svc_bad(const char *spec, const char *want)
{
	char text[4096];
	snprintf(text, sizeof(text), "%s%s", svc_head, spec);
	struct kp_service *s = NULL;
	struct kelp_err err = {0};
	if (parse(text, &s, NULL, &err) == 0) {
		kp_service_free(s);
		failf("accepted: %s", spec);
	}
	if (!strstr(err.msg, want))
		failf("error '%s' lacks '%s'", err.msg, want);
}

static void test_service_fields(void **state)
{
	(void)state;
	struct kp_service *s = svc_ok("spec:\n  type: NodePort\n  clusterIPs: [10.96.0.1, 'fd00::1']\n  ipFamilies: [IPv4, IPv6]\n"
				      "  ports:\n  - {name: http, port: 80, targetPort: web, nodePort: 30080}\n"
				      "  - {name: dns, port: 53, protocol: UDP}\n  - {name: s, port: 9, protocol: SCTP}\n"
				      "  externalIPs: [192.0.2.7]\n  sessionAffinity: ClientIP\n"
				      "  externalTrafficPolicy: Local\n  internalTrafficPolicy: Local\n"
				      "status: {loadBalancer: {ingress: [{ip: 192.0.2.8}, {hostname: lb.example}]}}\n");
	assert_string_equal(s->ns, "ns1");
	assert_string_equal(s->name, "web");
	assert_int_equal(s->type, KP_NODE_PORT);
	assert_true(s->has_cip[KP_V4] && s->has_cip[KP_V6]);
	assert_int_equal(s->n_ports, 3);
	assert_int_equal(s->ports[0].node_port, 30080);
	assert_string_equal(s->ports[0].target_name, "web");
	assert_int_equal(s->ports[1].proto, IPPROTO_UDP);
	assert_int_equal(s->ports[1].target_num, 53); /* targetPort defaults to port */
	assert_int_equal(s->ports[2].proto, IPPROTO_SCTP);
	assert_int_equal(s->n_ext, 1);
	assert_int_equal(s->n_lb, 1);
	assert_int_equal(s->affinity_timeout, 10800);
	assert_true(s->etp_local && s->itp_local);
	kp_service_free(s);

	s = svc_ok("spec:\n  clusterIP: None\n  ports: [{port: 80}]\n");
	assert_true(s->headless);
	kp_service_free(s);
}

static void test_service_refusals(void **state)
{
	(void)state;
	svc_bad("spec:\n  clusterIP: 10.96.0.1\n  ports: [{port: 70000}]\n", "spec.ports[0].port: 70000 is out of range 1-65535");
	svc_bad("spec:\n  clusterIP: 10.96.0.1\n  ports: [{port: 0}]\n", "spec.ports[0].port: 0 is out of range");
	svc_bad("spec:\n  clusterIP: 10.96.0.1\n  ports: [{port: 80, protocol: ICMP}]\n",
		"spec.ports[0].protocol: unknown protocol \"ICMP\"");
	svc_bad("spec:\n  clusterIP: 10.96.0.300\n  ports: [{port: 80}]\n", "spec.clusterIP: \"10.96.0.300\" is not an IP address");
	svc_bad("spec:\n  clusterIP: 'fd00::1'\n  ipFamilies: [IPv4]\n  ports: [{port: 80}]\n",
		"spec.clusterIP: fd00::1 is not in the service's family IPv4");
	svc_bad("spec:\n  clusterIP: 10.96.0.1\n  ports: [{name: a, port: 80}, {name: a, port: 81}]\n",
		"spec.ports[1].name: duplicate port name \"a\"");
	svc_bad("spec:\n  clusterIP: 10.96.0.1\n  ports: [{name: a, port: 80}, {port: 81}]\n",
		"spec.ports[1].name: required when a service has several ports");
	svc_bad("spec:\n  clusterIP: 10.96.0.1\n  ports: [{name: a, port: 80}, {name: b, port: 80}]\n",
		"spec.ports[1]: duplicate port 80/TCP");
	svc_bad("spec:\n  type: NodePort\n  clusterIP: 10.96.0.1\n  ports: [{port: 80, nodePort: 0}]\n",
		"spec.ports[0].nodePort: 0 is out of range");
	svc_bad("spec:\n  clusterIP: 10.96.0.1\n  ports: [{port: 80, nodePort: 30001}]\n",
		"spec.ports[0].nodePort: may only be used with type NodePort or LoadBalancer");
	svc_bad("spec:\n  clusterIP: 10.96.0.1\n  ports: [{port: 80, targetPort: Web_Port}]\n",
		"spec.ports[0].targetPort: \"Web_Port\" is not a valid port name");
	svc_bad("spec:\n  clusterIP: 10.96.0.1\n  ports: [{port: 80, targetPort: 65536}]\n",
		"spec.ports[0].targetPort: 65536 is out of range");
	svc_bad("spec:\n  type: Weird\n  clusterIP: 10.96.0.1\n", "spec.type: unknown value \"Weird\"");
	svc_bad("spec:\n  clusterIP: 10.96.0.1\n  externalIPs: [nope]\n", "spec.externalIPs[0]: \"nope\" is not an IP address");
	svc_bad("spec:\n  clusterIP: 10.96.0.1\n  externalIPs: ['fd00::9']\n", "spec.externalIPs[0]: not in a family");
	svc_bad("spec:\n  clusterIP: 10.96.0.1\n  sessionAffinity: ClientIP\n  sessionAffinityConfig: {clientIP: {timeoutSeconds: 0}}\n",
		"spec.sessionAffinityConfig.clientIP.timeoutSeconds: 0 is out of range 1-86400");
	svc_bad("spec:\n  clusterIP: 10.96.0.1\n  loadBalancerSourceRanges: [10.0.0.0/33]\n",
		"spec.loadBalancerSourceRanges[0]: \"10.0.0.0/33\" is not a CIDR");
	svc_bad("spec:\n  clusterIPs: [10.96.0.1, 10.96.0.2]\n", "spec.clusterIPs[1]: a second IPv4 address");
	svc_bad("spec:\n  ports: [{port: 80}]\n", "spec.clusterIP: required");
	svc_bad("spec:\n  clusterIP: 10.96.0.1\n  ports: [{port: '80'}]\n", "spec.ports[0].port");
}

static void test_slice(void **state)
{
	(void)state;
	const char *text = "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
			   "metadata: {name: web-x, namespace: ns1, labels: {kubernetes.io/service-name: web}}\n"
			   "addressType: IPv4\nports: [{name: http, port: 8080}]\nendpoints:\n"
			   "- {addresses: [10.0.0.1, 10.0.0.9], nodeName: n1}\n"
			   "- {addresses: [10.0.0.2], conditions: {ready: false, serving: true, terminating: true}}\n";
	struct kp_slice *sl = NULL;
	struct kelp_err err = {0};
	if (parse(text, NULL, &sl, &err) < 0)
		failf("refused: %s", err.msg);
	assert_string_equal(sl->service, "web");
	assert_int_equal(sl->fam, KP_V4);
	assert_int_equal(sl->n_eps, 2); /* only an endpoint's first address is used */
	assert_int_equal(sl->eps[0].cond, KP_EP_READY | KP_EP_SERVING);
	assert_string_equal(sl->eps[0].node, "n1");
	assert_int_equal(sl->eps[1].cond, KP_EP_SERVING | KP_EP_TERMINATING);
	kp_slice_free(sl);

	static const struct {
		const char *text, *want;
	} bad[] = {
		{"metadata: {name: s, namespace: ns1}\naddressType: IPv4\n", "metadata.labels.kubernetes.io/service-name: required"},
		{"metadata: {name: s, labels: {kubernetes.io/service-name: web}}\naddressType: IPv5\n",
		 "addressType: unknown value \"IPv5\""},
		{"metadata: {name: s, labels: {kubernetes.io/service-name: web}}\naddressType: IPv4\nendpoints: [{addresses: [10.0.0.256]}]\n",
		 "endpoints[0].addresses[0]: \"10.0.0.256\" is not an IP address"},
		{"metadata: {name: s, labels: {kubernetes.io/service-name: web}}\naddressType: IPv4\nendpoints: [{addresses: ['fd00::1']}]\n",
		 "endpoints[0].addresses[0]: IPv6 address in a slice of addressType IPv4"},
		{"metadata: {name: s, labels: {kubernetes.io/service-name: web}}\naddressType: IPv4\nports: [{port: 99999}]\n",
		 "ports[0].port: 99999 is out of range"},
		{"metadata: {name: s, labels: {kubernetes.io/service-name: web}}\naddressType: IPv4\nendpoints: [{addresses: []}]\n",
		 "endpoints[0].addresses: at least one address is required"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char t[1024];
		snprintf(t, sizeof(t), "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n%s", bad[i].text);
		sl = NULL;
		if (parse(t, NULL, &sl, &err) == 0) {
			kp_slice_free(sl);
			failf("accepted: %s", bad[i].text);
		}
		if (!strstr(err.msg, bad[i].want))
			failf("error '%s' lacks '%s'", err.msg, bad[i].want);
	}
}

/* The state file writes the model back as manifests; they must read back the same. */
static void test_round_trip(void **state)
{
	(void)state;
	struct kp_service *s = svc_ok("spec:\n  type: LoadBalancer\n  clusterIP: 10.96.0.1\n"
				      "  ports: [{name: a, port: 80, targetPort: web, nodePort: 31000}, {name: b, port: 53, protocol: UDP}]\n"
				      "  sessionAffinity: ClientIP\n  sessionAffinityConfig: {clientIP: {timeoutSeconds: 30}}\n"
				      "  loadBalancerSourceRanges: [192.0.2.0/24]\n  externalTrafficPolicy: Local\n"
				      "status: {loadBalancer: {ingress: [{ip: 192.0.2.8}]}}\n");
	yajl_gen g = kg_new(false);
	kp_service_gen(g, s);
	size_t len;
	char *text = kg_finish(g, &len);
	struct kp_service *s2 = NULL;
	struct kelp_err err = {0};
	if (parse(text, &s2, NULL, &err) < 0)
		failf("state text refused: %s (%s)", err.msg, text);
	assert_int_equal(s2->n_ports, 2);
	assert_string_equal(s2->ports[0].target_name, "web");
	assert_int_equal(s2->ports[0].node_port, 31000);
	assert_int_equal(s2->affinity_timeout, 30);
	assert_int_equal(s2->n_src_ranges, 1);
	assert_int_equal(s2->n_lb, 1);
	assert_true(s2->etp_local);
	free(text);
	kp_service_free(s);
	kp_service_free(s2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_service_fields),
		cmocka_unit_test(test_service_refusals),
		cmocka_unit_test(test_slice),
		cmocka_unit_test(test_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
