#!/bin/bash
# run.sh — run kelp's tests and print one line per result.
#
# Usage: tests/run.sh [--unit | --integration] [FILTER...]
#   (no option)      unit tests, then integration tests
#   --unit           only the cmocka binaries $BUILD/tests/test_* (built by `make`)
#   --integration    only the scripts tests/integration/*.sh (except lib.sh and _*.sh)
#   FILTER...        only tests whose file name contains one of the FILTERs
# Env:
#   BUILD            build directory (default: build; relative to the source tree)
#   TEST_TIMEOUT     seconds per test file (default 300); then it is killed and counted failed
#   RUNTIME          passed on to the integration scripts (the runtime under test; lib.sh)
#
# Unit binaries run with CMOCKA_MESSAGE_OUTPUT=TAP; a test that calls skip() must first print
# its reason as a line "# skip: REASON" (print_message), or the skip counts as a failure.
# Integration scripts print "ok - NAME", "not ok - NAME" or "ok - NAME # SKIP REASON" on stdout
# (tests/integration/lib.sh does it); their stderr goes to $BUILD/test-logs/FILE.log. A file
# that crashes, times out, or exits non-zero without reporting a failure counts as one more
# failure named after the file.
#
# Each result is printed prefixed by its file; a failure is followed by its output (the last
# 30 lines). The last line is "N passed, M failed" (", K skipped" when K > 0); the exit status
# is 0 iff nothing failed.
set -u

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$src" || exit 2

usage() {
	sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

want_unit=1
want_integration=1
filters=()
for a in "$@"; do
	case "$a" in
	--unit) want_integration=0 ;;
	--integration) want_unit=0 ;;
	-h | --help) usage ;;
	-*) echo "run.sh: unknown option $a" >&2 && usage ;;
	*) filters+=("$a") ;;
	esac
done
if [ $want_unit = 0 ] && [ $want_integration = 0 ]; then
	want_unit=1
	want_integration=1
fi

BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD=$src/$BUILD ;; esac
export BUILD
TEST_TIMEOUT=${TEST_TIMEOUT:-300}
case "$TEST_TIMEOUT" in '' | *[!0-9]*)
	echo "run.sh: TEST_TIMEOUT must be a number of seconds" >&2
	exit 2
	;;
esac
TAIL_LINES=30
MARKER='##kelp-test-result##'

scratch=$(mktemp -d "${TMPDIR:-/tmp}/kelp-test-run.XXXXXX") || exit 2
logdir=$BUILD/test-logs
if [ ! -d "$BUILD" ] || ! mkdir -p "$logdir" 2>/dev/null || [ ! -w "$logdir" ]; then
	logdir=$scratch/logs
	mkdir -p "$logdir"
	echo "run.sh: no writable $BUILD/test-logs; logs go to $logdir and are removed at exit" >&2
fi

child=""
cleanup() {
	if [ -n "$child" ]; then
		kill -TERM "$child" 2>/dev/null
		wait "$child" 2>/dev/null
	fi
	rm -rf "$scratch"
}
trap cleanup EXIT
trap 'echo "run.sh: interrupted" >&2; exit 130' INT
trap 'exit 143' TERM

passed=0
failed=0
skipped=0
failures=()
ran=0

