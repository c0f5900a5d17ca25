# bench/proxy/gen.awk — Service + EndpointSlice manifests for the kelp-proxy benchmark, as
# `kubectl get -o yaml` prints them (its field order, metadata, status).
#
#   awk -v n=N -v out=DIR -v layout=files -f gen.awk   one file DIR/svc-NNNNN.yaml per service:
#                                                      its Service, `---`, its EndpointSlice
#   awk -v n=N -v out=DIR -v layout=lists -f gen.awk   DIR/services.yaml and
#                                                      DIR/endpointslices.yaml, each a `List`
#   awk -v one=I -v variant=V -v out=FILE -f gen.awk   service I alone (layout files) into FILE;
#                                                      an odd V moves endpoint 9 to another IP
#
# Service i is the same whatever n is, so a set of 10 is the first 10 of a set of 10,000.
#   namespace bench-(i % 10), name svc-NNNNN
#   clusterIP 10.96.0.0/16 + 10 + i (service CIDR; .0-.9 left free like kubernetes/kube-dns)
#   endpoints 10.128.0.0/12 + 16 i + 1 ... + 10 (pod CIDR), ready, on nodes node-0 ... node-9;
#             variant odd: endpoint 9 at 10.160.0.0 + i instead
#   i % 4 == 3: UDP dns 53 -> 5353; i % 8 == 5: TCP https 443 -> 8443; else TCP http 80 -> 8080
#   i % 5 == 1: type NodePort, nodePort 30000 + i / 5 (while it stays in 30000-32767)
BEGIN {
	if (one != "") {
		emit_file(one + 0, variant + 0, out)
		exit 0
	}
	if (n + 0 < 1 || out == "") {
		print "gen.awk: usage: -v n=N -v out=DIR [-v layout=files|lists]" >"/dev/stderr"
		exit 2
	}
	if (layout == "")
		layout = "files"
	if (layout == "files") {
		for (i = 0; i < n; i++)
			emit_file(i, 0, sprintf("%s/svc-%05d.yaml", out, i))
	} else if (layout == "lists") {
		list_begin(out "/services.yaml")
		for (i = 0; i < n; i++)
			list_item(out "/services.yaml", service(i))
		list_end(out "/services.yaml")
		list_begin(out "/endpointslices.yaml")
		for (i = 0; i < n; i++)
			list_item(out "/endpointslices.yaml", slice(i, 0))
		list_end(out "/endpointslices.yaml")
	} else {
		print "gen.awk: layout must be files or lists" >"/dev/stderr"
		exit 2
	}
}

function emit_file(i, v, path) {
	printf "%s---\n%s", service(i), slice(i, v) >path
	if (close(path) != 0) {
		print "gen.awk: cannot write " path >"/dev/stderr"
		exit 1
	}
}

function list_begin(path) {
	print "apiVersion: v1\nitems:" >path
}

# An object as an item of `items:`: "- " before its first line, two spaces before the others.
function list_item(path, obj) {
	sub(/\n$/, "", obj)
	gsub(/\n/, "\n  ", obj)
	print "- " obj >path
}

function list_end(path) {
	print "kind: List\nmetadata:\n  resourceVersion: \"\"" >path
	if (close(path) != 0) {
		print "gen.awk: cannot write " path >"/dev/stderr"
		exit 1
	}
}

function ip4(a) {
	return sprintf("%d.%d.%d.%d", int(a / 16777216) % 256, int(a / 65536) % 256, int(a / 256) % 256, a % 256)
}

function uid(kind, i) {
	return sprintf("%08x-%04x-4%03x-8%03x-%012x", 1234567 + i, kind, i % 4096, kind, i)
}

function name(i) {
	return sprintf("svc-%05d", i)
}

function proto(i) {
	return i % 4 == 3 ? "UDP" : "TCP"
}

function pname(i) {
	return i % 4 == 3 ? "dns" : (i % 8 == 5 ? "https" : "http")
}

