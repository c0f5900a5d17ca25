#!/bin/bash
# kelp-bridge (+ kelp-host-local, and the reference host-local) through the CNI exec protocol,
# all inside namespaces this test creates: a "node" netns runs the plugins, pods are netns of
# their own, an "outside" netns stands for the world beyond the node. Checks results per
# cniVersion, addresses and routes in the pod, pod-to-pod / gateway / masqueraded traffic,
# config fields (mtu, vlan, hairpin, promisc, forceAddress), CHECK, GC, STATUS, DEL (twice,
# netns gone) and that nothing is left behind.
. "$(dirname "$0")/lib.sh"
require_root

CNI=$BUILD/cni
P=kt51-$$
NODE=$P-node
OUT=$P-out
DATA=$TEST_TMP/ipam
PODS=()
kt_extra_cleanup() {
	local n
	for n in "${PODS[@]}" "$OUT" "$NODE"; do ip netns del "$n" 2>/dev/null; done
}
mkns() { ip netns add "$1" && PODS+=("$1"); }
mkns "$NODE" && mkns "$OUT" || { fail "create namespaces"; exit 1; }
# outside world: 192.168.251.0/24 between node and outside, no route back to the pods
ip netns exec "$NODE" ip link add kt-up type veth peer name kt-up netns "$OUT"
ip netns exec "$NODE" ip addr add 192.168.251.1/24 dev kt-up
ip netns exec "$NODE" ip link set kt-up up
ip netns exec "$OUT" ip addr add 192.168.251.2/24 dev kt-up
ip netns exec "$OUT" ip link set kt-up up

# br CMD ID NETNS [IFNAME] <config
br() {
	ip netns exec "$NODE" env -i PATH=/usr/bin:/bin CNI_COMMAND="$1" CNI_CONTAINERID="$2" CNI_NETNS="$3" \
		CNI_IFNAME="${4:-eth0}" CNI_PATH="$CNI:/usr/lib/cni" "$CNI/kelp-bridge"
}
conf() { # VERSION [JQ-FILTER]
	printf '{"cniVersion":"%s","name":"kt51","type":"kelp-bridge","bridge":"kt51br","isDefaultGateway":true,"ipMasq":true,"ipam":{"type":"kelp-host-local","dataDir":"%s","ranges":[[{"subnet":"10.51.0.0/24"}],[{"subnet":"fd51::/64"}]]},"dns":{"nameservers":["10.51.0.53"],"search":["kt.local"]}}' \
		"$1" "$DATA" | jq -c "${2:-.}"
}
inpod() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
pingok() { inpod "$1" ping -c1 -W2 "$2" >/dev/null 2>&1; }
allocs() { find "$DATA" -type f ! -name lock ! -name 'last_reserved_ip.*' 2>/dev/null | wc -l; }
rules() { ip netns exec "$NODE" nft list table inet kelp-cni 2>/dev/null | grep -c masquerade; }

# ---- ADD per version ----
i=0
for v in 0.3.0 0.3.1 0.4.0 1.0.0 1.1.0; do
	i=$((i + 1))
	mkns "$P-v$i"
	out=$(conf $v | br ADD "v$i" "/run/netns/$P-v$i")
	check_eq "ADD $v: interfaces bridge, host veth, eth0 in the pod" "$v kt51br null eth0 /run/netns/$P-v$i" \
		"$(jq -r '[.cniVersion, .interfaces[0].name, (.interfaces[1].sandbox|tostring), .interfaces[2].name, .interfaces[2].sandbox] | join(" ")' <<<"$out")"
	check_eq "ADD $v: ips on interface 2 with gateways" "2,2 10.51.0.1,fd51::1" \
		"$(jq -r '[([.ips[].interface|tostring]|join(",")), ([.ips[].gateway]|join(","))] | join(" ")' <<<"$out")"
	case $v in
	0.*) check_eq "ADD $v: ips[].version" "4 6" "$(jq -r '[.ips[].version] | join(" ")' <<<"$out")" ;;
	*) check_eq "ADD $v: no ips[].version" "" "$(jq -r '[.ips[].version // empty] | join(" ")' <<<"$out")" ;;
	esac
	check_eq "ADD $v: default routes and dns" "0.0.0.0/0 ::/0 10.51.0.53 kt.local" \
		"$(jq -r '[.routes[].dst, .dns.nameservers[0], .dns.search[0]] | join(" ")' <<<"$out")"
	[ $i = 5 ] && res11=$out
