#!/bin/bash
# bench/proxy.sh — kelp-proxy at 1,000 and 10,000 services × 10 endpoints (issue 10, point 5):
# full sync against `nft -f` of the same ruleset, one-service changes under `watch`, the
# watcher's peak RSS, and the connection rate to one ClusterIP with 10 and 10,000 services.
#
# Usage: bench/proxy.sh        (as root, after `make`; `make bench-proxy` does both)
# Env:
#   SIZES="1000 10000"  service counts for the sync and change measurements, ascending (the
#                       last is the one the absolute targets apply to, the change ratio is
#                       last / first)
#   SYNC_ROUNDS=5       measured full-sync rounds per size (after one unmeasured warm-up round)
#   CHANGES=20          measured one-service changes per size (after CHANGE_WARMUP=2)
#   DP_N=<last size>    services loaded for the "many" side of the data-path measurement
#   LAYOUTS=files       "files lists" also times the sync of the lists layout
#   DP_ROUNDS=20 DP_MS=500     data-path rounds and the length of each client run in ms (short
#                       runs, many of them: on a shared machine, neighbours in time see the same load)
#   DP_NICE=-20         nice value of the data-path client and server: on a shared machine,
#                       other work then takes less CPU from the path being measured
#   KELP_PROXY=build/bin/kelp-proxy
#   KB_DEV=1            check the harness without kelp-proxy: services come from a hand-written
#                       nft ruleset (bench/proxy/nft-dev.awk), kelp-proxy rows stay empty
#
# Manifests (bench/proxy/gen.awk, `kubectl get -o yaml` style): service CIDR 10.96.0.0/16, pod
# CIDR 10.128.0.0/12, one port each (3/4 TCP, 1/4 UDP), 1/5 NodePort. Two layouts of the same
# objects: "files", one file per service (its Service and its EndpointSlice as two documents;
# the watch measurement changes these), and "lists", two big `List` files (services.yaml,
# endpointslices.yaml) as `kubectl get svc,endpointslices -A -o yaml` would print them.
#
# Everything runs in network namespaces made here (kb-PID-…), deleted at the end, on error and
# on ^C; nothing touches the root namespace. Fairness and what is timed:
# - full sync: per round one fresh "node" netns (lo, and the node IP 198.18.0.1 for NodePorts
#   on a veth pair). Each load starts with its input in the page cache (`warm`) and after
#   `settle`, with the CPUs idle again. In the netns, in
#   an order rotated every round: `kelp-proxy sync` of the files layout
#   (and of the lists layout, with LAYOUTS), and `nft -f RULES`, where RULES is the equivalent
#   ruleset saved after kelp-proxy's sync in the warm-up round: `nft list ruleset`, with the few
#   rewrites nft needs to read its own listing back (see save_equivalent); after each one the
#   namespace is emptied again (`kelp-proxy flush`, `nft flush ruleset`). Wall time is bash's
#   $EPOCHREALTIME around the command alone, from a shell already inside the netns; kelp's own
#   figure is kelp_proxy_last_sync_duration_seconds from `show --metrics`.
# - one-service change: `kelp-proxy watch` on the files layout; a new version of one service's
#   file (endpoint 9 moved) is renamed into the directory (bench/proxy/swapwait: inotify on
#   state.json instead of polling, so no CPU is taken from the watcher); then
#   kelp_proxy_syncs_total{kind="partial"} must have gone up by one, and its
#   kelp_proxy_last_sync_duration_seconds is the figure. Each change hits a different service.
# - RSS: VmRSS of the watch process after its changes (what it holds while it runs: the target),
#   and VmHWM (its peak: the start-up transaction, whose batch exists whole at the commit).
# - data path: three identical topologies, client netns — node netns — backend netns (the 10
#   endpoint IPs of service 0 on one veth, bench/proxy/connrate serve); node a has services
#   0-9, node b services 0-(DP_N-1), node c services 0-9 again: c/a is the noise floor of the
#   machine at that moment, to read b/a against. bench/proxy/connrate client connects and
#   resets to the ClusterIP of service 0 for DP_MS; the order of the sides rotates every round;
#   medians and per-round ratios.
# A failed command stops the benchmark with its output and status 1; a missed target does not
# (the last line says which targets were met).
set -u
export LC_ALL=C
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
self=$src/bench/proxy.sh

die() {
	echo "bench/proxy: $*" >&2
	exit 1
}

