#!/bin/bash
# kelp-proxy: what a Service does, seen from clients in namespaces this test creates (a node with
# a bridge, backend pods, a client pod, an off-cluster host): a ClusterIP spreads connections
# over every endpoint; NodePort from outside through the node IP; ClientIP affinity sticks;
# services without endpoints are refused at once; a removed endpoint gets no new connection;
# externalTrafficPolicy Local keeps the client's address and uses only this node's endpoints;
# off-cluster sources are masqueraded; UDP, SCTP (where the kernel has it) and IPv6 services.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/_svc_topology.sh"
require_root
[ -x "$PROXY" ] || skip_all "$PROXY is not built (make all)"

kt_extra_cleanup() { topo_cleanup; }
topo_start "kt71-$$" p1:11 p2:12 p3:13 p4:14

M=$TEST_TMP/manifests
mkdir -p "$M"
# p4 stands for a pod on another node: reachable, but its slice entry names another nodeName.
svc_manifest web ip=10.96.0.10 eps="p1 p2 p3" >"$M/web.yaml"
svc_manifest np ip=10.96.0.11 type=NodePort ports="http:TCP:80:8080:30080" eps="p1 p2 p3" >"$M/np.yaml"
svc_manifest sticky ip=10.96.0.12 affinity=ClientIP timeout=600 eps="p1 p2 p3" >"$M/sticky.yaml"
svc_manifest noslice ip=10.96.0.13 ports="http:TCP:80:8080 dns:UDP:53:8080" slice=none >"$M/noslice.yaml"
svc_manifest noeps ip=10.96.0.14 type=NodePort ports="http:TCP:80:8080:30081" eps="" >"$M/noeps.yaml"
svc_manifest local ip=10.96.0.15 type=NodePort etp=Local ports="http:TCP:80:8080:30082" \
	eps="p1 p4@kt-other-node" >"$M/local.yaml"
svc_manifest dns ip=10.96.0.16 ports="dns:UDP:53:8080" eps="p1 p2" >"$M/dns.yaml"
svc_manifest sctp ip=10.96.0.17 ports="assoc:SCTP:80:8080" eps="p1 p2" >"$M/sctp.yaml"
svc_manifest web6 ip=fd00:96::10 type=NodePort ports="http:TCP:80:8080:30083" eps="p1 p2" >"$M/web6.yaml"
svc_manifest shrink ip=10.96.0.18 eps="p1 p2 p3" >"$M/shrink.yaml"
# targetPort by name ("alt", a container port of the pods): the endpoint controller publishes
# the resolved number under the service port's name in the slice.
svc_manifest named ip=10.96.0.19 ports="http:TCP:80:alt" eps="p2" >"$M/named.yaml"
sed -i 's/^  port: alt$/  port: 8081/' "$M/named.yaml"
# hairpin: p1 reaches its own service and gets itself (IPv4 and IPv6)
svc_manifest self ip=10.96.0.20 eps="p1" >"$M/self.yaml"
svc_manifest self6 ip=fd00:96::20 eps="p1" >"$M/self6.yaml"

out=$(kp sync "$M" 2>&1)
rc=$?
check_eq "sync of 13 services exits 0" 0 "$rc" || echo "$out" >&2

# ---- ClusterIP --------------------------------------------------------------------------
r=$(get client -n 60 -w 1000 tcp 10.96.0.10 80)
check_eq "ClusterIP: 60 connections all answered" 0 "$(count_of error <<<"$r")"
check_eq "ClusterIP: connections spread over every endpoint" "p1 p2 p3" "$(distinct <<<"$r")"
check_eq "ClusterIP: a pod client's address is kept" "" "$(awk -v c="$CLIENT_IP" '$2 != c' <<<"$r")"
r=$(get client -w 1000 tcp 10.96.0.19 80)
check_eq "ClusterIP: targetPort by name (resolved through the slice's ports)" "p2 $CLIENT_IP" "$r"
# The bridge sends the DNATed packet back out of p1's own port (br_netfilter bridges it), so the
# port needs hairpin mode, as the bridge CNI's hairpinMode sets it. Without masquerade p1 would
# then get a packet from its own address, and drop it.
ip -n "$TOPO_P-node" link set "kv${POD_IDX[p1]}" type bridge_slave hairpin on
r=$(get p1 -n 5 -w 1000 tcp 10.96.0.20 80)
check_eq "hairpin: a pod reaching itself through its service is masqueraded to the node" \
	"p1 $BR_IP" "$(sort -u <<<"$r")"
