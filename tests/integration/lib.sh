# shellcheck shell=bash
# lib.sh — sourced by every tests/integration/NN-*.sh script (source it, do not run it):
#
#   . "$(dirname "$0")/lib.sh"
#
# Results (stdout, TAP-like; tests/run.sh parses them):
#   ok NAME                        "ok - NAME"
#   fail NAME [WHY...]             "not ok - NAME"; WHY goes to stderr (shown by the runner)
#   skip NAME REASON...            "ok - NAME # SKIP REASON" (a reason is required)
#   check NAME CMD...              ok if CMD succeeds; CMD's output goes to stderr
#   check_eq NAME EXPECTED ACTUAL  ok if the strings are equal
#   check_match NAME REGEX ACTUAL  ok if ACTUAL matches the bash (ERE) regex
#   skip_all REASON                one skip named after the script, then exit 0
#   require_root                   skip_all unless running as root
# ok/skip return 0, fail and a failed check return 1. Do not print lines starting "ok - " or
# "not ok - " yourself; send diagnostics to stderr. The script's exit status is 1 when a test
# failed, else the status it would have had: end a script with a result (or `exit 0`), so that
# a stray failing command on the last line is not mistaken for a crash.
#
# Environment and helpers:
#   KELP         absolute path of the runtime under test: $RUNTIME if set (a path or a name on
#                PATH, e.g. RUNTIME=runc), else $BUILD/bin/kelp
#   KELP_SRC     the source tree;  BUILD  the build directory (absolute; default $KELP_SRC/build)
#   TEST_TMP     a private temp dir, removed on exit;  STATE_ROOT  "$TEST_TMP/state"
#   kelp_rt ARGS...                "$KELP" --root "$STATE_ROOT" ARGS... (in view $CG_VIEW, if
#                                  set: CG_VIEW=v1 kelp_rt run ...). Containers it creates are
#                                  deleted (delete -f) on exit.
#   cid NAME                       a container id unique to this script run (cgroup paths are
#                                  global even though state roots are private)
#   make_bundle DIR [ARGS...]      scripts/make-bundle.sh (a relative DIR is under $TEST_TMP)
#   probe_bundle DIR [ARGS...]     the same with the test helpers (probe) in rootfs/bin
#   bundle_set DIR FILTER [JQ-ARGS...]   edit DIR/config.json with jq, e.g.
#                                  bundle_set b '.process.args = $a' --argjson a '["true"]'
#   wait_status ID STATUS [SECS]   poll `state` until .status is STATUS (default 10 s)
#   cg_view_up v1|v2               a pinned private mount namespace with a pure cgroup view
#                                  (v1: /sys/fs/cgroup/unified unmounted; v2: the host's cgroup2
#                                  bound over /sys/fs/cgroup). The host is never changed.
#   cg_view_down v1|v2             unpin it (done for every view on exit)
#   in_cg_view v1|v2 CMD...        run CMD in that view (brought up if needed); a shell function
#                                  CMD runs with CG_VIEW set (kelp_rt and wait_status honour it)
#   cg_view_file v1|v2             the pinned namespace file (for nsenter --mount=)
set -u

if [ -z "${KT_LIB_LOADED:-}" ]; then
KT_LIB_LOADED=1

KT_SCRIPT=$(basename "$0")
KT_NAME=${KT_SCRIPT%.sh}
KELP_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD=$KELP_SRC/$BUILD ;; esac
export BUILD KELP_SRC

_kt_abspath() {
	case "$1" in
	/*) printf '%s\n' "$1" ;;
	*/*) printf '%s/%s\n' "$(cd "$(dirname "$1")" 2>/dev/null && pwd || echo "$PWD/$(dirname "$1")")" "$(basename "$1")" ;;
	*) command -v "$1" 2>/dev/null || printf '%s\n' "$1" ;;
	esac
}
if [ -n "${RUNTIME:-}" ]; then
	KELP=$(_kt_abspath "$RUNTIME")
else
	KELP=$BUILD/bin/kelp
fi
export KELP

KT_MARKER='##kelp-test-result##'
KT_N=0
KT_PASS=0
KT_FAIL=0
KT_SKIP=0
TEST_TMP=$(mktemp -d "${TMPDIR:-/tmp}/kelp-test-$KT_NAME.XXXXXX") || {
	echo "lib.sh: cannot create a temp dir" >&2
	exit 1
}
STATE_ROOT=$TEST_TMP/state
KT_NSDIR=$TEST_TMP/ns
KT_CONTAINERS=$TEST_TMP/containers
mkdir -m 0700 "$STATE_ROOT"
: >"$KT_CONTAINERS"
export TEST_TMP STATE_ROOT

