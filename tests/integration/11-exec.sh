#!/bin/bash
# 11-exec.sh — exec into a running container: output and exit status, the container's pid
# namespace, --env, --cwd, --user, --detach --pid-file, --process, --tty --console-socket, and
# exec into a stopped container.
. "$(dirname "$0")/lib.sh"
require_root

n=main
id=$(cid $n)
mk $n sleep 1000
cd "$TEST_TMP/$n" || exit 1
if ! { kelp_rt run --detach "$id" >&2 && wait_status "$id" running; }; then
	fail "container for exec is running"
	exit 1
fi
pid=$(st "$id" pid)

out=$(kelp_rt exec "$id" echo hello-exec 2>"$TEST_TMP/err")
rc=$?
check_eq "exec: exit status 0" 0 "$rc"
check_eq "exec: output" hello-exec "$out"

kelp_rt exec "$id" sh -c 'exit 3' >/dev/null 2>&1
check_eq "exec: exit status passes through (exit 3)" 3 "$?"

kelp_rt exec "$id" sh -c 'kill -9 $$' >/dev/null 2>&1
check_eq "exec: killed by SIGKILL exits 128+9" 137 "$?"

out=$(kelp_rt exec "$id" ps -o pid,args 2>&1)
check_eq "exec: ps shows pid 1 is the container's init" "1 sleep 1000" \
	"$(awk '$1 == 1 { $1 = $1; print }' <<<"$out")"
check_eq "exec: pid namespace is init's" "$(readlink "/proc/$pid/ns/pid")" \
	"$(kelp_rt exec "$id" readlink /proc/self/ns/pid 2>&1)"
check_eq "exec: mount namespace is init's" "$(readlink "/proc/$pid/ns/mnt")" \
	"$(kelp_rt exec "$id" readlink /proc/self/ns/mnt 2>&1)"
check_eq "exec: hostname is the container's" kelp "$(kelp_rt exec "$id" hostname 2>&1)"
check_eq "exec: the process is in the container's cgroup" "4:memory:$CG_BASE/$n" \
	"$(kelp_rt exec "$id" sh -c 'grep ^4:memory: /proc/self/cgroup' 2>&1 |
		sed 's/^[0-9]*:/4:/')"

check_eq "exec --env" "bar|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
	"$(kelp_rt exec --env FOO=bar "$id" sh -c 'echo "$FOO|$PATH"' 2>&1)"
check_eq "exec --env overrides a config variable" "dumb" \
	"$(kelp_rt exec --env TERM=dumb "$id" sh -c 'echo "$TERM"' 2>&1)"
check_eq "exec --cwd" /tmp "$(kelp_rt exec --cwd /tmp "$id" probe cwd 2>&1)"
check_eq "exec: default cwd is process.cwd" / "$(kelp_rt exec "$id" probe cwd 2>&1)"
check_eq "exec --user 65534:65534" "uid=65534 gid=65534 euid=65534 egid=65534 groups=" \
	"$(kelp_rt exec --user 65534:65534 "$id" probe ids 2>&1)"
check_eq "exec: default user is process.user" "uid=0 gid=0 euid=0 egid=0 groups=" \
	"$(kelp_rt exec "$id" probe ids 2>&1)"
check_eq "exec: capabilities as in process.capabilities" 00000000a80425fb \
	"$(kelp_rt exec "$id" probe caps eff 2>&1)"
check_eq "exec: noNewPrivileges as in config" 1 "$(kelp_rt exec "$id" probe nnp 2>&1)"

# --detach --pid-file
rm -f "$TEST_TMP/x.pid"
kelp_rt exec --detach --pid-file "$TEST_TMP/x.pid" "$id" sleep 1000 >"$TEST_TMP/out" 2>&1
check_eq "exec --detach exits 0 at once" 0 "$?"
xpid=$(cat "$TEST_TMP/x.pid" 2>/dev/null)
check_match "exec --pid-file holds a pid" '^[1-9][0-9]*$' "$xpid"
if [ -n "$xpid" ] && alive "$xpid"; then
	ok "exec --detach: the process is alive"
	check_eq "exec --detach: pid file's process is sleep 1000" "sleep 1000" \
		"$(tr '\0' ' ' <"/proc/$xpid/cmdline" | sed 's/ $//')"
	check_eq "exec --detach: the process is in the container's cgroup" "$CG_BASE/$n" \
		"$(awk -F: '$2 == "pids" { print $3 }' "/proc/$xpid/cgroup")"
	check_eq "exec --detach: the process is in the container's pid namespace" \
		"$(readlink "/proc/$pid/ns/pid")" "$(readlink "/proc/$xpid/ns/pid")"
	check "exec --detach: ps lists it" grep -qw "$xpid" <<<"$(kelp_rt ps --format json "$id" | jq -r '.[]')"
	kill -9 "$xpid"
