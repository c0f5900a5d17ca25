#!/bin/bash
# bench/run.sh — time `run` of `true`, and create / start / delete separately, for kelp, runc
# and crun side by side, and print a table.
#
# Usage: bench/run.sh            (as root; `make bench` builds kelp first)
# Env:
#   N=30           measured rounds (after WARMUP=3 unmeasured ones)
#   RSS_N=5        extra rounds under /usr/bin/time -f %M for the peak RSS medians
#   RUNTIME_A      the runtime compared (default: build/bin/kelp)
#   RUNTIME_B      first baseline (default: runc)
#   RUNTIME_C      second baseline (default: crun; empty to compare two runtimes only)
#
# Fairness: every runtime runs in the same pure cgroup v1 view (a private mount namespace,
# pinned to a file, where /sys/fs/cgroup/unified is unmounted; crun refuses the hybrid layout),
# entered once for the whole benchmark so no wrapper is timed; each has its own --root under a
# temp dir; the order is rotated every round so no runtime is always first; wall time is bash's
# $EPOCHREALTIME around the runtime command alone. Per runtime and operation the table shows
# min / median / max in ms, on B's and C's rows the median of the round-by-round ratios A/B and
# A/C (column "A/this"; below 1 means A is faster), and the median peak RSS (kB, GNU time's %M: the largest process the command waited for).
# Any runtime command failing stops the benchmark with its output and a non-zero status.
set -u
export LC_ALL=C

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
self=$src/bench/run.sh

die() {
	echo "bench: $*" >&2
	exit 1
}

# ---- inner part: runs inside the pinned v1 mount namespace --------------------------------

