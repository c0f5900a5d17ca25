#!/bin/bash
# kelp-proxy smoke: a fresh "node" netns, a backend "pod" netns behind a veth running busybox
# httpd, a ClusterIP service for it; a connection from the node through the ClusterIP reaches
# the pod, a service without endpoints is refused at once, a changed file in `watch` mode moves
# the service, and `flush` leaves no kelp table or state. (71+ test the semantics in depth.)
. "$(dirname "$0")/lib.sh"
require_root

KP=$BUILD/bin/kelp-proxy
P=kt70-$$
NODE=$P-node
POD=$P-pod
ST=$TEST_TMP/state-proxy
WATCH_PID=
HTTPD_PIDS=()
kt_extra_cleanup() {
	[ -n "$WATCH_PID" ] && kill "$WATCH_PID" 2>/dev/null && wait "$WATCH_PID" 2>/dev/null
	local p
	for p in "${HTTPD_PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	ip netns exec "$NODE" "$KP" --state-dir "$ST" flush 2>/dev/null
	ip netns del "$POD" 2>/dev/null
	ip netns del "$NODE" 2>/dev/null
}
command -v busybox >/dev/null && command -v curl >/dev/null || skip_all "busybox or curl is not installed"
ip netns add "$NODE" && ip netns add "$POD" || { fail "create namespaces"; exit 1; }
ip netns exec "$NODE" ip link set lo up
ip netns exec "$POD" ip link set lo up
ip netns exec "$NODE" ip link add kt-pod type veth peer name eth0 netns "$POD"
ip netns exec "$NODE" ip addr add 10.70.0.1/24 dev kt-pod
ip netns exec "$NODE" ip link set kt-pod up
# a default route, as a node has one: service addresses must be routable before DNAT
ip netns exec "$NODE" ip route add default via 10.70.0.2
ip netns exec "$POD" ip addr add 10.70.0.2/24 dev eth0
ip netns exec "$POD" ip addr add 10.70.0.3/24 dev eth0
ip netns exec "$POD" ip link set eth0 up
ip netns exec "$POD" ip route add default via 10.70.0.1
mkdir -p "$TEST_TMP/www" && echo kelp-pod >"$TEST_TMP/www/index.html"
# in the foreground (-f), as children of this test: a daemonized httpd would outlive it
for a in 10.70.0.2 10.70.0.3; do
	ip netns exec "$POD" busybox httpd -f -p "$a:8080" -h "$TEST_TMP/www" &
	HTTPD_PIDS+=($!)
done
for a in 10.70.0.2 10.70.0.3; do
	for _ in $(seq 50); do
		ip netns exec "$POD" ss -Htln "src $a:8080" | grep -q . && break
		sleep 0.1
	done
done

svc() { # NAME IP EP...
	local name=$1 ip=$2 ep
	shift 2
	printf 'apiVersion: v1\nkind: Service\nmetadata: {name: %s, namespace: kt}\nspec:\n  clusterIP: %s\n  ports: [{name: http, port: 80, targetPort: 8080}]\n---\n' "$name" "$ip"
	printf 'apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: %s-1, namespace: kt, labels: {kubernetes.io/service-name: %s}}\naddressType: IPv4\nports: [{name: http, port: 8080, protocol: TCP}]\nendpoints:\n' "$name" "$name"
	for ep in "$@"; do printf -- '- addresses: [%s]\n  conditions: {ready: true}\n' "$ep"; done
}
mkdir -p "$TEST_TMP/in"
svc web 10.96.70.10 10.70.0.2 >"$TEST_TMP/in/web.yaml"
svc none 10.96.70.11 >"$TEST_TMP/in/none.yaml"
fetch() { ip netns exec "$NODE" curl -sS -m 3 "http://$1/" 2>&1; }

check "sync exits 0" ip netns exec "$NODE" "$KP" --state-dir "$ST" --node-name n1 sync "$TEST_TMP/in"
check_eq "the tables are kelp's" "table ip kelp-proxy table ip6 kelp-proxy" \
	"$(ip netns exec "$NODE" nft list tables | tr '\n' ' ' | sed 's/ $//')"
