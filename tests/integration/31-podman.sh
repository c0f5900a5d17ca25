#!/bin/bash
# 31-podman.sh — podman (Debian's 4.3, through conmon) drives kelp unchanged: `podman --runtime
# $KELP` with private storage under $TEST_TMP and a busybox image built without a registry.
# Checks: run with output and exit code, detached run and kelp's own `state` of it, exec with
# output and exit code, logs (stdout and stderr), pause and unpause, stop (the container's SIGTERM
# trap: exit 143), kill, rm, and `run -it` and `exec -it` on a terminal (script(1) gives podman
# a tty).
#
# Podman gives the runtime no --root, so kelp keeps this test's containers in its default root
# (/run/kelp); their ids are podman's random 64-hex ids. Machine facts baked in: cgroupfs (no
# systemd as pid 1), the file events backend (no journald), --network none (the runtime is under
# test, not CNI), and explicit nofile/nproc limits: podman's default of 1048576 is above this
# machine's hard limit, which a runtime cannot raise without CAP_SYS_RESOURCE (runc fails too).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/_oci-image.sh"
require_root
# scripts/deps.sh installs the clients: a missing one is a failure, not a skip.
if ! command -v podman >/dev/null || ! command -v conmon >/dev/null; then
	fail "podman and conmon are installed" "run scripts/deps.sh"
	exit 1
fi

B=$TEST_TMP/podman
CGP=/kt-podman-$$            # every container's cgroup parent: one place to check and clean
IMG=localhost/kelp-busybox:1
mkdir -p "$B"/{root,runroot,tmp} || exit 1

GLOBAL=(--root "$B/root" --runroot "$B/runroot" --tmpdir "$B/tmp" --storage-driver overlay
	--events-backend file --cgroup-manager cgroupfs --runtime "$KELP")
RUNOPTS=(--network none --cgroup-parent "$CGP" --ulimit nofile=1024:1024 --ulimit nproc=4096:4096)
pm() { timeout "${PM_TIMEOUT:-60}" podman "${GLOBAL[@]}" "$@"; }
status() { pm inspect -f '{{.State.Status}}' "$1" 2>/dev/null; }
exit_code() { pm inspect -f '{{.State.ExitCode}}' "$1" 2>/dev/null; }
wait_pm() { # NAME STATUS: poll podman's status for up to 10 s
	local i
	for i in $(seq 1 100); do
		[ "$(status "$1")" = "$2" ] && return 0
		sleep 0.1
	done
	echo "wait_pm $1: wanted $2, last '$(status "$1")'" >&2
	return 1
}
# kelp's own view, in the default root podman lets it use.
rt_state() { timeout 10 "$KELP" state "$1" 2>/dev/null | jq -r ".${2:-status} // empty" 2>/dev/null; }
P1=kt-p1-$$ P2=kt-p2-$$ P3=kt-p3-$$ P4=kt-p4-$$

