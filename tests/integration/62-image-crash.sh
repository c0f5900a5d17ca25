#!/bin/bash
# Image pulls under stress: two pulls of one image at once fetch each blob once; kill -9 in the
# middle of a download and in the middle of unpacking, then a new pull succeeds and nothing
# half-written is ever used.
. "$(dirname "$0")/lib.sh"
. "$KELP_SRC/tests/integration/_images.sh"
require_root
for t in umoci skopeo jq docker-registry /usr/bin/python3; do
	command -v $t >/dev/null || skip_all "$t is not installed (scripts/deps.sh)"
done

L=$TEST_TMP/oci
{ img_layout "$L" big && img_random_layers "$L" big 4 1 && img_layout "$L" many && img_many_files "$L" many 8000 && img_done "$L"; } >&2 ||
	{ fail "build test images"; exit 1; }
R=$(REG_LOG_LEVEL=info reg_up plain) || { fail "start docker-registry"; exit 1; }
reg_push "$L" big "$R/test/big:1" && reg_push "$L" many "$R/test/many:1" || { fail "push"; exit 1; }
printf 'registries:\n  "%s":\n    plain_http: true\nmax_concurrent_downloads: 3\n' "$R" >"$IMG_CONF"
: >"$TEST_TMP/reg-plain/log"

# two pulls at once: both succeed, and each blob crosses the network once
kd image pull -q "$R/test/big:1" >"$TEST_TMP/p1" 2>&1 &
p1=$!
kd image pull -q "$R/test/big:1" >"$TEST_TMP/p2" 2>&1 &
p2=$!
wait $p1; r1=$?
wait $p2; r2=$?
check_eq "two concurrent pulls both succeed" "0 0" "$r1 $r2" || sed "s/^/  pull: /" "$TEST_TMP/p1" "$TEST_TMP/p2" >&2
layers=$(kd image inspect "$R/test/big:1" | jq -r '.layers[].digest')
n=0
for d in $layers; do
	c=$(grep -c "GET /v2/test/big/blobs/$d" "$TEST_TMP/reg-plain/log")
	[ "$c" = 1 ] || { echo "blob $d fetched $c times" >&2; n=$((n + 1)); }
done
check_eq "each layer fetched once for both pulls" 0 "$n"
check_eq "six layers" 6 "$(wc -w <<<"$layers")"
kd image rm "$R/test/big:1" >/dev/null
check_eq "store empty again" "" "$(store_files)"

# kill -9 while layers download (through a slow mirror), then while they unpack
S=$(SLOW_KBPS=1500 slow_proxy "$R") || { fail "start the slow proxy"; exit 1; }
printf 'registries:\n  slow.kelp-test.invalid:\n    mirrors: ["http://%s"]\n' "$S" >"$IMG_CONF"
pull_and_kill() { # WHEN: download (of test/big) | unpack (of test/many, a layer of many files)
	local img=big
	[ "$1" = unpack ] && img=many
	# kelpd itself in the background (not the kd function's subshell): $! is what gets the kill
	"$KELPD" --root "$IMG_ROOT" --config "$IMG_CONF" image pull -q "slow.kelp-test.invalid/test/$img:1" >/dev/null 2>&1 &
	local pid=$! end=$((SECONDS + 60))
	while [ $SECONDS -lt $end ] && kill -0 $pid 2>/dev/null; do
		case $1 in
		download) [ -n "$(find "$IMG_ROOT/ingest" -name '*.partial' -size +200k 2>/dev/null)" ] && break ;;
		# the layer of many files takes a while: kill once it is half there
		unpack) [ "$(find "$IMG_ROOT"/tmp/layer-*/many -maxdepth 1 2>/dev/null | wc -l)" -gt 1000 ] && break ;;
		esac
		sleep 0.01
	done
	kill -9 $pid
	wait $pid 2>/dev/null
	echo $? # 137: it was killed, not done
	return 0
}
check_eq "pull killed with SIGKILL during download" 137 "$(pull_and_kill download)"
check_eq "killed during download: no image" "" "$(kd image ls -q)"
check "killed during download: a partial blob was being written" test -n "$(find "$IMG_ROOT/ingest" -name '*.partial')"
check "killed during download: every stored blob is complete and verified" store_blobs_ok
check_eq "pull killed with SIGKILL during unpack" 137 "$(pull_and_kill unpack)"
check_eq "killed during unpack: no image" "" "$(kd image ls -q)"
check "killed during unpack: every stored blob is complete and verified" store_blobs_ok
half=$(find "$IMG_ROOT/tmp" -mindepth 1 -maxdepth 1 -type d -name 'layer-*' | wc -l)
check "killed during unpack: the half-unpacked layer is outside layers/" test "$half" -ge 1

out=$(kd image pull -q slow.kelp-test.invalid/test/big:1 2>&1; kd image pull -q slow.kelp-test.invalid/test/many:1 2>&1)
check_match "new pulls after the kills succeed" "^slow.kelp-test.invalid/test/big:1 sha256:.*
slow.kelp-test.invalid/test/many:1 sha256:" "$out"
insp=$(kd image inspect slow.kelp-test.invalid/test/big:1)
check "after the kills: every blob verified" store_blobs_ok
bad=0
for p in $(jq -r '.layers[2:6][].path' <<<"$insp"); do
	(cd "$p" && sha256sum -c --quiet --ignore-missing "$TEST_TMP/rnd-big.sums") >&2 || bad=1
	[ "$(find "$p" -type f | wc -l)" = 1 ] || bad=1
done
check_eq "after the kills: every layer complete (random files intact)" 0 "$bad"
check_eq "after the kills: the many-files layer complete" 8000 "$(ls "$(kd image inspect slow.kelp-test.invalid/test/many:1 | jq -r '.layers[2].path')/many" | wc -l)"
check "after the kills: base layer intact" cmp /bin/busybox "$(jq -r '.layers[0].path' <<<"$insp")/bin/busybox"
check_eq "after the kills: no unpack leftovers" "" "$(find "$IMG_ROOT/tmp" -mindepth 1 -maxdepth 1 -type d)"
kd image rm slow.kelp-test.invalid/test/big:1 slow.kelp-test.invalid/test/many:1 >/dev/null
check_eq "rm: store empty, leftovers of killed pulls collected" "" "$(store_files; find "$IMG_ROOT/ingest" "$IMG_ROOT/tmp" -mindepth 1)"

# layers download in parallel: the throttled mirror sees as many blob requests at once as the
# config allows
most() { # MAX: pull with at most MAX downloads, print the most the mirror saw at once
	local S
	S=$(SLOW_KBPS=2000 slow_proxy "$R") || { echo 0; return; }
	printf 'max_concurrent_downloads: %s\nregistries:\n  slow.kelp-test.invalid:\n    mirrors: ["http://%s"]\n' "$1" "$S" >"$IMG_CONF"
	kd image pull -q slow.kelp-test.invalid/test/big:1 >/dev/null 2>&1 || echo "pull failed" >&2
	kd image rm slow.kelp-test.invalid/test/big:1 >/dev/null
	cat "$TEST_TMP/proxy-${S#*:}.max"
}
check_eq "max_concurrent_downloads: 1 downloads one layer at a time" 1 "$(most 1)"
check_eq "max_concurrent_downloads: 3 downloads three layers at once" 3 "$(most 3)"
check_eq "store empty at the end" "" "$(store_files; find "$IMG_ROOT/ingest" -name '*.partial')"
exit 0
