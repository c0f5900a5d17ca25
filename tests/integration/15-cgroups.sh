#!/bin/bash
# 15-cgroups.sh — linux.resources land in the container's cgroup files (read from the host and
# from inside) on the hybrid host, in a pure v1 view and in a pure v2 view (where only hugetlb is
# a controller); hugetlb limits in the unified hierarchy; a relative cgroupsPath; the device
# cgroup.
. "$(dirname "$0")/lib.sh"
require_root

REL=kelp-test-$$-rel
# the relative cgroupsPath lands under this process's own cgroup in each hierarchy
kt_extra_cleanup() {
	local m d
	while read -r id view; do
		[ -n "$id" ] && _kt_delete "$id" "$view"
	done <"$KT_CONTAINERS"
	for m in $(cg_mounts); do
		for d in $(find "$m" -maxdepth 4 -type d -name "$REL" 2>/dev/null); do
			find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
		done
	done
}
CG=/sys/fs/cgroup

# start_bg NAME: run bundle NAME detached (in $CG_VIEW if set) and wait until it runs.
start_bg() { (cd "$TEST_TMP/$1" && kelp_rt run --detach "$(cid "$1")" >&2) && wait_status "$(cid "$1")" running; }

RES='{ memory: { limit: 67108864 }, pids: { limit: 32 },
	cpu: { shares: 512, quota: 50000, period: 100000, cpus: "0" } }'
# host_values PATH: the v1 files for $RES under cgroup PATH, as the host sees them.
host_values() {
	printf '%s ' "$(cat $CG/memory$1/memory.limit_in_bytes 2>&1)" "$(cat $CG/pids$1/pids.max 2>&1)" \
		"$(cat $CG/cpu$1/cpu.shares 2>&1)" "$(cat $CG/cpu$1/cpu.cfs_quota_us 2>&1)" \
		"$(cat $CG/cpu$1/cpu.cfs_period_us 2>&1)" "$(cat $CG/cpuset$1/cpuset.cpus 2>&1)" | sed 's/ $//'
}
INSIDE='for f in memory/memory.limit_in_bytes pids/pids.max cpu/cpu.shares cpu/cpu.cfs_quota_us cpu/cpu.cfs_period_us cpuset/cpuset.cpus; do
	printf "%s " "$(cat /sys/fs/cgroup/$f 2>&1)"; done'
WANT="67108864 32 512 50000 100000 0"

# v1_resources LABEL NAME: the resources test in the current view ($CG_VIEW).
v1_resources() {
	local label=$1 n=$2 id pid
	id=$(cid "$n")
	mk "$n" sleep 1000
	bundle_set "$n" ".linux.resources += $RES"
	if start_bg "$n"; then
		ok "$label: container with resources runs"
		pid=$(st "$id" pid)
		check_eq "$label: values from the host" "$WANT" "$(host_values "$CG_BASE/$n")"
		check_eq "$label: values from inside" "$WANT" \
			"$(kelp_rt exec "$id" sh -c "$INSIDE" 2>&1 | sed 's/ $//')"
		check_eq "$label: init is in the cgroup (memory, pids, cpu, cpuset)" "$pid $pid $pid $pid" \
			"$(cat $CG/memory$CG_BASE/$n/cgroup.procs $CG/pids$CG_BASE/$n/cgroup.procs \
				$CG/cpu$CG_BASE/$n/cgroup.procs $CG/cpuset$CG_BASE/$n/cgroup.procs 2>&1 | lines | tr '|' ' ')"
		check_eq "$label: inside, the cgroup mount shows init in the container's cgroup" 1 \
			"$(kelp_rt exec "$id" cat /sys/fs/cgroup/pids/cgroup.procs 2>&1 | sed -n 1p)"
		kelp_rt delete -f "$id" >&2
		check_eq "$label: no cgroup dir after delete" "" "$(cg_left "$CG_BASE/$n")"
	else
		fail "$label: container with resources runs"
	fi
}

# ---- (a) the hybrid host -----------------------------------------------------------------------

v1_resources hybrid res
# pids.limit is enforced
n=pidsmax
id=$(cid $n)
mk $n sleep 1000
bundle_set $n '.linux.resources.pids = { limit: 5 }'
if start_bg $n; then
	out=$(kelp_rt exec "$id" sh -c 'for i in 1 2 3 4 5 6; do sleep 5 & done 2>&1; kill $(jobs -p) 2>/dev/null' 2>&1)
	check_match "hybrid: pids.limit 5 is enforced (fork fails)" "can't fork|Resource temporarily unavailable|Try again" "$out"
	kelp_rt delete -f "$id" >&2
else
	fail "hybrid: pids.limit 5 is enforced (fork fails)" "container did not start"
fi

