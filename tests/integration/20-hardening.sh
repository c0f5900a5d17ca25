#!/bin/bash
# 20-hardening.sh — the known container-escape classes, each built for real and run against the
# runtime (issue 4, "Hardening"), with a control that shows each check notices a successful
# attack:
#   1. CVE-2019-5736: overwrite the runtime through /proc/PID/exe (a `kelp exec` caught while in
#      the container; `#!/proc/self/exe` as the exec'd and as the created process; an exec of
#      /proc/self/exe itself; on the clone path of a new pid namespace, such processes refused
#      and exec held until start).
#   2. CVE-2024-21626: fds and cwd of the runtime reaching the container (--preserve-fds,
#      process.cwd and exec --cwd of /proc/self/fd/N).
#   3. CVE-2021-30465: mount destinations through symlinks out of the rootfs, static and swapped
#      during setup.
#   4. CVE-2022-0811: sysctls that are not namespaced, of namespaces the container does not own,
#      and values or keys that smuggle a second setting.
#   5. Masked and read-only paths against a container without CAP_SYS_ADMIN (directly, and
#      through a user namespace of its own).
# The runtime attacked in part 1 is a COPY of $KELP under $TEST_TMP: a successful attack
# cannot break the build. RUNTIME=runc runs the same attacks against runc.
. "$(dirname "$0")/lib.sh"
require_root

RT_BASE=$(basename "$KELP")
TOKEN="kt-host-secret-$$-$RANDOM"
HOST_MARKER=$TEST_TMP/host-marker
echo "$TOKEN" >"$HOST_MARKER"

