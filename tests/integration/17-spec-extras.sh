#!/bin/bash
# 17-spec-extras.sh — the rest of the runtime-spec and of runc's verbs: pause/resume, update,
# events, features, the six hooks, sysctl, personality, scheduler, time namespace offsets,
# socket activation fds, seccomp notify, and the refusal of fields kelp does not know.
. "$(dirname "$0")/lib.sh"
require_root

run_in() { (cd "$TEST_TMP/$1" && kelp_rt run "$(cid "$1")" 2>"$TEST_TMP/$1.err"); }
start_bg() { (cd "$TEST_TMP/$1" && kelp_rt run --detach "$(cid "$1")" >&2) && wait_status "$(cid "$1")" running; }

# ---- pause, resume, update, events --------------------------------------------------------
mk ctl sleep 1000
if start_bg ctl; then
	id=$(cid ctl)
	check "pause" kelp_rt pause "$id"
	check_eq "state after pause" paused "$(st "$id" status)"
	check_eq "freezer holds it frozen" FROZEN "$(cat /sys/fs/cgroup/freezer$CG_BASE/ctl/freezer.state)"
	check_match "exec into a paused container fails" "paused" "$(kelp_rt exec "$id" true 2>&1)"
	check "resume" kelp_rt resume "$id"
	check_eq "state after resume" running "$(st "$id" status)"
	check_match "resume of a running container fails" "not paused" "$(kelp_rt resume "$id" 2>&1)"
	check "update --memory 48m --pids-limit 9 --cpu-quota 20000" kelp_rt update --memory 48m --pids-limit 9 --cpu-quota 20000 "$id"
	check_eq "memory limit updated" 50331648 "$(cat /sys/fs/cgroup/memory$CG_BASE/ctl/memory.limit_in_bytes)"
	check_eq "pids limit updated" 9 "$(cat /sys/fs/cgroup/pids$CG_BASE/ctl/pids.max)"
	check_eq "cpu quota updated" 20000 "$(cat /sys/fs/cgroup/cpu$CG_BASE/ctl/cpu.cfs_quota_us)"
	echo '{"pids": {"limit": 11}}' >"$TEST_TMP/res.json"
	check "update --resources FILE" kelp_rt update --resources "$TEST_TMP/res.json" "$id"
	check_eq "pids limit from the file" 11 "$(cat /sys/fs/cgroup/pids$CG_BASE/ctl/pids.max)"
	check "update --resources - (stdin)" sh -c "echo '{\"pids\": {\"limit\": 12}}' | $KELP --root $STATE_ROOT update -r - $id"
	check_eq "pids limit from stdin" 12 "$(cat /sys/fs/cgroup/pids$CG_BASE/ctl/pids.max)"
	check_match "update keeps the device rules" "c 1:3 rwm" "$(cat /sys/fs/cgroup/devices$CG_BASE/ctl/devices.list)"
	check_match "update with a bad value fails" "invalid value" "$(kelp_rt update --memory lots "$id" 2>&1)"
	ev=$(kelp_rt events --stats "$id")
	check_eq "events --stats: pids current and limit" "1 12" "$(jq -r '"\(.data.pids.current) \(.data.pids.limit)"' <<<"$ev")"
	check_eq "events --stats: type and id" "stats $id" "$(jq -r '"\(.type) \(.id)"' <<<"$ev")"
	check_match "events --stats: memory usage" '^[1-9][0-9]*$' "$(jq -r .data.memory.usage.usage <<<"$ev")"
	n=$(timeout 3 "$KELP" --root "$STATE_ROOT" events --interval 200ms "$id" | wc -l)
	check_match "events stream: one stats event per interval" '^(1[0-9]|[5-9])$' "$n"
	kelp_rt delete -f "$id" >&2
else
	fail "container for pause/update runs"
fi

feat=$(kelp_rt features)
check_eq "features: ociVersionMax" "1.3.0" "$(jq -r .ociVersionMax <<<"$feat")"
check_eq "features: all six hooks" 6 "$(jq '.hooks | length' <<<"$feat")"
check_match "features: namespaces include time" "time" "$(jq -r '.linux.namespaces | join(" ")' <<<"$feat")"
check_match "features: seccomp notify action" "SCMP_ACT_NOTIFY" "$(jq -r '.linux.seccomp.actions | join(" ")' <<<"$feat")"
check_eq "features: no AppArmor here" false "$(jq -r .linux.apparmor.enabled <<<"$feat")"

