#!/bin/bash
# 16-errors.sh — bad input gets a clear error and leaves nothing behind (no state dir, no cgroup,
# no process): malformed or incomplete config.json, wrong types, unknown namespace, a root path
# escaping the bundle, a missing rootfs or executable, unknown and duplicate ids, ids that are
# paths, unknown signals.
. "$(dirname "$0")/lib.sh"
require_root

# left_behind LABEL NAME ID: nothing of container ID (bundle NAME) is left.
left_behind() {
	local label=$1 n=$2 id=$3
	check_eq "$label: no state dir left" "$before" "$(ls -A "$STATE_ROOT")"
	check_eq "$label: no cgroup dir left" "" "$(cg_left "$CG_BASE/$n")$(cg_left "/kelp/$id")"
	check_eq "$label: no process left" "" "$(procs_with "$id")"
}
# bad LABEL NAME REGEX [DIR]: `create` of bundle NAME (in DIR, default $TEST_TMP/NAME) fails,
# stderr matches REGEX, nothing is left.
bad() {
	local label=$1 n=$2 re=$3 dir=${4:-$TEST_TMP/$2} id rc err
	id=$(cid "$n")
	before=$(ls -A "$STATE_ROOT")
	(cd "$dir" && kelp_rt create "$id" >"$TEST_TMP/out" 2>"$TEST_TMP/err")
	rc=$?
	err=$(cat "$TEST_TMP/err")
	echo "$label: stderr: $err" >&2
	if [ $rc -ne 0 ]; then ok "$label: create fails"; else fail "$label: create fails" "exit 0"; fi
	check_match "$label: the error says /$re/" "$re" "$err"
	[ $rc -eq 0 ] && kelp_rt delete -f "$id" >&2
	left_behind "$label" "$n" "$id"
}
# ---- config.json ---------------------------------------------------------------------------

mk syntax
printf '{ "ociVersion": "1.0.2", "process": { "args": ["sh"] ' >"$TEST_TMP/syntax/config.json"
bad "malformed config.json" syntax 'config\.json.*(parse|JSON|json|syntax|premature|EOF)|(parse|JSON|syntax).*config\.json'

mk nover
bundle_set nover 'del(.ociVersion)'
bad "no ociVersion" nover 'ociVersion'

mk noroot
bundle_set noroot 'del(.root.path)'
bad "no root.path" noroot 'root\.path'

mk nocwd
bundle_set nocwd 'del(.process.cwd)'
bad "no process.cwd" nocwd 'process\.cwd'

mk argstr
bundle_set argstr '.process.args = "sh"'
bad "process.args is a string" argstr 'process\.args'

mk memstr
bundle_set memstr '.linux.resources.memory = { limit: "big" }'
bad "memory.limit is a string" memstr 'linux\.resources\.memory\.limit'

mk badns
bundle_set badns '.linux.namespaces += [{ type: "bogusns" }]'
bad "unknown namespace type" badns 'bogusns'

# The bundle is $TEST_TMP/esc/escape, so "../../etc" is $TEST_TMP/etc: a real rootfs there, which
# would run if the path were accepted.
probe_bundle esc/escape true
bundle_set esc/escape '.linux.cgroupsPath = $p | .root.path = "../../etc"' --arg p "$CG_BASE/escape"
mv "$TEST_TMP/esc/escape/rootfs" "$TEST_TMP/etc"
bad "root.path ../../etc escapes the bundle" escape 'root\.path.*(outside|escape)' "$TEST_TMP/esc/escape"

mk norootfs
rm -rf "$TEST_TMP/norootfs/rootfs"
bad "missing rootfs" norootfs 'rootfs.*(No such file|not exist|missing)|(No such file|not exist|missing).*rootfs'

mk noexe kelp-no-such-command
bad "executable not in PATH" noexe 'kelp-no-such-command'

mk badrel
bundle_set badrel '.linux.cgroupsPath = "../../escape"'
bad "cgroupsPath climbing out with .." badrel 'cgroupsPath'
check_eq "cgroupsPath ..: no escape cgroup dir" "" "$(cg_left /escape)"

# ---- unknown ids -----------------------------------------------------------------------------