done
a1=$(jq -r '.ips[0].address' <<<"$res11")
check_match "pod has its address, up" "eth0.* UP .*${a1}" "$(inpod "$P-v5" ip -br addr show eth0)"
check_match "pod default route via the gateway" '^default via 10.51.0.1 dev eth0' "$(inpod "$P-v5" ip route show default)"
check_match "pod IPv6 default route" '^default via fd51::1 dev eth0' "$(inpod "$P-v5" ip -6 route show default)"
check_match "gateway address on the bridge" 'inet 10.51.0.1/24' "$(ip netns exec "$NODE" ip addr show kt51br)"
check "pod reaches its gateway" pingok "$P-v5" 10.51.0.1
check "pod reaches another pod (IPv4)" pingok "$P-v5" 10.51.0.2
check "pod reaches another pod (IPv6)" pingok "$P-v5" fd51::2
check "pod reaches the outside only through masquerade" pingok "$P-v5" 192.168.251.2
check_eq "one masquerade rule per pod address" 10 "$(rules)"
check_eq "ip_forward on in the node" 1 "$(ip netns exec "$NODE" cat /proc/sys/net/ipv4/ip_forward)"

# ---- CHECK ----
check "CHECK with prevResult" br CHECK v5 "/run/netns/$P-v5" < <(conf 1.1.0 ".prevResult = $res11")
inpod "$P-v5" ip addr del "$a1" dev eth0
out=$(conf 1.1.0 ".prevResult = $res11" | br CHECK v5 "/run/netns/$P-v5")
check_match "CHECK notices a missing address" "\"msg\":\"address $a1 is missing on eth0\"" "$out"
inpod "$P-v5" ip addr add "$a1" dev eth0

# ---- bad input: spec errors, nothing changes ----
state() { { ip netns exec "$NODE" ip -br link; ls -R "$DATA"; ip netns exec "$NODE" nft list ruleset; } | md5sum; }
before=$(state)
out=$(conf 1.1.0 | br ADD v5 "/run/netns/$P-v5")
check_match "ADD twice: refused" '"code":100,"msg":"interface eth0 already exists' "$out"
out=$(conf 1.1.0 'del(.ipam)' | br ADD nx "/run/netns/$P-v5" eth1)
check_eq "missing ipam: code 7" '7 ipam: required field is missing' "$(jq -r '"\(.code) \(.msg)"' <<<"$out")"
out=$(conf 1.1.0 | br ADD nx "/run/netns/$P-none" eth1)
check_match "netns that does not exist: code 3" '"code":3,"msg":"open network namespace' "$out"
out=$(conf 1.1.0 '.ipam.ranges = [[{"subnet":"10.51.0.0/24"}],[{"subnet":"10.51.0.128/25"}]]' | br ADD nx "/run/netns/$P-v5" eth1)
check_match "overlapping ranges: IPAM's code 7 passed on" '"code":7,"msg":"kelp-host-local ADD: ipam.ranges: range' "$out"
out=$(conf 1.1.0 '.ipam.type = "kelp-nonesuch"' | br ADD nx "/run/netns/$P-v5" eth1)
check_match "unknown IPAM plugin: code 7" '"code":7,"msg":"plugin kelp-nonesuch not found' "$out"
out=$(conf 1.1.0 | br ADD nx "/run/netns/$P-v5" abcdefghijklmnop)
check_match "interface name over 15 bytes: code 4" '"code":4' "$out"
out=$(conf 7.0.0 | br ADD nx "/run/netns/$P-v5" eth1)
check_match "unknown cniVersion: code 1" '"code":1' "$out"
out=$(echo '{"cniVersion":' | br ADD nx "/run/netns/$P-v5" eth1)
check_match "invalid JSON: code 6" '"code":6' "$out"
out=$(conf 1.1.0 '.ipam.ranges = [[{"subnet":"10.52.0.0/30","rangeStart":"10.52.0.1","rangeEnd":"10.52.0.1"}]] | .name = "kt51x" | .bridge = "kt51brx"' | br ADD nx "/run/netns/$P-v5" eth1)
check_match "exhausted range: code 11" '"code":11' "$out"
check_eq "bad input left links, allocations and rules as they were" "$before" "$(state)"
check_eq "no eth1 left in the pod" "" "$(inpod "$P-v5" ip -br link show eth1 2>/dev/null)"

# ---- STATUS, GC ----
check "STATUS (delegated to IPAM)" br STATUS "" "" < <(conf 1.1.0)
conf 1.1.0 '. + {"cni.dev/valid-attachments":[{"containerID":"v1","ifname":"eth0"},{"containerID":"v2","ifname":"eth0"},{"containerID":"v3","ifname":"eth0"},{"containerID":"v5","ifname":"eth0"}]}' |
	br GC "" "" >&2
check_eq "GC dropped the masquerade rules of v4 only" 8 "$(rules)"
check_eq "GC released v4's addresses only" 8 "$(allocs)"

