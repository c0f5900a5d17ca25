#!/bin/bash
# kelp-loopback and kelp-host-local through the CNI exec protocol (environment + stdin JSON):
# result shapes per cniVersion, VERSION, STATUS, GC, DEL idempotence, 20 concurrent ADDs with
# distinct addresses, and bad input answered with the spec's error codes and no change.
. "$(dirname "$0")/lib.sh"
require_root

CNI=$BUILD/cni
NS=kt-cni50-$$
DATA=$TEST_TMP/ipam
kt_extra_cleanup() { ip netns del "$NS" 2>/dev/null; }
ip netns add "$NS" || { fail "create netns $NS"; exit 1; }

# plugin COMMAND CONTAINERID IFNAME NETNS <config: runs a plugin the way a runtime does
plugin() {
	local bin=$1 cmd=$2 id=$3 ifn=$4 netns=$5
	env -i PATH=/usr/bin:/bin CNI_COMMAND="$cmd" CNI_CONTAINERID="$id" CNI_IFNAME="$ifn" CNI_NETNS="$netns" \
		CNI_PATH="$CNI" "$CNI/$bin"
}
lo_conf() { printf '{"cniVersion":"%s","name":"lo","type":"kelp-loopback"}' "$1"; }
hl_conf() { # VERSION [RANGES-JSON]
	local ranges=${2:-'[[{"subnet":"10.50.0.0/24"}],[{"subnet":"fd50::/64"}]]'}
	printf '{"cniVersion":"%s","name":"kt50","type":"kelp-host-local","ipam":{"type":"kelp-host-local","dataDir":"%s","ranges":%s,"routes":[{"dst":"0.0.0.0/0"},{"dst":"::/0"}]}}' \
		"$1" "$DATA" "$ranges"
}
allocs() { find "$DATA/kt50" -maxdepth 1 -type f ! -name lock ! -name 'last_reserved_ip.*' 2>/dev/null | wc -l; }

# ---- VERSION ----
for p in kelp-loopback kelp-host-local; do
	out=$(echo '{"cniVersion":"1.0.0"}' | plugin $p VERSION "" "" "")
	check_eq "$p VERSION" '1.0.0 0.3.0,0.3.1,0.4.0,1.0.0,1.1.0' "$(jq -r '.cniVersion + " " + (.supportedVersions | join(","))' <<<"$out")"
	out=$(plugin $p VERSION "" "" "" </dev/null)
	check_eq "$p VERSION with empty stdin" 1.1.0 "$(jq -r .cniVersion <<<"$out")"
done

# ---- loopback ----
for v in 0.3.0 0.3.1 0.4.0 1.0.0 1.1.0; do
	ip netns exec "$NS" ip link set lo down
	out=$(lo_conf $v | plugin kelp-loopback ADD c1 lo "/run/netns/$NS")
	check_eq "loopback ADD $v result" "$v lo /run/netns/$NS 127.0.0.1/8 0" \
		"$(jq -r '[.cniVersion, .interfaces[0].name, .interfaces[0].sandbox, .ips[0].address, (.ips[0].interface|tostring)] | join(" ")' <<<"$out")"
	case $v in
	0.*) check_eq "loopback ADD $v ips carry version" 4 "$(jq -r '.ips[0].version' <<<"$out")" ;;
	*) check_eq "loopback ADD $v ips without version" null "$(jq -r '.ips[0].version' <<<"$out")" ;;
	esac
	check_match "loopback ADD $v: lo is up" 'UP' "$(ip netns exec "$NS" ip -br link show lo)"
done
check "loopback CHECK" plugin kelp-loopback CHECK c1 lo "/run/netns/$NS" < <(lo_conf 1.1.0)
check "loopback STATUS" plugin kelp-loopback STATUS "" "" "" < <(lo_conf 1.1.0)
check "loopback DEL" plugin kelp-loopback DEL c1 lo "/run/netns/$NS" < <(lo_conf 1.1.0)
check_match "loopback DEL: lo is down" 'DOWN' "$(ip netns exec "$NS" ip -br link show lo)"
out=$(lo_conf 1.1.0 | plugin kelp-loopback CHECK c1 lo "/run/netns/$NS")
check_match "loopback CHECK of a down lo fails" '"code":999' "$out"
check "loopback DEL of a netns that is gone" plugin kelp-loopback DEL c1 lo "/run/netns/kt-none-$$" < <(lo_conf 1.1.0)
out=$(lo_conf 1.1.0 | plugin kelp-loopback ADD c1 lo "/run/netns/kt-none-$$")
check_match "loopback ADD to a missing netns: code 3" '^\{"cniVersion":"1.1.0","code":3,"msg":"open network namespace /run/netns/kt-none-[0-9]+: No such file or directory"\}$' "$out"

# ---- host-local: shapes per version ----
for v in 0.3.0 0.3.1 0.4.0 1.0.0 1.1.0; do
	out=$(hl_conf $v | plugin kelp-host-local ADD "v$v" eth0 /x)
	check_eq "host-local ADD $v: no interfaces, two families" "$v null 2 10.50.0.1 fd50::1 2" \
		"$(jq -r '[.cniVersion, (.interfaces|tostring), (.ips|length|tostring), .ips[0].gateway, .ips[1].gateway, (.routes|length|tostring)] | join(" ")' <<<"$out")"
	case $v in
	0.*) check_eq "host-local ADD $v ips[].version" "4 6" "$(jq -r '[.ips[].version] | join(" ")' <<<"$out")" ;;
	*) check_eq "host-local ADD $v ips[] without version" "null" "$(jq -c '[.ips[].version] | unique | .[0]' <<<"$out")" ;;
	esac
