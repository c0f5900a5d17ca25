#!/bin/bash
# kelp-proxy flush, and this test's cleanup: after traffic to TCP, UDP, IPv6, NodePort and
# affinity services (affinity maps filled), flush leaves no kelp table, chain, set or map in the
# node namespace and no conntrack entry for a service address, keeps a table of the user's own,
# and removes the state; the teardown leaves no namespace, server or daemon behind.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/_svc_topology.sh"
require_root
[ -x "$PROXY" ] || skip_all "$PROXY is not built (make all)"

kt_extra_cleanup() { topo_cleanup; }
topo_start "kt74-$$" p1:11 p2:12

# Conntrack entries of the node namespace whose original destination is a service address
# (10.96.0.0/16, fd00:96::/64): `conntrack -L` when installed, else /proc/net/nf_conntrack
# (addresses there are printed in full, fd00:0096:0000:...).
if command -v conntrack >/dev/null; then
	ct_service() {
		{
			in_ns node conntrack -L -f ipv4 2>/dev/null
			in_ns node conntrack -L -f ipv6 2>/dev/null
		} | grep -E 'dst=(10\.96\.|fd00:96:)'
	}
elif in_ns node test -r /proc/net/nf_conntrack; then
	ct_service() {
		in_ns node cat /proc/net/nf_conntrack | grep -E 'dst=(10\.96\.|fd00:0?096:)'
	}
else
	fail "conntrack entries can be listed" "neither conntrack(8) nor /proc/net/nf_conntrack is available"
	exit 1
fi

# A table of the user's own, which kelp-proxy must leave alone.
in_ns node nft -f - <<'EOF'
table inet kt-user {
	set keep { type ipv4_addr; elements = { 10.9.9.9 } }
	chain user-forward { type filter hook forward priority 10; policy accept; counter; }
}
EOF
check "a user table is created in the node namespace" in_ns node nft list table inet kt-user

M=$TEST_TMP/manifests
mkdir -p "$M"
svc_manifest web ip=10.96.0.10 type=NodePort ports="http:TCP:80:8080:30080" eps="p1 p2" >"$M/web.yaml"
svc_manifest two ip=10.96.0.11 ports="http:TCP:80:8080 alt:TCP:81:8081" eps="p1 p2" >"$M/two.yaml"
svc_manifest dns ip=10.96.0.12 ports="dns:UDP:53:8080" eps="p1 p2" >"$M/dns.yaml"
svc_manifest web6 ip=fd00:96::10 eps="p1 p2" >"$M/web6.yaml"
svc_manifest sticky ip=10.96.0.14 type=NodePort affinity=ClientIP ports="http:TCP:80:8080:30084" \
	eps="p1 p2" >"$M/sticky.yaml"
svc_manifest empty ip=10.96.0.13 slice=none >"$M/empty.yaml"
out=$(kp sync "$M" 2>&1)
check_eq "sync exits 0" 0 "$?" || echo "$out" >&2
r=$(
	get client -n 5 -w 1000 tcp 10.96.0.10 80
	get client -n 5 -w 1000 tcp 10.96.0.11 81
	get client -n 5 -w 1000 udp 10.96.0.12 53
	get client -n 5 -w 1000 tcp fd00:96::10 80
	get out -n 5 -w 1000 tcp "$NODE_IP" 30080
	get client -n 5 -w 1000 tcp 10.96.0.14 80
	get out -n 5 -w 1000 tcp "$NODE_IP" 30084
)
check_eq "traffic to TCP, UDP, IPv6, NodePort and affinity services is answered" 0 "$(count_of error <<<"$r")"
# nft(8) must succeed: an empty listing from a failed nft would prove nothing.
rs=$(in_ns node nft list ruleset)
check_eq "before flush: nft lists the node namespace's ruleset" 0 "$?"
check_match "before flush: kelp tables are in the node namespace" "table (ip|ip6|inet) kelp" "$rs"
n_ct=$(ct_service | wc -l)
check_match "before flush: conntrack has entries for the service addresses" '^[1-9]' "$n_ct"
check "before flush: the state file exists" test -s "$KP_STATE/state.json"

out=$(kp flush 2>&1)
check_eq "flush exits 0" 0 "$?" || echo "$out" >&2
rs=$(in_ns node nft list ruleset)
check_eq "after flush: nft lists the node namespace's ruleset" 0 "$?"
check_eq "after flush: no kelp table, chain, set or map in the node namespace" "" "$(grep -i kelp <<<"$rs")"
check_match "after flush: the user's table is untouched" 'set keep.*10\.9\.9\.9.*chain user-forward' "$(tr '\n' ' ' <<<"$rs")"
left=$(ct_service)
check_eq "after flush: no conntrack entry for a service address" "" "$left"
check "after flush: no state file" test ! -e "$KP_STATE/state.json"
check_match "after flush: the services are gone" '^error ' "$(get client -w 500 tcp 10.96.0.10 80)"
out=$(kp flush 2>&1)
check_eq "a second flush (nothing left) exits 0" 0 "$?" || echo "$out" >&2

# The teardown, as the exit trap runs it, then nothing of this test may be left.
nses=("${TOPO_NSES[@]}")
pids=("${TOPO_PIDS[@]}")
kt_extra_cleanup
left=$(ip netns list | awk '{ print $1 }' | grep -Fx -f <(printf '%s\n' "${nses[@]}"))
check_eq "cleanup: no namespace of this test is left" "" "$left"
alive_left=""
for p in "${pids[@]}"; do alive "$p" && alive_left+=" $p"; done
check_eq "cleanup: no server is left" "" "$alive_left"
check_eq "cleanup: no kelp-proxy of this test is left" "" "$(procs_with "$KP_STATE" 2>/dev/null)"
TOPO_P=
exit 0