median() { # FILE
	sort -g "$1" | awk '{ a[NR] = $1 } END { if (NR == 0) { print "nan"; exit } if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# microseconds between two $EPOCHREALTIME values
us_between() { # T0 T1
	echo $((${2/./} - ${1/./}))
}

# Metrics from one `kelp-proxy show --metrics` (full Prometheus names, labels included), their
# values on one line in the order asked.
metric() { # STATE-DIR NAME...
	local st=$1 out
	shift
	out=$("$KP" --state-dir "$st" show --metrics 2>&1) || {
		echo "bench/proxy: FAILED: kelp-proxy --state-dir $st show --metrics" >&2
		printf '%s\n' "$out" | sed 's/^/  | /' >&2
		return 1
	}
	printf '%s\n' "$out" | awk -v want="$*" 'BEGIN { n = split(want, k, " ") }
		{ v[$1] = $2; seen[$1] = 1 }
		END { for (i = 1; i <= n; i++) { if (!seen[k[i]]) { print "bench/proxy: kelp-proxy show --metrics has no " k[i] >"/dev/stderr"; exit 1 }
			printf "%s%s", (i > 1 ? " " : ""), v[k[i]] } print "" }'
}

# Run a command; on failure print it with its output and stop.
must() { # ARGS...
	if ! "$@" >"$tmp/out" 2>&1; then
		echo "bench/proxy: FAILED: $*" >&2
		sed 's/^/  | /' "$tmp/out" | tail -n 40 >&2
		exit 1
	fi
}

node_opts() {
	echo --node-name node-0 --nodeport-addresses 198.18.0.1/32 --cluster-cidr 10.128.0.0/12
}

ip4() { # N
	echo "$(($1 >> 24 & 255)).$(($1 >> 16 & 255)).$(($1 >> 8 & 255)).$(($1 & 255))"
}

# ---- inner parts: run inside a node netns (ip netns exec NS bash proxy.sh --inner-…) --------

# Nothing of ours may be left in the node netns between two timed operations.
check_empty() { # WHAT
	local left
	left=$(nft list tables 2>&1) || die "nft list tables failed: $left"
	[ -z "$left" ] || die "after $1 the netns still has: $left"
}

# The equivalent ruleset of what kelp-proxy just made, for `nft -f`: `nft list ruleset`, with
# the two rewrites nft 1.0.6 needs to read its own listing back (checked: the rest loads as
# listed). A dnat whose map key ends in numgen: nft types numgen as a plain integer and refuses
# it in a key whose last part is a mark, so the number goes through meta mark (one more
# statement in each endpoint-group rule, a few rules in all); and `reject with tcp reset`
# needs its `meta l4proto tcp` written out.
save_equivalent() { # N
	local n=$1 f=$tmp/rules.$1.new rc=0
	nft list ruleset >"$f.listed" 2>"$tmp/listerr" || rc=$?
	if [ "$rc" -ne 0 ]; then
		echo "bench/proxy: \`nft list ruleset\` fails on kelp-proxy's ruleset ($n services; status $rc), so" >&2
		echo "there is no equivalent ruleset to load with nft -f:" >&2
		sed 's/^/  | /' "$tmp/listerr" | head -n 5 >&2
		exit 1
	fi
	sed -E 's/^(\s*)dnat (ip6?) to (.*)numgen random mod ([0-9]+) map @/\1meta mark set numgen random mod \4 dnat \2 addr . port to \3meta mark map @/
		s/^(\s*)reject with tcp reset$/\1meta l4proto tcp reject with tcp reset/' "$f.listed" >"$f" ||
		die "cannot write $f"
	mv -f "$f" "$tmp/rules.$n" || die "cannot rename $f"
	wc -l <"$tmp/rules.$n" >>"$res/rules.$n.lines"
	diff "$f.listed" "$tmp/rules.$n" | grep -c '^>' >"$res/rules.$n.rewritten"
}

# Before a timed load: SETTLE seconds, then until the CPUs are idle (under 10% busy over 100 ms,
# for at most 5 s). A flushed ruleset of 144,000 elements, and a deleted namespace, are freed by
# the kernel in the background for a second or more; whichever load came next would share the
# CPUs with that (both sides get the same wait).
settle() {
	local i cpu u n s id io irq sirq st rest busy0 idle0 busy1 idle1
	sleep "$SETTLE"
	for ((i = 0; i < 50; i++)); do
		read -r cpu u n s id io irq sirq st rest </proc/stat
		busy0=$((u + n + s + irq + sirq + st)) idle0=$((id + io))
		sleep 0.1
		read -r cpu u n s id io irq sirq st rest </proc/stat
		busy1=$((u + n + s + irq + sirq + st)) idle1=$((id + io))
		[ $(((busy1 - busy0) * 10)) -lt $((busy1 - busy0 + idle1 - idle0)) ] && break
	done
}

# The input of a timed load into the page cache: this VM's host pages out cold page cache
# (DAMON pageout in the guest, kdamond), and a round would else time the disk now and then.
warm() { # PATH...
	find "$@" -type f -exec cat {} + >/dev/null || die "cannot read $*"
}

kelp_sync() { # N LAYOUT-DIR LABEL ROUND
	local n=$1 dir=$2 label=$3 round=$4 st=$tmp/st-sync t0 t1 us got
	rm -rf "$st" || die "cannot remove $st"
	mkdir "$st" || die "cannot make $st"
	warm "$dir" "$KP"
	settle
	t0=$EPOCHREALTIME
	# shellcheck disable=SC2046
	must "$KP" $(node_opts) --state-dir "$st" sync "$dir"
	t1=$EPOCHREALTIME
	us=$(us_between "$t0" "$t1")
	local svcs eps m elems
	read -r svcs eps m elems < <(metric "$st" kelp_proxy_services kelp_proxy_endpoints \
		kelp_proxy_last_sync_duration_seconds kelp_proxy_nft_elements) && [ -n "$elems" ] || exit 1
	[ "$svcs" = "$n" ] || die "kelp-proxy sync $dir: kelp_proxy_services is $svcs, not $n"
	[ "$eps" = "$((10 * n))" ] || die "kelp-proxy sync $dir: kelp_proxy_endpoints is $eps, not $((10 * n))"
	if [ "$round" -gt 0 ]; then
		echo "$us" | awk '{ printf "%.3f\n", $1 / 1000 }' >>"$res/sync.$n.$label"
		echo "$m" | awk '{ printf "%.3f\n", $1 * 1000 }' >>"$res/sync.$n.$label.metric"
	fi
	# the equivalent ruleset is taken once, in the warm-up round; later rounds must make as many
	# elements (the input is the same)
	if [ "$round" -eq 0 ] && [ "$label" = files ]; then
		save_equivalent "$n"
		echo "$elems" >"$res/elements.$n"
	elif [ -s "$res/elements.$n" ] && [ "$elems" != "$(cat "$res/elements.$n")" ]; then
		die "kelp-proxy sync $dir ($label, round $round) made $elems elements, the first sync $(cat "$res/elements.$n")"
	fi
	must "$KP" --state-dir "$st" flush
	check_empty "kelp-proxy flush"
}

nft_load() { # N ROUND
	local n=$1 round=$2 t0 t1
	[ -s "$tmp/rules.$n" ] || die "no saved ruleset for $n services"
	warm "$tmp/rules.$n" "$(command -v nft)"
	settle
	t0=$EPOCHREALTIME
	must nft -f "$tmp/rules.$n"
	t1=$EPOCHREALTIME
	[ "$round" -gt 0 ] && us_between "$t0" "$t1" | awk '{ printf "%.3f\n", $1 / 1000 }' >>"$res/sync.$n.nft"
	must nft flush ruleset
	check_empty "nft flush ruleset"
}

inner_sync() { # N ROUND
	local n=$1 round=$2 op
	local -a ops
	read -r -a ops <<<"$LAYOUTS nft"
	if [ -n "$KB_DEV" ]; then
		awk -v n="$n" -f "$src/bench/proxy/nft-dev.awk" >"$tmp/rules.$n" || die "nft-dev.awk failed"
		ops=(nft)
	fi
	local k=${#ops[@]} o
	for ((o = 0; o < k; o++)); do
		op=${ops[$(((o + round) % k))]}
		# the nft side needs a listing: round 0 (the warm-up) starts with kelp-proxy
		[ "$round" -eq 0 ] && [ -z "$KB_DEV" ] && op=${ops[$o]}
		case $op in
		files) kelp_sync "$n" "$tmp/m$n/files" files "$round" ;;
		lists) kelp_sync "$n" "$tmp/m$n/lists" lists "$round" ;;
		nft) nft_load "$n" "$round" ;;
		esac
	done
}

