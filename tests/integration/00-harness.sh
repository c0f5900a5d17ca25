#!/bin/bash
# 00-harness.sh — checks the test harness itself: scripts/make-bundle.sh, lib.sh (results,
# exit status, cleanup trap, bundle_set), the pinned v1/v2 cgroup views, the probe helper.
# Then it smoke-tests the runtime contract the other scripts rely on (run, exit codes,
# create/start/state/kill/delete, the default bundle as seen from inside) against the runtime
# under test: kelp, or RUNTIME=runc / RUNTIME=crun to check the harness against a peer.
. "$(dirname "$0")/lib.sh"

cfg=$TEST_TMP/b/config.json
rootfs=$TEST_TMP/b/rootfs

# ---- make-bundle.sh: config.json --------------------------------------------------------

if make_bundle b; then
	ok "make_bundle creates a bundle"
else
	fail "make_bundle creates a bundle"
	exit 1
fi
check "config.json is valid JSON" jq -e . "$cfg"
check_eq "ociVersion is 1.0.2" "1.0.2" "$(jq -r .ociVersion "$cfg")"
check_eq "default args are [\"sh\"]" '["sh"]' "$(jq -c .process.args "$cfg")"
check_eq "process: terminal false, uid 0 gid 0, cwd /" "false 0 0 /" \
	"$(jq -r '.process | "\(.terminal) \(.user.uid) \(.user.gid) \(.cwd)"' "$cfg")"
check_eq "env is PATH and TERM" "PATH TERM" "$(jq -r '[.process.env[] | sub("=.*"; "")] | join(" ")' "$cfg")"
check_eq "14 capabilities in bounding, effective and permitted" "14 14 14" \
	"$(jq -r '.process.capabilities | [.bounding, .effective, .permitted | length] | map(tostring) | join(" ")' "$cfg")"
check "the capability sets are Docker's defaults" jq -e '.process.capabilities |
	(.bounding | sort) == (["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
		"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
		"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"] | sort)
	and .bounding == .effective and .bounding == .permitted
	and .ambient == null and .inheritable == null' "$cfg"
check_eq "rlimits: NOFILE 1024/1024" "RLIMIT_NOFILE 1024 1024" \
	"$(jq -r '.process.rlimits | map("\(.type) \(.soft) \(.hard)") | join(",")' "$cfg")"
check_eq "noNewPrivileges is true" "true" "$(jq -r .process.noNewPrivileges "$cfg")"
check_eq "root is rootfs, read-only" "rootfs true" "$(jq -r '"\(.root.path) \(.root.readonly)"' "$cfg")"
check_eq "hostname is kelp" "kelp" "$(jq -r .hostname "$cfg")"
check_eq "mounts" "/proc:proc /dev:tmpfs /dev/pts:devpts /dev/shm:tmpfs /dev/mqueue:mqueue /sys:sysfs /sys/fs/cgroup:cgroup" \
	"$(jq -r '[.mounts[] | "\(.destination):\(.type)"] | join(" ")' "$cfg")"
check_eq "mount options of /dev and /sys/fs/cgroup" \
	"nosuid,strictatime,mode=755,size=65536k nosuid,noexec,nodev,relatime,ro" \
	"$(jq -r '[.mounts[] | select(.destination == "/dev" or .destination == "/sys/fs/cgroup") | .options | join(",")] | join(" ")' "$cfg")"
check_eq "namespaces" "pid network ipc uts mount" "$(jq -r '[.linux.namespaces[].type] | join(" ")' "$cfg")"
check_eq "devices: deny all" '[{"allow":false,"access":"rwm"}]' "$(jq -c .linux.resources.devices "$cfg")"
check_eq "masked and read-only paths (runc's lists)" "10 5 true true" \
	"$(jq -r '.linux | "\(.maskedPaths | length) \(.readonlyPaths | length) \(.maskedPaths | index("/proc/kcore") != null) \(.readonlyPaths | index("/proc/sys") != null)"' "$cfg")"

# ---- make-bundle.sh: arguments, output, refusals -----------------------------------------

make_bundle args sh -c 'echo "a  b"; exit 3' '' --weird >/dev/null 2>&1
check_eq "ARGS become process.args verbatim" '["sh","-c","echo \"a  b\"; exit 3","","--weird"]' \
	"$(jq -c .process.args "$TEST_TMP/args/config.json" 2>&1)"
