#!/bin/bash
# kelp-vxlan: three "node" namespaces joined by an underlay (a bridge in a fourth namespace),
# two pods per node attached by kelp-vxlan (delegating to kelp-bridge + kelp-host-local) through
# the exec protocol; every pod pings every other pod; exactly one route, neighbour and FDB entry
# per peer; `kelp-vxlan sync` applies a changed peers file incrementally; after DEL of every pod
# and `kelp-vxlan remove` nothing of the overlay is left in the nodes.
. "$(dirname "$0")/lib.sh"
require_root

CNI=$BUILD/cni
P=kt53-$$
UL=$P-ul
NSES=()
kt_extra_cleanup() { local n; for n in "${NSES[@]}"; do ip netns del "$n" 2>/dev/null; done; }
mkns() { ip netns add "$1" && NSES+=("$1"); }
mkns "$UL" || { fail "create netns"; exit 1; }
ip netns exec "$UL" ip link add ktul type bridge
ip netns exec "$UL" ip link set ktul up
PEERS=$TEST_TMP/peers.json
peers() { # NODES...: write the peers file with these nodes
	local k out=""
	for k in "$@"; do
		out="$out{\"name\":\"n$k\",\"underlayIP\":\"192.168.253.$k\",\"podSubnet\":\"10.80.$k.0/24\",\"vtepMAC\":\"02:00:00:00:53:0$k\"},"
	done
	printf '{"nodes":[%s]}\n' "${out%,}" >"$PEERS.tmp" && mv "$PEERS.tmp" "$PEERS"
}
conf() { # NODE
	printf '{"cniVersion":"1.1.0","name":"kt53","type":"kelp-vxlan","nodeName":"n%s","peersFile":"%s","vni":53,"delegate":{"bridge":"kt53br","ipMasq":false,"ipam":{"dataDir":"%s/ipam-n%s"}}}' \
		"$1" "$PEERS" "$TEST_TMP" "$1"
}
for k in 1 2 3; do
	N=$P-n$k
	mkns "$N"
	ip netns exec "$UL" ip link add "ul$k" type veth peer name ul0 netns "$N"
	ip netns exec "$UL" ip link set "ul$k" master ktul up
	ip netns exec "$N" ip addr add "192.168.253.$k/24" dev ul0
	ip netns exec "$N" ip link set ul0 up
	conf $k >"$TEST_TMP/conf-n$k.json"
done
peers 1 2 3

vx() { # NODE CMD ID POD
	ip netns exec "$P-n$1" env -i PATH=/usr/bin:/bin CNI_COMMAND="$2" CNI_CONTAINERID="$3" CNI_NETNS="${4:+/run/netns/$4}" \
		CNI_IFNAME=eth0 CNI_PATH="$CNI" "$CNI/kelp-vxlan" < <(conf "$1")
}
declare -A IP
for k in 1 2 3; do
	for j in a b; do
		pod=$P-n$k$j
		mkns "$pod"
		out=$(vx $k ADD "n$k$j" "$pod")
		IP[$k$j]=$(jq -r '.ips[0].address // empty' <<<"$out" | cut -d/ -f1)
		check_match "ADD pod $j on node $k: an address of the node's subnet" "^10\\.80\\.$k\\.[0-9]+\$" "${IP[$k$j]}"
	done
done
for k in 1 2 3; do
	N=$P-n$k
	check_eq "node $k: one route per peer" 2 "$(ip netns exec "$N" ip route show dev kelp.53 | grep -c via)"
	check_eq "node $k: one neighbour per peer" 2 "$(ip netns exec "$N" ip neigh show dev kelp.53 nud permanent | wc -l)"
	check_eq "node $k: one FDB entry per peer" 2 "$(ip netns exec "$N" bridge fdb show dev kelp.53 | grep -c ' dst ')"