inner_watch() { # N
	local n=$1
	local dir=$tmp/m$n/files st=$tmp/st-watch-$n stage=$tmp/stage-$n pid i s full p0 us got
	mkdir -p "$st" "$stage" || die "cannot make $st"
	# shellcheck disable=SC2046
	"$KP" $(node_opts) --state-dir "$st" watch "$dir" </dev/null >"$tmp/watch-$n.log" 2>&1 &
	pid=$!
	echo "$pid kelp-proxy" >>"$tmp/pids"
	for ((i = 0; i < 1200; i++)); do
		kill -0 "$pid" 2>/dev/null || {
			wait "$pid"
			echo "bench/proxy: kelp-proxy watch $dir exited (status $?) before its first sync:" >&2
			tail -n 40 "$tmp/watch-$n.log" | sed 's/^/  | /' >&2
			exit 1
		}
		if [ -e "$st/state.json" ]; then
			full=$(metric "$st" 'kelp_proxy_syncs_total{kind="full"}' 2>/dev/null) && [ "${full:-0}" -ge 1 ] && break
		fi
		sleep 0.1
	done
	[ "$i" -lt 1200 ] || die "kelp-proxy watch $dir: no full sync within 120 s"
	got=$(metric "$st" kelp_proxy_services) || exit 1
	[ "$got" = "$n" ] || die "kelp-proxy watch $dir: kelp_proxy_services is $got, not $n"
	p0=$(metric "$st" 'kelp_proxy_syncs_total{kind="partial"}') || exit 1
	for ((i = 1; i <= CHANGE_WARMUP + CHANGES; i++)); do
		s=$((1 + (i * 7919) % (n - 1))) # a different service each time, never service 0
		awk -v one="$s" -v variant=1 -v out="$stage/svc-$(printf %05d "$s").yaml" -f "$src/bench/proxy/gen.awk" ||
			die "gen.awk failed for service $s"
		sleep "$SETTLE"
		us=$("$BIN/swapwait" "$stage/svc-$(printf %05d "$s").yaml" "$dir/svc-$(printf %05d "$s").yaml" \
			"$st/state.json" 30000) || {
			echo "bench/proxy: change $i (service $s) was not committed; watch log:" >&2
			tail -n 20 "$tmp/watch-$n.log" | sed 's/^/  | /' >&2
			exit 1
		}
		local k partial="" m msgs
		for ((k = 0; k < 100; k++)); do
			read -r partial m msgs < <(metric "$st" 'kelp_proxy_syncs_total{kind="partial"}' \
				kelp_proxy_last_sync_duration_seconds kelp_proxy_last_sync_netlink_messages) && [ -n "$msgs" ] || exit 1
			[ "$partial" -ge $((p0 + i)) ] && break
			sleep 0.05
		done
		[ "$partial" -eq $((p0 + i)) ] ||
			die "change $i (service $s): kelp_proxy_syncs_total{kind=\"partial\"} is $partial, expected $((p0 + i))"
		if [ "$i" -gt "$CHANGE_WARMUP" ]; then
			echo "$us" | awk '{ printf "%.3f\n", $1 / 1000 }' >>"$res/chg.$n.wall"
			echo "$m" | awk '{ printf "%.3f\n", $1 * 1000 }' >>"$res/chg.$n.metric"
			echo "$msgs" >>"$res/chg.$n.msgs"
		fi
	done
	kill -0 "$pid" 2>/dev/null || die "kelp-proxy watch exited during the changes"
	awk '$1 == "VmHWM:" { print $2 }' "/proc/$pid/status" >"$res/hwm.$n" || die "no VmHWM for pid $pid"
	awk '$1 == "VmRSS:" { print $2 }' "/proc/$pid/status" >"$res/rss.$n" || die "no VmRSS for pid $pid"
	# the last change is in the kernel: its new endpoint address is in the ruleset (checked where
	# listing the ruleset is quick)
	if [ "$n" -le 2000 ]; then
		local addr
		addr=$(ip4 $((167772160 + 10485760 + s)))
		nft list ruleset | grep -qF "$addr" || die "after the changes, $addr (service $s's new endpoint) is not in the ruleset"
	fi
	kill -TERM "$pid" || die "cannot signal kelp-proxy watch ($pid)"
	wait "$pid"
	local rc=$?
	[ "$rc" -eq 0 ] || {
		echo "bench/proxy: kelp-proxy watch exited with status $rc on SIGTERM:" >&2
		tail -n 20 "$tmp/watch-$n.log" | sed 's/^/  | /' >&2
		exit 1
	}
	must "$KP" --state-dir "$st" flush
}