out=$("$KELP_SRC/scripts/make-bundle.sh" "$TEST_TMP/one" true 2>&1)
check_eq "make-bundle.sh prints exactly one line" "bundle: $TEST_TMP/one" "$out"
out=$("$KELP_SRC/scripts/make-bundle.sh" "$TEST_TMP/one" false 2>&1)
check_eq "an existing bundle is remade" "bundle: $TEST_TMP/one false" "$out $(jq -r '.process.args[0]' "$TEST_TMP/one/config.json")"
mkdir -p "$TEST_TMP/foreign"
echo precious >"$TEST_TMP/foreign/file"
if "$KELP_SRC/scripts/make-bundle.sh" "$TEST_TMP/foreign" 2>/dev/null; then
	fail "a non-empty foreign directory is refused" "make-bundle.sh wrote into it"
else
	check_eq "a non-empty foreign directory is refused" "precious" "$(cat "$TEST_TMP/foreign/file")"
fi
dyn=$(command -v ls)
out=$(BUSYBOX=$dyn "$KELP_SRC/scripts/make-bundle.sh" "$TEST_TMP/dyn" 2>&1)
rc=$?
check_match "a dynamic busybox is refused with the fix" "apt-get install busybox-static" "status $rc: $out"
check "nothing is left of a refused bundle" test ! -e "$TEST_TMP/dyn/config.json"

# ---- the rootfs ---------------------------------------------------------------------------

check_match "rootfs busybox is statically linked" "statically linked|static-pie" "$(file -L "$rootfs/bin/busybox" 2>&1)"
check_eq "one symlink per applet in /bin" "$(/bin/busybox --list | grep -v -e / -e '^busybox$' | sort | paste -sd ' ')" \
	"$(find "$rootfs/bin" -type l -lname busybox -printf '%f\n' | sort | paste -sd ' ')"
check_eq "/bin/sh -> busybox" "busybox" "$(readlink "$rootfs/bin/sh")"
check_eq "/tmp is 1777" "1777" "$(stat -c %a "$rootfs/tmp")"
check_eq "/etc/passwd has root and nobody" "root:0:0 nobody:65534:65534" \
	"$(awk -F: '{ printf "%s%s:%s:%s", (NR > 1 ? " " : ""), $1, $3, $4 }' "$rootfs/etc/passwd")"
check_eq "/etc/group has root and nobody" "root:0 nobody:65534" \
	"$(awk -F: '{ printf "%s%s:%s", (NR > 1 ? " " : ""), $1, $3 }' "$rootfs/etc/group")"
check_eq "/etc/hostname" "kelp" "$(cat "$rootfs/etc/hostname")"
if [ "$(id -u)" -eq 0 ]; then
	check_eq "busybox works in the rootfs (chroot)" "hi root kelp" \
		"$(chroot "$rootfs" /bin/sh -c 'echo hi $(id -un) $(cat /etc/hostname)' 2>&1)"
else
	skip "busybox works in the rootfs (chroot)" "needs root"
fi

# ---- bundle_set ---------------------------------------------------------------------------

bundle_set b '.hostname = "changed"'
check_eq "bundle_set edits config.json" "changed" "$(jq -r .hostname "$cfg")"
bundle_set b '.process.args = $a' --argjson a '["true"]'
check_eq "bundle_set passes jq arguments" '["true"]' "$(jq -c .process.args "$cfg")"
before=$(cat "$cfg")
if bundle_set b '.this is not jq' 2>/dev/null; then
	fail "a bad jq filter fails and keeps config.json" "bundle_set returned 0"
else
	check_eq "a bad jq filter fails and keeps config.json" "$before" "$(cat "$cfg")"
fi

# ---- the probe helper (KELP_BUNDLE_HOST_TOOLS=1) ----------------------------------------

if [ -x "$BUILD/tests/helpers/probe" ]; then
	probe_bundle p probe cwd
	check "probe_bundle copies the helpers into rootfs/bin" test -x "$TEST_TMP/p/rootfs/bin/probe" -a ! -L "$TEST_TMP/p/rootfs/bin/probe"
	if [ "$(id -u)" -eq 0 ]; then
		check_eq "probe runs in the rootfs (chroot)" "/ $("$BUILD/tests/helpers/probe" ids) ok 7" \
			"$(chroot "$TEST_TMP/p/rootfs" /bin/sh -c 'cd /; echo $(probe cwd) $(probe ids) $(probe syscall getcwd); probe exit 7; echo $?' 2>&1 | tr '\n' ' ' | sed 's/ $//')"
	else
		skip "probe runs in the rootfs (chroot)" "needs root"
	fi
else
	skip "probe_bundle copies the helpers into rootfs/bin" "$BUILD/tests/helpers/probe is not built (make)"
fi

# ---- lib.sh itself: results, exit status, cleanup ---------------------------------------

