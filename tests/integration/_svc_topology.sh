# shellcheck shell=bash
# _svc_topology.sh — sourced by the kelp-proxy tests (7x-proxy-*.sh) after lib.sh: a small
# cluster node in network namespaces the test creates, and Kubernetes manifests for it.
#
#   topo_up PREFIX        namespaces PREFIX-node, PREFIX-out, PREFIX-client (a pod):
#       node    bridge kt-br 10.244.0.1/24 + fd00:244::1/64 (the pod CIDRs), forwarding on;
#               underlay veth kt-up 192.168.254.1/24 + fd00:254::1/64 (NODE_IP, NODE_IP6)
#       out     off-cluster host on the underlay: 192.168.254.2 + fd00:254::2 (OUT_IP, OUT_IP6),
#               service CIDRs 10.96.0.0/16 and fd00:96::/64 routed to the node; it is the
#               node's default gateway but forwards nothing, so a service address without
#               rules is black-holed as on a real node (no quick ICMP from a missing route)
#       pods    /32 and /128 addresses on the bridge, everything routed through the node (as
#               routed-pod CNIs do), so replies to DNATed traffic always pass the node's
#               conntrack, with or without br_netfilter
#   pod_up NAME IDX       pod netns PREFIX-NAME at 10.244.0.IDX and fd00:244::IDX, running
#                         `svcnet serve NAME` on tcp, udp and sctp 8080 and tcp 8081
#   pod_ip NAME, pod_ip6 NAME
#   topo_check            ok/fail lines: the client pod reaches every pod directly, the outside reaches
#                         the node IP; returns 1 when the topology is unusable
#   topo_down             kill the servers, delete the namespaces (idempotent)
#   topo_start PREFIX NAME:IDX...   topo_up, pod_up of each pod, topo_check; exits the test
#                         on a failure; the test's cleanup (topo_cleanup) then flushes and
#                         tears down
#   in_ns NS CMD...       ip netns exec (NS: node, out, client, a pod name, or a full name)
#   get FROM ARGS...      svcnet get ARGS... in FROM's namespace
#   kp ARGS...            kelp-proxy in the node netns with this node's settings and KP_STATE
#   svc_manifest NAME [KEY=VALUE...]   a Service and its EndpointSlice, as kubectl get -o yaml
#                         prints them (see the function for the keys)
#   count_of WORD         on stdin: how many lines have WORD as their first word
#   distinct              on stdin: the distinct first words of lines, sorted, space-separated
#   metric NAME           a value from `kp show --metrics` (labels included in NAME)
SVCNET=$BUILD/tests/helpers/svcnet
PROXY=$BUILD/bin/kelp-proxy
NODE_NAME=kt-node
NODE_IP=192.168.254.1
NODE_IP6=fd00:254::1
OUT_IP=192.168.254.2
OUT_IP6=fd00:254::2
BR_IP=10.244.0.1
BR_IP6=fd00:244::1
CLIENT_IP=10.244.0.100
POD_CIDRS=10.244.0.0/24,fd00:244::/64
KP_STATE=$TEST_TMP/kelp-proxy
KP_OPTS=(--node-name "$NODE_NAME" --cluster-cidr "$POD_CIDRS" --nodeport-addresses "$NODE_IP/32,$NODE_IP6/128")
declare -A POD_IDX=()
UID_OUT=
TOPO_NSES=()
TOPO_PIDS=()
TOPO_P=

topo_ns() {
	case "$1" in
	"$TOPO_P"-*) printf '%s\n' "$1" ;;
	*) printf '%s\n' "$TOPO_P-$1" ;;
	esac
}

in_ns() {
	local ns
	ns=$(topo_ns "$1")
	shift
	ip netns exec "$ns" "$@"
}

get() {
	local from=$1
	shift
	in_ns "$from" "$SVCNET" get "$@"
}

kp() {
	in_ns node "$PROXY" "${KP_OPTS[@]}" --state-dir "$KP_STATE" "$@"
}

metric() {
	kp show --metrics 2>/dev/null | awk -v m="$1" '$1 == m { print $2; exit }'
}

