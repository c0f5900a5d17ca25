#!/bin/bash
# kelp-proxy: bad input. Each bad version of a service gets one error naming the file, the object
# and the field; that service keeps its previous good rules (its old port still answers, the new
# one does not); the other objects of the same input, in the same file and in another, are
# applied. Cases: a port out of range, an unknown protocol, a clusterIP that is not an IP or not
# in the service's family, duplicate port names, a YAML syntax error.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/_svc_topology.sh"
require_root
[ -x "$PROXY" ] || skip_all "$PROXY is not built (make all)"

kt_extra_cleanup() { topo_cleanup; }
topo_start "kt73-$$" p1:11 p2:12

M=$TEST_TMP/manifests
mkdir -p "$M"
A=$M/a.yaml
B=$M/b.yaml
answers() { # PORT: the first word of svc-a's answer on PORT
	get client -w 700 tcp 10.96.0.20 "$1" | awk '{ print $1 }'
}
# a.yaml: svc-a (the one that goes bad) and svc-w; b.yaml: svc-b. svc-w and svc-b move to a
# new port with every input, so that each input shows whether the good objects were applied.
write_input() { # SVC-A-MANIFEST W-PORT B-PORT
	{
		printf '%s\n' "$1"
		svc_manifest svc-w ip=10.96.0.21 ports="http:TCP:$2:8080" eps="p2" rv="$2"
	} >"$A"
	svc_manifest svc-b ip=10.96.0.22 ports="http:TCP:$3:8080" eps="p2" rv="$3" >"$B"
}
write_input "$(svc_manifest svc-a ip=10.96.0.20 eps="p1")" 1000 2000
out=$(kp sync "$M" 2>&1)
check_eq "good input: sync exits 0" 0 "$?" || echo "$out" >&2
check_eq "good input: svc-a answers on its port 80" p1 "$(answers 80)"

W_PORT=1000
k=0
# bad_case NAME FIELD-REGEX SED-SCRIPT [PORTS]: svc-a's next version (port 90) with SED-SCRIPT
# applied to its Service document (before the '---' of the slice). Its EndpointSlice, a valid
# object of its own, stays as it was.
bad_case() {
	local name=$1 field=$2 script=$3 ports=${4:-http:TCP:90:8080} v out rc line
	k=$((k + 1))
	v=$(svc_manifest svc-a ip=10.96.0.20 ports="$ports" eps="p1" rv=$((1000 + k)))
	v=$(sed "1,/^kind: Service\$/b; /^---\$/,\$b; $script" <<<"$v")
	W_PORT=$((1000 + k))
	write_input "$v" "$W_PORT" $((2000 + k))
	out=$(kp sync "$M" 2>&1)
	rc=$?
	echo "$name: sync said: $out" >&2
	check_eq "$name: sync exits 1 (an object refused, the rest applied)" 1 "$rc"
	line=$(grep -F "$A" <<<"$out" | grep -F "Service default/svc-a" | grep -E "$field")
	check_match "$name: one error line names the file, the Service and the field" . "$line"
	check_eq "$name: svc-a keeps its previous rules (port 80 answers)" p1 "$(answers 80)"
	check_eq "$name: svc-a's refused version is not applied (port 90 does not answer)" "" "$(answers 90 | grep -v error)"
	check_eq "$name: another object of the same file is applied" p2 \
		"$(get client -w 1000 tcp 10.96.0.21 "$W_PORT" | awk '{ print $1 }')"
	check_eq "$name: an object of another file is applied" p2 \
		"$(get client -w 1000 tcp 10.96.0.22 $((2000 + k)) | awk '{ print $1 }')"
}
bad_case "port out of range" 'spec\.ports\[0\]\.port\b' 's/^    port: 90$/    port: 70000/'
bad_case "unknown protocol" 'spec\.ports\[0\]\.protocol' 's/^    protocol: TCP$/    protocol: XTP/'
bad_case "clusterIP not an IP" 'spec\.clusterIPs?(\[0\])?:' 's/10\.96\.0\.20$/10.96.0.300/'
bad_case "clusterIP not in the service's family" 'spec\.(clusterIPs?(\[0\])?|ipFamilies(\[0\])?):' \
	's/^  - IPv4$/  - IPv6/'
bad_case "duplicate port names" 'spec\.ports\[1\]\.name' '' "http:TCP:90:8080 http:UDP:90:8080"

# A YAML syntax error: nothing of a.yaml can be read, so svc-a and svc-w both keep their rules;
# b.yaml is applied.
k=$((k + 1))
{
	svc_manifest svc-a ip=10.96.0.20 ports="http:TCP:90:8080" eps="p1 p2" rv=$((1000 + k))
	printf 'spec: {ports: [\n'
} >"$A"
svc_manifest svc-b ip=10.96.0.22 ports="http:TCP:$((2000 + k)):8080" eps="p2" rv=$((2000 + k)) >"$B"
out=$(kp sync "$M" 2>&1)
rc=$?
echo "YAML syntax error: sync said: $out" >&2
check_eq "YAML syntax error: sync exits 1" 1 "$rc"
check_match "YAML syntax error: the error names the file, line and column" \
	"(^|$'\n')$A:[0-9]+:[0-9]+: " "$out"
check_eq "YAML syntax error: svc-a keeps its previous rules (port 80 answers)" p1 "$(answers 80)"
check_eq "YAML syntax error: svc-a's unread version is not applied" "" "$(answers 90 | grep -v error)"
check_eq "YAML syntax error: svc-w of the same file keeps its rules" p2 \
	"$(get client -w 1000 tcp 10.96.0.21 "$W_PORT" | awk '{ print $1 }')"
check_eq "YAML syntax error: an object of another file is applied" p2 \
	"$(get client -w 1000 tcp 10.96.0.22 $((2000 + k)) | awk '{ print $1 }')"

# Fixed input: svc-a's new version goes in.
write_input "$(svc_manifest svc-a ip=10.96.0.20 ports="http:TCP:90:8080" eps="p1 p2" rv=1100)" 1100 2100
out=$(kp sync "$M" 2>&1)
check_eq "fixed input: sync exits 0" 0 "$?" || echo "$out" >&2
r=$(get client -n 20 -w 1000 tcp 10.96.0.20 90 | distinct)
check_eq "fixed input: svc-a's new version runs (port 90, both endpoints)" "p1 p2" "$r"
check_eq "fixed input: svc-a's old port is gone" "" "$(answers 80 | grep -v error)"
exit 0