kt_extra_cleanup() {
	local m id f ids
	ids=$(PM_TIMEOUT=30 pm ps -aq --no-trunc 2>/dev/null)
	# shellcheck disable=SC2086
	[ -z "$ids" ] || PM_TIMEOUT=30 pm rm -f -t 0 $ids >/dev/null 2>&1
	# Should podman have failed to: the runtime's containers, then their conmons.
	for id in $ids; do
		timeout 30 "$KELP" state "$id" >/dev/null 2>&1 && timeout 30 "$KELP" delete -f "$id" >/dev/null 2>&1
	done
	for f in "$B"/runroot/overlay-containers/*/userdata/conmon.pid; do
		[ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null
	done
	# Storage mounts (overlay, the containers' shm): whatever is left under our temp dir.
	for m in $(awk -v t="$TEST_TMP/" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo | sort -r); do
		umount "$m" 2>/dev/null || umount -l "$m"
	done
	for m in $(cg_mounts); do
		[ -d "$m$CGP" ] && find "$m$CGP" -depth -type d -exec rmdir {} \; 2>/dev/null
	done
	return 0
}

echo "podman $(podman --version | awk '{ print $3 }'), conmon $(conmon --version | awk 'NR == 1 { print $3 }'), runtime $KELP" >&2

# ---- the image ----------------------------------------------------------------------------

tar=$(oci_image_archive "$B") || {
	fail "busybox OCI image built"
	exit 1
}
iid=$(pm pull -q "oci-archive:$tar" 2>&1 | tail -n 1)
pm tag "$iid" "$IMG" >&2 2>&1
if pm image exists "$IMG"; then
	ok "image loaded as $IMG"
else
	fail "image loaded as $IMG" "pull said: $iid"
	exit 1
fi

# ---- run: output and exit code --------------------------------------------------------------

out=$(pm run --rm "${RUNOPTS[@]}" "$IMG" sh -c 'echo hello-kelp; echo pid=$$' 2>&1)
rc=$?
if [ $rc -eq 0 ] && [ "$(printf '%s\n' "$out" | lines)" = "hello-kelp|pid=1" ]; then
	ok "run --rm: output, sh is pid 1"
else
	fail "run --rm: output, sh is pid 1" "status $rc, output: $out"
fi
pm run --rm "${RUNOPTS[@]}" "$IMG" sh -c 'exit 7' >&2 2>&1
check_eq "run --rm: exit code 7 reaches podman" 7 "$?"

# ---- detached run, kelp's state, exec ------------------------------------------------------

if pm run -d --name "$P1" "${RUNOPTS[@]}" "$IMG" sleep 3600 >&2 && wait_pm "$P1" running; then
	ok "run -d: running"
else
	fail "run -d: running"
fi
id1=$(pm inspect -f '{{.Id}}' "$P1" 2>/dev/null)
check_eq "kelp state (default root) of podman's container: running" running "$(rt_state "$id1")"
check_eq "kelp state: pid is podman's pid" "$(pm inspect -f '{{.State.Pid}}' "$P1" 2>/dev/null)" \
	"$(rt_state "$id1" pid)"

out=$(pm exec "$P1" sh -c 'echo exec-ok; cat /proc/1/comm' 2>&1)
rc=$?
if [ $rc -eq 0 ] && [ "$(printf '%s\n' "$out" | lines)" = "exec-ok|sleep" ]; then
	ok "exec: output, pid 1 is sleep"
else
	fail "exec: output, pid 1 is sleep" "status $rc, output: $out"
fi
pm exec "$P1" sh -c 'exit 3' >&2 2>&1
check_eq "exec: exit code 3 reaches podman" 3 "$?"

# on_tty NAME CODE PODMAN-ARGS...: run podman on a new pty (script(1)) with a command that prints
# its tty and exits CODE; checks the exit code and that stdin and stdout were a pty.
on_tty() {
	local name=$1 code=$2 cmd out rc
	shift 2
	cmd=$(printf '%q ' timeout --foreground 60 podman "${GLOBAL[@]}" "$@" \
		sh -c "tty; test -t 0 && test -t 1 && echo both-tty; exit $code")
	# --foreground: else timeout's own process group is not the terminal's foreground one, and the
	# client's raw-mode tcsetattr stops it with SIGTTOU (bash execs timeout and hides this; dash
	# doesn't), so SHELL is fixed too.
	SHELL=/bin/sh script -qefc "$cmd" /dev/null </dev/null >"$TEST_TMP/tty.out" 2>&1
	rc=$?
	# The terminal adds CRs, and may echo the end of script's empty stdin as "^@" before the
	# container's first line: neither is the container's.
	out=$(tr -d '\r' <"$TEST_TMP/tty.out")
	out=${out#^@}
	check_eq "$name: exit code $code reaches podman" "$code" "$rc"
	check_match "$name: the process's stdin and stdout are a pty" $'(^|\n)/dev/pts/[0-9]+\nboth-tty(\n|$)' "$out"
}

# A terminal for an exec: kelp exec --tty --console-socket.
on_tty "exec -it" 6 exec -it "$P1"

# ---- logs ------------------------------------------------------------------------------------

pm run -d --name "$P2" "${RUNOPTS[@]}" "$IMG" sh -c 'echo log-out; echo log-err >&2' >&2 && wait_pm "$P2" exited
# The two streams are separate pipes, so their order is not fixed: compare them sorted.
check_eq "logs: the container's stdout and stderr lines" "log-err|log-out" "$(pm logs "$P2" 2>&1 | sort | lines)"
check_eq "logs: the container exited with code 0" "exited 0" "$(status "$P2") $(exit_code "$P2")"

# ---- pause and unpause -----------------------------------------------------------------------

if pm pause "$P1" >&2 2>&1 && wait_pm "$P1" paused; then
	ok "pause: paused"
else
	fail "pause: paused" "status '$(status "$P1")'"
fi
check_eq "pause: kelp state paused" paused "$(rt_state "$id1")"
if pm unpause "$P1" >&2 2>&1 && wait_pm "$P1" running; then
	ok "unpause: running"
else
	fail "unpause: running" "status '$(status "$P1")'"
fi
check_eq "unpause: kelp state running" running "$(rt_state "$id1")"

# ---- stop: SIGTERM reaches the container's trap ----------------------------------------------

if pm run -d --name "$P3" "${RUNOPTS[@]}" "$IMG" sh -c 'trap "exit 143" TERM; while :; do sleep 0.1; done' >&2 &&
	wait_pm "$P3" running; then
	t0=$(date +%s)
	pm stop -t 10 "$P3" >&2 2>&1
	t1=$(date +%s)
	check_eq "stop: exited with the SIGTERM trap's code 143" "exited 143" "$(status "$P3") $(exit_code "$P3")"
	# Had SIGTERM been lost, podman would have waited the whole 10 s and sent SIGKILL (137).
	check_match "stop: done before the 10 s timeout" '^[0-9]$' "$((t1 - t0))"
else
	fail "stop: exited with the SIGTERM trap's code 143" "the container did not run: status '$(status "$P3")'"
fi

# ---- kill, rm --------------------------------------------------------------------------------

if pm kill -s KILL "$P1" >&2 2>&1 && wait_pm "$P1" exited; then
	ok "kill -s KILL: exited"
else
	fail "kill -s KILL: exited" "status '$(status "$P1")'"
fi
check_eq "kill -s KILL: exit code 137" 137 "$(exit_code "$P1")"
if pm rm "$P1" >&2 && ! pm container exists "$P1"; then
	ok "rm"
else
	fail "rm"
fi
check_eq "rm: kelp has no state of it" "" "$(rt_state "$id1")"
check_eq "rm: the runtime's state dir is gone" "" "$(ls -d "/run/$(basename "$KELP")/$id1" 2>/dev/null)"

# ---- run -it on a terminal -------------------------------------------------------------------
# script(1) runs podman on a new pty; the container gets its own terminal through kelp's
# --console-socket, and what it prints comes back through conmon.

on_tty "run -it" 5 run -it --name "$P4" "${RUNOPTS[@]}" "$IMG"
pm rm "$P4" >&2

# The exited containers' cleanup (`kelp delete`) runs asynchronously after their exit; `rm` does
# it at once. Then no container cgroup may be left. conmon's own ($CGP/conmon) is podman's.
check "rm of the exited containers" pm rm "$P2" "$P3"
check_eq "no container cgroup left under $CGP" "" \
	"$(for m in $(cg_mounts); do [ -d "$m$CGP" ] && find "$m$CGP" -mindepth 1 -type d -name 'libpod-*'; done)"
exit 0