count_of() { awk -v w="$1" '$1 == w { n++ } END { print n + 0 }'; }
distinct() { awk '{ print $1 }' | sort -u | tr '\n' ' ' | sed 's/ $//'; }

pod_ip() { printf '10.244.0.%s\n' "${POD_IDX[$1]:?unknown pod $1}"; }
pod_ip6() { printf 'fd00:244::%s\n' "${POD_IDX[$1]:?unknown pod $1}"; }

_topo_mkns() {
	ip netns add "$1" || return 1
	TOPO_NSES+=("$1")
	ip -n "$1" link set lo up &&
		# No duplicate address detection (links are usable at once), no redirects (pods share
		# the bridge but are routed through the node).
		ip netns exec "$1" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
			net.ipv4.conf.all.accept_redirects=0 net.ipv4.conf.default.accept_redirects=0 \
			net.ipv6.conf.all.accept_redirects=0 net.ipv6.conf.default.accept_redirects=0
}

# A pod-like namespace on the bridge: NAME IDX (also used for the client).
_topo_attach() {
	local ns=$1 idx=$2 ip4=10.244.0.$2 ip6=fd00:244::$2
	_topo_mkns "$ns" || return 1
	ip -n "$TOPO_P-node" link add "kv$idx" type veth peer name eth0 netns "$ns" &&
		ip -n "$TOPO_P-node" link set "kv$idx" master kt-br up &&
		ip -n "$ns" addr add "$ip4/32" dev eth0 &&
		ip -n "$ns" addr add "$ip6/128" dev eth0 nodad &&
		ip -n "$ns" link set eth0 up &&
		ip -n "$ns" route add "$BR_IP" dev eth0 scope link &&
		ip -n "$ns" route add default via "$BR_IP" dev eth0 &&
		ip -n "$ns" -6 route add "$BR_IP6" dev eth0 &&
		ip -n "$ns" -6 route add default via "$BR_IP6" dev eth0
}

topo_up() {
	TOPO_P=$1
	local node=$TOPO_P-node out=$TOPO_P-out
	[ -x "$SVCNET" ] || {
		echo "topo_up: $SVCNET is missing (make all builds it)" >&2
		return 1
	}
	_topo_mkns "$node" && _topo_mkns "$out" || return 1
	in_ns node sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
		net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.default.send_redirects=0 || return 1
	ip -n "$node" link add kt-br type bridge &&
		ip -n "$node" addr add "$BR_IP/24" dev kt-br &&
		ip -n "$node" addr add "$BR_IP6/64" dev kt-br nodad &&
		ip -n "$node" link set kt-br up &&
		ip -n "$node" link add kt-up type veth peer name kt-up netns "$out" &&
		ip -n "$node" addr add "$NODE_IP/24" dev kt-up &&
		ip -n "$node" addr add "$NODE_IP6/64" dev kt-up nodad &&
		ip -n "$node" link set kt-up up &&
		ip -n "$out" addr add "$OUT_IP/24" dev kt-up &&
		ip -n "$out" addr add "$OUT_IP6/64" dev kt-up nodad &&
		ip -n "$out" link set kt-up up &&
		ip -n "$node" route add default via "$OUT_IP" &&
		ip -n "$node" -6 route add default via "$OUT_IP6" &&
		ip -n "$out" route add 10.96.0.0/16 via "$NODE_IP" &&
		ip -n "$out" -6 route add fd00:96::/64 via "$NODE_IP6" || return 1
	_topo_attach "$TOPO_P-client" 100
}

pod_up() {
	local name=$1 idx=$2 ready=$TEST_TMP/ready-$1 i
	_topo_attach "$TOPO_P-$name" "$idx" || return 1
	POD_IDX[$name]=$idx
	rm -f "$ready"
	# Not through in_ns: $! must be the server itself (ip netns exec execs it) to kill it.
	ip netns exec "$TOPO_P-$name" "$SVCNET" serve "$name" -r "$ready" tcp:8080 udp:8080 sctp:8080 tcp:8081 \
		</dev/null >/dev/null 2>"$TEST_TMP/serve-$name.log" &
	TOPO_PIDS+=($!)
	for i in $(seq 100); do
		[ -s "$ready" ] && return 0
		sleep 0.02
	done
	echo "pod_up $name: the server did not start:" >&2
	cat "$TEST_TMP/serve-$name.log" >&2
	return 1
}