# ---- DEL ----
check "DEL" br DEL v1 "/run/netns/$P-v1" < <(conf 1.1.0)
check_eq "DEL removed eth0 from the pod" "" "$(inpod "$P-v1" ip -br link show eth0 2>/dev/null)"
check "DEL again" br DEL v1 "/run/netns/$P-v1" < <(conf 1.1.0)
ip netns del "$P-v2"
check "DEL after the netns is gone" br DEL v2 "/run/netns/$P-v2" < <(conf 1.1.0)
check "DEL without prevResult or netns" br DEL v3 "" < <(conf 1.1.0)
for k in 4 5; do br DEL "v$k" "/run/netns/$P-v$k" < <(conf 1.1.0) || fail "DEL v$k"; done
check_eq "after every DEL: no allocation" 0 "$(allocs)"
check_eq "after every DEL: no kelp nft table" "" "$(ip netns exec "$NODE" nft list tables | grep kelp)"
check_eq "after every DEL: only the bridge and the uplink in the node" "kt-up kt51br lo" \
	"$(ip netns exec "$NODE" ip -br link | awk '{print $1}' | sed 's/@.*//' | sort | xargs)"

# ---- fields: mtu, vlan, hairpin, promisc; the reference host-local as IPAM ----
mkns "$P-f"
fconf='.bridge = "kt51f" | .name = "kt51f" | .mtu = 1400 | .hairpinMode = true | .promiscMode = true | .ipMasq = false | .ipam.type = "host-local" | .ipam.ranges = [[{"subnet":"10.53.0.0/24"}]]'
out=$(conf 1.0.0 "$fconf" | br ADD f1 "/run/netns/$P-f")
check_eq "ADD with the reference host-local" "10.53.0.2/24" "$(jq -r '.ips[0].address' <<<"$out")"
hv=$(jq -r '.interfaces[1].name' <<<"$out")
check_match "mtu 1400 in the pod" 'mtu 1400' "$(inpod "$P-f" ip link show eth0)"
check_match "mtu 1400 on the bridge" 'mtu 1400' "$(ip netns exec "$NODE" ip link show kt51f)"
check_match "hairpin on the host veth" 'hairpin on' "$(ip netns exec "$NODE" ip -d link show "$hv")"
check_match "bridge is promiscuous" 'PROMISC' "$(ip netns exec "$NODE" ip link show kt51f)"
check "DEL with the reference host-local" br DEL f1 "/run/netns/$P-f" < <(conf 1.0.0 "$fconf")
# vlan needs a kernel with bridge VLAN filtering (CONFIG_BRIDGE_VLAN_FILTERING)
if ip netns exec "$NODE" ip link add kt51probe type bridge vlan_filtering 1 2>/dev/null; then
	ip netns exec "$NODE" ip link del kt51probe
	vconf='.bridge = "kt51v" | .name = "kt51v" | .vlan = 7 | .ipMasq = false | .ipam.ranges = [[{"subnet":"10.55.0.0/24"}]]'
	out=$(conf 1.1.0 "$vconf" | br ADD f1 "/run/netns/$P-f")
	hv=$(jq -r '.interfaces[1].name' <<<"$out")
	check_match "vlan 7 PVID untagged, no vlan 1" "^$hv +7 PVID Egress Untagged\$" "$(ip netns exec "$NODE" bridge vlan show dev "$hv" | sed -n '2p' | tr -s ' \t' ' ')"
	check "DEL (vlan)" br DEL f1 "/run/netns/$P-f" < <(conf 1.1.0 "$vconf")
else
	out=$(conf 1.1.0 '.bridge = "kt51v" | .name = "kt51v" | .vlan = 7 | .ipMasq = false | .ipam.ranges = [[{"subnet":"10.55.0.0/24"}]]' | br ADD f1 "/run/netns/$P-f")
	check_match "vlan on a kernel without VLAN filtering: a clear error" '"msg":"create bridge kt51v: Operation not supported"' "$out"
	check_eq "vlan refused: no allocation, no bridge" "0 " "$(allocs) $(ip netns exec "$NODE" ip -br link show kt51v 2>/dev/null)"
	skip "vlan 7 on the bridge port" "this kernel has no bridge VLAN filtering (ip link add type bridge vlan_filtering 1: Operation not supported)"
fi
# forceAddress: a bridge holding another address
ip netns exec "$NODE" ip link add kt51g type bridge
ip netns exec "$NODE" ip addr add 10.54.0.99/24 dev kt51g
gconf='.bridge = "kt51g" | .name = "kt51g" | .ipMasq = false | .ipam.ranges = [[{"subnet":"10.54.0.0/24"}]]'
out=$(conf 1.1.0 "$gconf" | br ADD g1 "/run/netns/$P-f")
check_match "a bridge with another address is refused without forceAddress" 'already has address 10.54.0.99/24' "$out"
check_eq "refused ADD left no allocation" 0 "$(allocs)"
conf 1.1.0 "$gconf | .forceAddress = true" | br ADD g1 "/run/netns/$P-f" >/dev/null
check_eq "forceAddress replaced the bridge's address" "10.54.0.1/24" "$(ip netns exec "$NODE" ip -4 -br addr show kt51g | awk '{print $3}')"
check "DEL (forceAddress)" br DEL g1 "/run/netns/$P-f" < <(conf 1.1.0 "$gconf | .forceAddress = true")
check_eq "no allocation left" 0 "$(allocs)"
exit 0