# ---- hooks ------------------------------------------------------------------------------------
log=$TEST_TMP/hooks.log
cat >"$TEST_TMP/hook.sh" <<EOS
#!/bin/sh
read -r state
echo "\$1 \$(echo "\$state" | jq -r '"\(.status) \(.id)"')" >> $log
EOS
chmod +x "$TEST_TMP/hook.sh"
mk hk sh -c 'cat /tmp/hookran 2>/dev/null; echo main'
hooks=$(jq -n --arg h "$TEST_TMP/hook.sh" '{
	prestart: [{path: $h, args: ["hook.sh", "prestart"]}],
	createRuntime: [{path: $h, args: ["hook.sh", "createRuntime"]}],
	createContainer: [{path: $h, args: ["hook.sh", "createContainer"]}],
	startContainer: [{path: "/bin/sh", args: ["sh", "-c", "echo startContainer-inside > /tmp/hookran"]}],
	poststart: [{path: $h, args: ["hook.sh", "poststart"]}],
	poststop: [{path: $h, args: ["hook.sh", "poststop"]}]}')
bundle_set hk '.hooks = $h | .mounts += [{destination: "/tmp", type: "tmpfs", source: "tmpfs"}]' --argjson h "$hooks"
id=$(cid hk)
check_eq "hooks: startContainer ran inside the container, before the process" \
	"startContainer-inside|main" "$(run_in hk | lines)"
check_eq "hooks: order and state seen by each" \
	"prestart creating $id|createRuntime creating $id|createContainer creating $id|poststart running $id|poststop stopped $id" \
	"$(lines <"$log")"
mk hkfail true
bundle_set hkfail '.hooks = {createRuntime: [{path: "/bin/false"}]}'
check_match "hooks: a failing createRuntime hook fails create, naming it" "createRuntime hook 0 \(/bin/false\): exit status 1" \
	"$(cd "$TEST_TMP/hkfail" && kelp_rt create "$(cid hkfail)" 2>&1)"
check_eq "hooks: nothing left after the failed create" "" "$(ls "$STATE_ROOT" | grep -F "$(cid hkfail)")"
mk hkslow true
bundle_set hkslow '.hooks = {prestart: [{path: "/bin/sleep", args: ["sleep", "10"], timeout: 1}]}'
check_match "hooks: a timeout kills the hook" "timed out after 1 s" "$(cd "$TEST_TMP/hkslow" && kelp_rt run "$(cid hkslow)" 2>&1)"

# ---- a create killed half way -------------------------------------------------------------------
mk killed sleep 100
bundle_set killed '.hooks = {createRuntime: [{path: "/bin/sleep", args: ["sleep", "30"]}]}'
id=$(cid killed)
(cd "$TEST_TMP/killed" && exec "$KELP" --root "$STATE_ROOT" create "$id") >&2 &
cpid=$!
for _ in $(seq 100); do [ -d "/sys/fs/cgroup/pids$CG_BASE/killed" ] && [ -n "$(procs_with "sleep 30")" ] && break; sleep 0.05; done
hookpids=$(procs_with "sleep 30")
kill -9 "$cpid"
wait "$cpid" 2>/dev/null
check_eq "create killed during a hook: state says creating" creating "$(st "$id" status)"
check_match "create killed: delete without --force refuses" "still being created" "$(kelp_rt delete "$id" 2>&1)"
check "create killed: delete --force cleans up" kelp_rt delete --force "$id"
for _ in $(seq 40); do [ -z "$(cg_left "$CG_BASE/killed")" ] && break; sleep 0.05; done
check_eq "create killed: no cgroup, no state left" "" "$(cg_left "$CG_BASE/killed")$(ls "$STATE_ROOT" | grep -F "$id")"
[ -n "$hookpids" ] && kill $hookpids 2>/dev/null

# ---- sysctl -------------------------------------------------------------------------------
mk sc sh -c 'cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shm_rmid_forced'
bundle_set sc '.linux.sysctl = {"net.ipv4.ip_forward": "1", "kernel.shm_rmid_forced": "1"}'
host_fwd=$(cat /proc/sys/net/ipv4/ip_forward)
check_eq "sysctl: namespaced values set inside" "1|1" "$(run_in sc | lines)"
check_eq "sysctl: the host's value is unchanged" "$host_fwd" "$(cat /proc/sys/net/ipv4/ip_forward)"
mk scbad true
bundle_set scbad '.linux.sysctl = {"kernel.core_pattern": "|/tmp/x"}'
check_match "sysctl: a global one is refused" "kernel.core_pattern: not a namespaced sysctl" "$(run_in scbad; cat "$TEST_TMP/scbad.err")"

# ---- personality, scheduler, time namespace, LISTEN_FDS -------------------------------------
mk pers sh -c 'uname -m; grep -E "^policy" /proc/self/sched | tr -s " "; cat /proc/self/timens_offsets | tr -s " "'
bundle_set pers '.linux.personality = {domain: "LINUX32"} | .process.scheduler = {policy: "SCHED_BATCH", nice: 3}
	| .linux.namespaces += [{type: "time"}] | .linux.timeOffsets = {monotonic: {secs: 1000}, boottime: {secs: 7, nanosecs: 5}}'
