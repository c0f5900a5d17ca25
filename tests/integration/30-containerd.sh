#!/bin/bash
# 30-containerd.sh — containerd (Debian's 1.6) drives kelp unchanged: a private containerd
# (its own root, state and socket under $TEST_TMP), and kelp given to its io.containerd.runc.v2
# shim as the runc binary in both ways containerd has:
#  - `ctr run --runc-binary` (the shim's runc option BinaryName, per container): run with output
#    and exit code, detached run, kelp's own `state` under the shim's --root, exec with output
#    and exit code, pause and resume, kill, SIGTERM handled by the container, delete, and kelp's
#    state gone after it; plus `task ps` and `run -t` (a terminal through --console-socket);
#  - the CRI plugin's runtime option BinaryName (config.toml), driven over the CRI socket as a
#    kubelet would: a pod (host network, so no CNI), a container in it, exec with exit code,
#    kelp's state under the CRI runtime's Root, stop (SIGTERM: exit 143), remove.
# The CRI client is a few lines of python3-grpcio written here, with the messages encoded by hand.
#
# Debugging: containerd runs at debug level, so its log ($TEST_TMP/ctrd/containerd.log, printed
# on failure) holds the shim's messages; kelp's --log of each container is the bundle's log.json,
# which the shim copies into its error messages.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/_oci-image.sh"
require_root
# scripts/deps.sh installs the clients: a missing one is a failure, not a skip.
if ! command -v containerd >/dev/null || ! command -v ctr >/dev/null || ! command -v containerd-shim-runc-v2 >/dev/null; then
	fail "containerd, ctr and containerd-shim-runc-v2 are installed" "run scripts/deps.sh"
	exit 1
fi

B=$TEST_TMP/ctrd
SOCK=$B/containerd.sock
NS=kt-ctrd-$$                # ctr's cgroupsPath is /<namespace>/<id>: unique per run
RTROOT=$B/rtroot             # the shim's runtime root; it adds /<namespace>
IMG=localhost/kelp-busybox:1
PAUSE_IMG=localhost/kelp-pause:1   # the CRI's sandbox image: busybox sleeping
CRI_NS=k8s.io                      # the CRI plugin's containerd namespace
CRI_RTROOT=$B/cri-rtroot           # BinaryName's root; the shim adds /k8s.io
CRI_CGP=/kt-cri-$$                 # the pods' cgroup parent
CTRD_PID=
mkdir -p "$B"/{root,state,rtroot,cri-rtroot,cni-bin,cni-conf,pods} || exit 1

ctr_() { timeout "${CTR_TIMEOUT:-30}" ctr --address "$SOCK" --namespace "$NS" "$@"; }
task_status() { ctr_ task ls 2>/dev/null | awk -v id="$1" '$1 == id { print $3 }'; }
task_pid() { ctr_ task ls 2>/dev/null | awk -v id="$1" '$1 == id { print $2 }'; }
wait_task() { # ID STATUS: poll `ctr task ls` for up to 10 s
	local i
	for i in $(seq 1 100); do
		[ "$(task_status "$1")" = "$2" ] && return 0
		sleep 0.1
	done
	echo "wait_task $1: wanted $2, last '$(task_status "$1")'" >&2
	return 1
}
# kelp's own view, through the root the shim gave it.
rt_state() { timeout 10 "$KELP" --root "$RTROOT/$NS" state "$1" 2>/dev/null | jq -r ".${2:-status} // empty" 2>/dev/null; }
# containerd's and the shim's warnings and errors (the shim quotes kelp's log.json in them).
ctrd_log() { grep -E 'level=(warning|error)' "$B/containerd.log" | tail -n 10 >&2; }

# The CRI, through a small client of our own (below): cri VERB ARGS...
cri() { PYTHONPATH="$KELP_SRC/tests/integration" timeout 90 /usr/bin/python3 "$B/cri.py" "$SOCK" "$@"; }