# hugetlb: on this host the hugetlb controller is bound to the unified hierarchy
hp=$(ls /sys/kernel/mm/hugepages 2>/dev/null | sed -n 's/^hugepages-\([0-9]*\)kB$/\1/p' | sort -n | head -n1)
size=
if [ -n "$hp" ]; then
	if [ "$hp" -ge 1048576 ]; then size="$((hp / 1048576))GB"; elif [ "$hp" -ge 1024 ]; then size="$((hp / 1024))MB"; else size="${hp}KB"; fi
fi
if [ -z "$hp" ]; then
	skip "hugetlb limit in the unified hierarchy" "no huge page size in /sys/kernel/mm/hugepages"
elif [ "$(basename "$KELP")" != kelp ]; then
	skip "hugetlb limit in the unified hierarchy" "kelp only: $(basename "$KELP") looks for hugetlb in a v1 hierarchy"
elif ! grep -qw hugetlb $CG/unified/cgroup.controllers 2>/dev/null; then
	skip "hugetlb limit in the unified hierarchy" "hugetlb is not a controller of $CG/unified"
else
	n=huge
	id=$(cid $n)
	mk $n sleep 1000
	bundle_set $n '.linux.resources.hugepageLimits = [{ pageSize: $s, limit: 4194304 }]' --arg s "$size"
	if start_bg $n; then
		check_eq "hugetlb: $size limit in $CG/unified/<path>/hugetlb.$size.max" 4194304 \
			"$(cat "$CG/unified$CG_BASE/$n/hugetlb.$size.max" 2>&1)"
		check_eq "hugetlb: init is in the unified cgroup" "$(st "$id" pid)" "$(cat "$CG/unified$CG_BASE/$n/cgroup.procs" 2>&1)"
		kelp_rt delete -f "$id" >&2
		check_eq "hugetlb: no cgroup dir after delete" "" "$(cg_left "$CG_BASE/$n")"
	else
		fail "hugetlb: container with a hugepage limit runs"
	fi
fi

