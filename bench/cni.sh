#!/bin/bash
# bench/cni.sh — ADD then DEL of bridge + host-local: kelp's plugins (build/cni) against the
# reference plugins (/usr/lib/cni), side by side in one run.
#
# Usage: bench/cni.sh          (as root, after `make`)
# Env:   N=50 measured rounds (after WARMUP=5), REF_DIR=/usr/lib/cni
#
# Fairness: both pairs get the same config (a bridge with isGateway, host-local on a /16, data
# in a private temp dir), run in the same private "node" netns with the same pod netns, entered
# once for the whole benchmark so that no wrapper is timed; the order alternates every round;
# wall time is bash's $EPOCHREALTIME around the two plugin calls (ADD, then DEL) alone.
# Prints min / median / max per pair, and the median of the round-by-round ratios kelp/ref.
set -u
export LC_ALL=C
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N=${N:-50}
WARMUP=${WARMUP:-5}
REF_DIR=${REF_DIR:-/usr/lib/cni}
KELP_DIR=${KELP_DIR:-$src/build/cni}

die() { echo "bench/cni: $*" >&2; exit 1; }

median() { sort -g "$1" | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

inner() { # runs inside the node netns
	local tmp=$1 pod=$2 i which t0 t1 out
	conf() { # BRIDGE-TYPE IPAM-TYPE NAME BRIDGE
		printf '{"cniVersion":"1.0.0","name":"%s","type":"%s","bridge":"%s","isGateway":true,"ipam":{"type":"%s","dataDir":"%s/ipam","ranges":[[{"subnet":"10.99.0.0/16"}]]}}' \
			"$3" "$1" "$4" "$2" "$tmp"
	}
	conf kelp-bridge kelp-host-local ktbench-k ktbk0 >"$tmp/kelp.json"
	conf bridge host-local ktbench-r ktbr0 >"$tmp/ref.json"
	pair() { # DIR BRIDGE CONF ID
		CNI_COMMAND=ADD CNI_CONTAINERID=$4 CNI_NETNS=/run/netns/$pod CNI_IFNAME=eth0 CNI_PATH=$1 "$1/$2" <"$3" >"$tmp/out" ||
			{ cat "$tmp/out" >&2; return 1; }
		CNI_COMMAND=DEL CNI_CONTAINERID=$4 CNI_NETNS=/run/netns/$pod CNI_IFNAME=eth0 CNI_PATH=$1 "$1/$2" <"$3" >"$tmp/out" ||
			{ cat "$tmp/out" >&2; return 1; }
	}
	: >"$tmp/kelp.ms"
	: >"$tmp/ref.ms"
	for ((i = 0; i < WARMUP + N; i++)); do
		for which in $( ((i % 2)) && echo "ref kelp" || echo "kelp ref"); do
			t0=$EPOCHREALTIME
			if [ "$which" = kelp ]; then
				pair "$KELP_DIR" kelp-bridge "$tmp/kelp.json" "kb$i" || return 1
			else
				pair "$REF_DIR" bridge "$tmp/ref.json" "rb$i" || return 1
			fi
			t1=$EPOCHREALTIME
			((i >= WARMUP)) && echo "$t0 $t1" | awk '{ printf "%.3f\n", ($2 - $1) * 1000 }' >>"$tmp/$which.ms"
		done
	done
	ip link del ktbk0 2>/dev/null
	ip link del ktbr0 2>/dev/null
	return 0
}

if [ "${1:-}" = --inner ]; then
	inner "$2" "$3"
	exit $?
fi

[ "$(id -u)" -eq 0 ] || die "needs root"
[ -x "$KELP_DIR/kelp-bridge" ] && [ -x "$KELP_DIR/kelp-host-local" ] || die "build first: make"
[ -x "$REF_DIR/bridge" ] && [ -x "$REF_DIR/host-local" ] || die "no reference plugins in $REF_DIR (containernetworking-plugins)"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kelp-bench-cni.XXXXXX") || die "mktemp"
node=kt-bench-node-$$
pod=kt-bench-pod-$$
cleanup() { ip netns del "$pod" 2>/dev/null; ip netns del "$node" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
ip netns add "$node" && ip netns add "$pod" || die "cannot create namespaces"
ip netns exec "$node" bash "$0" --inner "$tmp" "$pod" || die "a plugin failed"

printf '%-22s %8s %10s %8s\n' "ADD+DEL (ms)" min median max
for w in kelp ref; do
	label=$([ $w = kelp ] && echo "kelp-bridge+host-local" || echo "ref bridge+host-local")
	printf '%-22s %8.2f %10.2f %8.2f\n' "$label" "$(sort -g "$tmp/$w.ms" | head -1)" "$(median "$tmp/$w.ms")" "$(sort -g "$tmp/$w.ms" | tail -1)"
done
paste "$tmp/kelp.ms" "$tmp/ref.ms" | awk '{ print $1 / $2 }' >"$tmp/ratio"
printf 'median of per-round kelp/ref: %.3f (target <= 0.2); ratio of medians: %.3f\n' "$(median "$tmp/ratio")" \
	"$(echo "$(median "$tmp/kelp.ms") $(median "$tmp/ref.ms")" | awk '{ print $1 / $2 }')"