else
	fail "exec --detach: the process is alive" "pid '$xpid'"
fi

# --process FILE
jq -n '{ terminal: false, user: { uid: 65534, gid: 65534 }, args: ["sh", "-c", "echo \"$X\"; pwd; id -u"],
	env: ["PATH=/bin", "X=from-process-json"], cwd: "/tmp" }' >"$TEST_TMP/process.json"
out=$(kelp_rt exec --process "$TEST_TMP/process.json" "$id" 2>&1)
check_eq "exec --process FILE: args, env, cwd, user" "from-process-json|/tmp|65534" "$(tr '\n' '|' <<<"$out" | sed 's/|$//')"

# --tty --console-socket. runc accepts a console socket only with --detach; kelp also without,
# and then waits for the command and returns its status.
# tty_exec NAME EXEC-OPTS...: run `sh -c 'tty; echo tty-ok; exit 5'` with a console socket
# served by recvtty; sets tty_rc and tty_out.
tty_exec() {
	local sock=$TEST_TMP/tty-$1.sock
	shift
	"$BUILD/tests/helpers/recvtty" "$sock" >"$TEST_TMP/tty.out" 2>&1 &
	rt_pid=$!
	for _ in $(seq 100); do
		[ -S "$sock" ] && break
		sleep 0.05
	done
	timeout 20 "$KELP" --root "$STATE_ROOT" exec "$@" --tty --console-socket "$sock" "$id" \
		sh -c 'tty; echo tty-ok; exit 5' >&2
	tty_rc=$?
	# recvtty ends when the pty's last slave fd closes, i.e. when the command has exited.
	for _ in $(seq 200); do
		alive $rt_pid || break
		sleep 0.05
	done
	kill $rt_pid 2>/dev/null
	wait $rt_pid 2>/dev/null
	rt_pid=
	tty_out=$(tr -d '\r' <"$TEST_TMP/tty.out")
}
tty_exec d --detach
check_eq "exec --detach --tty --console-socket exits 0" 0 "$tty_rc"
check_match "exec --tty: recvtty received the pty" 'recvtty: received pty master' "$tty_out"
check_match "exec --tty: the command's stdin is a pty" $'\n/dev/pts/[0-9]+\n' "$tty_out"
check_match "exec --tty: the command's output goes to the pty" $'\ntty-ok' "$tty_out"
if [ "$(basename "$KELP")" = kelp ]; then
	tty_exec f
	check_eq "exec --tty --console-socket (foreground, kelp only): exit status passes through (exit 5)" 5 "$tty_rc"
	check_match "exec --tty --console-socket (foreground, kelp only): output via the pty" \
		$'received pty master.*\n/dev/pts/[0-9]+\ntty-ok' "$tty_out"
else
	skip "exec --tty --console-socket (foreground, kelp only)" "$(basename "$KELP") needs --detach with --console-socket"
fi

# exec into a stopped container
n=stopped
id2=$(cid $n)
mk $n true
cd "$TEST_TMP/$n" || exit 1
if kelp_rt run --detach "$id2" >&2 && wait_status "$id2" stopped; then
	if kelp_rt exec "$id2" echo nope >"$TEST_TMP/out" 2>"$TEST_TMP/err"; then
		fail "exec into a stopped container fails" "exit 0, output: $(cat "$TEST_TMP/out")"
	else
		ok "exec into a stopped container fails"
	fi
	check_eq "exec into a stopped container: nothing ran" "" "$(cat "$TEST_TMP/out")"
	check_match "exec into a stopped container: error says stopped/not running" 'stopped|not running' "$(cat "$TEST_TMP/err")"
else
	fail "exec into a stopped container: container reached stopped"
fi

kelp_rt delete -f "$id" >&2
exit 0