check_eq "ClusterIP reaches the pod" "kelp-pod" "$(fetch 10.96.70.10)"
t0=$(date +%s%N)
out=$(fetch 10.96.70.11:80)
t1=$(date +%s%N)
check_match "no endpoints: refused" "refused|reset|Couldn't connect" "$out"
check "no endpoints: at once (< 1 s)" test $(((t1 - t0) / 1000000)) -lt 1000
check_match "show lists both services" "kt/web +ClusterIP +10.96.70.10 +80/TCP +1/1" \
	"$(ip netns exec "$NODE" "$KP" --state-dir "$ST" show)"

# watch: the endpoint moves to the pod's second address; one file changes, one transaction
ip netns exec "$NODE" "$KP" --state-dir "$ST" --node-name n1 watch "$TEST_TMP/in" 2>"$TEST_TMP/watch.err" &
WATCH_PID=$!
for _ in $(seq 50); do
	[ "$(ip netns exec "$NODE" "$KP" --state-dir "$ST" show --metrics | awk '/syncs_total\{kind="full"\}/{print $2}')" = 2 ] && break
	sleep 0.1
done
svc web 10.96.70.10 10.70.0.3 >"$TEST_TMP/web.yaml" && mv "$TEST_TMP/web.yaml" "$TEST_TMP/in/web.yaml"
for _ in $(seq 50); do
	ip netns exec "$NODE" nft list map ip kelp-proxy cluster-endpoints | grep -q 10.70.0.3 && break
	sleep 0.1
done
check_match "watch: the endpoint changed" "10\.70\.0\.3 \. 8080" "$(ip netns exec "$NODE" nft list map ip kelp-proxy cluster-endpoints)"
check_eq "watch: the old endpoint is gone" "0" "$(ip netns exec "$NODE" nft list map ip kelp-proxy cluster-endpoints | grep -c '10\.70\.0\.2 ')"
# endpoints map and hairpin set: one delete and one add message each
check_eq "watch: a partial sync of 4 messages" "1 4" \
	"$(ip netns exec "$NODE" "$KP" --state-dir "$ST" show --metrics | awk '/kind="partial"/{p=$2} /last_sync_netlink_messages /{m=$2} END{print p, m}')"
check_eq "watch: ClusterIP still answers" "kelp-pod" "$(fetch 10.96.70.10)"
# two endpoints: the service moves to the shared chain of 2-endpoint services, the 1-chain goes
svc web 10.96.70.10 10.70.0.2 10.70.0.3 >"$TEST_TMP/web.yaml" && mv "$TEST_TMP/web.yaml" "$TEST_TMP/in/web.yaml"
for _ in $(seq 50); do
	ip netns exec "$NODE" nft list chain ip kelp-proxy cluster-endpoints-2 >/dev/null 2>&1 && break
	sleep 0.1
done
check "watch: 2 endpoints, chain cluster-endpoints-2" ip netns exec "$NODE" nft list chain ip kelp-proxy cluster-endpoints-2
check "watch: chain cluster-endpoints-1 is gone" bash -c "! ip netns exec $NODE nft list chain ip kelp-proxy cluster-endpoints-1 2>/dev/null"
check_eq "watch: both endpoints answer" "kelp-pod kelp-pod kelp-pod kelp-pod" "$(for _ in 1 2 3 4; do fetch 10.96.70.10; done | tr '\n' ' ' | sed 's/ $//')"
kill "$WATCH_PID" && wait "$WATCH_PID"
check_eq "watch exits 0 on SIGTERM" "0" "$?"
WATCH_PID=
check "rules stay after watch ends" ip netns exec "$NODE" nft list table ip kelp-proxy

check "flush exits 0" ip netns exec "$NODE" "$KP" --state-dir "$ST" flush
check_eq "flush: no kelp table left" "" "$(ip netns exec "$NODE" nft list tables)"
check "flush: no state file" test ! -e "$ST/state.json"
check "flush again: still exit 0" ip netns exec "$NODE" "$KP" --state-dir "$ST" flush
exit 0