if [ "${1:-}" = --inner-sync ]; then
	inner_sync "$2" "$3"
	exit $?
elif [ "${1:-}" = --inner-watch ]; then
	inner_watch "$2"
	exit $?
fi

# ---- outer part ---------------------------------------------------------------------------

SIZES=${SIZES:-1000 10000}
SYNC_ROUNDS=${SYNC_ROUNDS:-5}
CHANGES=${CHANGES:-20}
CHANGE_WARMUP=${CHANGE_WARMUP:-2}
DP_ROUNDS=${DP_ROUNDS:-20}
LAYOUTS=${LAYOUTS:-files}
DP_NICE=${DP_NICE:--20}
case "$LAYOUTS" in files | "files lists") ;; *) die "LAYOUTS must be \"files\" or \"files lists\"" ;; esac
case "${DP_NICE#-}" in '' | *[!0-9]*) die "DP_NICE must be a number" ;; esac
DP_MS=${DP_MS:-500}
SETTLE=${SETTLE:-0.2}
KB_DEV=${KB_DEV:-}
[ "$KB_DEV" = 0 ] && KB_DEV=
BIG=${SIZES##* }
DP_N=${DP_N:-$BIG}
for v in SYNC_ROUNDS CHANGES CHANGE_WARMUP DP_ROUNDS DP_MS DP_N; do
	case "${!v}" in '' | *[!0-9]*) die "$v must be a number" ;; esac
