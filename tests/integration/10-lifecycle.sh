#!/bin/bash
# 10-lifecycle.sh — create/start/state/kill/delete, run (foreground and --detach), --pid-file,
# list, ps, spec, and that delete leaves no state dir, cgroup or mount behind.
. "$(dirname "$0")/lib.sh"
require_root

# ---- local helpers ------------------------------------------------------------------------

# after_delete NAME ID: the three "nothing left" checks.
after_delete() {
	local n=$1 id=$2
	check_eq "$n: no state dir after delete" "" "$(ls -d "$STATE_ROOT/$id" 2>/dev/null)"
	check_eq "$n: no cgroup dir after delete" "" "$(cg_left "$CG_BASE/$n")"
	check_eq "$n: no rootfs mount after delete" "" \
		"$(awk -v r="$TEST_TMP/$n/rootfs" 'index($5, r) == 1' /proc/self/mountinfo)"
}

# ---- create / start / kill TERM / delete ----------------------------------------------------

n=life
id=$(cid $n)
mk $n probe sleep-sigterm
cd "$TEST_TMP/$n" || exit 1
if kelp_rt create --pid-file "$TEST_TMP/$n.pid" "$id" >&2; then
	ok "create exits 0"
	check_eq "create: state status" created "$(st "$id" status)"
	check_eq "create: state id" "$id" "$(st "$id" id)"
	check_eq "create: state bundle" "$TEST_TMP/$n" "$(st "$id" bundle)"
	check_eq "create: state rootfs" "$TEST_TMP/$n/rootfs" "$(st "$id" rootfs)"
	pid=$(st "$id" pid)
	check_match "create: state pid is a number" '^[1-9][0-9]*$' "$pid"
	check_eq "create --pid-file holds init's pid" "$pid" "$(cat "$TEST_TMP/$n.pid" 2>/dev/null)"
	check_eq "create: init is alive in the container's cgroup" "$CG_BASE/$n" \
		"$(awk -F: '$2 == "pids" { print $3 }' "/proc/$pid/cgroup" 2>/dev/null)"
	check "start exits 0" kelp_rt start "$id"
	if wait_status "$id" running; then ok "start: state running"; else fail "start: state running"; fi
	check_eq "running: state pid unchanged" "$pid" "$(st "$id" pid)"
	check "kill TERM (by name) exits 0" kelp_rt kill "$id" TERM
	if wait_status "$id" stopped; then ok "kill TERM: state stopped"; else fail "kill TERM: state stopped"; fi
	if kelp_rt kill "$id" KILL 2>"$TEST_TMP/err"; then
		fail "kill of a stopped container fails" "exit 0"
	else
		ok "kill of a stopped container fails"
	fi
	check "delete of a stopped container exits 0" kelp_rt delete "$id"
	if kelp_rt state "$id" >/dev/null 2>&1; then fail "state after delete fails"; else ok "state after delete fails"; fi
	after_delete $n "$id"
else
	fail "create exits 0"
fi

# ---- kill by number --------------------------------------------------------------------------

n=knum
id=$(cid $n)
mk $n sleep 1000
cd "$TEST_TMP/$n" || exit 1
if kelp_rt run --detach "$id" >&2 && wait_status "$id" running; then
	ok "run --detach: state running"
	check "kill 9 (by number) exits 0" kelp_rt kill "$id" 9
	if wait_status "$id" stopped; then ok "kill 9: state stopped"; else fail "kill 9: state stopped"; fi
	check "delete after kill 9" kelp_rt delete "$id"
	after_delete $n "$id"
else
	fail "run --detach: state running"
fi

# ---- kill --all ------------------------------------------------------------------------------
# Init (pid 1 of its namespace) ignores a SIGTERM it has no handler for; a second process does
# not. So `kill ID TERM` leaves both alive and `kill --all ID TERM` ends only the second one.

n=kall
id=$(cid $n)
mk $n sleep 1000
cd "$TEST_TMP/$n" || exit 1
if kelp_rt run --detach "$id" >&2 && wait_status "$id" running; then
	kelp_rt exec --detach --pid-file "$TEST_TMP/$n.exec.pid" "$id" sleep 1000 >&2
	xpid=$(cat "$TEST_TMP/$n.exec.pid" 2>/dev/null)
	if [ -n "$xpid" ] && alive "$xpid"; then
		kelp_rt kill "$id" TERM >&2
		sleep 0.3
		check "kill without --all: the second process is untouched" alive "$xpid"
		check "kill --all TERM exits 0" kelp_rt kill --all "$id" TERM
		gone=0
		for _ in $(seq 100); do
			alive "$xpid" || { gone=1; break; }
			sleep 0.05
		done
		check_eq "kill --all TERM: the second process is gone" 1 "$gone"
		check_eq "kill --all TERM: init (ignoring TERM) still running" running "$(st "$id" status)"
		check "kill --all KILL exits 0" kelp_rt kill --all "$id" KILL
		if wait_status "$id" stopped; then ok "kill --all KILL: state stopped"; else fail "kill --all KILL: state stopped"; fi
	else
		fail "kill --all: exec --detach started a second process" "pid '$xpid'"
	fi
	check "delete after kill --all" kelp_rt delete "$id"
	after_delete $n "$id"