r=$(get p1 -n 5 -w 1000 tcp fd00:96::20 80)
check_eq "hairpin over IPv6: masqueraded to the node" "p1 $BR_IP6" "$(sort -u <<<"$r")"

# ---- NodePort and masquerade -----------------------------------------------------------
r=$(get out -n 60 -w 1000 tcp "$NODE_IP" 30080)
check_eq "NodePort from outside through the node IP: 60 connections answered" 0 "$(count_of error <<<"$r")"
check_eq "NodePort from outside: spread over every endpoint" "p1 p2 p3" "$(distinct <<<"$r")"
srcs=$(awk '{ print $2 }' <<<"$r" | sort -u | tr '\n' ' ')
check_match "NodePort (policy Cluster) from outside: the backend sees a node address (masquerade)" \
	"^($BR_IP|$NODE_IP) $" "$srcs"
r=$(get out -w 1000 tcp 10.96.0.11 80)
check_match "ClusterIP from an off-cluster host: answered, masqueraded to a node address" \
	"^p[123] ($BR_IP|$NODE_IP)$" "$r"
r=$(get client -w 1000 tcp "$NODE_IP" 30080)
check_match "NodePort from a pod through the node IP" "^p[123] " "$r"
r=$(get out -w 500 tcp "$NODE_IP" 30099)
check_match "a port that is no NodePort is not served" "^error " "$r"

# ---- session affinity -------------------------------------------------------------------
r=$(get client -n 30 -w 1000 tcp 10.96.0.12 80)
check_eq "sessionAffinity ClientIP: 30 connections answered" 0 "$(count_of error <<<"$r")"
check_match "sessionAffinity ClientIP: every connection reaches the same endpoint" '^p[123]$' "$(distinct <<<"$r")"
r=$(get out -n 10 -w 1000 tcp 10.96.0.12 80 | distinct)
check_match "sessionAffinity ClientIP: another client also sticks to one endpoint" '^p[123]$' "$r"

# ---- no endpoints: refused at once ------------------------------------------------------
refused_fast() { # NAME OUTPUT
	if [[ $2 =~ ^error\ ECONNREFUSED\ ([0-9]+)ms$ ]] && [ "${BASH_REMATCH[1]}" -lt 1000 ]; then
		ok "$1"
	else
		fail "$1" "expected a refusal within 1 s (TCP reset or ICMP port unreachable), got '$2'"
	fi
}
refused_fast "no EndpointSlice: a TCP connection to the ClusterIP is refused at once" \
	"$(get client -w 3000 tcp 10.96.0.13 80)"
refused_fast "no EndpointSlice: a UDP datagram to the ClusterIP is refused at once (ICMP)" \
	"$(get client -w 3000 udp 10.96.0.13 53)"
refused_fast "EndpointSlice with endpoints: null: the ClusterIP is refused at once" \
	"$(get client -w 3000 tcp 10.96.0.14 80)"
refused_fast "EndpointSlice with endpoints: null: the NodePort is refused at once from outside" \
	"$(get out -w 3000 tcp "$NODE_IP" 30081)"

# ---- externalTrafficPolicy Local -------------------------------------------------------
r=$(get out -n 30 -w 1000 tcp "$NODE_IP" 30082)
check_eq "policy Local: 30 connections from outside answered" 0 "$(count_of error <<<"$r")"
check_eq "policy Local: only this node's endpoint is used (p4 has another nodeName)" p1 "$(distinct <<<"$r")"
check_eq "policy Local: the backend sees the client's own address" "$OUT_IP" \
	"$(awk '{ print $2 }' <<<"$r" | sort -u | tr '\n' ' ' | sed 's/ $//')"