# ---- results ------------------------------------------------------------------------------

_kt_result() {
	KT_N=$((KT_N + 1))
	printf '%s\n' "$1"
	# The runner splits the stderr log at these markers to show each failed test's output.
	if [ "${KELP_TEST_MARKERS:-0}" = 1 ]; then
		printf '%s %d\n' "$KT_MARKER" "$KT_N" >&2
	fi
}

_kt_name() {
	# One line, and nothing the runner would read as a directive.
	local n=${1//$'\n'/ }
	printf '%s' "${n//#/_}"
}

ok() {
	KT_PASS=$((KT_PASS + 1))
	_kt_result "ok - $(_kt_name "${1:-unnamed}")"
	return 0
}

fail() {
	local name=${1:-unnamed}
	shift
	[ $# -gt 0 ] && printf '%s: %s\n' "$name" "$*" >&2
	KT_FAIL=$((KT_FAIL + 1))
	_kt_result "not ok - $(_kt_name "$name")"
	return 1
}

skip() {
	local name=${1:-unnamed}
	shift
	local why="$*"
	if [ -z "${why// /}" ]; then
		fail "$name" "skip() needs a reason"
		return 1
	fi
	KT_SKIP=$((KT_SKIP + 1))
	_kt_result "ok - $(_kt_name "$name") # SKIP ${why//$'\n'/ }"
	return 0
}

check() {
	local name=$1
	shift
	"$@" >&2
	local rc=$?
	if [ $rc -eq 0 ]; then
		ok "$name"
	else
		fail "$name" "command failed (status $rc): $*"
	fi
}

check_eq() {
	if [ "$2" = "$3" ]; then
		ok "$1"
	else
		fail "$1" "expected '$2', got '$3'"
	fi
}

check_match() {
	if [[ $3 =~ $2 ]]; then
		ok "$1"
	else
		fail "$1" "'$3' does not match /$2/"
	fi
}

skip_all() {
	skip "$KT_SCRIPT" "$@"
	exit 0
}

require_root() {
	[ "$(id -u)" -eq 0 ] || skip_all "needs root"
}

# ---- cgroup views -------------------------------------------------------------------------

cg_view_file() {
	printf '%s\n' "$KT_NSDIR/mnt-$1"
}

cg_view_up() {
	local mode=${1:-} f
	case "$mode" in v1 | v2) ;; *)
		echo "cg_view_up: mode must be v1 or v2 (got '$mode')" >&2
		return 2
		;;
	esac
	f=$(cg_view_file "$mode")
	if [ -e "$f" ] && nsenter --mount="$f" -- true 2>/dev/null; then
		return 0
	fi
	# The nsfs pin must sit on a private mount, so that it is never propagated elsewhere.
	mkdir -p "$KT_NSDIR" || return 1
	if ! mountpoint -q "$KT_NSDIR"; then
		mount --bind "$KT_NSDIR" "$KT_NSDIR" && mount --make-private "$KT_NSDIR" || {
			echo "cg_view_up: cannot make $KT_NSDIR a private mount" >&2
			return 1
		}
	fi
	: >"$f" || return 1
	local rc
	case "$mode" in
	v1)
		# Needs v1 hierarchies under /sys/fs/cgroup; drop the cgroup2 mount beside them.
		if ! awk '$5 ~ "^/sys/fs/cgroup/" { for (i = 7; i <= NF; i++) if ($i == "-") { if ($(i+1) == "cgroup") found = 1; break } }
			END { exit !found }' /proc/self/mountinfo; then
			echo "cg_view_up v1: no cgroup v1 hierarchy under /sys/fs/cgroup" >&2
			rm -f "$f"
			return 1
		fi
		timeout 20 unshare --mount="$f" --propagation private -- \
			sh -ec 'if mountpoint -q /sys/fs/cgroup/unified; then umount /sys/fs/cgroup/unified; fi'
		rc=$?
		;;
	v2)
		# Bind the host's existing cgroup2 mount: a fresh `mount -t cgroup2` would re-apply its
		# options to the single global cgroup2 superblock and so change the host.
		local u
		u=$(awk '{ for (i = 7; i <= NF; i++) if ($i == "-") { if ($(i+1) == "cgroup2") { print $5; exit } break } }' /proc/self/mountinfo)
		if [ -z "$u" ]; then
			echo "cg_view_up v2: no cgroup2 mount on this host" >&2
			rm -f "$f"
			return 1
		fi
		timeout 20 unshare --mount="$f" --propagation private -- mount --bind "$u" /sys/fs/cgroup
		rc=$?
		;;
	esac
	if [ $rc -ne 0 ]; then
		echo "cg_view_up $mode: failed (status $rc)" >&2
		umount "$f" 2>/dev/null
		rm -f "$f"
		return 1
	fi
	return 0
}