check_eq "personality LINUX32, SCHED_BATCH, time offsets" "i686|policy : 3|monotonic 1000 0|boottime 7 5" "$(run_in pers | lines)"
mk lfd sh -c 'echo $LISTEN_FDS $LISTEN_PID; ls /proc/self/fd | tr "\n" " "'
check_eq "LISTEN_FDS: two fds and the variables pass through" "2 1|0 1 2 3 4 5" \
	"$(cd "$TEST_TMP/lfd" && LISTEN_FDS=2 "$KELP" --root "$STATE_ROOT" run "$(cid lfd)" 3</dev/null 4</dev/null | lines | sed 's/ $//')"

# ---- seccomp notify -----------------------------------------------------------------------
agent=$BUILD/tests/helpers/seccomp-agent
mk sn sh -c 'mkdir /tmp/zz; echo rc=$?'
bundle_set sn '.linux.seccomp = {defaultAction: "SCMP_ACT_ALLOW", listenerPath: $p, listenerMetadata: "meta",
	syscalls: [{names: ["mkdir", "mkdirat"], action: "SCMP_ACT_NOTIFY"}]} | .mounts += [{destination: "/tmp", type: "tmpfs", source: "tmpfs"}]' \
	--arg p "$TEST_TMP/agent.sock"
"$agent" "$TEST_TMP/agent.sock" 42 >"$TEST_TMP/agent.out" 2>&1 &
apid=$!
for _ in $(seq 50); do [ -S "$TEST_TMP/agent.sock" ] && break; sleep 0.05; done
check_eq "seccomp notify: the agent's answer reaches the container" "rc=1" "$(run_in sn)"
check_match "seccomp notify: mkdir failed with the agent's errno (ENOMSG)" "No message of desired type" "$(cat "$TEST_TMP/sn.err")"
kill "$apid" 2>/dev/null
wait "$apid" 2>/dev/null
first=$(head -1 "$TEST_TMP/agent.out")
check_eq "seccomp notify: state sent with the fd" "seccompFd meta $(cid sn) creating" \
	"$(jq -r '"\(.fds[0]) \(.metadata) \(.state.id) \(.state.status)"' <<<"$first")"

# ---- idmapped mounts ------------------------------------------------------------------------
mkdir -p "$TEST_TMP/idsrc" && echo x >"$TEST_TMP/idsrc/f" && chown 0:0 "$TEST_TMP/idsrc/f"
mk idm sh -c 'stat -c "%u:%g" /idm/f /plain/f | tr "\n" " "'
bundle_set idm '.mounts += [{destination: "/idm", type: "bind", source: $s, options: ["bind"],
	uidMappings: [{containerID: 0, hostID: 1000, size: 1}], gidMappings: [{containerID: 0, hostID: 2000, size: 1}]},
	{destination: "/plain", type: "bind", source: $s, options: ["bind"]}]' --arg s "$TEST_TMP/idsrc"
check_eq "idmapped mount: on-disk 0:0 shows as 1000:2000; the plain bind as 0:0" "1000:2000 0:0" "$(run_in idm | sed 's/ $//')"
check_eq "idmapped mount: the source is unchanged on the host" "0:0" "$(stat -c %u:%g "$TEST_TMP/idsrc/f")"
# the mapped root (host uid 100000) must reach the rootfs, and may only create where it may write
chmod 0755 "$TEST_TMP"
mk idu sh -c 'stat -c "%u:%g" /tmp/idm/f /tmp/plain/f | tr "\n" " "'
bundle_set idu '.linux.namespaces += [{type: "user"}]
	| .linux.uidMappings = [{containerID: 0, hostID: 100000, size: 65536}]
	| .linux.gidMappings = [{containerID: 0, hostID: 100000, size: 65536}]
	| .mounts += [{destination: "/tmp/idm", type: "bind", source: $s, options: ["bind", "idmap"]},
		{destination: "/tmp/plain", type: "bind", source: $s, options: ["bind"]}]' --arg s "$TEST_TMP/idsrc"
check_eq "option idmap: the container's root owns what host root owns; unmapped without it" "0:0 65534:65534" \
	"$(run_in idu | sed 's/ $//')"

# ---- unknown fields ---------------------------------------------------------------------
mk unk true
bundle_set unk '.process.colour = "blue"'
check_match "an unknown field is refused by its path" "process.colour: unknown field" "$(run_in unk; cat "$TEST_TMP/unk.err")"
mk unk2 true
bundle_set unk2 '.linux.resources.blockIO = {weight: 100}'
check_match "a field this machine cannot honour is refused with why" "linux.resources.blockIO: not supported" \
	"$(run_in unk2; cat "$TEST_TMP/unk2.err")"
exit 0