matches() {
	[ ${#filters[@]} -eq 0 ] && return 0
	local f
	for f in "${filters[@]}"; do
		[[ $1 == *"$f"* ]] && return 0
	done
	return 1
}

# Show lines of output under a failure, indented.
show() {
	sed 's/^/    | /'
}

# The useful part of a crashed binary's stderr: a sanitizer report from its start, else the tail.
excerpt() { # LOG
	local n
	n=$(grep -n -m 1 -E '^==[0-9]+==ERROR: |^runtime error: |: runtime error: ' "$1" | cut -d: -f1)
	if [ -n "$n" ]; then
		sed -n "${n},$((n + TAIL_LINES - 1))p" "$1"
	else
		tail -n "$TAIL_LINES" "$1"
	fi
}

r_pass() { # FILE NAME
	passed=$((passed + 1))
	printf '%s: ok - %s\n' "$1" "$2"
}
r_skip() { # FILE NAME REASON
	skipped=$((skipped + 1))
	printf '%s: ok - %s # SKIP %s\n' "$1" "$2" "$3"
}
r_fail() { # FILE NAME [DETAIL-FILE]
	failed=$((failed + 1))
	local entry="$1: $2"
	# The summary repeats the last lines of the failure's output: a CI log is often read from
	# its tail alone.
	if [ -n "${3:-}" ] && [ -s "$3" ]; then
		entry+=$'\n'$(tail -n 3 "$3" | cut -c 1-240 | sed 's/^/      | /')
	fi
	failures+=("$entry")
	printf '%s: not ok - %s\n' "$1" "$2"
}

# Run CMD... under the timeout with stdout to $1 and stderr to $2; sets `rc`. In the
# background so that a ^C here reaches it through the trap.
run_timed() {
	local out=$1 err=$2
	shift 2
	timeout -k 10 "$TEST_TIMEOUT" "$@" >"$out" 2>"$err" </dev/null &
	child=$!
	wait "$child"
	rc=$?
	child=""
}

# The reason a file failed as a whole, from its exit status; empty when it ended normally.
# A file that reported failures may exit with any status up to MAX_FAIL_RC (cmocka returns the
# number of failed tests; lib.sh returns 1).
abnormal() { # RC HAD_FAILURES MAX_FAIL_RC
	local rc=$1 had=$2 max=$3
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		echo "timed out after ${TEST_TIMEOUT}s"
	elif [ "$rc" -gt 128 ]; then
		echo "killed by signal $((rc - 128))"
	elif [ "$rc" -ne 0 ] && { [ "$had" = 0 ] || [ "$rc" -gt "$max" ]; }; then
		echo "exited with status $rc"
	fi
}

# ---- unit tests: cmocka binaries ----------------------------------------------------------

run_unit() { # BINARY
	local bin=$1 name
	name=$(basename "$bin")
	local out=$scratch/$name.out err=$logdir/$name.log
	run_timed "$out" "$err" env CMOCKA_MESSAGE_OUTPUT=TAP "$bin"
	# "# ..." lines belong to the next result (a test's own print_message diagnostics) and,
	# after a "not ok", to that failure (cmocka's assertion messages).
	local plan=0 results=0 had=0 in_fail=0 reason="" line pending=() re_plan='^1\.\.([0-9]+)' \
		re_ok='^ok [0-9]+ - (.*)$' re_skip='^(not )?ok [0-9]+ # SKIP ?(.*)$' \
		re_notok='^not ok [0-9]+ - (.*)$' re_reason='^# skip: (.*)$' re_group='^# (not )?ok - ' \
		re_diag='^# ?(.*)$'
	while IFS= read -r line || [ -n "$line" ]; do
		if [[ $line =~ $re_plan ]]; then
			plan=$((plan + BASH_REMATCH[1]))
		elif [[ $line =~ $re_skip ]]; then
			results=$((results + 1))
			in_fail=0
			if [ -n "$reason" ]; then
				r_skip "$name" "${BASH_REMATCH[2]}" "$reason"
			else
				had=1
				r_fail "$name" "${BASH_REMATCH[2]}"
				echo "skipped without a reason: print \"# skip: REASON\" (print_message) before skip()" | show
			fi
			reason=""
			pending=()
		elif [[ $line =~ $re_ok ]]; then
			results=$((results + 1))
			in_fail=0
			reason=""
			pending=()
			r_pass "$name" "${BASH_REMATCH[1]}"
		elif [[ $line =~ $re_notok ]]; then
			results=$((results + 1))
			in_fail=1
			had=1
			reason=""
			r_fail "$name" "${BASH_REMATCH[1]}"
			[ ${#pending[@]} -gt 0 ] && printf '%s\n' "${pending[@]}" | tail -n "$TAIL_LINES" | show
			pending=()
		elif [[ $line =~ $re_reason ]]; then
			reason=${BASH_REMATCH[1]}
		elif [[ $line =~ $re_group ]]; then
			in_fail=0
		elif [[ $line =~ $re_diag ]]; then
			if [ $in_fail = 1 ]; then
				printf '%s\n' "${BASH_REMATCH[1]}" | show
			else
				pending+=("${BASH_REMATCH[1]}")
			fi
		fi
	done <"$out"

	local why
	why=$(abnormal "$rc" "$had" 128)
	if [ "$results" -lt "$plan" ]; then
		why="${why:+$why, }reported $results of $plan tests${why:+ only}"
		[ -n "$why" ] && [ "$rc" -eq 0 ] && why="$why (status 0)"
	fi
	if [ -z "$why" ] && [ "$results" -eq 0 ]; then
		why="printed no results (not a cmocka test?)"
	fi
	if [ -n "$why" ]; then
		r_fail "$name" "$name: $why"
		excerpt "$err" | show
	elif [ "$had" = 1 ]; then
		# What the failed tests printed to stderr (fail_msg, print_error), without cmocka's
		# own summary lines.
		local extra
		extra=$(grep -v -e '^\[ *[A-Z]* *\]' -e '^ *[0-9]* FAILED TEST' -e '^ *$' "$err" | tail -n "$TAIL_LINES")
		if [ -n "$extra" ]; then
			echo "$name: stderr (full log: $err):"
			printf '%s\n' "$extra" | show
		fi
	fi
}

units() {
	local f name list=()
	declare -A seen=()
	for f in "$BUILD"/tests/test_*; do
		[ -f "$f" ] && [ -x "$f" ] || continue
		name=$(basename "$f")
		matches "$name" || continue
		seen[$name]=1
		list+=("$f")
	done
	# A test source without its binary is a failure too: the build is stale or broken.
	for f in tests/unit/test_*.c; do
		[ -f "$f" ] || continue
		name=$(basename "$f" .c)
		matches "$name" || continue
		if [ -z "${seen[$name]:-}" ]; then
			ran=$((ran + 1))
			r_fail "$name" "$name: not built ($BUILD/tests/$name is missing: run make)"
		fi
	done
	for f in "${list[@]}"; do
		ran=$((ran + 1))
		run_unit "$f"
	done
}

# ---- integration tests: scripts -----------------------------------------------------------

run_script() { # SCRIPT
	local script=$1 name
	name=$(basename "$script")
	local out=$scratch/$name.out err=$logdir/$name.log segs=$scratch/$name.segs
	run_timed "$out" "$err" env KELP_TEST_MARKERS=1 BUILD="$BUILD" TEST_TIMEOUT="$TEST_TIMEOUT" bash "$script"

	# Split stderr at the markers lib.sh writes after each result: segment i is what the
	# script printed between result i-1 and result i.
	rm -rf "$segs"
	mkdir -p "$segs"
	local markers
	markers=$(awk -v dir="$segs" -v m="$MARKER" '
		BEGIN { seg = 1 }
		$1 == m && $2 ~ /^[0-9]+$/ && NF == 2 { close(dir "/" seg); seg = $2 + 1; n++; next }
		{ print > (dir "/" seg) }
		END { print n + 0 }' "$err")

	local results=0 had=0 line re_skip='^ok - (.*) # [Ss][Kk][Ii][Pp](( (.*))?)$' re_ok='^ok - (.*)$' \
		re_notok='^not ok - (.*)$'
	while IFS= read -r line || [ -n "$line" ]; do
		if [[ $line =~ $re_skip ]]; then
			results=$((results + 1))
			local n=${BASH_REMATCH[1]} why=${BASH_REMATCH[4]}
			if [ -n "${why// /}" ]; then
				r_skip "$name" "$n" "$why"
			else
				had=1
				r_fail "$name" "$n"
				echo "skipped without a reason" | show
			fi
		elif [[ $line =~ $re_ok ]]; then
			results=$((results + 1))
			r_pass "$name" "${BASH_REMATCH[1]}"
		elif [[ $line =~ $re_notok ]]; then
			results=$((results + 1))
			had=1
			local detail=$err
			[ "$markers" -gt 0 ] && detail=$segs/$results
			r_fail "$name" "${BASH_REMATCH[1]}" "$detail"
			[ -f "$detail" ] && tail -n "$TAIL_LINES" "$detail" | show
		fi
	done <"$out"

	local why
	why=$(abnormal "$rc" "$had" 1)
	if [ -z "$why" ] && [ "$results" -eq 0 ]; then
		why="printed no results"
	fi
	if [ -n "$why" ]; then
		# What it printed after its last result.
		local detail=$err
		[ "$markers" -gt 0 ] && detail=$segs/$((markers + 1))
		r_fail "$name" "$name: $why" "$detail"
		[ -f "$detail" ] && tail -n "$TAIL_LINES" "$detail" | show
	fi
}

integration() {
	local f name
	for f in tests/integration/*.sh; do
		[ -f "$f" ] || continue
		name=$(basename "$f")
		case "$name" in lib.sh | _*) continue ;; esac
		matches "$name" || continue
		ran=$((ran + 1))
		run_script "$f"
	done
}

echo "kelp tests: BUILD=$BUILD, logs in $logdir"
[ $want_unit = 1 ] && units
[ $want_integration = 1 ] && integration
if [ $ran -eq 0 ]; then
	r_fail run.sh "no tests matched${filters[*]:+ (filters: ${filters[*]})}"
fi

if [ $failed -gt 0 ]; then
	echo "failed:"
	printf '  %s\n' "${failures[@]}"
fi
if [ $skipped -gt 0 ]; then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
[ $failed -eq 0 ]