cg_view_down() {
	local f
	f=$(cg_view_file "${1:-}")
	[ -e "$f" ] || return 0
	umount "$f" 2>/dev/null
	rm -f "$f"
}

in_cg_view() {
	local mode=$1
	shift
	cg_view_up "$mode" || return 1
	if declare -F "$1" >/dev/null; then
		CG_VIEW=$mode "$@"
	else
		nsenter --mount="$(cg_view_file "$mode")" --wd="$PWD" -- "$@"
	fi
}

# ---- the runtime --------------------------------------------------------------------------

cid() {
	printf 'kelp-test-%s-%s-%s\n' "$KT_NAME" "$$" "${1:-c}"
}

# Remember the id of every container create/run makes, with the view it was made in.
_kt_track() {
	local a sub="" id="" skipnext=0
	for a in "$@"; do
		if [ $skipnext = 1 ]; then
			skipnext=0
			continue
		fi
		if [ -z "$sub" ]; then
			case "$a" in
			--log | --log-format | --root | --criu | --rootless) skipnext=1 ;;
			-*) ;;
			*) sub=$a ;;
			esac
		fi
	done
	case "$sub" in create | run) ;; *) return 0 ;; esac
	id=${*: -1}
	[ -n "$id" ] && printf '%s %s\n' "$id" "${CG_VIEW:-host}" >>"$KT_CONTAINERS"
	return 0
}

kelp_rt() {
	local view=${CG_VIEW:-host}
	_kt_track "$@"
	if [ "$view" = host ]; then
		"$KELP" --root "$STATE_ROOT" "$@"
	else
		cg_view_up "$view" || return 1
		nsenter --mount="$(cg_view_file "$view")" --wd="$PWD" -- "$KELP" --root "$STATE_ROOT" "$@"
	fi
}

wait_status() {
	local id=$1 want=$2 secs=${3:-10} st="" deadline
	deadline=$(($(date +%s%N) + secs * 1000000000))
	while :; do
		st=$(kelp_rt state "$id" 2>/dev/null | jq -r '.status // empty' 2>/dev/null)
		[ "$st" = "$want" ] && return 0
		[ "$(date +%s%N)" -lt "$deadline" ] || break
		sleep 0.05
	done
	echo "wait_status $id: wanted '$want' within ${secs}s, last status '${st:-(no state)}'" >&2
	return 1
}

# ---- bundles ------------------------------------------------------------------------------

_kt_bundle_dir() {
	case "$1" in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$TEST_TMP/$1" ;; esac
}

make_bundle() {
	local dir
	dir=$(_kt_bundle_dir "${1:?make_bundle DIR [ARGS...]}")
	shift
	"$KELP_SRC/scripts/make-bundle.sh" "$dir" "$@" >&2
}

probe_bundle() {
	KELP_BUNDLE_HOST_TOOLS=1 make_bundle "$@"
}

bundle_set() {
	local dir
	dir=$(_kt_bundle_dir "${1:?bundle_set DIR FILTER [JQ-ARGS...]}")
	local filter=${2:?bundle_set DIR FILTER [JQ-ARGS...]}
	shift 2
	jq "$@" "$filter" "$dir/config.json" >"$dir/config.json.new" &&
		mv "$dir/config.json.new" "$dir/config.json" || {
		rm -f "$dir/config.json.new"
		echo "bundle_set: jq $filter failed on $dir/config.json" >&2
		return 1
	}
}