# Host sysctls part 4 must leave alone: saved here, put back on exit if a runtime changed them.
SYSCTL_SAVE=()
save_sysctl() { SYSCTL_SAVE+=("$1=$(cat "/proc/sys/${1//.//}")"); }
for k in kernel.core_pattern vm.overcommit_memory net.ipv4.ip_forward kernel.shm_rmid_forced kernel.shmmax \
	net.core.somaxconn kernel.msgmnb kernel.domainname fs.mqueue.queues_max; do
	save_sysctl "$k"
done
SWAP_PID=""
CTL_MOUNT=""
kt_extra_cleanup() {
	local kv k v
	[ -n "$SWAP_PID" ] && kill -TERM "$SWAP_PID" 2>/dev/null && wait "$SWAP_PID" 2>/dev/null
	[ -n "$CTL_MOUNT" ] && umount "$CTL_MOUNT"
	for kv in "${SYSCTL_SAVE[@]}"; do
		k=${kv%%=*}
		v=${kv#*=}
		if [ "$(cat "/proc/sys/${k//.//}")" != "$v" ]; then
			echo "20-hardening: restoring host sysctl $k (a runtime changed it)" >&2
			printf '%s\n' "$v" >"/proc/sys/${k//.//}"
		fi
	done
}

# rt_to SECS RUNTIME ARGS...: the runtime binary RUNTIME with our state root, under a timeout;
# containers it creates are deleted on exit (with $KELP, which a part-1 attack cannot break).
rt_to() {
	local secs=$1 bin=$2
	shift 2
	_kt_track "$@"
	timeout -k 5 "$secs" "$bin" --root "$STATE_ROOT" "$@"
}
# run_in NAME ARGS...: `run` the bundle NAME in the foreground (20 s at most).
run_in() {
	local n=$1
	shift
	(cd "$TEST_TMP/$n" && rt_to 20 "$KELP" run "$@")
}
sha() { sha256sum "$1" | awk '{ print $1 }'; }
# wait_line FILE REGEX [SECS]: until FILE has a line matching REGEX.
wait_line() {
	local f=$1 re=$2 secs=${3:-10} i
	for ((i = 0; i < secs * 20; i++)); do
		grep -qE "$re" "$f" 2>/dev/null && return 0
		sleep 0.05
	done
	echo "wait_line: no /$re/ in $f after ${secs}s; it holds:" >&2
	sed 's/^/  | /' "$f" >&2
	return 1
}
# libs_into ROOTFS BINARY: copy BINARY's ELF interpreter and libraries to the same paths in
# ROOTFS, as an image author could, so that the binary runs inside the container.
libs_into() {
	local l
	for l in $(ldd "$2" 2>/dev/null | grep -o '/[^ ]*'); do
		mkdir -p "$1$(dirname "$l")" && cp -L "$l" "$1$l" || return 1
	done
}

# ==== 1. CVE-2019-5736: overwrite the runtime through /proc/PID/exe =========================
echo "20-hardening: part 1 starts after ${SECONDS}s" >&2

RTDIR=$TEST_TMP/rt
mkdir -p "$RTDIR"
KCOPY=$RTDIR/$RT_BASE
cp "$KELP" "$KCOPY" && chmod 0755 "$KCOPY"
SHA0=$(sha "$KCOPY")

# The attacker's image: our helpers, the runtime's loader and libraries (what an image holding
# a malicious libc would ship), and /bin/evil = "#!/proc/self/exe" (the CVE's replaced /bin/sh).
VICTIM=$RTDIR/victim
cp /bin/busybox "$VICTIM"
ln -s victim "$RTDIR/sleep" # busybox picks its applet from argv[0]
VSHA=$(sha "$VICTIM")
# The attacker writes only to these two copies, whatever else it may catch.
mk exe attack exe-grab "$(stat -c %d:%i "$KCOPY"),$(stat -c %d:%i "$VICTIM")" /bin/busybox /bin/probe /bin/recvtty
libs_into "$TEST_TMP/exe/rootfs" "$KCOPY" || fail "part 1: copy the runtime's libraries into the rootfs"
printf '#!/proc/self/exe\n' >"$TEST_TMP/exe/rootfs/bin/evil"
chmod 0755 "$TEST_TMP/exe/rootfs/bin/evil"

# attack_round NAME TRIGGER...: start the attacker (with the runtime copy), run TRIGGER (a
# function) while it watches, stop it, and leave its report in $TEST_TMP/NAME.out. Sets
# ATT_PID (the attacker's host pid) for TRIGGER.
attack_round() {
	local name=$1 id
	shift
	id=$(cid "att-$name")
	ATT_OUT=$TEST_TMP/$name.out
	bundle_set exe '.linux.cgroupsPath = $p' --arg p "$CG_BASE/att-$name"
	if ! (cd "$TEST_TMP/exe" && rt_to 20 "$KCOPY" run --detach "$id" >"$ATT_OUT" 2>&1 </dev/null) ||
		! wait_line "$ATT_OUT" '^ready$' 10; then
		echo "attack_round $name: the attacker did not start" >&2
		return 1
	fi
	ATT_PID=$(st "$id" pid)
	"$@"
	# Every runtime process has exited by now: the attacker's last write attempt follows.
	kill -TERM "$ATT_PID" 2>/dev/null
	wait_line "$ATT_OUT" '^summary ' 10
	local r=$?
	echo "attack_round $name: attacker's report:" >&2
	sed 's/^/  | /' "$ATT_OUT" >&2
	kelp_rt delete -f "$id" >/dev/null 2>&1
	return $r
}
# check_unchanged NAME: the runtime copy is as it was; restore it for the next round if not.
check_unchanged() {
	local now
	now=$(sha "$KCOPY")
	if [ "$now" = "$SHA0" ]; then
		ok "$1"
	else
		fail "$1" "the runtime binary on the host was overwritten (first bytes: $(head -c 24 "$KCOPY" | tr -c '[:print:]' .))"
		cp "$KELP" "$KCOPY"
	fi
}

# Control: a stand-in "runtime" without any protection — a host binary (a copy of busybox)
# run in the attacker's pid namespace with no more capabilities than the attacker has — is
# caught and overwritten. Shows that the attacker and the sha256 check notice a success.
trigger_victim() {
	nsenter -t "$ATT_PID" -p -- setpriv --bounding-set=-all --inh-caps=-all "$RTDIR/sleep" 0.5 >&2
}
if attack_round control trigger_victim; then
	check_match "exe control: the attacker grabs an unprotected host binary in its pid namespace" \
		'grabbed [0-9]+ ' "$(cat "$ATT_OUT")"
	if [ "$(sha "$VICTIM")" != "$VSHA" ]; then
		ok "exe control: ... and overwrites it on the host (the sha256 check sees it)"
	else
		fail "exe control: ... and overwrites it on the host (the sha256 check sees it)" "$(cat "$ATT_OUT")"
	fi
else
	fail "exe control: attacker round"
fi
cp /bin/busybox "$VICTIM" # overwritten above; part 2 runs it again

# a. The exec process, caught while it is the runtime inside the container.
trigger_exec_plain() {
	local i
	for i in 1 2 3 4 5 6 7 8 9 10; do
		rt_to 20 "$KCOPY" exec "$(cid att-exec)" /bin/true >&2 2>&1 </dev/null || echo "exec $i failed" >&2
	done
}
if attack_round exec trigger_exec_plain; then
	check_unchanged "exe: 10 x '$RT_BASE exec ID /bin/true' watched by a container process: the runtime on the host is unchanged"
else
	fail "exe: exec round"
fi

# b. `exec` of a program that is "#!/proc/self/exe": the kernel runs the runtime's own binary
#    inside the container, with the container's credentials.
trigger_exec_evil() {
	rt_to 20 "$KCOPY" exec "$(cid att-evil)" /bin/evil >&2 2>&1 </dev/null
	echo "exec /bin/evil: status $?" >&2
}
if attack_round evil trigger_exec_evil; then
	check_unchanged "exe: '$RT_BASE exec ID /bin/evil' (#!/proc/self/exe): the runtime on the host is unchanged"
else
	fail "exe: #!/proc/self/exe exec round"
fi

# c. `exec` of /proc/self/exe itself.
trigger_exec_self() {
	rt_to 20 "$KCOPY" exec "$(cid att-self)" /proc/self/exe >&2 2>&1 </dev/null
	echo "exec /proc/self/exe: status $?" >&2
}
if attack_round self trigger_exec_self; then
	check_unchanged "exe: '$RT_BASE exec ID /proc/self/exe': the runtime on the host is unchanged"
else
	fail "exe: /proc/self/exe exec round"
fi

# d. A container whose own process is "#!/proc/self/exe", created in the attacker's pid
#    namespace (a pod sharing its pid namespace).
mkdir -p "$TEST_TMP/evilc"
trigger_create_evil() {
	jq --arg r "$TEST_TMP/exe/rootfs" --arg ns "/proc/$ATT_PID/ns/pid" --arg cg "$CG_BASE/evilc" '
		.root.path = $r | .process.args = ["/bin/evil"] | .linux.cgroupsPath = $cg
		| .linux.namespaces = [.linux.namespaces[] | if .type == "pid" then .path = $ns else . end]' \
		"$TEST_TMP/exe/config.json" >"$TEST_TMP/evilc/config.json"
	(cd "$TEST_TMP/evilc" && rt_to 20 "$KCOPY" run "$(cid evilc)" >&2 2>&1 </dev/null)
	echo "run of a #!/proc/self/exe container: status $?" >&2
}
if attack_round create trigger_create_evil; then
	check_unchanged "exe: '$RT_BASE run' of a container whose process is #!/proc/self/exe, in a pid namespace shared with the attacker: the runtime on the host is unchanged"
else
	fail "exe: #!/proc/self/exe create round"
fi

# e. The clone path: a container with its own new pid namespace runs from the clone, not the
#    sealed copy (runtime/sealed.c). A process that is, or whose "#!" chain reaches, the
#    runtime's binary is refused before it runs; exec waits for start.
ln -sf /proc/self/exe "$TEST_TMP/exe/rootfs/bin/selflink"
mkdir -p "$TEST_TMP/selfc"
for prog in /bin/evil /proc/self/exe /bin/selflink; do
	jq --arg r "$TEST_TMP/exe/rootfs" --arg cg "$CG_BASE/selfc" --arg p "$prog" '
		.root.path = $r | .process.args = [$p] | .linux.cgroupsPath = $cg' \
		"$TEST_TMP/exe/config.json" >"$TEST_TMP/selfc/config.json"
	check_eq "exe: the clone-path bundle has a new pid namespace" "new" \
		"$(jq -r '[.linux.namespaces[] | select(.type == "pid")][0] | if .path then "joined" else "new" end' \
			"$TEST_TMP/selfc/config.json")"
	out=$(cd "$TEST_TMP/selfc" && rt_to 20 "$KCOPY" run "$(cid selfc)" 2>&1 </dev/null)
	check_match "exe: 'run' (new pid namespace) of $prog: refused with why" "leads to the runtime's own binary" \
		"$out (status $?)"
	check_unchanged "exe: 'run' of $prog: the runtime on the host is unchanged"
	kelp_rt delete -f "$(cid selfc)" >/dev/null 2>&1
done
jq --arg r "$TEST_TMP/exe/rootfs" --arg cg "$CG_BASE/selfc" '
	.root.path = $r | .process.args = ["/bin/busybox", "sleep", "30"] | .linux.cgroupsPath = $cg' \
	"$TEST_TMP/exe/config.json" >"$TEST_TMP/selfc/config.json"
if (cd "$TEST_TMP/selfc" && rt_to 20 "$KCOPY" create "$(cid selfc)" >&2 2>&1 </dev/null); then
	out=$(rt_to 20 "$KCOPY" exec "$(cid selfc)" /bin/busybox true 2>&1 </dev/null)
	check_match "exe: exec into a created container whose init is the clone: refused until start" \
		"exec waits for start" "$out (status $?)"
	rt_to 20 "$KCOPY" start "$(cid selfc)" >&2 2>&1
	rt_to 20 "$KCOPY" exec "$(cid selfc)" /bin/busybox true >&2 2>&1 </dev/null
	check_eq "exe: ... and allowed once started" 0 "$?"
else
	fail "exe: create of a clone-path container"
fi
kelp_rt delete -f "$(cid selfc)" >/dev/null 2>&1
check_unchanged "exe: clone-path rounds: the runtime on the host is unchanged"

# ==== 2. CVE-2024-21626: no fd and no cwd of the runtime in the container ====================
echo "20-hardening: part 2 starts after ${SECONDS}s" >&2

mk fds attack fdinfo
mkdir -p "$TEST_TMP/fdsrc/dir"
echo f >"$TEST_TMP/fdsrc/file"
out=$(run_in fds "$(cid fds0)" 2>&1)
check_eq "fds: run without --preserve-fds: nothing but stdio inside" none "$out"
out=$(run_in fds --preserve-fds 2 "$(cid fds2)" 2>&1 3<"$TEST_TMP/fdsrc/file" 4<"$TEST_TMP/fdsrc/dir" \
	5<"$TEST_TMP/fdsrc/file" 6<"$TEST_TMP/fdsrc/dir")
check_eq "fds: run --preserve-fds 2 with fds 3-6 open: exactly the two passed (3 file, 4 dir)" \
	"3 reg $TEST_TMP/fdsrc/file|4 dir $TEST_TMP/fdsrc/dir" "$(lines <<<"$out")"

# The same through exec, into a running container.
mk fdx sleep 60
fdx=$(cid fdx)
if (cd "$TEST_TMP/fdx" && rt_to 20 "$KELP" run --detach "$fdx" >&2 </dev/null) && wait_status "$fdx" running; then
	out=$(rt_to 20 "$KELP" exec "$fdx" attack fdinfo 2>&1)
	check_eq "fds: exec without --preserve-fds: nothing but stdio inside" none "$out"
	out=$(rt_to 20 "$KELP" exec --preserve-fds 2 "$fdx" attack fdinfo 2>&1 3<"$TEST_TMP/fdsrc/file" \
		4<"$TEST_TMP/fdsrc/dir" 5<"$TEST_TMP/fdsrc/file" 6<"$TEST_TMP/fdsrc/dir")
	check_eq "fds: exec --preserve-fds 2 with fds 3-6 open: exactly the two passed" \
		"3 reg $TEST_TMP/fdsrc/file|4 dir $TEST_TMP/fdsrc/dir" "$(lines <<<"$out")"
else
	fail "fds: start a container for exec"
fi

# cwd /proc/self/fd/N: the process must be refused, or its cwd must be inside the container.
# Walking up from a cwd outside the root reaches the host's /, where the marker is.
ESCAPE='pwd >&2; cd ../../../../../../../../../../../../../../..; cat ".'$HOST_MARKER'" 2>/dev/null || echo no-marker'
out=$(cd "$TEST_TMP" && /bin/busybox sh -c "$ESCAPE" 2>/dev/null)
check_eq "cwd control: the escape script reads the marker from a host cwd" "$TOKEN" "$out"
mk cwd sh -c "$ESCAPE"
for n in 3 4 5 6 7 8 9 10; do
	bundle_set cwd '.process.cwd = $c' --arg c "/proc/self/fd/$n"
	out=$(run_in cwd "$(cid "cwd$n")" 2>&1)
	rc=$?
	if [[ $out == *"$TOKEN"* ]]; then
		fail "cwd: process.cwd /proc/self/fd/$n is refused or stays inside" "the container read the host's marker (status $rc): $out"
	else
		ok "cwd: process.cwd /proc/self/fd/$n is refused or stays inside (status $rc)"
	fi
done
if kelp_rt state "$fdx" >/dev/null 2>&1; then
	for n in 3 4 5 6 7 8 9 10; do
		out=$(rt_to 20 "$KELP" exec --cwd "/proc/self/fd/$n" "$fdx" sh -c "$ESCAPE" 2>&1)
		rc=$?
		if [[ $out == *"$TOKEN"* ]]; then
			fail "cwd: exec --cwd /proc/self/fd/$n is refused or stays inside" "the process read the host's marker (status $rc): $out"
		else
			ok "cwd: exec --cwd /proc/self/fd/$n is refused or stays inside (status $rc)"
		fi
	done
	kelp_rt delete -f "$fdx" >/dev/null 2>&1
else
	fail "cwd: exec --cwd /proc/self/fd/N" "the container for exec is gone"
fi

# A created container's init is the runtime, waiting in the container's namespaces for `start`:
# a process sharing its pid namespace (a pod's other container) must reach none of its fds,
# its cwd, root or exe.
inner_pid() { awk '/^NSpid:/ { print $NF }' "/proc/$1/status"; }
mk pod sleep 60
mk podc true
pod=$(cid pod)
if (cd "$TEST_TMP/pod" && rt_to 20 "$KELP" run --detach "$pod" >&2 </dev/null) && wait_status "$pod" running; then
	podpid=$(st "$pod" pid)
	# Control: a host process with no protection (and no capabilities, like the attacker), in
	# the pod's pid namespace with its cwd on the host: its cwd and fds are reached.
	(cd "$TEST_TMP/fdsrc" && exec nsenter -t "$podpid" -p -- setpriv --bounding-set=-all --inh-caps=-all \
		"$RTDIR/sleep" 10 3<"$TEST_TMP/fdsrc/dir") &
	ctl=$!
	vpid=""
	for _ in $(seq 100); do
		vpid=$(cat "/proc/$ctl/task/$ctl/children" 2>/dev/null | awk '{ print $1 }')
		[ -n "$vpid" ] && [ "$(readlink "/proc/$vpid/exe")" = "$VICTIM" ] && break
		vpid=""
		sleep 0.05
	done
	if [ -n "$vpid" ]; then
		out=$(rt_to 20 "$KELP" exec "$pod" attack peek "$(inner_pid "$vpid")" 2>&1)
		echo "peek at the control process: $(lines <<<"$out")" >&2
		check_match "fds control: a pod's process reaches an unprotected neighbour's host cwd and fds" \
			'reached cwd dir.*reached fd/3 dir' "$(lines <<<"$out")"
	else
		fail "fds control: start the unprotected neighbour"
	fi
	kill "$ctl" 2>/dev/null
	[ -n "$vpid" ] && kill "$vpid" 2>/dev/null
	wait "$ctl" 2>/dev/null

	bundle_set podc '.linux.namespaces = [.linux.namespaces[] | if .type == "pid" then .path = $ns else . end]' \
		--arg ns "/proc/$podpid/ns/pid"
	podc=$(cid podc)
	if (cd "$TEST_TMP/podc" && rt_to 20 "$KELP" create "$podc" >&2 </dev/null); then
		ipid=$(st "$podc" pid)
		out=$(rt_to 20 "$KELP" exec "$pod" attack peek "$(inner_pid "$ipid")" 2>&1)
		echo "peek at the created container's init: $(lines <<<"$out")" >&2
		check_match "fds: a created container's init (the runtime) is out of reach of its pod: no fd, cwd, root or exe" \
			'summary reached=0$' "$(lines <<<"$out")"
		kelp_rt delete -f "$podc" >/dev/null 2>&1
	else
		fail "fds: create a container in the pod's pid namespace"
	fi
	kelp_rt delete -f "$pod" >/dev/null 2>&1
else
	fail "fds: start a pod container"
fi

# ==== 3. CVE-2021-30465: mount destinations through symlinks out of the rootfs ===============
echo "20-hardening: part 3 starts after ${SECONDS}s" >&2

OUT1=$TEST_TMP/outside1
mkdir -p "$OUT1"
echo "$TOKEN" >"$OUT1/marker"
# outside_clean DIR: nothing was made in DIR and its marker is intact.
outside_clean() {
	local d=$1 entries
	entries=$(ls -A "$d" | lines)
	[ "$entries" = marker ] || { echo "$d holds: $entries" >&2; return 1; }
	[ "$(cat "$d/marker")" = "$TOKEN" ] || { echo "$d/marker changed" >&2; return 1; }
}
not() { ! "$@" 2>/dev/null; }
# unmounted DIR: no mount at or under DIR on the host.
unmounted() {
	local d=$1
	! awk -v d="$d" '$5 == d || index($5, d "/") == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo ||
		{ echo "a mount at or under $d on the host" >&2; return 1; }
}
# Control: both detectors notice a naive runtime's work — a host-side `mkdir -p` through such a
# symlink makes a directory outside, and a mount there shows on the host.
OUT0=$TEST_TMP/outside0
mkdir -p "$OUT0" "$TEST_TMP/ctlroot"
echo "$TOKEN" >"$OUT0/marker"
ln -s "$OUT0" "$TEST_TMP/ctlroot/abs"
mkdir -p "$TEST_TMP/ctlroot/abs/sub"
check "symlink control: a host-side mkdir through the symlink is seen outside" not outside_clean "$OUT0"
if mount -t tmpfs -o size=64k kt-ctl "$OUT0/sub"; then
	CTL_MOUNT=$OUT0/sub
	check "symlink control: a mount there is seen on the host" not unmounted "$OUT0"
	umount "$OUT0/sub" && CTL_MOUNT=""
else
	fail "symlink control: a mount there is seen on the host" "mount tmpfs on $OUT0/sub failed"
fi
mk sym sh -c 'grep -E " kt-sym-(abs|rel) " /proc/self/mountinfo | while read -r _ _ _ _ mp _; do echo "$mp"; done'
ln -s "$OUT1" "$TEST_TMP/sym/rootfs/abs"
ln -s "../../../../../../../../../../../..$OUT1" "$TEST_TMP/sym/rootfs/rel"
check_eq "symlink control: a host-side resolution of rootfs/abs/sub leaves the rootfs" "$OUT1/sub" \
	"$(readlink -m "$TEST_TMP/sym/rootfs/abs/sub")"
bundle_set sym '.mounts += [{destination: "/abs/sub", type: "tmpfs", source: "kt-sym-abs", options: ["size=64k"]},
	{destination: "/rel/sub", type: "tmpfs", source: "kt-sym-rel", options: ["size=64k"]}]'
out=$(run_in sym "$(cid sym)" 2>&1)
rc=$?
check "symlink: absolute and relative symlinks out of the rootfs: nothing made outside" outside_clean "$OUT1"
check "symlink: ... and nothing mounted outside" unmounted "$OUT1"
if [ $rc -eq 0 ]; then
	# Both resolve inside the rootfs: at /outside1/sub within it (the container's view).
	check_eq "symlink: both mounts resolved inside the rootfs" "$OUT1/sub|$OUT1/sub" "$(lines <<<"$out")"
else
	ok "symlink: refused (status $rc): $out"
fi

# The race: a host process swaps rootfs/mnt/race between a directory and a symlink to the outside
# while containers with a mount at /mnt/race/sub are created.
OUT2=$TEST_TMP/outside2
mkdir -p "$OUT2"
echo "$TOKEN" >"$OUT2/marker"
mk race sh -c 'grep -c " kt-race " /proc/self/mountinfo'
mkdir -p "$TEST_TMP/race/rootfs/mnt/race"
ln -s "$OUT2" "$TEST_TMP/race/rootfs/mnt/race-alt"
bundle_set race '.mounts += [{destination: "/mnt/race/sub", type: "tmpfs", source: "kt-race", options: ["size=64k"]}]'
"$BUILD/tests/helpers/attack" swap "$TEST_TMP/race/rootfs/mnt/race" "$TEST_TMP/race/rootfs/mnt/race-alt" 120 \
	>"$TEST_TMP/swap.out" 2>&1 &
SWAP_PID=$!
runs=0 inside=0 refused=0 lost=0
for i in $(seq 1 50); do
	bundle_set race '.linux.cgroupsPath = $p' --arg p "$CG_BASE/race$i"
	out=$(run_in race "$(cid "race$i")" 2>&1)
	rc=$?
	runs=$((runs + 1))
	if [ $rc -ne 0 ]; then
		refused=$((refused + 1))
	elif [ "$out" = 1 ]; then
		inside=$((inside + 1))
	else
		lost=$((lost + 1))
		echo "race run $i: the mount is not in the container: $out" >&2
	fi
done
kill -TERM "$SWAP_PID" 2>/dev/null
wait "$SWAP_PID" 2>/dev/null
SWAP_PID=""
echo "race: $runs runs, $inside with the mount inside, $refused refused, $lost without it; $(cat "$TEST_TMP/swap.out")" >&2
check_match "race: the swapper ran throughout" '^swapped [0-9]{3,}' "$(cat "$TEST_TMP/swap.out")"
check "race: after $runs runs ($refused refused), nothing mounted at the outside target" unmounted "$OUT2"
# CVE-2024-45310 (runc < 1.1.14): the directories on the way are made inside the root too.
check "race: ... and nothing made in it" outside_clean "$OUT2"
check_eq "race: every container that ran had its mount inside the rootfs" 0 "$lost"
check "race: at least one container ran" test "$inside" -gt 0

# ==== 4. CVE-2022-0811: sysctls ===============================================================
echo "20-hardening: part 4 starts after ${SECONDS}s" >&2

host_sysctl() { cat "/proc/sys/${1//.//}"; }
saved_sysctl() {
	local kv
	for kv in "${SYSCTL_SAVE[@]}"; do
		[ "${kv%%=*}" = "$1" ] && printf '%s\n' "${kv#*=}"
	done
}
SYSCTL_SCRIPT='for k in "$@"; do cat "/proc/sys/$k"; done'
mk sysctl true
# no hostname: it would need the uts namespace that one case drops
bundle_set sysctl 'del(.hostname)'
cp "$TEST_TMP/sysctl/config.json" "$TEST_TMP/sysctl/config.base.json"
# sysctl_case NAME NS-FILTER SYSCTL-JSON [KEY...]: run with linux.sysctl = SYSCTL-JSON and the
# namespaces NS-FILTER keeps (a jq filter on .linux.namespaces); the container prints the value
# of each KEY (a path under /proc/sys). Sets OUT and RC.
sysctl_case() {
	local name=$1 nsf=$2 sj=$3
	shift 3
	cp "$TEST_TMP/sysctl/config.base.json" "$TEST_TMP/sysctl/config.json" || return 1
	bundle_set sysctl ".linux.sysctl = \$s | .linux.namespaces = (.linux.namespaces | $nsf)
		| .process.args = [\"sh\", \"-c\", \$script, \"sh\"] + \$keys | .linux.cgroupsPath = \$p" \
		--argjson s "$sj" --arg script "$SYSCTL_SCRIPT" --arg p "$CG_BASE/sysctl-${name//[^a-z0-9]/-}" \
		--argjson keys "$(printf '%s\n' "$@" | jq -R 'select(length > 0)' | jq -s .)" || return 1
	OUT=$(run_in sysctl "$(cid sysctl)" 2>&1)
	RC=$?
}
ALL='.'
NO_NET='map(select(.type != "network"))'
NO_IPC='map(select(.type != "ipc"))'
core0=$(host_sysctl kernel.core_pattern)
# refused NAME NS-FILTER SYSCTL-JSON KEY: the case is refused with an error naming KEY, and the
# host's value of every saved sysctl is unchanged.
refused() {
	local name=$1 nsf=$2 sj=$3 key=$4 kv k
	sysctl_case "$name" "$nsf" "$sj"
	if [ $RC -eq 0 ]; then
		fail "sysctl: $name is refused" "it ran: $OUT"
	elif [[ $OUT != *"$key"* ]]; then
		fail "sysctl: $name is refused with an error naming $key" "status $RC: $OUT"
	else
		ok "sysctl: $name is refused with an error naming $key"
	fi
	local changed=""
	for kv in "${SYSCTL_SAVE[@]}"; do
		k=${kv%%=*}
		[ "$(host_sysctl "$k")" = "${kv#*=}" ] && continue
		changed="$changed $k"
		# put it back now: the host must not keep it, nor the next case report it again
		printf '%s\n' "${kv#*=}" >"/proc/sys/${k//.//}"
	done
	check_eq "sysctl: $name: the host's sysctls are unchanged" "" "${changed# }"
}
overcommit=$(($(host_sysctl vm.overcommit_memory) == 0 ? 1 : 0))
forward=$(($(host_sysctl net.ipv4.ip_forward) == 0 ? 1 : 0))
refused "kernel.core_pattern (not namespaced)" "$ALL" '{"kernel.core_pattern": "|/tmp/kt-core %p"}' kernel.core_pattern
refused "vm.overcommit_memory (not namespaced)" "$ALL" "{\"vm.overcommit_memory\": \"$overcommit\"}" vm.overcommit_memory
refused "net.ipv4.ip_forward without a network namespace" "$NO_NET" "{\"net.ipv4.ip_forward\": \"$forward\"}" net.ipv4.ip_forward
refused "kernel.shm_rmid_forced without an ipc namespace" "$NO_IPC" '{"kernel.shm_rmid_forced": "1"}' kernel.shm_rmid_forced
refused "kernel.shmmax without an ipc namespace" "$NO_IPC" '{"kernel.shmmax": "4096"}' kernel.shmmax
# Namespaces joined by path that are the host's own (this shell runs in them: /proc/1 may be
# out of reach in a sandbox) are not the container's.
HOST_NET="map(if .type == \"network\" then .path = \"/proc/$$/ns/net\" else . end)"
HOST_IPC="map(if .type == \"ipc\" then .path = \"/proc/$$/ns/ipc\" else . end)"
NO_UTS='map(select(.type != "uts"))'
refused "net.core.somaxconn in the host's network namespace joined by path" "$HOST_NET" \
	"{\"net.core.somaxconn\": \"$(($(host_sysctl net.core.somaxconn) + 1))\"}" net.core.somaxconn
refused "kernel.msgmnb in the host's ipc namespace joined by path" "$HOST_IPC" \
	"{\"kernel.msgmnb\": \"$(($(host_sysctl kernel.msgmnb) + 1))\"}" kernel.msgmnb
refused "kernel.domainname without a uts namespace" "$NO_UTS" '{"kernel.domainname": "kt-evil"}' kernel.domainname
refused "fs.mqueue.queues_max without an ipc namespace" "$NO_IPC" \
	"{\"fs.mqueue.queues_max\": \"$(($(host_sysctl fs.mqueue.queues_max) + 1))\"}" fs.mqueue.queues_max
refused "kernel/core_pattern (the slash form)" "$ALL" '{"kernel/core_pattern": "|/tmp/kt-core"}' kernel/core_pattern
refused "a value smuggling a second setting with '+'" "$ALL" \
	'{"kernel.shm_rmid_forced": "1+kernel.core_pattern=|/tmp/kt-core"}' kernel.shm_rmid_forced
refused "a value smuggling a second setting after a newline" "$ALL" \
	'{"kernel.shm_rmid_forced": "1\nkernel.core_pattern=|/tmp/kt-core"}' kernel.shm_rmid_forced
refused "a value smuggling a second line (CR LF)" "$ALL" \
	'{"kernel.shm_rmid_forced": "1\r\nkernel.core_pattern=|/tmp/kt-core"}' kernel.shm_rmid_forced
refused "a key climbing out of net/ ('net.ipv4/../../kernel/core_pattern')" "$ALL" \
	'{"net.ipv4/../../kernel/core_pattern": "|/tmp/kt-core"}' core_pattern
refused "a key with a newline smuggling a second key" "$ALL" \
	'{"net.ipv4.ip_forward\nkernel.core_pattern": "1"}' ip_forward
# JSON strings may hold NUL bytes; a C string would silently end there.
refused "a value hiding a second setting after a NUL byte" "$ALL" \
	'{"kernel.shm_rmid_forced": "1\u0000kernel.core_pattern=|/tmp/kt-core"}' kernel.shm_rmid_forced
refused "a key hiding a second key after a NUL byte" "$ALL" \
	'{"kernel.shm_rmid_forced\u0000kernel.core_pattern": "1"}' kernel.shm_rmid_forced
check_eq "sysctl: kernel.core_pattern on the host is unchanged after all" "$core0" "$(host_sysctl kernel.core_pattern)"
# Controls: namespaced sysctls of namespaces the container owns are applied, inside only.
sysctl_case ok "$ALL" "{\"net/ipv4/ip_forward\": \"$forward\", \"kernel.shm_rmid_forced\": \"1\"}" \
	net/ipv4/ip_forward kernel/shm_rmid_forced
check_eq "sysctl control: net/ipv4/ip_forward (slash form) and kernel.shm_rmid_forced (own netns, ipc ns) are set inside" \
	"$forward|1" "$(lines <<<"$OUT")"
check_eq "sysctl control: ... and not on the host" "$(saved_sysctl net.ipv4.ip_forward)|$(saved_sysctl kernel.shm_rmid_forced)" \
	"$(host_sysctl net.ipv4.ip_forward)|$(host_sysctl kernel.shm_rmid_forced)"

# ==== 5. Masked and read-only paths without CAP_SYS_ADMIN ====================================
echo "20-hardening: part 5 starts after ${SECONDS}s" >&2

# Masked paths that exist on this kernel: a file (masked with /dev/null) and a directory with
# content (masked with an empty tmpfs).
MASK_FILE="" MASK_DIR=""
for p in /proc/kcore /proc/keys /proc/timer_list /proc/sched_debug /proc/latency_stats /proc/timer_stats; do
	[ -f "$p" ] && MASK_FILE=$p && break
done
for p in /sys/firmware /proc/acpi /proc/scsi /proc/asound; do
	[ -d "$p" ] && [ -n "$(ls -A "$p")" ] && MASK_DIR=$p && break
done
echo "masks: file $MASK_FILE, directory $MASK_DIR" >&2
check "masks: this kernel has a masked file and a non-empty masked directory to attack" \
	test -n "$MASK_FILE" -a -n "$MASK_DIR"
# One line per attempt: NAME=STATUS, then what the masks look like afterwards. The root is
# remounted with "bind" only: with CAP_SYS_ADMIN (the control) a plain remount would reconfigure
# the host filesystem's superblock.
MASK_SCRIPT='
r() { n=$1; shift; "$@" >/dev/null 2>&1; echo "$n=$?"; }
f=$1 d=$2
mkdir -p /dev/shm/p /dev/shm/s
r userns-possible unshare -Urm true
r umount-file umount "$f"
r umount-l-file umount -l "$f"
r umount-dir umount "$d"
r mount-over-file mount --bind /proc/self/status "$f"
r new-proc mount -t proc proc /dev/shm/p
r remount-rw-sys mount -o remount,rw /proc/sys
r bind-sys mount --bind /proc/sys /dev/shm/s
r remount-rw-root mount -o remount,bind,rw /
r userns-umount-file unshare -Urm umount "$f"
r userns-umount-dir unshare -Urm umount "$d"
r userns-remount-rw-sys unshare -Urm mount -o remount,rw /proc/sys
r userns-remount-rw-sys-bind unshare -Urm mount -o remount,bind,rw /proc/sys
r userns-new-proc unshare -Urmpf mount -t proc proc /dev/shm/p
r userns-remount-rw-root unshare -Urm mount -o remount,bind,rw /
echo "file=$(stat -c %F "$f")"
echo "dir=$(ls -A "$d" | wc -l)"
echo "sys-write=$(probe write /proc/sys/kernel/domainname)"
echo "root-write=$(probe write /etc/kt-hardening)"
'
mk mask sh -c "$MASK_SCRIPT" sh "$MASK_FILE" "$MASK_DIR"
out=$(run_in mask "$(cid mask)" 2>&1)
echo "masked paths, default capabilities:" >&2
sed 's/^/  | /' <<<"$out" >&2
val() { sed -n "s/^$1=//p" <<<"$2" | head -n 1; }
# Without it the userns-* attempts below would fail for another reason than mount locking.
check_eq "masks: the container can make a user and mount namespace of its own" 0 "$(val userns-possible "$out")"
for a in umount-file umount-l-file umount-dir mount-over-file new-proc remount-rw-sys bind-sys remount-rw-root \
	userns-umount-file userns-umount-dir userns-remount-rw-sys userns-remount-rw-sys-bind userns-new-proc \
	userns-remount-rw-root; do
	v=$(val "$a" "$out")
	if [ -n "$v" ] && [ "$v" != 0 ]; then
		ok "masks: '$a' fails without CAP_SYS_ADMIN (status $v)"
	else
		fail "masks: '$a' fails without CAP_SYS_ADMIN" "status '${v:-none}'"
	fi
done
check_eq "masks: $MASK_FILE is still masked (/dev/null) afterwards" "character special file" "$(val file "$out")"
check_eq "masks: $MASK_DIR is still empty afterwards" 0 "$(val dir "$out")"
check_eq "masks: /proc/sys is still read-only afterwards (EROFS)" 30 "$(val sys-write "$out")"
check_eq "masks: the read-only root is still read-only afterwards (EROFS)" 30 "$(val root-write "$out")"

# Control: the same attempts with CAP_SYS_ADMIN succeed, and the checks above see it.
bundle_set mask '.process.capabilities |= with_entries(.value += ["CAP_SYS_ADMIN"]) | .linux.cgroupsPath = $p' \
	--arg p "$CG_BASE/mask-admin"
out=$(run_in mask "$(cid mask-admin)" 2>&1)
echo "masked paths, with CAP_SYS_ADMIN:" >&2
sed 's/^/  | /' <<<"$out" >&2
check_eq "masks control: with CAP_SYS_ADMIN, 'umount $MASK_FILE' succeeds" 0 "$(val umount-file "$out")"
check "masks control: ... $MASK_FILE is then not /dev/null ($(val file "$out"))" \
	test "$(val file "$out")" != "character special file" -a -n "$(val file "$out")"
check_eq "masks control: ... 'umount $MASK_DIR' succeeds" 0 "$(val umount-dir "$out")"
check "masks control: ... $MASK_DIR then shows its entries ($(val dir "$out"))" test "$(val dir "$out")" -gt 0
check_eq "masks control: ... 'mount -o remount,rw /proc/sys' succeeds" 0 "$(val remount-rw-sys "$out")"
check_eq "masks control: ... and /proc/sys is then writable" ok "$(val sys-write "$out")"
check_eq "masks control: ... and so is the root after 'mount -o remount,bind,rw /'" "0 ok" \
	"$(val remount-rw-root "$out") $(val root-write "$out")"
echo "20-hardening: done after ${SECONDS}s" >&2
exit 0
