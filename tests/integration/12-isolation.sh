#!/bin/bash
# 12-isolation.sh — namespaces from inside the container: pid 1, hostname, every namespace type
# differs from the host's, network has only lo, user namespace id mappings, joining another
# container's namespace by path, and the cgroup namespace.
. "$(dirname "$0")/lib.sh"
require_root

# run_in NAME: `run` the bundle NAME in the foreground; its stdout (stderr to the log).
run_in() { (cd "$TEST_TMP/$1" && kelp_rt run "$(cid "$1")" 2>&2); }

# ---- pid 1, hostname ---------------------------------------------------------------------

mk pid1 sh -c 'echo $$'
check_eq "init is pid 1 (echo \$\$)" 1 "$(run_in pid1)"

host_hn=$(hostname)
mk hn sh -c 'hostname; cat /proc/sys/kernel/hostname'
bundle_set hn '.hostname = "kelp-iso-test"'
check_eq "hostname from config.json" "kelp-iso-test kelp-iso-test" "$(run_in hn | tr '\n' ' ' | sed 's/ $//')"
check_eq "the host's hostname is unchanged" "$host_hn" "$(hostname)"

# ---- namespaces differ from the host's ----------------------------------------------------

nss="pid net ipc uts mnt cgroup"
mk ns sh -c 'for n in '"$nss"'; do echo "$n $(readlink /proc/self/ns/$n)"; done'
bundle_set ns '.linux.namespaces += [{ type: "cgroup" }]'
out=$(run_in ns)
for n in $nss; do
	inside=$(awk -v n="$n" '$1 == n { print $2 }' <<<"$out")
	host=$(readlink "/proc/self/ns/$n")
	if [ -n "$inside" ] && [ "$inside" != "$host" ]; then
		ok "$n namespace differs from the host's"
	else
		fail "$n namespace differs from the host's" "inside '$inside', host '$host'"
	fi
done
# Without a namespace in config.json, the host's is shared.
mk nons sh -c 'readlink /proc/self/ns/net; readlink /proc/self/ns/cgroup'
bundle_set nons '.linux.namespaces |= map(select(.type != "network"))'
out=$(run_in nons)
check_eq "no network namespace asked: the host's is shared" "$(readlink /proc/self/ns/net)" "$(sed -n 1p <<<"$out")"
check_eq "no cgroup namespace asked: the host's is shared" "$(readlink /proc/self/ns/cgroup)" "$(sed -n 2p <<<"$out")"

mk net sh -c "awk -F: 'NR > 2 { gsub(/ /, \"\", \$1); print \$1 }' /proc/net/dev"
check_eq "network namespace has only lo" lo "$(run_in net)"
mk netup sh -c 'cat /sys/class/net/lo/operstate; ls /sys/class/net'
check_eq "network namespace: /sys/class/net lists only lo" lo "$(run_in netup | sed -n 2,\$p | tr '\n' ' ' | sed 's/ $//')"

# ---- cgroup namespace ----------------------------------------------------------------------

mk cgns cat /proc/self/cgroup
bundle_set cgns '.linux.namespaces += [{ type: "cgroup" }]'
out=$(run_in cgns)
check_match "cgroup namespace: /proc/self/cgroup has lines" '^[0-9]+:' "$out"
check_eq "cgroup namespace: every /proc/self/cgroup path is /" "" "$(grep -v ':/$' <<<"$out")"
mk cgnons cat /proc/self/cgroup
out=$(run_in cgnons)
check_eq "no cgroup namespace: /proc/self/cgroup shows the full path" "" \
	"$(grep -v ":$CG_BASE/cgnons\$" <<<"$out")"

# ---- user namespace --------------------------------------------------------------------------

# The mapped root (host uid 100000) must be able to reach the rootfs.
chmod 0755 "$TEST_TMP"
n=userns
id=$(cid $n)
mk $n sleep 1000
bundle_set $n '.linux.namespaces += [{ type: "user" }]
	| .linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }]
	| .linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }]'
cd "$TEST_TMP/$n" || exit 1
if kelp_rt create "$id" >&2 && kelp_rt start "$id" >&2 && wait_status "$id" running; then
	ok "user namespace: container runs"
	pid=$(st "$id" pid)
	check_eq "user namespace: host sees init's Uid as 100000" "100000 100000 100000 100000" \
		"$(awk '$1 == "Uid:" { print $2, $3, $4, $5 }' "/proc/$pid/status")"
	check_eq "user namespace: host sees init's Gid as 100000" "100000 100000 100000 100000" \
		"$(awk '$1 == "Gid:" { print $2, $3, $4, $5 }' "/proc/$pid/status")"
	check_eq "user namespace: uid_map inside" "0 100000 65536" \
		"$(kelp_rt exec "$id" cat /proc/self/uid_map 2>&1 | awk '{ print $1, $2, $3 }')"
	check_eq "user namespace: gid_map inside" "0 100000 65536" \
		"$(kelp_rt exec "$id" cat /proc/self/gid_map 2>&1 | awk '{ print $1, $2, $3 }')"
	check_eq "user namespace: id -u inside is 0" 0 "$(kelp_rt exec "$id" id -u 2>&1)"
	check_eq "user namespace: init's uid_map" "0 100000 65536" "$(awk '{ print $1, $2, $3 }' "/proc/$pid/uid_map")"
	check "user namespace differs from the host's" test "$(readlink "/proc/$pid/ns/user")" != "$(readlink /proc/self/ns/user)"
	kelp_rt delete -f "$id" >&2
else
	fail "user namespace: container runs"
fi
chmod 0700 "$TEST_TMP"

# ---- joining a namespace by path -------------------------------------------------------------

a=$(cid nsA)
b=$(cid nsB)
mk nsA sleep 1000
mk nsB sleep 1000
if (cd "$TEST_TMP/nsA" && kelp_rt run --detach "$a" >&2) && wait_status "$a" running; then
	apid=$(st "$a" pid)
	bundle_set nsB '.linux.namespaces |= map(if .type == "network" then .path = $p else . end)' \
		--arg p "/proc/$apid/ns/net"
	if (cd "$TEST_TMP/nsB" && kelp_rt run --detach "$b" >&2) && wait_status "$b" running; then
		bpid=$(st "$b" pid)
		check_eq "join by path: B's net namespace is A's" "$(readlink "/proc/$apid/ns/net")" \
			"$(readlink "/proc/$bpid/ns/net")"
		check_eq "join by path: seen from inside B" "$(readlink "/proc/$apid/ns/net")" \
			"$(kelp_rt exec "$b" readlink /proc/self/ns/net 2>&1)"
		check "join by path: B's pid namespace is its own" \
			test "$(readlink "/proc/$apid/ns/pid")" != "$(readlink "/proc/$bpid/ns/pid")"
		check "join by path: B's net namespace is not the host's" \
			test "$(readlink /proc/self/ns/net)" != "$(readlink "/proc/$bpid/ns/net")"
		kelp_rt delete -f "$b" >&2
	else
		fail "join by path: B runs"
	fi
	kelp_rt delete -f "$a" >&2
else
	fail "join by path: A runs"
fi

exit 0