# A script using lib.sh, run on its own; prints its TEST_TMP on stderr's first line.
inner() { # BODY
	printf '%s\n' '. "$KELP_SRC/tests/integration/lib.sh"' 'echo "$TEST_TMP" >&2' "$1" >"$TEST_TMP/inner.sh"
	inner_out=$(KELP_TEST_MARKERS=0 bash "$TEST_TMP/inner.sh" 2>"$TEST_TMP/inner.err")
	inner_rc=$?
	inner_tmp=$(head -n 1 "$TEST_TMP/inner.err")
}
inner 'ok one; skip two "a reason"; check three true; check_eq four x x; check_match five "^a+$" aaa'
check_eq "passing results and exit status 0" "ok - one|ok - two # SKIP a reason|ok - three|ok - four|ok - five 0" \
	"$(echo "$inner_out" | paste -sd '|') $inner_rc"
check "the temp dir is removed on exit" test -n "$inner_tmp" -a ! -e "$inner_tmp"
inner 'ok one; fail two "why"; check three false; check_eq four x y; check_match five "^b$" a; skip six; true'
check_eq "failing results and exit status 1" "ok - one|not ok - two|not ok - three|not ok - four|not ok - five|not ok - six 1" \
	"$(echo "$inner_out" | paste -sd '|') $inner_rc"
check_match "fail and check explain themselves on stderr" "two: why.*three: command failed.*expected 'x', got 'y'.*does not match.*needs a reason" \
	"$(tr '\n' ' ' <"$TEST_TMP/inner.err")"
inner 'ok one; echo "$undefined_variable"; ok two'
check_eq "a crash (unbound variable) exits non-zero for the runner" "ok - one 1" "$inner_out $inner_rc"
inner 'skip_all "nothing to do here"; fail never'
check_eq "skip_all skips the whole script" "ok - inner.sh # SKIP nothing to do here 0" "$inner_out $inner_rc"
check_eq "a container id is unique to the script run" "kelp-test-00-harness-$$-web" "$(cid web)"

# ---- cgroup views -------------------------------------------------------------------------

# The filesystem type of every mount (after the optional fields and "-").
fstypes='{ for (i = 7; i <= NF; i++) if ($i == "-") { print $(i + 1); break } }'
cgroup_mounts() { awk '$5 ~ "^/sys/fs/cgroup" { print $5 }' /proc/self/mountinfo | sort | paste -sd ' '; }
if [ "$(id -u)" -ne 0 ]; then
	skip "cgroup views" "needs root"
elif ! command -v nsenter >/dev/null || ! command -v unshare >/dev/null; then
	skip "cgroup views" "nsenter/unshare missing (util-linux)"
else
	host_before=$(cgroup_mounts)
	host_fs=$(stat -f -c %T /sys/fs/cgroup)
	if cg_view_up v1; then
		ok "cg_view_up v1"
		check_eq "v1 view: cgroup v1 hierarchies only" "cgroup" "$(in_cg_view v1 awk "$fstypes" /proc/self/mountinfo | grep cgroup | sort -u | paste -sd ' ')"
		check "v1 view: runs commands in the current directory" test "$(in_cg_view v1 pwd)" = "$PWD"
	else
		fail "cg_view_up v1"
	fi
	if cg_view_up v2; then
		ok "cg_view_up v2"
		check_eq "v2 view: /sys/fs/cgroup is cgroup2" "cgroup2fs" "$(in_cg_view v2 stat -f -c %T /sys/fs/cgroup)"
		check "v2 view: cgroup.controllers is readable" in_cg_view v2 test -r /sys/fs/cgroup/cgroup.controllers
	else
		fail "cg_view_up v2"
	fi
	check "cg_view_up is idempotent" cg_view_up v1
	check_eq "the host's cgroup mounts are unchanged" "$host_fs $host_before" "$(stat -f -c %T /sys/fs/cgroup) $(cgroup_mounts)"
	cg_view_down v1
	cg_view_down v2
	check "cg_view_down unpins the namespaces" test ! -e "$(cg_view_file v1)" -a ! -e "$(cg_view_file v2)"
	check_eq "no pinned namespace is left mounted" "" "$(awk -v d="$TEST_TMP/ns/mnt-" 'index($5, d) == 1' /proc/self/mountinfo)"
	inner 'cg_view_up v1 && cg_view_up v2 && ok up'
	check_eq "the exit trap unpins the views and removes the pin mount" "ok - up 0 " \
		"$inner_out $inner_rc $(awk -v d="$inner_tmp" 'index($5, d) == 1' /proc/self/mountinfo)"
fi

# ---- smoke test of the runtime contract (RUNTIME=runc) ------------------------------------

