#!/bin/bash
# Pull + unpack benchmark: a generated multi-layer image (about 100 MB unpacked) from Debian's
# docker-registry on 127.0.0.1, kelpd against containerd (`ctr image pull --plain-http`, its
# overlayfs snapshotter), side by side. Each run starts from an empty store. Needs root.
#   bench/images.sh [RUNS]      (default 5; prints the median of each and the ratio)
set -euo pipefail
RUNS=${1:-5}
SRC=$(cd "$(dirname "$0")/.." && pwd)
KELPD=${KELPD:-$SRC/build/bin/kelpd}
for t in umoci skopeo docker-registry containerd ctr jq; do
	command -v $t >/dev/null || { echo "bench-pull: $t is not installed (scripts/deps.sh)" >&2; exit 1; }
done
W=$(mktemp -d /tmp/kelp-bench-pull.XXXXXX)
pids=()
cleanup() {
	set +e
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	umount -R "$W/ctrd/root" 2>/dev/null || true
	grep -o "$W[^ ]*" /proc/self/mounts | sort -r | while read -r m; do umount "$m" 2>/dev/null || true; done
	rm -rf --one-file-system "$W"
}
trap cleanup EXIT
port() { echo $((20000 + RANDOM % 40000)); }

# the image: a busybox base and 10 layers of 6 MB random + 4 MB text each
L=$W/oci
umoci init --layout "$L" >/dev/null
umoci new --image "$L:1" >/dev/null
umoci unpack --image "$L:1" "$W/b" >/dev/null
mkdir -p "$W/b/rootfs/bin" && cp /bin/busybox "$W/b/rootfs/bin/"
umoci repack --image "$L:1" "$W/b" >/dev/null && rm -rf "$W/b"
for i in $(seq 10); do
	mkdir -p "$W/l$i/data$i"
	head -c $((6 << 20)) /dev/urandom >"$W/l$i/data$i/random"
	seq 1 600000 | head -c $((4 << 20)) >"$W/l$i/data$i/text"
	for j in $(seq 200); do echo "file $j of layer $i" >"$W/l$i/data$i/small$j"; done
	tar -C "$W/l$i" -czf "$W/l$i.tar.gz" "data$i"
	tar -C "$W/l$i" -cf "$W/l$i.tar" "data$i"
	umoci raw add-layer --image "$L:1" "$W/l$i.tar" >/dev/null
	rm -rf "$W/l$i" "$W/l$i.tar" "$W/l$i.tar.gz"
done

P=$(port)
mkdir -p "$W/reg"
printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' "$W/reg" "$P" >"$W/reg.yml"
setsid docker-registry serve "$W/reg.yml" </dev/null >"$W/reg.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$P") 2>/dev/null && break; sleep 0.05; done
R=127.0.0.1:$P
skopeo copy -q --dest-tls-verify=false "oci:$L:1" "docker://$R/bench/img:1"
size=$(du -sm "$W/reg" | cut -f1)

# a private containerd (no CRI plugin), overlayfs snapshotter
mkdir -p "$W/ctrd"
cat >"$W/ctrd/config.toml" <<TOML
version = 2
root = "$W/ctrd/root"
state = "$W/ctrd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$W/ctrd/sock"
TOML
containerd --config "$W/ctrd/config.toml" </dev/null >"$W/ctrd/log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -S "$W/ctrd/sock" ] && break; sleep 0.05; done
CTR=(ctr -a "$W/ctrd/sock" -n bench)

printf 'registries:\n  "%s":\n    plain_http: true\nmax_concurrent_downloads: 3\n' "$R" >"$W/kelpd.yaml"
KD=("$KELPD" --root "$W/kelp" --config "$W/kelpd.yaml")

now() { date +%s.%N; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
: >"$W/t.kelp"
: >"$W/t.ctrd"
for r in $(seq "$RUNS"); do
	sync
	echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
	t0=$(now)
	"${KD[@]}" image pull -q "$R/bench/img:1" >/dev/null
	t1=$(now)
	echo "$t1 - $t0" | bc >>"$W/t.kelp"
	"${KD[@]}" image rm "$R/bench/img:1" >/dev/null
	sync
	echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
	t0=$(now)
	"${CTR[@]}" image pull --plain-http "$R/bench/img:1" >/dev/null
	t1=$(now)
	echo "$t1 - $t0" | bc >>"$W/t.ctrd"
	"${CTR[@]}" image rm --sync "$R/bench/img:1" >/dev/null
done
k=$(median <"$W/t.kelp")
c=$(median <"$W/t.ctrd")
printf 'pull + unpack, %s MB in the registry, 11 layers, median of %s runs\n' "$size" "$RUNS"
printf '  kelpd       %.3f s   (%s)\n' "$k" "$(tr '\n' ' ' <"$W/t.kelp")"
printf '  containerd  %.3f s   (%s)\n' "$c" "$(tr '\n' ' ' <"$W/t.ctrd")"
printf '  ratio kelpd/containerd: %.2f (target <= 0.70)\n' "$(echo "$k / $c" | bc -l)"
