#!/bin/bash
# 14-process.sh — the process as config.json describes it, seen from inside: rlimits,
# capabilities, noNewPrivileges, user/groups/umask, cwd, env, seccomp (syscall and argument
# filters), and a terminal (console socket with create+start; run in the foreground on a tty).
. "$(dirname "$0")/lib.sh"
require_root

# run_in NAME: `run` the bundle NAME in the foreground; its stdout; its stderr in $TEST_TMP/NAME.err.
run_in() { (cd "$TEST_TMP/$1" && kelp_rt run "$(cid "$1")" 2>"$TEST_TMP/$1.err"); }
is_kelp() { [ "$(basename "$KELP")" = kelp ]; }

# ---- rlimits ---------------------------------------------------------------------------------

mk rl probe rlimit NOFILE
bundle_set rl '.process.rlimits = [{ type: "RLIMIT_NOFILE", soft: 512, hard: 1024 }]'
check_eq "rlimit NOFILE soft 512 hard 1024" "512 1024" "$(run_in rl)"

mk rl2 sh -c 'probe rlimit NOFILE; probe rlimit CORE'
bundle_set rl2 '.process.rlimits = [{ type: "RLIMIT_NOFILE", soft: 100, hard: 200 }, { type: "RLIMIT_CORE", soft: 0, hard: 0 }]'
check_eq "two rlimits (NOFILE 100/200, CORE 0/0)" "100 200|0 0" "$(run_in rl2 | lines)"

# Raising a hard limit needs CAP_SYS_RESOURCE, which this machine's root may lack: then kelp
# warns and goes on.
host_hard=$(ulimit -Hn)
if [ "$host_hard" = unlimited ] || [ "$host_hard" -ge 1048576 ]; then
	skip "rlimit above the host's hard limit" "the host's NOFILE hard limit ($host_hard) cannot be exceeded"
elif capsh --has-p=cap_sys_resource 2>/dev/null; then
	skip "rlimit above the host's hard limit" "this process has CAP_SYS_RESOURCE: raising works"
elif ! is_kelp; then
	skip "rlimit above the host's hard limit" "kelp-only behaviour (warn and go on)"
else
	mk rlhi sh -c 'probe rlimit NOFILE; echo ran'
	bundle_set rlhi '.process.rlimits = [{ type: "RLIMIT_NOFILE", soft: $s, hard: $h }]' \
		--argjson s $((host_hard + 10000)) --argjson h $((host_hard + 20000))
	out=$(run_in rlhi)
	rc=$?
	check_eq "rlimit above the host's hard limit: the container runs (exit 0)" "0 ran" "$rc $(sed -n 2p <<<"$out")"
	check_match "rlimit above the host's hard limit: stderr warns about RLIMIT_NOFILE" 'RLIMIT_NOFILE|NOFILE' \
		"$(cat "$TEST_TMP/rlhi.err")"
	echo "rlimit inside after the warning: $(sed -n 1p <<<"$out")" >&2
fi

# ---- capabilities, no_new_privs ---------------------------------------------------------------

mk caps probe caps
bundle_set caps '.process.capabilities = { bounding: ["CAP_KILL"], effective: ["CAP_KILL"],
	permitted: ["CAP_KILL"], inheritable: ["CAP_KILL"], ambient: ["CAP_KILL"] }'
out=$(run_in caps)
check_eq "only CAP_KILL: CapEff" 0000000000000020 "$(grep -o 'CapEff=[0-9a-f]*' <<<"$out" | cut -d= -f2)"
check_eq "only CAP_KILL: all sets" \
	"CapEff=0000000000000020 CapPrm=0000000000000020 CapBnd=0000000000000020 CapAmb=0000000000000020 CapInh=0000000000000020" "$out"
mk capsdef probe caps eff
check_eq "default bundle: the 14 default capabilities" 00000000a80425fb "$(run_in capsdef)"
mk nocaps sh -c 'probe caps; probe write /proc/sys/kernel/hostname'
bundle_set nocaps '.process.capabilities = { bounding: [], effective: [], permitted: [] }'
check_eq "no capabilities at all" \
	"CapEff=0000000000000000 CapPrm=0000000000000000 CapBnd=0000000000000000 CapAmb=0000000000000000 CapInh=0000000000000000" \
	"$(run_in nocaps | sed -n 1p)"

mk nnp probe nnp
check_eq "noNewPrivileges true: no_new_privs is 1" 1 "$(run_in nnp)"
mk nnp0 probe nnp
bundle_set nnp0 '.process.noNewPrivileges = false'
check_eq "noNewPrivileges false: no_new_privs is 0" 0 "$(run_in nnp0)"

# ---- user, groups, umask, cwd, env -------------------------------------------------------------

mk user sh -c 'probe ids; probe umask; probe cwd; probe caps eff'
bundle_set user '.process.user = { uid: 1000, gid: 1001, additionalGids: [10, 20], umask: 23 } | .process.cwd = "/tmp"'
out=$(run_in user)
check_eq "user: uid/gid/additionalGids" "uid=1000 gid=1001 euid=1000 egid=1001 groups=10,20" "$(sed -n 1p <<<"$out")"
check_eq "user: umask 0027" 0027 "$(sed -n 2p <<<"$out")"
check_eq "cwd /tmp" /tmp "$(sed -n 3p <<<"$out")"
check_eq "non-root user: no effective capabilities" 0000000000000000 "$(sed -n 4p <<<"$out")"
mk umaskdef probe umask
check_eq "umask default 0022" 0022 "$(run_in umaskdef)"