if [ "$(id -u)" -ne 0 ]; then
	skip "runtime smoke tests" "needs root"
	exit 0
fi
if ! [ -x "$KELP" ]; then
	fail "runtime $RUNTIME is executable" "$KELP"
	exit 1
fi
# crun refuses the hybrid layout: run it in the pure v1 view.
view=host
case "$(basename "$KELP")" in crun*) view=v1 ;; esac
export CG_VIEW=$view

make_bundle rt true
out=$(kelp_rt run --bundle "$TEST_TMP/rt" "$(cid run)" </dev/null 2>&1)
check_eq "run true exits 0 ($view view)" "0 " "$? $out"
bundle_set rt '.process.args = ["sh", "-c", "echo out; echo err >&2; exit 3"]'
out=$(kelp_rt run --bundle "$TEST_TMP/rt" "$(cid exit3)" </dev/null 2>/dev/null)
check_eq "run passes stdout and the exit status" "3 out" "$? $out"
check_eq "a finished run leaves no container" "" "$(kelp_rt list -q 2>&1)"

make_bundle life sleep 600
id=$(cid life)
check "create" kelp_rt create --bundle "$TEST_TMP/life" "$id"
check "state is created" wait_status "$id" created 5
check_eq "state: id, bundle, pid" "$id $TEST_TMP/life true" \
	"$(kelp_rt state "$id" | jq -r '"\(.id) \(.bundle) \(.pid > 0)"')"
check "start" kelp_rt start "$id"
check "state is running" wait_status "$id" running 5
check_match "list shows it" "(^|[[:space:]])$id($|[[:space:]])" "$(kelp_rt list -q)"
check "kill KILL" kelp_rt kill "$id" KILL
check "state is stopped" wait_status "$id" stopped 10
check "delete" kelp_rt delete "$id"
check "state fails after delete" sh -c '! "$@" >/dev/null 2>&1' sh "$KELP" --root "$STATE_ROOT" state "$id"

if [ "$view" = host ]; then
	for v in v1 v2; do
		out=$(CG_VIEW=$v kelp_rt run --bundle "$TEST_TMP/rt" "$(cid "run-$v")" </dev/null 2>&1)
		check_eq "run in the $v view" "3 out" "$? $(echo "$out" | grep -v '^err$')"
	done
fi

if [ -x "$BUILD/tests/helpers/probe" ]; then
	probe_bundle pr probe caps
	look() { # PROBE-ARGS... -> the probe's line from inside a container
		bundle_set pr '.process.args = $a' --argjson a "$(printf '%s\n' probe "$@" | jq -R . | jq -sc .)"
		kelp_rt run --bundle "$TEST_TMP/pr" "$(cid "probe-$1")" </dev/null 2>&1
	}
	check_eq "inside: Docker's 14 capabilities" \
		"CapEff=00000000a80425fb CapPrm=00000000a80425fb CapBnd=00000000a80425fb CapAmb=0000000000000000 CapInh=0000000000000000" \
		"$(look caps)"
	check_eq "inside: no_new_privs" "1" "$(look nnp)"
	check_eq "inside: RLIMIT_NOFILE" "1024 1024" "$(look rlimit nofile)"
	check_eq "inside: ids" "uid=0 gid=0 euid=0 egid=0 groups=" "$(look ids)"
	check_eq "inside: cwd" "/" "$(look cwd)"
	check_eq "inside: only stdio is open" "0 1 2" "$(look fds)"
	check_eq "inside: the root is read-only" "30" "$(look write /newfile)"
	check_match "inside: /sys is read-only" "^ro," "$(look mount-opts /sys)"
	check_eq "inside: probe exit status" "5" "$(look exit 5; echo $?)"
else
	skip "runtime smoke tests with probe" "$BUILD/tests/helpers/probe is not built (make)"
fi

# The exit trap deletes what a script left running.
inner "make_bundle s sleep 600 && kelp_rt run -d --bundle \"\$TEST_TMP/s\" \"\$(cid left)\" >/dev/null 2>&1 </dev/null &&
	kelp_rt state \"\$(cid left)\" | jq -r '\"pid=\\(.pid)\"' >&2 && ok left"
pid=$(sed -n 's/^pid=//p' "$TEST_TMP/inner.err")
check_eq "a script's container runs" "ok - left" "$inner_out"
gone=no
for _ in $(seq 50); do
	if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
		gone=yes
		break
	fi
	sleep 0.1
done
check_eq "the exit trap deletes it (process $pid gone, temp dir gone)" "yes no" \
	"$gone $([ -e "$inner_tmp" ] && echo yes || echo no)"