# ---- UDP, SCTP, IPv6 ----------------------------------------------------------------------
r=$(get client -n 30 -w 1000 udp 10.96.0.16 53)
check_eq "UDP ClusterIP: 30 datagrams answered" 0 "$(count_of error <<<"$r")"
check_eq "UDP ClusterIP: spread over both endpoints" "p1 p2" "$(distinct <<<"$r")"
# SCTP may be a module: load it if this host can (modprobe), then ask for a socket.
if ! command -v modprobe >/dev/null; then
	modprobe_said="no modprobe on this host"
elif modprobe_said=$(modprobe sctp 2>&1); then
	modprobe_said="modprobe sctp succeeded"
else
	modprobe_said="modprobe sctp failed: $modprobe_said"
fi
if why=$(in_ns client "$SVCNET" sctp-ok); then
	r=$(get client -n 20 -w 1000 sctp 10.96.0.17 80)
	check_eq "SCTP ClusterIP: 20 associations answered" 0 "$(count_of error <<<"$r")"
	check_eq "SCTP ClusterIP: spread over both endpoints" "p1 p2" "$(distinct <<<"$r")"
else
	skip "SCTP ClusterIP" "this kernel has no SCTP: $why ($modprobe_said)"
fi
r=$(get client -n 30 -w 1000 tcp fd00:96::10 80)
check_eq "IPv6 ClusterIP: 30 connections answered" 0 "$(count_of error <<<"$r")"
check_eq "IPv6 ClusterIP: spread over both endpoints" "p1 p2" "$(distinct <<<"$r")"
check_eq "IPv6 ClusterIP: a pod client's address is kept" "fd00:244::100" \
	"$(awk '{ print $2 }' <<<"$r" | sort -u | tr '\n' ' ' | sed 's/ $//')"
r=$(get out -n 10 -w 1000 tcp "$NODE_IP6" 30083)
check_eq "IPv6 NodePort from outside: 10 connections answered" 0 "$(count_of error <<<"$r")"
check_match "IPv6 NodePort from outside: masqueraded to a node address" \
	"^($BR_IP6|$NODE_IP6) $" "$(awk '{ print $2 }' <<<"$r" | sort -u | tr '\n' ' ')"

# ---- a removed endpoint gets no new connection -----------------------------------------
r=$(get client -n 60 -w 1000 tcp 10.96.0.18 80)
check_eq "before the removal: every endpoint is used" "p1 p2 p3" "$(distinct <<<"$r")"
# Only new connections must avoid p3 (kube-proxy leaves established TCP connections alone).
svc_manifest shrink ip=10.96.0.18 eps="p1 p2" rv=1001 >"$M/shrink.yaml"
out=$(kp sync "$M" 2>&1)
check_eq "sync after removing endpoint p3 exits 0" 0 "$?" || echo "$out" >&2
r=$(get client -n 60 -w 1000 tcp 10.96.0.18 80)
check_eq "after the removal: 60 connections answered" 0 "$(count_of error <<<"$r")"
check_eq "after the removal: no connection reaches the removed endpoint" "p1 p2" "$(distinct <<<"$r")"
r=$(get client -n 60 -w 1000 tcp 10.96.0.10 80)
check_eq "after the removal: the other services are unchanged" "p1 p2 p3" "$(distinct <<<"$r")"

show=$(kp show 2>&1)
check_match "show lists the services with their endpoints" "default/shrink.*2/2" "$(grep shrink <<<"$show")" ||
	echo "$show" >&2
check_eq "show -o json: a JSON list of the 13 services" 13 "$(kp show -o json | jq length)"

out=$(kp flush 2>&1)
check_eq "flush exits 0" 0 "$?" || echo "$out" >&2
rs=$(in_ns node nft list ruleset)
check_eq "after flush: nft lists the node namespace's ruleset" 0 "$?"
check_eq "after flush: no kelp table is left in the node namespace" "" "$(grep -i kelp <<<"$rs")"
exit 0