kt_extra_cleanup() {
	local id p f m ns root
	if [ -S "$SOCK" ]; then
		# The CRI's pods first (that removes their containers), then whatever is left.
		for id in $(cat "$B/pods.list" 2>/dev/null); do
			cri stop-pod "$id" >/dev/null 2>&1
			cri rm-pod "$id" >/dev/null 2>&1
		done
		for ns in "$NS" "$CRI_NS"; do
			for id in $(NS=$ns ctr_ task ls -q 2>/dev/null); do
				NS=$ns CTR_TIMEOUT=10 ctr_ task kill -s SIGKILL "$id" >/dev/null 2>&1
				NS=$ns CTR_TIMEOUT=10 ctr_ task rm -f "$id" >/dev/null 2>&1
			done
			for id in $(NS=$ns ctr_ container ls -q 2>/dev/null); do
				NS=$ns CTR_TIMEOUT=10 ctr_ container rm "$id" >/dev/null 2>&1
			done
		done
	fi
	# The shims of our containers (their pids are in our state dir), then our containerd.
	for f in "$B"/state/io.containerd.runtime.v2.task/*/*/shim.pid; do
		[ -f "$f" ] || continue
		p=$(cat "$f")
		[ -n "$p" ] && kill "$p" 2>/dev/null
	done
	if [ -n "$CTRD_PID" ] && kill -0 "$CTRD_PID" 2>/dev/null; then
		kill "$CTRD_PID"
		for _ in $(seq 1 50); do
			kill -0 "$CTRD_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$CTRD_PID" 2>/dev/null && kill -9 "$CTRD_PID"
	fi
	# Whatever kelp still holds under the shims' roots.
	for root in "$RTROOT/$NS" "$CRI_RTROOT/$CRI_NS"; do
		for f in "$root"/*/; do
			[ -d "$f" ] && timeout 30 "$KELP" --root "$root" delete -f "$(basename "$f")" >/dev/null 2>&1
		done
	done
	# Mounts left under our temp dir (snapshots, bundles' rootfs, pods' shm), deepest first.
	for m in $(awk -v t="$TEST_TMP/" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo | sort -r); do
		umount "$m" 2>/dev/null || umount -l "$m"
	done
	for m in $(cg_mounts); do
		for p in "/$NS" "$CRI_CGP"; do
			[ -d "$m$p" ] && find "$m$p" -depth -type d -exec rmdir {} \; 2>/dev/null
		done
	done
	return 0
}

# ---- containerd ---------------------------------------------------------------------------

{
containerd_toml_head "$B" "$SOCK"
cat <<EOF
# The CRI plugin, for its runtime's BinaryName option: kelp is its default runtime, with its own
# root. Pods use the host's network (no CNI), so the CNI dirs are empty private ones. The
# sandbox's oomScoreAdj (-998) is kept no lower than ours: this machine's root may not lower it.
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMG"
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "kelp"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.kelp]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.kelp.options]
        BinaryName = "$KELP"
        Root = "$CRI_RTROOT"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$B/cni-bin"
    conf_dir = "$B/cni-conf"
EOF
} >"$B/config.toml"
# Its own session, so that its shims never share our process group.
setsid containerd --config "$B/config.toml" >"$B/containerd.log" 2>&1 </dev/null &
CTRD_PID=$!
for _ in $(seq 1 100); do
	ctr_ version >/dev/null 2>&1 && break
	sleep 0.1
done
if ctr_ version >/dev/null 2>&1; then
	ok "private containerd $(containerd --version | awk '{ print $3 }') serves $SOCK"
else
	fail "private containerd serves $SOCK" "$(tail -n 5 "$B/containerd.log")"
	exit 1
fi

tar=$(oci_image_archive "$B") || {
	fail "busybox OCI image built"
	exit 1
}
if ctr_ images import --base-name localhost/kelp-busybox "$tar" >&2 && ctr_ images ls -q | grep -qx "$IMG"; then
	ok "image imported as $IMG"
else
	fail "image imported as $IMG"
	exit 1
fi

RUN=(--runc-binary "$KELP" --runc-root "$RTROOT")

# ---- foreground run: output and exit code -------------------------------------------------

c1=kt-c1-$$
out=$(ctr_ run --rm "${RUN[@]}" "$IMG" "$c1" sh -c 'echo hello-kelp; echo pid=$$' 2>&1)
rc=$?
if [ $rc -eq 0 ] && [ "$(printf '%s\n' "$out" | lines)" = "hello-kelp|pid=1" ]; then
	ok "run --rm: output, sh is pid 1"
else
	fail "run --rm: output, sh is pid 1" "status $rc, output: $out"
	ctrd_log
fi
ctr_ run --rm "${RUN[@]}" "$IMG" "$c1" sh -c 'exit 7' >&2 2>&1
check_eq "run --rm: exit code 7 reaches ctr" 7 "$?"

# ---- detached run, kelp's state, exec ------------------------------------------------------

c2=kt-c2-$$
if ctr_ run -d "${RUN[@]}" "$IMG" "$c2" sleep 3600 >&2 && wait_task "$c2" RUNNING; then
	ok "run -d: task RUNNING"
else
	fail "run -d: task RUNNING"
	ctrd_log
fi
check_eq "kelp state under the shim's root: running" running "$(rt_state "$c2")"
check_eq "kelp state: pid is the task's pid" "$(task_pid "$c2")" "$(rt_state "$c2" pid)"
check_match "kelp state: bundle is the shim's bundle" "^$B/state/io.containerd.runtime.v2.task/$NS/$c2\$" \
	"$(rt_state "$c2" bundle)"

out=$(ctr_ task exec --exec-id e1 "$c2" sh -c 'echo exec-ok; cat /proc/1/comm' 2>&1)
rc=$?
if [ $rc -eq 0 ] && [ "$(printf '%s\n' "$out" | lines)" = "exec-ok|sleep" ]; then
	ok "exec: output, pid 1 is sleep"
else
	fail "exec: output, pid 1 is sleep" "status $rc, output: $out"
	ctrd_log
fi
ctr_ task exec --exec-id e2 "$c2" sh -c 'exit 3' >&2 2>&1
check_eq "exec: exit code 3 reaches ctr" 3 "$?"

# `ctr task ps` is the runtime's `ps --format json`.
check_eq "task ps (kelp ps): lists the task's pid" "$(task_pid "$c2")" \
	"$(ctr_ task ps "$c2" 2>/dev/null | awk 'NR > 1 { print $1 }' | lines)"

# ---- pause and resume -----------------------------------------------------------------------

if ctr_ task pause "$c2" >&2 2>&1 && wait_task "$c2" PAUSED; then
	ok "pause: task PAUSED"
else
	fail "pause: task PAUSED" "status '$(task_status "$c2")'"
	ctrd_log
fi
check_eq "pause: kelp state paused" paused "$(rt_state "$c2")"
if ctr_ task resume "$c2" >&2 2>&1 && wait_task "$c2" RUNNING; then
	ok "resume: task RUNNING"
else
	fail "resume: task RUNNING" "status '$(task_status "$c2")'"
	ctrd_log
fi
check_eq "resume: kelp state running" running "$(rt_state "$c2")"
out=$(ctr_ task exec --exec-id e3 "$c2" echo after-resume 2>&1)
check_eq "resume: exec runs again" after-resume "$out"

# ---- kill, delete ---------------------------------------------------------------------------

if ctr_ task kill -s SIGKILL "$c2" >&2 2>&1 && wait_task "$c2" STOPPED; then
	ok "kill SIGKILL: task STOPPED"
else
	fail "kill SIGKILL: task STOPPED" "status '$(task_status "$c2")'"
	ctrd_log
fi
check_eq "kill SIGKILL: kelp state stopped" stopped "$(rt_state "$c2")"
# ctr task rm reports a non-zero exit status of the task it deletes in a warning.
out=$(ctr_ task rm "$c2" 2>&1)
check_match "task rm: exit status 137 (SIGKILL)" "exit code 137\"?\$" "$out"
if ctr_ container rm "$c2" >&2 && ! ctr_ container ls -q | grep -qx "$c2"; then
	ok "container rm"
else
	fail "container rm"
fi
check_eq "delete: kelp has no state left" "" "$(ls -A "$RTROOT/$NS" 2>/dev/null)"
check_eq "delete: no cgroup left" "" "$(cg_left "/$NS/$c2")"

# ---- a terminal: run -t -------------------------------------------------------------------------
# script(1) gives ctr a pty; the shim hands kelp a --console-socket and relays the container's pty.

cmd=$(printf '%q ' timeout --foreground 30 ctr --address "$SOCK" --namespace "$NS" run --rm -t "${RUN[@]}" "$IMG" \
	"kt-tty-$$" sh -c 'tty; test -t 0 && test -t 1 && echo both-tty; exit 4')
# --foreground: else timeout's own process group is not the terminal's foreground one, and the
# client's raw-mode tcsetattr stops it with SIGTTOU (bash execs timeout and hides this; dash
# doesn't), so SHELL is fixed too.
SHELL=/bin/sh script -qefc "$cmd" /dev/null </dev/null >"$TEST_TMP/tty.out" 2>&1
check_eq "run -t: exit code 4 reaches ctr" 4 "$?"
# The terminal adds CRs, and may echo the end of script's empty stdin as "^@".
out=$(tr -d '\r' <"$TEST_TMP/tty.out")
check_match "run -t: the container's stdin and stdout are a pty" $'/dev/pts/[0-9]+\nboth-tty(\n|$)' "${out#^@}"

# ---- SIGTERM reaches a process that handles it ----------------------------------------------

c3=kt-c3-$$
ctr_ run -d "${RUN[@]}" "$IMG" "$c3" sh -c 'trap "exit 143" TERM; while :; do sleep 0.1; done' >&2 &&
	wait_task "$c3" RUNNING
if ctr_ task kill -s SIGTERM "$c3" >&2 2>&1 && wait_task "$c3" STOPPED; then
	ok "kill SIGTERM: handled, task STOPPED"
else
	fail "kill SIGTERM: handled, task STOPPED" "status '$(task_status "$c3")'"
	ctrd_log
fi
out=$(ctr_ task rm "$c3" 2>&1)
check_match "SIGTERM: the trap's exit status 143 reaches ctr" "exit code 143\"?\$" "$out"
ctr_ container rm "$c3" >&2
check_eq "all deleted: kelp has no state left" "" "$(ls -A "$RTROOT/$NS" 2>/dev/null)"

# ---- the CRI plugin's BinaryName -------------------------------------------------------------

cat >"$B/cri.py" <<'PYEOF'
# A minimal CRI (runtime.v1) client over containerd's gRPC socket: the messages are encoded by
# hand (protobuf wire format, field numbers from k8s.io/cri-api), so only python3-grpcio is needed.
# Usage: cri.py SOCK VERB ARGS...   (prints results on stdout; errors on stderr, exit 2)
import sys
import grpc
from _cri_wire import decode, f_bytes, f_int, f_msg, first, varint

NODE = 2  # NamespaceMode: the host's network namespace, so that no CNI plugin is needed

def sandbox_config(name, uid, cgroup_parent, logdir):
    ns_opts = f_msg(1, [f_int(1, NODE)])
    sec = f_msg(2, [ns_opts])
    linux = f_msg(8, [f_bytes(1, cgroup_parent), sec])
    meta = f_msg(1, [f_bytes(1, name), f_bytes(2, uid), f_bytes(3, "kelp-test")])
    return [meta, f_bytes(3, logdir), linux]

def main():
    sock, verb, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    ch = grpc.insecure_channel("unix://" + sock)

    def call(method, body, timeout=60):
        rpc = ch.unary_unary("/runtime.v1.RuntimeService/" + method)
        return decode(rpc(body, timeout=timeout))

    if verb == "version":
        r = call("Version", b"")
        print(first(r, 2, b"").decode(), first(r, 4, b"").decode())
    elif verb == "run-pod":            # NAME UID CGROUP_PARENT LOGDIR
        r = call("RunPodSandbox", f_msg(1, sandbox_config(*args[:4])))
        print(first(r, 1).decode())
    elif verb == "create":             # POD_ID NAME UID CGROUP_PARENT LOGDIR CNAME IMAGE CMD...
        pod, cfg = args[0], sandbox_config(*args[1:5])
        cname, image, cmd = args[5], args[6], args[7:]
        c = [f_msg(1, [f_bytes(1, cname)]), f_msg(2, [f_bytes(1, image)])]
        c += [f_bytes(3, a) for a in cmd]
        c.append(f_bytes(11, cname + ".log"))
        r = call("CreateContainer", f_bytes(1, pod) + f_msg(2, c) + f_msg(3, cfg))
        print(first(r, 1).decode())
    elif verb == "start":              # ID
        call("StartContainer", f_bytes(1, args[0]))
    elif verb == "status":             # ID -> STATE EXIT_CODE
        st = decode(first(call("ContainerStatus", f_bytes(1, args[0])), 1, b""))
        states = ["CREATED", "RUNNING", "EXITED", "UNKNOWN"]
        code = first(st, 7, 0)
        if code >= 1 << 31:
            code -= 1 << 64
        print(states[first(st, 3, 0)], code)
    elif verb == "exec":               # ID TIMEOUT CMD... -> its stdout; exit status is its exit code
        body = f_bytes(1, args[0]) + b"".join(f_bytes(2, a) for a in args[2:]) + f_int(3, int(args[1]))
        r = call("ExecSync", body, timeout=int(args[1]) + 30)
        sys.stdout.write(first(r, 1, b"").decode())
        sys.stderr.write(first(r, 2, b"").decode())
        return first(r, 3, 0)
    elif verb == "stop":               # ID TIMEOUT
        call("StopContainer", f_bytes(1, args[0]) + f_int(2, int(args[1])), timeout=int(args[1]) + 30)
    elif verb == "rm":                 # ID
        call("RemoveContainer", f_bytes(1, args[0]))
    elif verb == "stop-pod":           # POD_ID
        call("StopPodSandbox", f_bytes(1, args[0]))
    elif verb == "rm-pod":             # POD_ID
        call("RemovePodSandbox", f_bytes(1, args[0]))
    else:
        print("cri.py: unknown verb " + verb, file=sys.stderr)
        return 2
    return 0

if __name__ == "__main__":
    try:
        sys.exit(main())
    except grpc.RpcError as e:
        print("cri.py %s: %s: %s" % (sys.argv[2], e.code().name, e.details()), file=sys.stderr)
        sys.exit(2)
PYEOF

cri_state() { timeout 10 "$KELP" --root "$CRI_RTROOT/$CRI_NS" state "$1" 2>/dev/null | jq -r ".${2:-status} // empty" 2>/dev/null; }
cri_wait() { # ID "STATE CODE": poll ContainerStatus for up to 15 s
	local i
	for i in $(seq 1 75); do
		[ "$(cri status "$1" 2>/dev/null)" = "$2" ] && return 0
		sleep 0.2
	done
	echo "cri_wait $1: wanted '$2', last '$(cri status "$1" 2>&1)'" >&2
	return 1
}

if ! /usr/bin/python3 -c 'import grpc' 2>/dev/null; then
	fail "CRI: python3-grpcio is importable" "apt-get install python3-grpcio (scripts/deps.sh)"
elif ! ver=$(cri version 2>&1); then
	fail "CRI: the plugin answers Version" "$ver"
	ctrd_log
else
	ok "CRI: the plugin answers Version ($ver)"
	pause_tar=$(oci_image_archive "$B/pause-img" sleep 1000000) &&
		NS=$CRI_NS ctr_ images import --base-name localhost/kelp-pause "$pause_tar" >&2 &&
		NS=$CRI_NS ctr_ images import --base-name localhost/kelp-busybox "$tar" >&2
	check_eq "CRI: sandbox and container images imported into $CRI_NS" "$IMG|$PAUSE_IMG" \
		"$(NS=$CRI_NS ctr_ images ls -q | grep -v '^sha256:' | sort | lines)"
	pod_args=(kt-pod-$$ "uid-$$" "$CRI_CGP" "$B/pods/kt-pod-$$")
	if pod=$(cri run-pod "${pod_args[@]}" 2>"$B/cri.err"); then
		echo "$pod" >>"$B/pods.list"
		ok "CRI: RunPodSandbox (sandbox run by kelp)"
		check_eq "CRI: kelp state of the sandbox under the runtime's Root: running" running "$(cri_state "$pod")"
	else
		fail "CRI: RunPodSandbox (sandbox run by kelp)" "$(cat "$B/cri.err")"
		ctrd_log
		pod=
	fi
	if [ -n "$pod" ] && ctr_id=$(cri create "$pod" "${pod_args[@]}" c1 "$IMG" \
		sh -c 'trap "exit 143" TERM; echo cri-started; while :; do sleep 0.1; done' 2>"$B/cri.err"); then
		ok "CRI: CreateContainer"
		check "CRI: StartContainer" cri start "$ctr_id"
		if cri_wait "$ctr_id" "RUNNING 0"; then ok "CRI: container RUNNING"; else fail "CRI: container RUNNING"; fi
		check_eq "CRI: kelp state of the container: running" running "$(cri_state "$ctr_id")"
		check_eq "CRI: kelp state's pid is the container's sh" sh "$(cat "/proc/$(cri_state "$ctr_id" pid)/comm" 2>/dev/null)"
		# The container joined the pod's pid namespace, whose pid 1 is the sandbox's sleep.
		out=$(cri exec "$ctr_id" 10 sh -c 'echo exec-ok; cat /proc/1/comm' 2>&1)
		check_eq "CRI: ExecSync output, pid 1 is the sandbox's sleep" "exec-ok|sleep" "$(printf '%s\n' "$out" | lines)"
		cri exec "$ctr_id" 10 sh -c 'exit 3' >&2 2>&1
		check_eq "CRI: ExecSync exit code 3" 3 "$?"
		check_match "CRI: the container's log has its output" 'stdout F cri-started$' \
			"$(cat "$B/pods/kt-pod-$$/c1.log" 2>/dev/null)"
		check "CRI: StopContainer (SIGTERM, 10 s grace)" cri stop "$ctr_id" 10
		if cri_wait "$ctr_id" "EXITED 143"; then ok "CRI: EXITED with the trap's code 143"; else fail "CRI: EXITED with the trap's code 143"; fi
		# On the exit the CRI deletes the task at once: kelp delete has run.
		check_eq "CRI: exited: kelp has no state of it (the CRI deleted the task)" "" "$(cri_state "$ctr_id")"
		check "CRI: RemoveContainer" cri rm "$ctr_id"
	elif [ -n "$pod" ]; then
		fail "CRI: CreateContainer" "$(cat "$B/cri.err")"
		ctrd_log
	fi
	if [ -n "$pod" ]; then
		check "CRI: StopPodSandbox" cri stop-pod "$pod"
		check "CRI: RemovePodSandbox" cri rm-pod "$pod"
		check_eq "CRI: kelp has no state left under the runtime's Root" "" "$(ls -A "$CRI_RTROOT/$CRI_NS" 2>/dev/null)"
		check_eq "CRI: no cgroup left under $CRI_CGP" "" \
			"$(for m in $(cg_mounts); do [ -d "$m$CRI_CGP" ] && find "$m$CRI_CGP" -mindepth 1 -type d; done)"
	fi
fi
exit 0
