#!/bin/bash
# kelp-proxy: a user's nft(8) can list what kelp-proxy programmed, for every kind of service,
# and sees it is kelp's; flush then leaves nothing, also with a filled affinity map.
# (nftables 1.0.6 once aborted listing kelp's affinity maps: "netlink_parse_concat_expr:
# Assertion `consumed > 0' failed".)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/_svc_topology.sh"
require_root
[ -x "$PROXY" ] || skip_all "$PROXY is not built (make all)"

kt_extra_cleanup() { topo_cleanup; }
topo_start "kt75-$$" p1:11 p2:12

M=$TEST_TMP/manifests
mkdir -p "$M"
# One service of each kind alone, then all of them together.
kinds=(
	"clusterip:ip=10.96.0.10 eps=p1,p2"
	"nodeport:ip=10.96.0.11 type=NodePort ports=http:TCP:80:8080:30080 eps=p1,p2"
	"affinity:ip=10.96.0.12 affinity=ClientIP eps=p1,p2"
	"affinity-nodeport:ip=10.96.0.13 type=NodePort affinity=ClientIP ports=http:TCP:80:8080:30081 eps=p1,p2"
	"local:ip=10.96.0.14 type=NodePort etp=Local ports=http:TCP:80:8080:30082 eps=p1,p2@kt-other-node"
	"udp:ip=10.96.0.15 ports=dns:UDP:53:8080 eps=p1,p2"
	"ipv6:ip=fd00:96::10 eps=p1,p2"
	"no-endpoints:ip=10.96.0.16 slice=none"
)
svc_of() { # KIND-SPEC: the manifest of that kind
	local spec=$1 name args a
	name=${spec%%:*}
	read -ra args <<<"${spec#*:}"
	for a in "${!args[@]}"; do args[a]=${args[a]//,/ }; done
	svc_manifest "$name" "${args[@]}"
}
for spec in "${kinds[@]}"; do
	name=${spec%%:*}
	rm -f "$M"/*.yaml
	svc_of "$spec" >"$M/$name.yaml"
	out=$(kp sync "$M" 2>&1) || echo "$out" >&2
	rs=$(in_ns node nft list ruleset 2>&1)
	rc=$?
	check_eq "$name service: nft list ruleset succeeds" 0 "$rc" || tail -3 <<<"$rs" >&2
	check_match "$name service: nft list tables shows kelp's table" "table (ip|ip6|inet) kelp" \
		"$(in_ns node nft list tables 2>&1)"
done

rm -f "$M"/*.yaml
for spec in "${kinds[@]}"; do svc_of "$spec" >"$M/${spec%%:*}.yaml"; done
out=$(kp sync "$M" 2>&1)
check_eq "all kinds together: sync exits 0" 0 "$?" || echo "$out" >&2
r=$(get client -n 10 -w 1000 tcp 10.96.0.12 80; get out -n 10 -w 1000 tcp "$NODE_IP" 30081)
check_eq "affinity maps filled by traffic" 0 "$(count_of error <<<"$r")"
rs=$(in_ns node nft list ruleset 2>&1)
check_eq "all kinds together: nft list ruleset succeeds" 0 "$?" || tail -3 <<<"$rs" >&2
check "flush" kp flush
rs=$(in_ns node nft list ruleset 2>&1)
check_eq "after flush: nft list ruleset succeeds" 0 "$?"
check_eq "after flush: nothing of kelp's is left" "" "$(grep -i kelp <<<"$rs")"
exit 0
