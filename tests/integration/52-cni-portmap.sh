#!/bin/bash
# kelp-portmap chained after kelp-bridge, by the exec protocol, in namespaces this test creates:
# TCP and UDP host ports reached from another namespace ("outside"), from the node itself
# (its own address and localhost), from another pod and from the pod itself (hairpin); hostIP;
# the result passed through; CHECK, GC, DEL; bad mappings refused; nothing left.
. "$(dirname "$0")/lib.sh"
require_root
command -v python3 >/dev/null || skip_all "python3 (the UDP echo helper) is missing"

CNI=$BUILD/cni
P=kt52-$$
NODE=$P-node
OUT=$P-out
DATA=$TEST_TMP/ipam
NSES=()
PIDS=()
kt_extra_cleanup() {
	local p n
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for n in "${NSES[@]}"; do ip netns del "$n" 2>/dev/null; done
}
mkns() { ip netns add "$1" && NSES+=("$1"); }
for n in "$NODE" "$OUT" "$P-a" "$P-b"; do mkns "$n" || { fail "create netns $n"; exit 1; }; done
ip netns exec "$NODE" ip link add kt-up type veth peer name kt-up netns "$OUT"
ip netns exec "$NODE" ip addr add 192.168.252.1/24 dev kt-up
ip netns exec "$NODE" ip link set kt-up up
ip netns exec "$NODE" ip link set lo up
ip netns exec "$OUT" ip addr add 192.168.252.2/24 dev kt-up
ip netns exec "$OUT" ip link set kt-up up

run() { # PLUGIN CMD ID NETNS <config
	ip netns exec "$NODE" env -i PATH=/usr/bin:/bin CNI_COMMAND="$2" CNI_CONTAINERID="$3" CNI_NETNS="$4" \
		CNI_IFNAME=eth0 CNI_PATH="$CNI" "$CNI/$1"
}
brconf() {
	printf '{"cniVersion":"1.1.0","name":"kt52","type":"kelp-bridge","bridge":"kt52br","isDefaultGateway":true,"ipMasq":true,"hairpinMode":true,"ipam":{"type":"kelp-host-local","dataDir":"%s","ranges":[[{"subnet":"10.62.0.0/24"}]]}}' "$DATA"
}
MAPS='[{"hostPort":8080,"containerPort":80,"protocol":"tcp"},{"hostPort":8081,"containerPort":81,"protocol":"udp"},{"hostPort":8082,"containerPort":80,"protocol":"tcp","hostIP":"192.168.252.1"}]'
pmconf() { # PREVRESULT [MAPS]
	jq -cn --argjson prev "$1" --argjson maps "${2:-$MAPS}" \
		'{cniVersion:"1.1.0",name:"kt52",type:"kelp-portmap",capabilities:{portMappings:true},runtimeConfig:{portMappings:$maps},prevResult:$prev}'
}

ra=$(brconf | run kelp-bridge ADD a "/run/netns/$P-a")
rb=$(brconf | run kelp-bridge ADD b "/run/netns/$P-b")
ipa=$(jq -r '.ips[0].address' <<<"$ra")
check_match "pods attached" '^10\.62\.0\.[0-9]+/24$' "$ipa"
out=$(pmconf "$ra" | run kelp-portmap ADD a "/run/netns/$P-a")
check_eq "portmap passes prevResult through" "$(jq -cS 'del(.cniVersion)' <<<"$ra")" "$(jq -cS 'del(.cniVersion)' <<<"$out")"

# servers in pod a: TCP 80 answers "tcp-a", UDP 81 echoes
ip netns exec "$P-a" busybox nc -ll -p 80 -e echo tcp-a &
PIDS+=($!)
ip netns exec "$P-a" python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 81))
while True:
    d, a = s.recvfrom(100)
    s.sendto(b"udp-" + d, a)' &
