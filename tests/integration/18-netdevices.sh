#!/bin/bash
# 18-netdevices.sh — linux.netDevices: host interfaces moved into the container's network
# namespace, renamed (a fixed name and a "%d" template), with their permanent global addresses
# (IPv4 and IPv6; not the ones with a lifetime), and up (veths: this kernel has no dummy); a missing device or a taken name is
# refused before anything moves. The "host" is a network namespace this test creates (kelp runs
# in it through nsenter), so the machine's own interfaces are never touched.
. "$(dirname "$0")/lib.sh"
require_root

NS=kt-nd-$$
kt_extra_cleanup() { ip netns del "$NS" 2>/dev/null; }
if ! ip netns add "$NS"; then
	fail "create the test's network namespace $NS"
	exit 1
fi
nsip() { ip -n "$NS" "$@"; }
host_has() { nsip link show dev "$1" >/dev/null 2>&1 && echo present; }
nd_run() { # BUNDLE: run it with kelp inside $NS; output on stdout, errors in $TEST_TMP/BUNDLE.err
	_kt_track run "$(cid "$1")"
	(cd "$TEST_TMP/$1" && nsenter --net="/run/netns/$NS" -- "$KELP" --root "$STATE_ROOT" run "$(cid "$1")" \
		2>"$TEST_TMP/$1.err" </dev/null)
}

nsip link add kt-nd0 type veth peer name kt-nd0p &&
	nsip addr add 10.77.0.1/24 dev kt-nd0 &&
	nsip addr add 10.78.0.1/24 dev kt-nd0 valid_lft 300 preferred_lft 300 &&
	nsip -6 addr add fd77::1/64 dev kt-nd0 nodad &&
	nsip link set kt-nd0 up &&
	nsip link add kt-nd1 type veth peer name kt-nd1p &&
	nsip link add kt-nd2 type veth peer name kt-nd2p ||
	fail "set up the veth interfaces"

# ---- moved, renamed, addresses kept, up ----------------------------------------------------
mk nd sh -c 'ip -o addr show dev eth7; ip -o link show dev eth7; ip -o link show | cut -d: -f2 | cut -d@ -f1 | tr -d " " | sort | tr "\n" " "'
bundle_set nd '.linux.netDevices = {"kt-nd0": {"name": "eth7"}, "kt-nd1": {"name": "net%d"}}'
out=$(nd_run nd)
check_eq "run with netDevices: exit 0" 0 "$?" || cat "$TEST_TMP/nd.err" >&2
check_match "kt-nd0 is eth7 in the container, up" 'eth7(@[^:]*)?:.*[<,]UP[,>]' "$out"
check_match "its permanent IPv4 address came along" 'inet 10\.77\.0\.1/24' "$out"
check_match "its permanent IPv6 address came along" 'inet6 fd77::1/64' "$out"
if grep -q '10\.78\.0\.1' <<<"$out"; then
	fail "an address with a lifetime is not moved" "$out"
else
	ok "an address with a lifetime is not moved"
fi
check_match "kt-nd1 got the first name of the template net%d" '(^| )net0 ' "$(tail -n 1 <<<"$out") "
check_eq "the moved veths (and their peers) went with the container's namespace" "" "$(nsip -o link show | grep -o 'kt-nd[01]p\?')"

# ---- refused before anything moves -----------------------------------------------------------
mk ndmiss true
bundle_set ndmiss '.linux.netDevices = {"kt-nd2": {}, "kt-nope": {"name": "eth1"}}'
nd_run ndmiss >/dev/null
check_eq "a missing device: create fails" 1 "$?"
check_match "... naming the device" 'network device kt-nope' "$(cat "$TEST_TMP/ndmiss.err")"
check_eq "... kt-nd2, listed first, is still on the host" present "$(host_has kt-nd2)"
check_eq "... and no container is left" "" "$(kelp_rt state "$(cid ndmiss)" 2>/dev/null)"

mk ndtaken true
bundle_set ndtaken '.linux.netDevices = {"kt-nd2": {"name": "lo"}}'
nd_run ndtaken >/dev/null
check_eq "a name taken in the container (lo): create fails" 1 "$?"
check_match "... saying so" 'a device named lo exists' "$(cat "$TEST_TMP/ndtaken.err")"
check_eq "... kt-nd2 is still on the host" present "$(host_has kt-nd2)"

# ---- bad config --------------------------------------------------------------------------
mk ndbad true
for bad in '{"a/b": {}}' '{"kt-nd2": {"name": "much-too-long-name0"}}' '{"kt-nd2": {"name": "x%s"}}' \
	'{"kt-nd2": {"nmae": "x"}}' '["kt-nd2"]'; do
	bundle_set ndbad '.linux.netDevices = $v' --argjson v "$bad"
	nd_run ndbad >/dev/null
	check_match "netDevices $bad: refused by config.json path" 'linux\.netDevices' "$(cat "$TEST_TMP/ndbad.err")"
done
mk ndnonet true
bundle_set ndnonet '.linux.netDevices = {"kt-nd2": {}} | .linux.namespaces |= map(select(.type != "network"))'
nd_run ndnonet >/dev/null
check_match "netDevices without a network namespace: refused" 'no network namespace of its own' \
	"$(cat "$TEST_TMP/ndnonet.err")"
check_eq "... kt-nd2 is still on the host" present "$(host_has kt-nd2)"
# the host-side name is kept when no name is given
mk nd2 sh -c 'ip -o link show | cut -d: -f2 | cut -d@ -f1 | tr -d " " | sort | tr "\n" " "'
bundle_set nd2 '.linux.netDevices = {"kt-nd2": {}}'
out=$(nd_run nd2)
check_match "no name given: the host's name in the container" '(^| )kt-nd2 ' "$out"

exit 0