else
	fail "kill --all: container running"
fi

# ---- run in the foreground -------------------------------------------------------------------

n=run7
id=$(cid $n)
mk $n sh -c 'echo hello-from-run; exit 7'
cd "$TEST_TMP/$n" || exit 1
out=$(kelp_rt run "$id" 2>"$TEST_TMP/err")
rc=$?
check_eq "run: exit status is the container's (exit 7)" 7 "$rc"
check_eq "run: the container's stdout passes through" hello-from-run "$out"
if kelp_rt state "$id" >/dev/null 2>&1; then fail "run: container deleted after it exits"; else ok "run: container deleted after it exits"; fi
after_delete $n "$id"

n=runsig
id=$(cid $n)
mk $n sleep 1000
cd "$TEST_TMP/$n" || exit 1
kelp_rt run "$id" >/dev/null 2>"$TEST_TMP/err" &
runpid=$!
if wait_status "$id" running; then
	kelp_rt kill "$id" KILL >&2
	wait $runpid
	rc=$?
	check_eq "run: killed by SIGKILL exits 128+9" 137 "$rc"
else
	fail "run: killed by SIGKILL exits 128+9" "container did not reach running"
	kill $runpid 2>/dev/null
	wait $runpid
fi
after_delete $n "$id"

# ---- list / ps -------------------------------------------------------------------------------

n=lst
id=$(cid $n)
mk $n sleep 1000
n2=lst2
id2=$(cid $n2)
mk $n2 sleep 1000
cd "$TEST_TMP/$n" || exit 1
kelp_rt run --detach "$id" >&2
(cd "$TEST_TMP/$n2" && kelp_rt create "$id2" >&2)
if wait_status "$id" running && wait_status "$id2" created; then
	pid=$(st "$id" pid)
	pid2=$(st "$id2" pid)
	table=$(kelp_rt list 2>&1)
	check_match "list: table header" '^ID +PID +STATUS +BUNDLE +CREATED +OWNER' "$(head -n1 <<<"$table")"
	row=$(awk -v i="$id" '$1 == i { print $2, $3, $4 }' <<<"$table")
	check_eq "list: table row of a running container" "$pid running $TEST_TMP/$n" "$row"
	row=$(awk -v i="$id2" '$1 == i { print $2, $3, $4 }' <<<"$table")
	check_eq "list: table row of a created container" "$pid2 created $TEST_TMP/$n2" "$row"
	js=$(kelp_rt list --format json 2>&1)
	check_eq "list --format json" "$id $pid running $TEST_TMP/$n|$id2 $pid2 created $TEST_TMP/$n2" \
		"$(jq -r 'sort_by(.id) | map("\(.id) \(.pid) \(.status) \(.bundle)") | join("|")' <<<"$js" 2>&1)"
	check_eq "list -q" "$(printf '%s\n' "$id" "$id2" | sort)" "$(kelp_rt list -q 2>&1 | sort)"
	check_eq "ps --format json is [init pid]" "[$pid]" "$(kelp_rt ps --format json "$id" 2>&1 | jq -c . 2>&1)"
	# delete of a running container
	if kelp_rt delete "$id" 2>"$TEST_TMP/err"; then
		fail "delete of a running container without --force fails" "exit 0"
	else
		ok "delete of a running container without --force fails"
	fi
	check_match "delete without --force: error says 'not stopped'" 'not stopped' "$(cat "$TEST_TMP/err")"
	check_eq "delete without --force: container still running" running "$(st "$id" status)"
	check "delete --force of a running container exits 0" kelp_rt delete --force "$id"
	check "delete --force: init is gone" eval "! alive $pid"
	after_delete $n "$id"
	check "delete --force of a created container exits 0" kelp_rt delete --force "$id2"
	after_delete $n2 "$id2"
	check_eq "list -q is empty after deleting everything" "" "$(kelp_rt list -q 2>&1)"
else
	fail "list: containers running/created"
fi

# ---- spec ------------------------------------------------------------------------------------

mkdir -p "$TEST_TMP/spec"
cd "$TEST_TMP/spec" || exit 1
check "spec exits 0" kelp_rt spec
check_eq "spec: config.json parses (ociVersion, process.args)" "true" \
	"$(jq -r '(.ociVersion | type == "string") and (.process.args | type == "array") and (.root.path | type == "string")' config.json 2>&1)"
sum=$(md5sum <config.json)
echo '# marker' >>config.json
sum=$(md5sum <config.json)
if kelp_rt spec 2>"$TEST_TMP/err"; then
	fail "spec refuses to overwrite config.json" "exit 0"
else
	ok "spec refuses to overwrite config.json"
fi
check_eq "spec: the existing config.json is unchanged" "$sum" "$(md5sum <config.json)"
mkdir -p "$TEST_TMP/spec2"
cd "$TEST_TMP" || exit 1
check "spec --bundle DIR writes DIR/config.json" kelp_rt spec --bundle "$TEST_TMP/spec2"
check "spec --bundle: config.json parses" jq -e '.ociVersion' "$TEST_TMP/spec2/config.json"

exit 0