median() { # FILE
	sort -g "$1" | awk '{ a[NR] = $1 } END { if (NR == 0) { print "nan"; exit } if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

inner() {
	local tmp=$1
	local -a rts labels
	mapfile -t rts <"$tmp/runtimes"
	mapfile -t labels <"$tmp/labels"
	local k=${#rts[@]} bundle=$tmp/bundle data=$tmp/data out=$tmp/out
	mkdir -p "$data"

	# Run one runtime command; on failure print it with its output and stop everything.
	rtcmd() { # I ARGS...
		local i=$1
		shift
		if ! "${rts[$i]}" --root "$tmp/root-$i" "$@" </dev/null >"$out" 2>&1; then
			echo "bench: FAILED: ${labels[$i]} ($(basename "${rts[$i]}")) $*" >&2
			sed 's/^/  | /' "$out" >&2
			exit 1
		fi
	}
	# Time one runtime command in microseconds into $us.
	timed() { # I ARGS...
		local t0 t1
		t0=$EPOCHREALTIME
		rtcmd "$@"
		t1=$EPOCHREALTIME
		us=$((${t1/./} - ${t0/./}))
	}
	# Peak RSS (kB) of one runtime command into $kb.
	rss() { # I ARGS...
		local i=$1
		shift
		if ! /usr/bin/time -f %M -o "$tmp/rss" "${rts[$i]}" --root "$tmp/root-$i" "$@" </dev/null >"$out" 2>&1; then
			echo "bench: FAILED: ${labels[$i]} $* (under /usr/bin/time)" >&2
			sed 's/^/  | /' "$out" >&2
			exit 1
		fi
		kb=$(tail -n 1 "$tmp/rss")
	}
	wait_stopped() { # I ID
		local i=$1 id=$2 st="" n
		for n in $(seq 200); do
			st=$("${rts[$i]}" --root "$tmp/root-$i" state "$id" 2>/dev/null | jq -r '.status // empty' 2>/dev/null)
			[ "$st" = stopped ] && return 0
			sleep 0.01
		done
		die "${labels[$i]}: container $id did not stop after start (last status '${st:-none}')"
	}

	local round total=$((WARMUP + N)) r o i id us kb
	for ((round = 1; round <= total; round++)); do
		local -a order=()
		for ((o = 0; o < k; o++)); do
			order+=($(((o + round) % k)))
		done
		for i in "${order[@]}"; do
			id=kelp-bench-$$-$round-$i-run
			timed "$i" run --bundle "$bundle" "$id"
			[ "$round" -gt "$WARMUP" ] && echo "$us" >>"$data/run.$i"
		done
		for i in "${order[@]}"; do
			id=kelp-bench-$$-$round-$i-cycle
			timed "$i" create --bundle "$bundle" "$id"
			[ "$round" -gt "$WARMUP" ] && echo "$us" >>"$data/create.$i"
			timed "$i" start "$id"
			[ "$round" -gt "$WARMUP" ] && echo "$us" >>"$data/start.$i"
			wait_stopped "$i" "$id"
			timed "$i" delete "$id"
			[ "$round" -gt "$WARMUP" ] && echo "$us" >>"$data/delete.$i"
		done
		[ -t 2 ] && printf '\rbench: round %d/%d' "$round" "$total" >&2
	done
	for ((round = 1; round <= RSS_N; round++)); do
		for ((o = 0; o < k; o++)); do
			i=$(((o + round) % k))
			id=kelp-bench-$$-rss$round-$i
			rss "$i" run --bundle "$bundle" "$id-run"
			echo "$kb" >>"$data/rss-run.$i"
			rss "$i" create --bundle "$bundle" "$id"
			echo "$kb" >>"$data/rss-create.$i"
			rss "$i" start "$id"
			echo "$kb" >>"$data/rss-start.$i"
			wait_stopped "$i" "$id"
			rss "$i" delete "$id"
			echo "$kb" >>"$data/rss-delete.$i"
		done
	done
	[ -t 2 ] && printf '\r%40s\r' '' >&2

	# ---- the table ----
	local op head
	echo "kelp bench: $N rounds (+$WARMUP warm-up), order rotated each round; pure cgroup v1 view;"
	echo "busybox bundle running \`true\`; peak RSS from $RSS_N more rounds"
	for ((i = 0; i < k; i++)); do
		echo "  ${labels[$i]} = ${rts[$i]}"
	done
	head=$(printf '%-7s %-8s %9s %9s %9s' op runtime "min ms" "median ms" "max ms")
	head+=$(printf ' %12s' "${labels[0]}/this")
	head+=$(printf ' %11s' "rss kB")
	echo
	echo "$head"
	for op in run create start delete; do
		for ((i = 0; i < k; i++)); do
			local line ratio mn mx med
			read -r mn mx < <(awk '{ v = $1 / 1000; if (NR == 1 || v < mn) mn = v; if (NR == 1 || v > mx) mx = v }
				END { printf "%.2f %.2f\n", mn, mx }' "$data/$op.$i")
			med=$(median "$data/$op.$i" | awk '{ printf "%.2f", $1 / 1000 }')
			line=$(printf '%-7s %-8s %9s %9s %9s' "$op" "${labels[$i]}" "$mn" "$med" "$mx")
			# the median over rounds of A's time / this runtime's time in the same round
			if [ "$i" -eq 0 ]; then
				ratio=-
			else
				paste "$data/$op.0" "$data/$op.$i" | awk '{ print $1 / $2 }' >"$tmp/ratio"
				ratio=$(median "$tmp/ratio" | awk '{ printf "%.2f", $1 }')
			fi
			line+=$(printf ' %12s' "$ratio")
			if [ "$RSS_N" -gt 0 ]; then
				line+=$(printf ' %11s' "$(median "$data/rss-$op.$i")")
			else
				line+=$(printf ' %11s' -)
			fi
			echo "$line"
		done
	done
}

if [ "${1:-}" = --inner ]; then
	N=$2 WARMUP=$3 RSS_N=$4
	inner "$5"
	exit $?
fi

# ---- outer part: checks, the bundle, the pinned namespace, cleanup ------------------------

N=${N:-30}
WARMUP=${WARMUP:-3}
RSS_N=${RSS_N:-5}
for v in N WARMUP RSS_N; do
	case "${!v}" in '' | *[!0-9]*) die "$v must be a number" ;; esac
done
[ "$N" -ge 1 ] || die "N must be at least 1"
[ "$(id -u)" -eq 0 ] || die "needs root (containers, and a private mount namespace for the cgroup v1 view)"
[ -x /usr/bin/time ] || die "/usr/bin/time is missing: apt-get install time"
for c in jq nsenter unshare mountpoint; do
	command -v "$c" >/dev/null || die "$c is missing"
done

resolve() { # PATH-OR-NAME
	case "$1" in
	*/*) [ -x "$1" ] && (cd "$(dirname "$1")" && echo "$PWD/$(basename "$1")") ;;
	*) command -v "$1" ;;
	esac
}
want=("${RUNTIME_A:-$src/build/bin/kelp}" "${RUNTIME_B-runc}" "${RUNTIME_C-crun}")
rts=()
labels=()
for r in "${want[@]}"; do
	[ -n "$r" ] || continue
	p=$(resolve "$r") || p=""
	[ -n "$p" ] || die "runtime $r is not an executable (for kelp: make)"
	l=$(basename "$p")
	# Two runs of the same binary (RUNTIME_A=runc RUNTIME_C=runc) get distinct labels.
	n=1
	for x in "${labels[@]}"; do
		[ "${x%#*}" = "$l" ] && n=$((n + 1))
	done
	[ $n -gt 1 ] && l="$l#$n"
	rts+=("$p")
	labels+=("$l")
done
[ ${#rts[@]} -ge 2 ] || die "need at least two runtimes"

tmp=$(mktemp -d /tmp/kelp-bench.XXXXXX) || die "mktemp failed"
pin=$tmp/ns/mnt-v1
cleanup() {
	trap - EXIT INT TERM
	local i id
	if [ -e "$pin" ]; then
		for ((i = 0; i < ${#rts[@]}; i++)); do
			[ -d "$tmp/root-$i" ] || continue
			for id in "$tmp/root-$i"/*/; do
				[ -d "$id" ] || continue
				id=$(basename "$id")
				timeout 30 nsenter --mount="$pin" -- "${rts[$i]}" --root "$tmp/root-$i" delete -f "$id" \
					</dev/null >/dev/null 2>&1
			done
		done
		umount "$pin" 2>/dev/null
	fi
	mountpoint -q "$tmp/ns" && umount "$tmp/ns"
	rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$src/scripts/make-bundle.sh" "$tmp/bundle" true >/dev/null || die "make-bundle.sh failed"
printf '%s\n' "${rts[@]}" >"$tmp/runtimes"
printf '%s\n' "${labels[@]}" >"$tmp/labels"
for ((i = 0; i < ${#rts[@]}; i++)); do
	mkdir -m 0700 "$tmp/root-$i"
done

mkdir -p "$tmp/ns"
mount --bind "$tmp/ns" "$tmp/ns" && mount --make-private "$tmp/ns" || die "cannot make $tmp/ns a private mount"
: >"$pin"
timeout 20 unshare --mount="$pin" --propagation private -- \
	sh -ec 'if mountpoint -q /sys/fs/cgroup/unified; then umount /sys/fs/cgroup/unified; fi' ||
	die "cannot set up the cgroup v1 view"
nsenter --mount="$pin" -- sh -c 'awk "{ for (i = 7; i <= NF; i++) if (\$i == \"-\") { print \$(i+1); break } }" /proc/self/mountinfo' |
	grep -qx cgroup2 && die "the v1 view still has a cgroup2 mount"

nsenter --mount="$pin" --wd="$src" -- bash "$self" --inner "$N" "$WARMUP" "$RSS_N" "$tmp"