done
fails=""
for src in "${!IP[@]}"; do
	for dst in "${!IP[@]}"; do
		[ "$src" = "$dst" ] && continue
		ip netns exec "$P-n$src" ping -c1 -W2 "${IP[$dst]}" >/dev/null 2>&1 || fails="$fails $src->$dst"
	done
done
check_eq "every pod pings every other pod (30 pairs)" "" "$fails"

# peers file changes: node 3 leaves, then comes back with another VTEP MAC
peers 1 2
check "kelp-vxlan sync after node 3 left" ip netns exec "$P-n1" "$CNI/kelp-vxlan" sync "$TEST_TMP/conf-n1.json"
check_eq "node 1 after sync: one route, neighbour, FDB entry" "1 1 1" \
	"$(ip netns exec "$P-n1" ip route show dev kelp.53 | grep -c via) $(ip netns exec "$P-n1" ip neigh show dev kelp.53 nud permanent | wc -l) $(ip netns exec "$P-n1" bridge fdb show dev kelp.53 | grep -c ' dst ')"
peers 1 2 3
check "kelp-vxlan sync after node 3 came back" ip netns exec "$P-n1" "$CNI/kelp-vxlan" sync "$TEST_TMP/conf-n1.json"
check "node 1's pod reaches node 3's pod again" ip netns exec "$P-n1a" ping -c1 -W2 "${IP[3a]}"
check_eq "node 1: still exactly 2 routes, neighbours, FDB entries" "2 2 2" \
	"$(ip netns exec "$P-n1" ip route show dev kelp.53 | grep -c via) $(ip netns exec "$P-n1" ip neigh show dev kelp.53 nud permanent | wc -l) $(ip netns exec "$P-n1" bridge fdb show dev kelp.53 | grep -c ' dst ')"
out=$(jq -c '.nodeName = "n9"' "$TEST_TMP/conf-n1.json" | ip netns exec "$P-n1" env -i CNI_COMMAND=ADD CNI_CONTAINERID=x CNI_NETNS=/run/netns/$P-n1a CNI_IFNAME=eth1 CNI_PATH="$CNI" "$CNI/kelp-vxlan")
check_match "a node missing from the peers file: code 7" '"code":7,"msg":"nodeName: node n9 is not in' "$out"
check "CHECK (delegated)" ip netns exec "$P-n1" env -i CNI_COMMAND=CHECK CNI_CONTAINERID=n1a CNI_NETNS=/run/netns/$P-n1a CNI_IFNAME=eth0 CNI_PATH="$CNI" "$CNI/kelp-vxlan" \
	< <(conf 1 | jq -c --arg ip "${IP[1a]}/24" '.prevResult = {cniVersion:"1.1.0",interfaces:[{name:"eth0",sandbox:"x"}],ips:[{address:$ip,interface:0}]}')

# teardown: DEL (twice for one), remove the network, nothing left
for k in 1 2 3; do for j in a b; do vx $k DEL "n$k$j" "$P-n$k$j" || fail "DEL n$k$j"; done; done
check "DEL again" vx 1 DEL n1a "$P-n1a"
check_eq "no allocation left" 0 "$(find "$TEST_TMP" -path '*ipam-n*' -type f ! -name lock ! -name 'last_reserved_ip.*' | wc -l)"
for k in 1 2 3; do
	N=$P-n$k
	check "kelp-vxlan remove on node $k" ip netns exec "$N" "$CNI/kelp-vxlan" remove "$TEST_TMP/conf-n$k.json"
	check_eq "node $k: only lo and the underlay link left" "lo ul0" "$(ip netns exec "$N" ip -br link | awk '{print $1}' | sed 's/@.*//' | sort | xargs)"
	check_eq "node $k: only the underlay route left" "192.168.253.0/24 dev ul0 proto kernel scope link src 192.168.253.$k" "$(ip netns exec "$N" ip route | xargs)"
	check_eq "node $k: no nft rules" "" "$(ip netns exec "$N" nft list ruleset)"
done
exit 0