topo_check() {
	local p first="" r out
	for p in "${!POD_IDX[@]}"; do
		[ -z "$first" ] && first=$p
		r=$(get client -w 1000 tcp "$(pod_ip "$p")" 8080)
		[ "$r" = "$p $CLIENT_IP" ] || {
			fail "topology: the client reaches pod $p directly" "got '$r'"
			return 1
		}
		r=$(get client -w 1000 tcp "$(pod_ip6 "$p")" 8080)
		[ "$r" = "$p fd00:244::100" ] || {
			fail "topology: the client reaches pod $p directly over IPv6" "got '$r'"
			return 1
		}
	done
	ok "topology: the client reaches every pod directly (IPv4 and IPv6)"
	out=$(in_ns out ping -c1 -W1 "$NODE_IP" 2>&1) && in_ns out ping -c1 -W1 "$NODE_IP6" >/dev/null 2>&1 || {
		fail "topology: the outside reaches the node IP" "$out"
		return 1
	}
	ok "topology: the outside reaches the node IP (IPv4 and IPv6)"
}

topo_down() {
	local p n
	for p in "${TOPO_PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${TOPO_PIDS[@]}"; do wait "$p" 2>/dev/null; done
	TOPO_PIDS=()
	for n in "${TOPO_NSES[@]}"; do ip netns del "$n" 2>/dev/null; done
	TOPO_NSES=()
}

# What every proxy test's kt_extra_cleanup does last.
topo_cleanup() {
	[ -n "$TOPO_P" ] && kp flush >/dev/null 2>&1
	topo_down
}

topo_start() {
	local p
	topo_up "$1" || {
		fail "topology: namespaces, bridge and underlay"
		exit 1
	}
	shift
	for p in "$@"; do
		pod_up "${p%:*}" "${p#*:}" || {
			fail "topology: pod ${p%:*}"
			exit 1
		}
	done
	topo_check || exit 1
}