PIDS+=($!)
sleep 0.3
tcp() { ip netns exec "$1" busybox nc -w 3 "$2" "$3" </dev/null 2>/dev/null; }
udp() {
	ip netns exec "$1" python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.sendto(b"ping", (sys.argv[1], int(sys.argv[2])))
print(s.recvfrom(100)[0].decode())' "$2" "$3" 2>/dev/null
}
check_eq "TCP host port from outside" tcp-a "$(tcp "$OUT" 192.168.252.1 8080)"
check_eq "UDP host port from outside" udp-ping "$(udp "$OUT" 192.168.252.1 8081)"
check_eq "TCP host port with hostIP" tcp-a "$(tcp "$OUT" 192.168.252.1 8082)"
check_eq "TCP host port from the node to its own address" tcp-a "$(tcp "$NODE" 192.168.252.1 8080)"
check_eq "TCP host port from the node's localhost" tcp-a "$(tcp "$NODE" 127.0.0.1 8080)"
check_eq "TCP host port from another pod (hairpin through the node)" tcp-a "$(tcp "$P-b" 192.168.252.1 8080)"
check_eq "TCP host port from the pod itself (hairpin)" tcp-a "$(tcp "$P-a" 192.168.252.1 8080)"
check_eq "hostIP mapping only on its address" "" "$(tcp "$NODE" 10.62.0.1 8082)"
check "CHECK" run kelp-portmap CHECK a "/run/netns/$P-a" < <(pmconf "$ra")
tagged=$(ip netns exec "$NODE" nft list table inet kelp-cni | grep -c 'comment "kelp-portmap kt52 a eth0"')
check_eq "8 tagged rules (3 mappings x 2 hooks, hairpin, localhost)" 8 "$tagged"

# bad input: refused, nothing changes
before=$(ip netns exec "$NODE" nft list ruleset | md5sum)
out=$(pmconf "$rb" '[{"hostPort":0,"containerPort":80}]' | run kelp-portmap ADD b "/run/netns/$P-b")
check_match "hostPort 0: code 7" '"code":7,"msg":"runtimeConfig.portMappings\[0\].hostPort: needs a port 1-65535, got 0"' "$out"
out=$(pmconf "$rb" '[{"hostPort":90,"containerPort":80,"protocol":"icmp"}]' | run kelp-portmap ADD b "/run/netns/$P-b")
check_match "unknown protocol: code 7" '"code":7' "$out"
out=$(pmconf "$rb" | jq -c 'del(.prevResult)' | run kelp-portmap ADD b "/run/netns/$P-b")
check_match "no prevResult: code 7" '"code":7,"msg":"prevResult: required' "$out"
check_eq "bad input changed no rule" "$before" "$(ip netns exec "$NODE" nft list ruleset | md5sum)"

# GC keeps a, DEL removes
# the keys as containerd 1.6 (go-cni) writes them: Go's JSON matches them case-insensitively
pmconf "$rb" '[{"HostPort":9090,"ContainerPort":80,"Protocol":"tcp","HostIP":""}]' | run kelp-portmap ADD b "/run/netns/$P-b" >/dev/null
check_eq "go-cni's capitalised keys: b's port is mapped" mapped "$(ip netns exec "$NODE" nft list table inet kelp-cni | grep -q 'tcp dport 9090 dnat ip to 10.62.0.[0-9]*:80 comment "kelp-portmap kt52 b eth0"' && echo mapped)"
jq -cn '{cniVersion:"1.1.0",name:"kt52",type:"kelp-portmap","cni.dev/valid-attachments":[{containerID:"a",ifname:"eth0"}]}' |
	run kelp-portmap GC "" "" >&2
check_eq "GC removed b's mapping, kept a's" "0 8" \
	"$(ip netns exec "$NODE" nft list table inet kelp-cni | grep -c 'kelp-portmap kt52 b eth0') $(ip netns exec "$NODE" nft list table inet kelp-cni | grep -c 'kelp-portmap kt52 a eth0')"
check "DEL" run kelp-portmap DEL a "/run/netns/$P-a" < <(pmconf "$ra")
check "DEL again" run kelp-portmap DEL a "/run/netns/$P-a" < <(pmconf "$ra")
check_eq "after DEL the port is closed" "" "$(tcp "$OUT" 192.168.252.1 8080)"
check_eq "after DEL no portmap rule" 0 "$(ip netns exec "$NODE" nft list ruleset | grep -c kelp-portmap)"
for p in a b; do brconf | run kelp-bridge DEL $p "/run/netns/$P-$p" || fail "bridge DEL $p"; done
check_eq "after every DEL: no kelp table" "" "$(ip netns exec "$NODE" nft list tables)"
exit 0