done
for s in $SIZES; do
	case "$s" in '' | *[!0-9]*) die "SIZES must be numbers" ;; esac
	[ "$s" -ge 10 ] && [ "$s" -le 65536 ] || die "a size must be 10 ... 65536 (the pod CIDR holds 16 addresses a service)"
done
[ "$DP_N" -ge 10 ] && [ "$DP_N" -le 65536 ] || die "DP_N must be 10 ... 65536"
[ "$SYNC_ROUNDS" -ge 1 ] && [ "$CHANGES" -ge 1 ] && [ "$DP_ROUNDS" -ge 1 ] && [ "$DP_MS" -ge 100 ] ||
	die "rounds and changes must be at least 1, DP_MS at least 100"
[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces)"
for c in ip nft awk sort; do
	command -v "$c" >/dev/null || die "$c is missing (apt-get install iproute2 nftables)"
done
KP=${KELP_PROXY:-$src/build/bin/kelp-proxy}
if [ -z "$KB_DEV" ]; then
	[ -x "$KP" ] || die "$KP is not an executable (make; or KB_DEV=1 to check the harness alone)"
	KP=$(cd "$(dirname "$KP")" && echo "$PWD/$(basename "$KP")")
fi
BIN=$src/build/bench
make -s -C "$src" build/bench/connrate build/bench/swapwait >/dev/null || die "cannot build bench/proxy helpers (make)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kelp-bench-proxy.XXXXXX") || die "mktemp failed"
res=$tmp/res
mkdir "$res" || die "mkdir $res"
: >"$tmp/pids"
# a copy is measured: a rebuild of build/bin/kelp-proxy during the run changes nothing here
kp_id="(KB_DEV: not run) $KP"
if [ -z "$KB_DEV" ]; then
	kp_id="$KP (built $(date -u -r "$KP" '+%F %T UTC'), sha256 $(sha256sum "$KP" | cut -c1-12))"
	cp "$KP" "$tmp/kelp-proxy" || die "cannot copy $KP"
	KP=$tmp/kelp-proxy
fi
export KP BIN tmp res src SETTLE KB_DEV CHANGES CHANGE_WARMUP LAYOUTS
pfx=kb-$$-