done
check_eq "host-local: 5 containers hold 10 addresses" 10 "$(allocs)"
check "host-local CHECK" plugin kelp-host-local CHECK v1.1.0 eth0 /x < <(hl_conf 1.1.0)
out=$(hl_conf 1.1.0 | plugin kelp-host-local CHECK nobody eth0 /x)
check_match "host-local CHECK of an unknown container fails" '"code":999,"msg":"nobody/eth0 holds no address of range set 0"' "$out"

# ---- bad input: the spec's code, nothing changes ----
before=$(ls "$DATA/kt50" | sort | md5sum)
out=$(echo '{"cniVersion":"1.1.0",' | plugin kelp-host-local ADD bad eth0 /x)
check_match "invalid JSON: code 6" '"code":6' "$out"
out=$(hl_conf 2.0.0 | plugin kelp-host-local ADD bad eth0 /x)
check_match "unknown cniVersion: code 1" '^\{"cniVersion":"1.1.0","code":1,' "$out"
out=$(hl_conf 1.1.0 | jq -c 'del(.ipam)' | plugin kelp-host-local ADD bad eth0 /x)
check_eq "missing ipam: code 7" '7 ipam: required field is missing' "$(jq -r '"\(.code) \(.msg)"' <<<"$out")"
out=$(hl_conf 1.1.0 '[[{"subnet":"10.50.0.0/16"}],[{"subnet":"10.50.3.0/24"}]]' | plugin kelp-host-local ADD bad eth0 /x)
check_match "overlapping ranges: code 7" '"code":7,"msg":"ipam.ranges: range 10.50.0.0/16 \(set 0\) overlaps range 10.50.3.0/24 \(set 1\)"' "$out"
out=$(hl_conf 1.1.0 | plugin kelp-host-local ADD bad abcdefghijklmnop /x)
check_match "interface name of 16 bytes: code 4" '"code":4,"msg":"CNI_IFNAME' "$out"
out=$(hl_conf 1.1.0 | plugin kelp-host-local ADD v1.1.0 eth0 /x)
check_match "ADD twice for the same container and interface: refused" '"code":100,.*duplicate allocation is not allowed' "$out"
check_eq "bad input changed no allocation" "$before" "$(ls "$DATA/kt50" | sort | md5sum)"

# ---- exhaustion and STATUS ----
small='[[{"subnet":"10.51.0.0/29","rangeStart":"10.51.0.2","rangeEnd":"10.51.0.3"}]]'
check "host-local STATUS with free addresses" plugin kelp-host-local STATUS "" "" "" < <(hl_conf 1.1.0 "$small")
hl_conf 1.1.0 "$small" | plugin kelp-host-local ADD x1 eth0 /x >/dev/null
hl_conf 1.1.0 "$small" | plugin kelp-host-local ADD x2 eth0 /x >/dev/null
n=$(allocs)
out=$(hl_conf 1.1.0 "$small" | plugin kelp-host-local ADD x3 eth0 /x)
check_match "exhausted range: code 11" '"code":11,"msg":"no IP addresses available in range set 0' "$out"
check_eq "exhausted range changed nothing" "$n" "$(allocs)"
out=$(hl_conf 1.1.0 "$small" | plugin kelp-host-local STATUS "" "" "")
check_match "STATUS of an exhausted range: code 50" '"code":50' "$out"
# ---- DEL (twice) and GC ----
check "host-local DEL" plugin kelp-host-local DEL x1 eth0 "" < <(hl_conf 1.1.0 "$small")
check "host-local DEL again" plugin kelp-host-local DEL x1 eth0 "" < <(hl_conf 1.1.0 "$small")
check "host-local DEL on a network never used" plugin kelp-host-local DEL x1 eth0 "" < <(hl_conf 1.1.0 | jq -c '.name = "never"')
hl_conf 1.1.0 | jq -c '. + {"cni.dev/valid-attachments":[{"containerID":"v1.0.0","ifname":"eth0"},{"containerID":"x2","ifname":"eth0"}]}' |
	plugin kelp-host-local GC "" "" "" >&2
check_eq "GC kept only the valid attachments" "10.50.0.5 10.51.0.3 fd50::5" \
	"$(ls "$DATA/kt50" | grep -v -e lock -e last_reserved | sort | xargs)"
hl_conf 1.1.0 | jq -c '. + {"cni.dev/valid-attachments":[]}' | plugin kelp-host-local GC "" "" "" >&2
check_eq "GC with no valid attachments releases everything" 0 "$(allocs)"

# ---- 20 concurrent ADDs ----
for i in $(seq 1 20); do
	(hl_conf 1.1.0 | plugin kelp-host-local ADD "par$i" eth0 /x >"$TEST_TMP/par$i.json") &
done
wait
ips=$(cat "$TEST_TMP"/par*.json | jq -r '.ips[].address' | sort)
check_eq "20 concurrent ADDs: 40 addresses" 40 "$(wc -l <<<"$ips")"
check_eq "20 concurrent ADDs: all distinct" 40 "$(sort -u <<<"$ips" | wc -l)"
check_eq "20 concurrent ADDs: 40 allocation files" 40 "$(allocs)"
for i in $(seq 1 20); do
	hl_conf 1.1.0 | plugin kelp-host-local DEL "par$i" eth0 "" || fail "DEL par$i"
done
check_eq "DEL of all 20 leaves no allocation" 0 "$(allocs)"
exit 0