unknown=$(cid nosuch)
before=$(ls -A "$STATE_ROOT")
for cmd in state start kill delete exec; do
	args=("$cmd" "$unknown")
	case $cmd in kill) args+=(KILL) ;; exec) args+=(true) ;; esac
	kelp_rt "${args[@]}" >/dev/null 2>"$TEST_TMP/err"
	rc=$?
	if [ $rc -ne 0 ]; then ok "$cmd of an unknown id fails"; else fail "$cmd of an unknown id fails" "exit 0"; fi
	check_match "$cmd of an unknown id: error names it" "$unknown.*(does not exist|not found|No such)|(does not exist|not found|No such).*$unknown" \
		"$(cat "$TEST_TMP/err")"
done
check_eq "unknown ids: no state dir made" "$before" "$(ls -A "$STATE_ROOT")"

# ---- an id that exists -------------------------------------------------------------------------

mk first sleep 1000
mk second sh -c 'echo second-ran >/dev/shm/x'
id=$(cid first)
if (cd "$TEST_TMP/first" && kelp_rt create "$id" >&2) && wait_status "$id" created; then
	pid=$(st "$id" pid)
	bundle=$(st "$id" bundle)
	(cd "$TEST_TMP/second" && kelp_rt create "$id" >/dev/null 2>"$TEST_TMP/err")
	rc=$?
	if [ $rc -ne 0 ]; then ok "duplicate id: create fails"; else fail "duplicate id: create fails" "exit 0"; fi
	check_match "duplicate id: error says exists" 'exists' "$(cat "$TEST_TMP/err")"
	check_eq "duplicate id: the first container is untouched (status, pid, bundle)" "created $pid $TEST_TMP/first" \
		"$(st "$id" status) $(st "$id" pid) $(st "$id" bundle)"
	check_eq "duplicate id: no cgroup dir for the second bundle" "" "$(cg_left "$CG_BASE/second")"
	check "duplicate id: the first container still starts" kelp_rt start "$id"
	if wait_status "$id" running; then ok "duplicate id: the first container runs"; else fail "duplicate id: the first container runs"; fi
	check_eq "duplicate id: exec in the first container" "sleep 1000" \
		"$(kelp_rt exec "$id" cat /proc/1/cmdline 2>&1 | tr '\0' ' ' | sed 's/ $//')"
	check_eq "duplicate id: the first container's pid" "$pid" "$(st "$id" pid)"

	# ---- kill with an unknown signal (on the running first container) ----
	for sig in SIGBOGUS 999; do
		kelp_rt kill "$id" "$sig" >/dev/null 2>"$TEST_TMP/err"
		rc=$?
		if [ $rc -ne 0 ]; then ok "kill with unknown signal $sig fails"; else fail "kill with unknown signal $sig fails" "exit 0"; fi
		check_match "kill $sig: error names the signal" "$sig|signal" "$(cat "$TEST_TMP/err")"
		check_eq "kill $sig: the container still runs" running "$(st "$id" status)"
	done
	kelp_rt delete -f "$id" >&2
else
	fail "duplicate id: the first container is created"
fi

# ---- ids that are paths ----------------------------------------------------------------------

mk pathid sleep 1000
for bad_id in "a/b" ".." "." "../escaped-$$" "x/../y"; do
	before=$(ls -A "$STATE_ROOT")
	(cd "$TEST_TMP/pathid" && kelp_rt create "$bad_id" >/dev/null 2>"$TEST_TMP/err")
	rc=$?
	if [ $rc -ne 0 ]; then
		ok "id '$bad_id' is refused"
	else
		fail "id '$bad_id' is refused" "exit 0"
		kelp_rt delete -f "$bad_id" >&2
	fi
	check_match "id '$bad_id': error mentions the id" 'id|ID' "$(cat "$TEST_TMP/err")"
	check_eq "id '$bad_id': nothing made in the state root" "$before" "$(ls -A "$STATE_ROOT")"
	check_eq "id '$bad_id': nothing made beside the state root" "" "$(ls -d "$TEST_TMP/escaped-$$" "$TEST_TMP/y" 2>/dev/null)"
	check_eq "id '$bad_id': no cgroup dir" "" "$(cg_left "$CG_BASE/pathid")"
	check_eq "id '$bad_id': no process left" "" "$(procs_with " create $bad_id")"
done

exit 0