# A stable id from a name, in the shape of a Kubernetes uid, into UID_OUT (no fork: tests make
# hundreds of manifests).
_uid() {
	local s=$1 h=5381 i c
	for ((i = 0; i < ${#s}; i++)); do
		printf -v c '%d' "'${s:i:1}"
		h=$(((h * 33 + c) & 0xffffffffffff))
	done
	printf -v UID_OUT '%08x-%04x-4%03x-8%03x-%012x' $((h & 0xffffffff)) $((h >> 32 & 0xffff)) $((h & 0xfff)) \
		$((h >> 12 & 0xfff)) "$h"
}

# svc_manifest NAME [KEY=VALUE...] prints a Service and (unless slice=none) its EndpointSlice:
#   ip=10.96.0.10            the clusterIP (an IPv6 address makes an IPv6 service and slice)
#   type=ClusterIP|NodePort  etp=Cluster|Local (externalTrafficPolicy)  ns=default
#   affinity=None|ClientIP   timeout=10800 (sessionAffinityConfig.clientIP.timeoutSeconds)
#   ports="NAME:PROTO:PORT:TARGETPORT[:NODEPORT] ..."   default "http:TCP:80:8080"
#   eps="POD[@NODE] ..."     endpoints (ready, serving), NODE defaults to NODE_NAME; "" gives
#                            `endpoints: null`, as kubectl prints an empty slice
#   slice=none               no EndpointSlice at all
#   rv=N                     resourceVersion
svc_manifest() {
	local name=$1
	shift
	local ip=10.96.0.10 type=ClusterIP etp=Cluster ns=default affinity=None timeout=10800
	local ports="http:TCP:80:8080" eps="" slice=yes rv=1000 kv
	for kv in "$@"; do
		case "$kv" in
		ip=*) ip=${kv#ip=} ;;
		type=*) type=${kv#type=} ;;
		etp=*) etp=${kv#etp=} ;;
		ns=*) ns=${kv#ns=} ;;
		affinity=*) affinity=${kv#affinity=} ;;
		timeout=*) timeout=${kv#timeout=} ;;
		ports=*) ports=${kv#ports=} ;;
		eps=*) eps=${kv#eps=} ;;
		slice=*) slice=${kv#slice=} ;;
		rv=*) rv=${kv#rv=} ;;
		*)
			echo "svc_manifest: unknown key '$kv'" >&2
			return 2
			;;
		esac
	done
	local fam=IPv4
	[[ $ip == *:* ]] && fam=IPv6
	local p pn pp pport tport nport
	printf -- '---\napiVersion: v1\nkind: Service\nmetadata:\n'
	printf '  annotations:\n    kubectl.kubernetes.io/last-applied-configuration: |\n'
	printf '      {"apiVersion":"v1","kind":"Service","metadata":{"name":"%s","namespace":"%s"}}\n' "$name" "$ns"
	printf '  creationTimestamp: "2026-11-30T09:00:00Z"\n  labels:\n    app: %s\n' "$name"
	_uid "svc/$ns/$name"
	printf '  name: %s\n  namespace: %s\n  resourceVersion: "%s"\n  uid: %s\n' "$name" "$ns" "$rv" "$UID_OUT"
	printf 'spec:\n  clusterIP: %s\n  clusterIPs:\n  - %s\n' "$ip" "$ip"
	[ "$type" = NodePort ] && printf '  externalTrafficPolicy: %s\n' "$etp"
	printf '  internalTrafficPolicy: Cluster\n  ipFamilies:\n  - %s\n  ipFamilyPolicy: SingleStack\n  ports:\n' "$fam"
	for p in $ports; do
		IFS=: read -r pn pp pport tport nport <<<"$p"
		printf '  - name: %s\n' "$pn"
		[ -n "$nport" ] && printf '    nodePort: %s\n' "$nport"
		printf '    port: %s\n    protocol: %s\n    targetPort: %s\n' "$pport" "$pp" "$tport"
	done
	printf '  selector:\n    app: %s\n  sessionAffinity: %s\n' "$name" "$affinity"
	[ "$affinity" = ClientIP ] &&
		printf '  sessionAffinityConfig:\n    clientIP:\n      timeoutSeconds: %s\n' "$timeout"
	printf '  type: %s\nstatus:\n  loadBalancer: {}\n' "$type"
	[ "$slice" = none ] && return 0
	local e pod node addr
	printf -- '---\naddressType: %s\napiVersion: discovery.k8s.io/v1\n' "$fam"
	if [ -z "${eps// /}" ]; then
		printf 'endpoints: null\n'
	else
		printf 'endpoints:\n'
		for e in $eps; do
			pod=${e%@*}
			node=$NODE_NAME
			[[ $e == *@* ]] && node=${e#*@}
			[ -n "${POD_IDX[$pod]:-}" ] || {
				echo "svc_manifest: unknown pod '$pod'" >&2
				return 2
			}
			addr=10.244.0.${POD_IDX[$pod]}
			[ "$fam" = IPv6 ] && addr=fd00:244::${POD_IDX[$pod]}
			printf -- '- addresses:\n  - %s\n  conditions:\n    ready: true\n    serving: true\n    terminating: false\n' "$addr"
			_uid "pod/$ns/$name-$pod"
			printf '  nodeName: %s\n  targetRef:\n    kind: Pod\n    name: %s-%s\n    namespace: %s\n    uid: %s\n' \
				"$node" "$name" "$pod" "$ns" "$UID_OUT"
		done
	fi
	printf 'kind: EndpointSlice\nmetadata:\n  creationTimestamp: "2026-11-30T09:00:01Z"\n'
	printf '  generateName: %s-\n  generation: 1\n  labels:\n' "$name"
	printf '    endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io\n'
	printf '    kubernetes.io/service-name: %s\n' "$name"
	_uid "slice/$ns/$name"
	printf '  name: %s-%s\n  namespace: %s\n  resourceVersion: "%s"\n  uid: %s\nports:\n' \
		"$name" "${fam,,}" "$ns" "$rv" "$UID_OUT"
	for p in $ports; do
		IFS=: read -r pn pp pport tport nport <<<"$p"
		# The controller publishes the pod's port number under the service port's name.
		printf -- '- name: %s\n  port: %s\n  protocol: %s\n' "$pn" "$tport" "$pp"
	done
}