cleanup() {
	trap - EXIT INT TERM
	local pid what ns
	# only processes this run started, each checked by name before the signal
	while read -r pid what; do
		[ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$what" ] && kill -KILL "$pid" 2>/dev/null
	done <"$tmp/pids"
	for ns in $(ip netns list 2>/dev/null | awk -v p="$pfx" 'index($1, p) == 1 { print $1 }'); do
		ip netns del "$ns" 2>/dev/null
	done
	rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say() { [ -t 2 ] && printf '\r%-70s' "bench/proxy: $*" >&2; }

# A node netns: lo, and the node IP on a link (the NodePort address; a veth pair, as this
# kernel may have no dummy driver).
mk_node() { # NAME
	must ip netns add "$1"
	must ip -n "$1" link set lo up
	must ip -n "$1" link add kb0 type veth peer name kb1
	must ip -n "$1" link set kb1 up
	must ip -n "$1" addr add 198.18.0.1/24 dev kb0
	must ip -n "$1" link set kb0 up
}

# ---- manifests ----
phase_t=$SECONDS
phases=""
phase_done() { # NAME
	phases+="${phases:+, }$1 $((SECONDS - phase_t)) s"
	phase_t=$SECONDS
}
# shellcheck disable=SC2086 # SIZES is a list
gen_sizes=$(printf '%s\n' $SIZES "$DP_N" 10 | sort -un)
for n in $gen_sizes; do
	say "generating $n services"
	mkdir -p "$tmp/m$n/files" "$tmp/m$n/lists" || die "mkdir"
	awk -v n="$n" -v out="$tmp/m$n/files" -f "$src/bench/proxy/gen.awk" || die "gen.awk failed for $n services"
	if [ "$LAYOUTS" != files ]; then
		awk -v n="$n" -v out="$tmp/m$n/lists" -v layout=lists -f "$src/bench/proxy/gen.awk" || die "gen.awk failed for $n services"
	fi
	du -sk "$tmp/m$n/files" | awk -v n="$n" '{ print n, $1 }' >>"$res/size.files"
done

phase_done manifests
# ---- full sync ----
for n in $SIZES; do
	for ((r = 0; r <= SYNC_ROUNDS; r++)); do
		say "full sync, $n services, round $r/$SYNC_ROUNDS"
		ns=${pfx}s$n-$r
		mk_node "$ns"
		ip netns exec "$ns" bash "$self" --inner-sync "$n" "$r" || die "full sync of $n services failed (round $r)"
		must ip netns del "$ns"
	done
	if [ -z "$KB_DEV" ]; then
		paste "$res/sync.$n.files" "$res/sync.$n.nft" | awk '{ print $1 / $2 }' >"$res/sync.$n.ratio"
	fi
done

phase_done "full sync"
# ---- one-service changes and RSS ----
if [ -z "$KB_DEV" ]; then
	for n in $SIZES; do
		say "one-service changes, $n services"
		ns=${pfx}w$n
		mk_node "$ns"
		ip netns exec "$ns" bash "$self" --inner-watch "$n" || die "the watch measurement at $n services failed"
		must ip netns del "$ns"
	done
fi

phase_done changes
# ---- data path: client — node — backend; 10 services (a), DP_N services (b), 10 again (c) ----
# shellcheck disable=SC2046
for side in a b c; do
	cl=${pfx}c$side node=${pfx}n$side be=${pfx}b$side
	say "data path: topology $side"
	mk_node "$node"
	must ip netns add "$cl"
	must ip netns add "$be"
	must ip -n "$cl" link set lo up
	must ip -n "$be" link set lo up
	must ip -n "$node" link add kbc type veth peer name eth0 netns "$cl"
	must ip -n "$node" link add kbb type veth peer name eth0 netns "$be"
	must ip -n "$node" addr add 10.143.255.1/24 dev kbc
	must ip -n "$node" addr add 10.128.0.14/28 dev kbb
	must ip -n "$node" link set kbc up
	must ip -n "$node" link set kbb up
	must ip netns exec "$node" sysctl -qw net.ipv4.ip_forward=1
	must ip -n "$cl" addr add 10.143.255.2/24 dev eth0
	must ip -n "$cl" link set eth0 up
	must ip -n "$cl" route add default via 10.143.255.1
	for ((j = 1; j <= 10; j++)); do
		must ip -n "$be" addr add "10.128.0.$j/28" dev eth0
	done
	must ip -n "$be" link set eth0 up
	must ip -n "$be" route add default via 10.128.0.14
	count=$([ $side = b ] && echo "$DP_N" || echo 10)
	if [ -n "$KB_DEV" ]; then
		awk -v n="$count" -f "$src/bench/proxy/nft-dev.awk" >"$tmp/dp-$side.nft" || die "nft-dev.awk failed"
		must ip netns exec "$node" nft -f "$tmp/dp-$side.nft"
	else
		must ip netns exec "$node" "$KP" $(node_opts) --state-dir "$tmp/st-dp-$side" sync "$tmp/m$count/files"
	fi
	nice -n "$DP_NICE" ip netns exec "$be" "$BIN/connrate" serve 8080 >"$tmp/serve-$side" 2>&1 &
	echo "$! connrate" >>"$tmp/pids"
	echo "$!" >"$tmp/serve-$side.pid"
	disown $! # killed at the end by cleanup, which needs no job report
	for ((i = 0; i < 100; i++)); do
		grep -q listening "$tmp/serve-$side" 2>/dev/null && break
		sleep 0.05
	done
	grep -q listening "$tmp/serve-$side" || die "connrate serve did not start: $(cat "$tmp/serve-$side")"
	must ip netns exec "$cl" "$BIN/connrate" client 10.96.0.10 80 1 # warm-up, and a check that it works
done
hz=$(getconf CLK_TCK) || die "getconf CLK_TCK failed"
proc_ticks() { # PID: its utime + stime in clock ticks
	awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" || die "cannot read /proc/$1/stat"
}
dp_secs=$(awk -v ms="$DP_MS" 'BEGIN { print ms / 1000 }')
sides=(a b c)
for ((r = 1; r <= DP_ROUNDS; r++)); do
	for ((o = 0; o < 3; o++)); do
		side=${sides[$(((o + r) % 3))]}
		say "data path: round $r/$DP_ROUNDS, topology $side"
		sv0=$(proc_ticks "$(cat "$tmp/serve-$side.pid")")
		nice -n "$DP_NICE" ip netns exec "${pfx}c$side" "$BIN/connrate" client 10.96.0.10 80 "$dp_secs" >"$tmp/out" 2>&1 ||
			die "connrate client ($side) failed: $(cat "$tmp/out")"
		read -r conns _ rate slow cpu <"$tmp/out"
		echo "$rate" >>"$res/dp.$side"
		# CPU per connection, client and server (its ticks from /proc: utime + stime)
		sv1=$(proc_ticks "$(cat "$tmp/serve-$side.pid")")
		echo "$cpu $conns $sv0 $sv1 $hz" | awk '{ printf "%.3f\n", ($1 + ($4 - $3) * 1e6 / $5) / $2 }' >>"$res/dp.$side.cpu"
		echo "$slow" >>"$res/dp.$side.slow"
	done
done
paste "$res/dp.b" "$res/dp.a" | awk '{ print $1 / $2 }' >"$res/dp.ratio"
paste "$res/dp.c" "$res/dp.a" | awk '{ print $1 / $2 }' >"$res/dp.control"
paste "$res/dp.b.cpu" "$res/dp.a.cpu" | awk '{ print $1 / $2 }' >"$res/dp.cpuratio"
paste "$res/dp.c.cpu" "$res/dp.a.cpu" | awk '{ print $1 / $2 }' >"$res/dp.cpucontrol"
[ -t 2 ] && printf '\r%-70s\r' '' >&2
phase_done "data path"

# ---- the table ----
row() { # LABEL N FILE UNIT [SCALE]
	local f=$3
	[ -s "$f" ] || { printf '%-40s %6s %9s %9s %9s  %s\n' "$1" "$2" - - - "$4"; return; }
	read -r mn mx < <(awk '{ if (NR == 1 || $1 < mn) mn = $1; if (NR == 1 || $1 > mx) mx = $1 } END { print mn, mx }' "$f")
	printf '%-40s %6s %9.3f %9.3f %9.3f  %s\n' "$1" "$2" "$mn" "$(median "$f")" "$mx" "$4"
}
echo "kelp-proxy bench: services × 10 endpoints; $(nproc) cores, kernel $(uname -r), $(nft --version | head -1)"
echo "  kelp-proxy = $kp_id"
echo "  manifests: $(awk '{ printf "%s%d services %.1f MiB", sep, $1, $2 / 1024; sep = ", " }' "$res/size.files") (files layout)"
echo "  full sync: $SYNC_ROUNDS rounds (+1 warm-up), order rotated; changes: $CHANGES (+$CHANGE_WARMUP warm-up)"
echo "  data path: $DP_ROUNDS rounds of $DP_MS ms per side, order rotated"
echo "  time taken: $phases"
echo
printf '%-40s %6s %9s %9s %9s  %s\n' measure services min median max unit
for n in $SIZES; do
	row "full sync, kelp-proxy sync (files), wall" "$n" "$res/sync.$n.files" ms
	row "  kelp's own last_sync_duration" "$n" "$res/sync.$n.files.metric" ms
	if [ "$LAYOUTS" != files ]; then
		row "full sync, kelp-proxy sync (lists), wall" "$n" "$res/sync.$n.lists" ms
		row "  kelp's own last_sync_duration" "$n" "$res/sync.$n.lists.metric" ms
	fi
	row "nft -f of the same ruleset, wall" "$n" "$res/sync.$n.nft" ms
	row "  ratio kelp (files) / nft, per round" "$n" "$res/sync.$n.ratio" ""
done
for n in $SIZES; do
	row "one-service change, last_sync_duration" "$n" "$res/chg.$n.metric" ms
	row "  wall, rename to state.json written" "$n" "$res/chg.$n.wall" ms
	row "  netlink messages in the batch" "$n" "$res/chg.$n.msgs" ""
	row "watch process VmRSS" "$n" "$res/rss.$n" KiB
	row "watch process VmHWM (peak)" "$n" "$res/hwm.$n" KiB
done
row "data path, connections/s" 10 "$res/dp.a" "1/s"
row "data path, connections/s" "$DP_N" "$res/dp.b" "1/s"
row "data path, connections/s (control)" 10 "$res/dp.c" "1/s"
row "  ratio $DP_N / 10, per round" "" "$res/dp.ratio" ""
row "  ratio 10 (control) / 10, per round" "" "$res/dp.control" ""
row "data path, CPU per connection" 10 "$res/dp.a.cpu" "us"
row "data path, CPU per connection" "$DP_N" "$res/dp.b.cpu" "us"
row "data path, CPU per connection (control)" 10 "$res/dp.c.cpu" "us"
row "  ratio $DP_N / 10, per round" "" "$res/dp.cpuratio" ""
row "  ratio 10 (control) / 10, per round" "" "$res/dp.cpucontrol" ""
for side in a b c; do
	s=$(awk '{ t += $1 } END { print t + 0 }' "$res/dp.$side.slow")
	[ "$s" -gt 0 ] && echo "  note: $s connects took over 200 ms on side $side (a lost SYN: retransmitted after 1 s)"
done
for n in $SIZES; do
	[ -s "$res/elements.$n" ] &&
		echo "  equivalent ruleset at $n services: \`nft list ruleset\` after kelp-proxy's sync, $(tail -n 1 "$res/rules.$n.lines") lines, $(cat "$res/rules.$n.rewritten") of them rewritten for nft; $(cat "$res/elements.$n") elements (kelp_proxy_nft_elements)"
done
lines=$(sort -u "$res/rules.$BIG.lines" 2>/dev/null | wc -l)
[ "$lines" -gt 1 ] && echo "  note: the saved ruleset of $BIG services differed in length between rounds"

# ---- ratios against the targets of issue 10 ----
verdict() { # VALUE OP LIMIT
	awk -v v="$1" -v l="$3" -v op="$2" 'BEGIN { if (v == "" || v == "nan") { print "n/a"; exit }
		ok = (op == "<=") ? v <= l : (v >= 1 - l && v <= 1 + l); print ok ? "met" : "MISSED" }'
}
small=${SIZES%% *}
m() { [ -s "$1" ] && median "$1" || echo nan; }
r_sync=$(m "$res/sync.$BIG.ratio")
a_sync=$(m "$res/sync.$BIG.files")
c_big=$(m "$res/chg.$BIG.metric")
c_small=$(m "$res/chg.$small.metric")
r_chg=$(awk -v a="$c_big" -v b="$c_small" 'BEGIN { if (a == "nan" || b == "nan" || b == 0) print "nan"; else print a / b }')
rss=$(m "$res/rss.$BIG")
hwm=$(m "$res/hwm.$BIG")
r_dp=$(m "$res/dp.ratio")
r_ctl=$(m "$res/dp.control")
r_cpu=$(m "$res/dp.cpuratio")
printf 'targets at %s services: sync kelp/nft %.3f (<= 0.5 %s), sync %.3f s (<= 1 s %s), change %s/%s %.2f (<= 1.5 %s), change %.2f ms (<= 10 ms %s), RSS %.1f MiB (<= 20 %s; peak %.1f MiB), conn rate %s/10 %.3f (within 10%% %s; control 10/10 %.3f; CPU per connection %s/10 %.3f)\n' \
	"$BIG" "$r_sync" "$(verdict "$r_sync" "<=" 0.5)" "$(awk -v v="$a_sync" 'BEGIN { print v / 1000 }')" \
	"$(verdict "$(awk -v v="$a_sync" 'BEGIN { print v / 1000 }')" "<=" 1)" "$BIG" "$small" "$r_chg" "$(verdict "$r_chg" "<=" 1.5)" \
	"$c_big" "$(verdict "$c_big" "<=" 10)" "$(awk -v v="$rss" 'BEGIN { print v / 1024 }')" \
	"$(verdict "$(awk -v v="$rss" 'BEGIN { print v / 1024 }')" "<=" 20)" "$(awk -v v="$hwm" 'BEGIN { print v / 1024 }')" "$DP_N" "$r_dp" "$(verdict "$r_dp" within 0.1)" "$r_ctl" "$DP_N" "$r_cpu"