function port(i) {
	return i % 4 == 3 ? 53 : (i % 8 == 5 ? 443 : 80)
}

function tport(i) {
	return i % 4 == 3 ? 5353 : (i % 8 == 5 ? 8443 : 8080)
}

function nodeport(i) {
	return (i % 5 == 1 && 30000 + int(i / 5) <= 32767) ? 30000 + int(i / 5) : 0
}

function service(i, s, cip) {
	cip = ip4(167772160 + 6291456 + 10 + i) # 10.96.0.0 + 10 + i
	s = "apiVersion: v1\nkind: Service\nmetadata:\n"
	s = s "  creationTimestamp: \"2026-11-30T12:00:00Z\"\n  labels:\n    app: " name(i) "\n"
	s = s "  name: " name(i) "\n  namespace: bench-" (i % 10) "\n"
	s = s "  resourceVersion: \"" (100000 + 2 * i) "\"\n  uid: " uid(1, i) "\n"
	s = s "spec:\n  clusterIP: " cip "\n  clusterIPs:\n  - " cip "\n"
	if (nodeport(i))
		s = s "  externalTrafficPolicy: Cluster\n"
	s = s "  internalTrafficPolicy: Cluster\n  ipFamilies:\n  - IPv4\n  ipFamilyPolicy: SingleStack\n"
	s = s "  ports:\n  - name: " pname(i) "\n"
	if (nodeport(i))
		s = s "    nodePort: " nodeport(i) "\n"
	s = s "    port: " port(i) "\n    protocol: " proto(i) "\n    targetPort: " tport(i) "\n"
	s = s "  selector:\n    app: " name(i) "\n  sessionAffinity: None\n"
	s = s "  type: " (nodeport(i) ? "NodePort" : "ClusterIP") "\nstatus:\n  loadBalancer: {}\n"
	return s
}

function slice(i, v, s, j, a) {
	s = "addressType: IPv4\napiVersion: discovery.k8s.io/v1\nendpoints:\n"
	for (j = 0; j < 10; j++) {
		a = 167772160 + 8388608 + 16 * i + j + 1 # 10.128.0.0 + 16 i + j + 1
		if (j == 9 && v % 2 == 1)
			a = 167772160 + 10485760 + i # 10.160.0.0 + i
		s = s "- addresses:\n  - " ip4(a) "\n  conditions:\n    ready: true\n    serving: true\n"
		s = s "    terminating: false\n  nodeName: node-" j "\n  targetRef:\n    kind: Pod\n"
		s = s sprintf("    name: %s-7d4b9c%04x-%05x\n", name(i), i % 65536, 10 * i + j)
		s = s "    namespace: bench-" (i % 10) "\n    uid: " uid(100 + j, i) "\n"
		s = s "  zone: zone-" substr("abc", j % 3 + 1, 1) "\n"
	}
	s = s "kind: EndpointSlice\nmetadata:\n  annotations:\n"
	s = s "    endpoints.kubernetes.io/last-change-trigger-time: \"2026-11-30T12:00:0" (v % 10) "Z\"\n"
	s = s "  creationTimestamp: \"2026-11-30T12:00:00Z\"\n  generateName: " name(i) "-\n"
	s = s "  generation: " (v + 1) "\n  labels:\n"
	s = s "    endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io\n"
	s = s "    kubernetes.io/service-name: " name(i) "\n"
	s = s sprintf("  name: %s-%05x\n", name(i), i)
	s = s "  namespace: bench-" (i % 10) "\n  ownerReferences:\n  - apiVersion: v1\n"
	s = s "    blockOwnerDeletion: true\n    controller: true\n    kind: Service\n"
	s = s "    name: " name(i) "\n    uid: " uid(1, i) "\n"
	s = s "  resourceVersion: \"" (100001 + 2 * i + 1000000 * v) "\"\n  uid: " uid(2, i) "\n"
	s = s "ports:\n- name: " pname(i) "\n  port: " tport(i) "\n  protocol: " proto(i) "\n"
	return s
}