mk env env
bundle_set env '.process.env = ["PATH=/bin", "A=1", "B=two words", "HOME=/root"]'
check_eq "env is exactly process.env, in order" "PATH=/bin|A=1|B=two words|HOME=/root" "$(run_in env | lines)"

# ---- seccomp -----------------------------------------------------------------------------------

seccomp_arches='["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]'
[ "$(uname -m)" = aarch64 ] && seccomp_arches='["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]'
mk sc sh -c 'probe syscall mkdir; probe syscall mkdir /tmp/x; probe syscall getcwd; mkdir /dev/shm/d 2>&1; echo "mkdir=$?"'
bundle_set sc '.linux.seccomp = { defaultAction: "SCMP_ACT_ALLOW", architectures: $a,
	syscalls: [{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: 38 }] }' --argjson a "$seccomp_arches"
bundle_set sc '.root.readonly = false'
out=$(run_in sc)
check_eq "seccomp: mkdir gets errno 38" 38 "$(sed -n 1p <<<"$out")"
check_eq "seccomp: mkdir of another path gets errno 38" 38 "$(sed -n 2p <<<"$out")"
check_eq "seccomp: other syscalls allowed (getcwd)" ok "$(sed -n 3p <<<"$out")"
check_match "seccomp: busybox mkdir (mkdirat) fails too" 'mkdir=1' "$out"
mk nosc probe syscall mkdir
check_eq "no seccomp: mkdir works" ok "$(run_in nosc)"

mk scarg sh -c 'probe syscall personality; probe syscall personality 0'
bundle_set scarg '.linux.seccomp = { defaultAction: "SCMP_ACT_ALLOW", architectures: $a,
	syscalls: [{ names: ["personality"], action: "SCMP_ACT_ERRNO", errnoRet: 1,
		args: [{ index: 0, value: 4294967295, op: "SCMP_CMP_EQ" }] }] }' --argjson a "$seccomp_arches"
out=$(run_in scarg)
check_eq "seccomp argument filter: matching argument gets errno 1" 1 "$(sed -n 1p <<<"$out")"
check_eq "seccomp argument filter: other argument allowed" ok "$(sed -n 2p <<<"$out")"

mk scdeny probe syscall getcwd
bundle_set scdeny '.linux.seccomp = { defaultAction: "SCMP_ACT_ERRNO", defaultErrnoRet: 1, architectures: $a,
	syscalls: [{ names: ["getcwd"], action: "SCMP_ACT_ERRNO", errnoRet: 13 }] }' --argjson a "$seccomp_arches"
run_in scdeny >/dev/null
check "seccomp: defaultAction ERRNO stops the container from running" test $? -ne 0

# ---- terminal ----------------------------------------------------------------------------------

n=tty
id=$(cid $n)
mk $n sh -c 'tty; echo console-ok'
bundle_set $n '.process.terminal = true'
sock=$TEST_TMP/console.sock
"$BUILD/tests/helpers/recvtty" "$sock" >"$TEST_TMP/tty.out" 2>&1 &
rt_pid=$!
for _ in $(seq 100); do
	[ -S "$sock" ] && break
	sleep 0.05
done
cd "$TEST_TMP/$n" || exit 1
if kelp_rt create --console-socket "$sock" "$id" >&2 && kelp_rt start "$id" >&2 && wait_status "$id" stopped; then
	ok "terminal: create --console-socket, start, exit"
else
	fail "terminal: create --console-socket, start, exit"
fi
for _ in $(seq 200); do
	alive $rt_pid || break
	sleep 0.05
done
kill $rt_pid 2>/dev/null
wait $rt_pid 2>/dev/null
rt_pid=
out=$(tr -d '\r' <"$TEST_TMP/tty.out")
check_match "terminal: recvtty received the pty master" 'recvtty: received pty master' "$out"
check_match "terminal: init's tty is /dev/pts/0" $'\n/dev/pts/0\n' "$out"
check_match "terminal: output through the pty" $'\nconsole-ok' "$out"
kelp_rt delete "$id" >&2

n=ttyrun
id=$(cid $n)
mk $n sh -c 'tty; test -t 0 && test -t 1 && echo is-a-tty'
bundle_set $n '.process.terminal = true'
printf '%s host\n' "$id" >>"$KT_CONTAINERS"
cd "$TEST_TMP/$n" || exit 1
# (script may echo its stdin's EOF as "^@": keep only the lines the container printed)
out=$(timeout 30 script -qec "$(printf '%q ' "$KELP" --root "$STATE_ROOT" run "$id")" /dev/null </dev/null 2>&1 |
	tr -d '\r' | grep -ao -e '/dev/[a-z0-9/]*' -e 'is-a-tty' -e 'not a tty')
check_eq "terminal: run in the foreground under script gets a tty" "/dev/pts/0|is-a-tty" "$(lines <<<"$out")"

exit 0