# ---- containers and their cgroups ---------------------------------------------------------
#   CG_BASE        /kelp-test-PID: give each bundle a cgroupsPath below it (mk does); every
#                  hierarchy's $CG_BASE is removed on exit
#   mk NAME ARGS...        probe_bundle NAME ARGS... with cgroupsPath $CG_BASE/NAME
#   st ID FIELD            one field of `state ID` (empty if none)
#   alive PID              the process exists and is not a zombie (this VM's pid 1 may reap late)
#   procs_with STRING      pids of processes (but this shell) whose command line holds STRING
#   cg_mounts              every cgroup (v1 or v2) mount point
#   cg_left PATH           the hierarchies where cgroup PATH still exists (empty when none)
#   lines                  stdin's lines joined with '|'
#   kt_extra_cleanup       define it to undo more on exit (it runs before the containers go)
CG_BASE=/kelp-test-$$

cg_mounts() {
	awk '{ for (i = 7; i <= NF; i++) if ($i == "-") { if ($(i+1) ~ /^cgroup2?$/) print $5; break } }' \
		/proc/self/mountinfo | sort -u
}

cg_left() {
	local m out=""
	for m in $(cg_mounts); do
		[ -d "$m$1" ] && out="$out $m$1"
	done
	printf '%s' "${out# }"
}

mk() {
	local n=$1
	shift
	probe_bundle "$n" "$@" && bundle_set "$n" '.linux.cgroupsPath = $p' --arg p "$CG_BASE/$n"
}

st() { kelp_rt state "$1" 2>/dev/null | jq -r ".$2 // empty" 2>/dev/null; }

alive() {
	local s
	s=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)
	[ -n "$s" ] && [ "$s" != Z ] && [ "$s" != X ]
}

procs_with() {
	local f c out=""
	for f in /proc/[0-9]*/cmdline; do
		c=$(tr '\0' ' ' <"$f" 2>/dev/null) || continue
		case "${f#/proc/}" in "$$/cmdline" | "$BASHPID/cmdline") continue ;; esac
		[[ $c == *"$1"* ]] && out="$out ${f%/cmdline}"
	done
	printf '%s' "${out# }"
}

lines() { tr '\n' '|' | sed 's/|$//'; }

# ---- cleanup ------------------------------------------------------------------------------

_kt_delete() { # ID VIEW
	local id=$1 view=$2
	if [ "$view" != host ] && [ -e "$(cg_view_file "$view")" ]; then
		timeout 30 nsenter --mount="$(cg_view_file "$view")" -- "$KELP" --root "$STATE_ROOT" delete -f "$id" \
			</dev/null >/dev/null 2>&1
	else
		timeout 30 "$KELP" --root "$STATE_ROOT" delete -f "$id" </dev/null >/dev/null 2>&1
	fi
}

_kt_cleanup() {
	local rc=$1 id view d f
	trap - EXIT INT TERM
	declare -F kt_extra_cleanup >/dev/null && kt_extra_cleanup
	if [ -x "$KELP" ] || command -v "$KELP" >/dev/null 2>&1; then
		while read -r id view; do
			[ -n "$id" ] && _kt_delete "$id" "$view"
		done <"$KT_CONTAINERS"
		# Whatever else is left in the private state root (a container made another way).
		for d in "$STATE_ROOT"/*/; do
			[ -d "$d" ] || continue
			id=$(basename "$d")
			_kt_delete "$id" host
			for f in "$KT_NSDIR"/mnt-*; do
				[ -e "$d" ] && [ -e "$f" ] && _kt_delete "$id" "${f##*/mnt-}"
			done
		done
	fi
	local m
	for m in $(cg_mounts); do
		[ -d "$m$CG_BASE" ] && find "$m$CG_BASE" -depth -type d -exec rmdir {} \; 2>/dev/null
	done
	for f in "$KT_NSDIR"/mnt-*; do
		[ -e "$f" ] || continue
		umount "$f" 2>/dev/null
		rm -f "$f"
	done
	if [ -d "$KT_NSDIR" ] && mountpoint -q "$KT_NSDIR"; then
		umount "$KT_NSDIR" 2>/dev/null || umount -l "$KT_NSDIR"
	fi
	rm -rf --one-file-system "$TEST_TMP" 2>/dev/null || {
		echo "lib.sh: could not remove $TEST_TMP completely" >&2
		[ "$rc" -ne 0 ] || rc=1
	}
	if [ "$rc" -eq 0 ] && [ "$KT_FAIL" -gt 0 ]; then
		rc=1
	fi
	exit "$rc"
}

trap '_kt_cleanup $?' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

fi