# a relative cgroupsPath lands under the cgroup of the calling process, in every hierarchy
n=rel
id=$(cid $n)
probe_bundle $n sleep 1000
bundle_set $n '.linux.cgroupsPath = $p' --arg p "$REL/y"
if start_bg $n; then
	pid=$(st "$id" pid)
	want="" got=""
	while IFS=: read -r _ ctrl path; do
		[ "$ctrl" = "" ] && ctrl=unified
		ctrl=${ctrl#name=}
		case "$path" in /) path="" ;; esac
		want="$want $ctrl:$path/$REL/y"
	done </proc/self/cgroup
	while IFS=: read -r _ ctrl path; do
		[ "$ctrl" = "" ] && ctrl=unified
		ctrl=${ctrl#name=}
		got="$got $ctrl:$path"
	done <"/proc/$pid/cgroup"
	check_eq "relative cgroupsPath: under the caller's cgroup (/proc/PID/cgroup)" "$want" "$got"
	mine=$(awk -F: '$2 == "memory" { print $3 }' /proc/self/cgroup)
	mine=${mine%/}
	check_eq "relative cgroupsPath: memory dir under the caller's memory cgroup holds init" "$pid" \
		"$(cat "$CG/memory$mine/$REL/y/cgroup.procs" 2>&1)"
	kelp_rt delete -f "$id" >&2
	check_eq "relative cgroupsPath: removed on delete" "" "$(cg_left "$mine/$REL/y")"
else
	fail "relative cgroupsPath: container runs"
fi

# device cgroup: deny-all (the bundle's rule) plus the runtime's defaults. The unlisted device is
# /dev/loop-control (c 10:237): opening it needs no capability, only the device cgroup's "r".
# (Block devices are no good here: this VM refuses to open them even on the host.)
devtest='mknod /dev/kelpdev c 10 237 2>/dev/null; echo "mknod=$?"; (exec 3</dev/kelpdev) 2>/dev/null; echo "open=$?";
	echo x >/dev/null; echo "null=$?"; head -c2 /dev/zero | od -An -tx1 | tr -d " "'
if ! sh -c 'exec 3</dev/loop-control' 2>/dev/null; then
	skip "device cgroup" "the host itself cannot open /dev/loop-control"
else
	mk devdeny sh -c "$devtest"
	out=$(cd "$TEST_TMP/devdeny" && kelp_rt run "$(cid devdeny)" 2>&1)
	echo "devdeny output: $out" >&2
	if [[ $out == *mknod=0* ]]; then
		check_match "device cgroup: opening an unlisted device (c 10:237) fails" 'open=[1-9]' "$out"
	else
		check_match "device cgroup: mknod of an unlisted device (c 10:237) fails" 'mknod=[1-9]' "$out"
	fi
	check_match "device cgroup: /dev/null works" 'null=0' "$out"
	check_match "device cgroup: /dev/zero reads" $'\n0000$' "$out"
	mk devallow sh -c "$devtest"
	bundle_set devallow '.linux.resources.devices += [{ allow: true, type: "c", major: 10, minor: 237, access: "rm" }]'
	out=$(cd "$TEST_TMP/devallow" && kelp_rt run "$(cid devallow)" 2>&1)
	echo "devallow output: $out" >&2
	check_match "device cgroup: with an allow rule the same device opens (the check can fail)" 'mknod=0.*open=0' "$out"
fi

# ---- (b) the pure v1 view ----------------------------------------------------------------------

if cg_view_up v1; then
	CG_VIEW=v1 v1_resources "v1 view" resv1
	n=hugev1
	if [ -n "$hp" ]; then
		mk $n sleep 1000
		bundle_set $n '.linux.resources.hugepageLimits = [{ pageSize: $s, limit: 4194304 }]' --arg s "$size"
		(cd "$TEST_TMP/$n" && CG_VIEW=v1 kelp_rt create "$(cid $n)" >/dev/null 2>"$TEST_TMP/err")
		rc=$?
		check "v1 view: hugetlb limit without a hugetlb hierarchy fails" test $rc -ne 0
		check_match "v1 view: the error names hugetlb" hugetlb "$(cat "$TEST_TMP/err")"
		check_eq "v1 view: failed create leaves no state dir" "" "$(ls -A "$STATE_ROOT")"
		check_eq "v1 view: failed create leaves no cgroup dir" "" "$(cg_left "$CG_BASE/$n")"
	fi
else
	skip "v1 view" "cannot set up a pure cgroup v1 view"
fi

# ---- (c) the pure v2 view (only hugetlb is a controller) ----------------------------------------

if cg_view_up v2; then
	n=v2plain
	id=$(cid $n)
	mk $n sleep 1000
	if (cd "$TEST_TMP/$n" && CG_VIEW=v2 kelp_rt create "$id" >&2); then
		ok "v2 view: create of a container without resources"
		if CG_VIEW=v2 kelp_rt start "$id" >&2; then ok "v2 view: start"; else fail "v2 view: start"; fi
		if CG_VIEW=v2 wait_status "$id" running; then ok "v2 view: running"; else fail "v2 view: running"; fi
		pid=$(CG_VIEW=v2 st "$id" pid)
		check_eq "v2 view: exec" "hello-v2" "$(CG_VIEW=v2 kelp_rt exec "$id" echo hello-v2 2>&1)"
		check_eq "v2 view: init in the unified cgroup (host's view)" "$pid" "$(cat "$CG/unified$CG_BASE/$n/cgroup.procs" 2>&1)"
		check_eq "v2 view: /proc/PID/cgroup 0:: line" "0::$CG_BASE/$n" "$(grep '^0::' "/proc/$pid/cgroup")"
		if CG_VIEW=v2 kelp_rt delete -f "$id" >&2; then ok "v2 view: delete -f"; else fail "v2 view: delete -f"; fi
		check_eq "v2 view: state gone after delete" "" "$(ls -A "$STATE_ROOT")"
		check_eq "v2 view: no cgroup dir after delete" "" "$(cg_left "$CG_BASE/$n")"
	else
		fail "v2 view: create of a container without resources"
	fi

	n=v2mem
	id=$(cid $n)
	mk $n sleep 1000
	bundle_set $n '.linux.resources.memory = { limit: 67108864 }'
	(cd "$TEST_TMP/$n" && CG_VIEW=v2 kelp_rt create "$id" >/dev/null 2>"$TEST_TMP/err")
	rc=$?
	check "v2 view: a memory limit without the memory controller fails" test $rc -ne 0
	check_match "v2 view: the error mentions the memory controller" 'memory' "$(cat "$TEST_TMP/err")"
	echo "v2 memory error: $(cat "$TEST_TMP/err")" >&2
	check_eq "v2 view: failed create leaves no state dir" "" "$(ls -A "$STATE_ROOT")"
	check_eq "v2 view: failed create leaves no cgroup dir" "" "$(cg_left "$CG_BASE/$n")"
	check_eq "v2 view: failed create leaves no process" "" "$(procs_with "$id")"

	if [ -n "$hp" ]; then
		n=v2huge
		id=$(cid $n)
		mk $n sleep 1000
		bundle_set $n '.linux.resources.hugepageLimits = [{ pageSize: $s, limit: 2097152 }]' --arg s "$size"
		if (cd "$TEST_TMP/$n" && CG_VIEW=v2 kelp_rt run --detach "$id" >&2) && CG_VIEW=v2 wait_status "$id" running; then
			check_eq "v2 view: hugetlb limit lands in hugetlb.$size.max" 2097152 \
				"$(cat "$CG/unified$CG_BASE/$n/hugetlb.$size.max" 2>&1)"
			CG_VIEW=v2 kelp_rt delete -f "$id" >&2
		else
			fail "v2 view: container with a hugetlb limit runs"
		fi
	fi
else
	skip "v2 view" "cannot set up a pure cgroup v2 view"
fi

exit 0
