#!/bin/bash
# Long runs under LeakSanitizer (`make asan-long`, issue 11): the image store and the CNI
# plugins of the ASan build ($BUILD, default build/asan) doing many times what one test does
# once, with detect_leaks=1 and every sanitizer report written to a file; any report is a
# failure. Not part of tests/run.sh (too slow for CI): it sources the integration test library
# and prints the same ok/not ok lines.
#   - kelpd image import of an OCI layout with $LAYERS layers (each with files, a symlink, a
#     hardlink, a whiteout of the layer before and an opaque directory), then a pull of the same
#     image from a local docker-registry, inspect, ls, rm, all in a store of its own;
#   - $LOOPS rounds of ADD/CHECK/DEL of kelp-loopback, kelp-host-local, kelp-bridge (with
#     host-local) and kelp-portmap chained after it, in network namespaces of its own.
# A leaking canary (built here with the same sanitizer flags) first proves that a leak does
# produce a report in this environment, so "no report" means something.
. "$(dirname "$0")/../integration/lib.sh"
. "$KELP_SRC/tests/integration/_images.sh"
require_root
for t in umoci skopeo jq docker-registry cc; do command -v $t >/dev/null || skip_all "$t is not installed (scripts/deps.sh)"; done
LAYERS=${LAYERS:-40}
LOOPS=${LOOPS:-100}
CNI=$BUILD/cni
for b in "$KELPD" "$CNI/kelp-bridge" "$CNI/kelp-host-local" "$CNI/kelp-loopback" "$CNI/kelp-portmap"; do
	nm -D "$b" 2>/dev/null | grep -q __asan_init || { fail "$b is built with ASan (make asan-build; BUILD=build/asan)"; exit 1; }
done

LOGS=$TEST_TMP/lsan
mkdir -p "$LOGS"
SAN_ENV=(ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:log_path=$LOGS/asan:log_exe_name=1"
	UBSAN_OPTIONS="print_stacktrace=1:log_path=$LOGS/ubsan:log_exe_name=1")
export "${SAN_ENV[@]}"
reports() { # NAME: one result: no sanitizer report since the last call
	local f n
	n=$(find "$LOGS" -type f | wc -l)
	if [ "$n" -eq 0 ]; then
		ok "$1: no sanitizer report"
	else
		for f in "$LOGS"/*; do
			echo "== $f" >&2
			head -n 60 "$f" >&2
		done
		fail "$1: $n sanitizer report(s)"
		mkdir -p "$TEST_TMP/seen" && mv "$LOGS"/* "$TEST_TMP/seen/"
	fi
}

# ---- the canary: a leak is reported where the reports are looked for ----
printf '#include <stdlib.h>\nvoid *p;\nint main(void) { p = malloc(7); p = 0; return 0; }\n' >"$TEST_TMP/leak.c"
cc -O0 -g -fsanitize=address,undefined -o "$TEST_TMP/leak" "$TEST_TMP/leak.c" || { fail "build the leaking canary"; exit 1; }
"$TEST_TMP/leak"
rc=$?
check "canary: a leak makes the process fail (status $rc)" test "$rc" -ne 0
check_match "canary: the leak report is in the log directory" "detected memory leaks" "$(cat "$LOGS"/asan.* 2>/dev/null)"
rm -f "$LOGS"/*

# ---- the image store: a many-layer image, imported then pulled ----
L=$TEST_TMP/oci
make_layers() {
	umoci init --layout "$L" && umoci new --image "$L:many" || return 1
	local i t
	for i in $(seq "$LAYERS"); do
		t=$TEST_TMP/layer-$i
		mkdir -p "$t/etc" "$t/d$i/sub" "$t/opq"
		echo "layer $i" >"$t/etc/f$i"
		echo "data $i" >"$t/d$i/sub/file"
		ln -s "../etc/f$i" "$t/d$i/link"
		ln "$t/d$i/sub/file" "$t/d$i/hard"
		[ "$i" -gt 1 ] && : >"$t/etc/.wh.f$((i - 1))"
		: >"$t/opq/.wh..wh..opq"
		echo "$i" >"$t/opq/only-$i"
		tar -C "$t" --owner=0 --group=0 -cf "$t.tar" . && umoci raw add-layer --image "$L:many" "$t.tar" || return 1
		rm -rf "$t" "$t.tar"
	done
	umoci config --image "$L:many" --os linux --architecture amd64 --config.cmd sh
}
make_layers >&2 || { fail "build a $LAYERS-layer image with umoci"; exit 1; }

out=$(kd image import --name lsan/many "$L" 2>&1)
check_eq "import a $LAYERS-layer image" "docker.io/lsan/many:many" "$out"
insp=$(kd image inspect lsan/many:many)
check_eq "inspect: $LAYERS layers" "$LAYERS" "$(jq '.layers | length' <<<"$insp")"
top=$(jq -r ".layers[$((LAYERS - 1))].path" <<<"$insp")
check_eq "top layer: whiteout of the layer before" "character special file 0:0" "$(stat -c '%F %t:%T' "$top/etc/f$((LAYERS - 1))")"
reports "kelpd image import of $LAYERS layers"

R=$(reg_up lsan) || { fail "start docker-registry"; exit 1; }
reg_push "$L" many "$R/lsan/many:1" || { fail "push the image with skopeo"; exit 1; }
printf 'registries:\n  "%s":\n    plain_http: true\n' "$R" >"$IMG_CONF"
kd image rm lsan/many:many >&2
out=$(kd image pull -q "$R/lsan/many:1" 2>&1)
check_match "pull the $LAYERS-layer image" "^$R/lsan/many:1 sha256:[0-9a-f]{64}$" "$out"
check_eq "pulled: $LAYERS layers" "$LAYERS" "$(kd image inspect "$R/lsan/many:1" | jq '.layers | length')"
kd image ls >/dev/null && kd image rm "$R/lsan/many:1" >&2
check_eq "rm: store empty" "" "$(store_files)"
reports "kelpd image pull, inspect, ls, rm"

# ---- the CNI plugins: ADD/CHECK/DEL loops ----
P=kt-lsan-$$
NODE=$P-node
DATA=$TEST_TMP/ipam
NSES=()
kt_more_cleanup() {
	local n
	for n in "${NSES[@]}"; do ip netns del "$n" 2>/dev/null; done
}
for n in "$NODE" "$P-pod"; do ip netns add "$n" && NSES+=("$n") || { fail "create netns $n"; exit 1; }; done
ip netns exec "$NODE" ip link set lo up
run() { # PLUGIN CMD ID NETNS [IFNAME] <config
	ip netns exec "$NODE" env -i PATH=/usr/bin:/bin "${SAN_ENV[@]}" CNI_COMMAND="$2" CNI_CONTAINERID="$3" \
		CNI_NETNS="$4" CNI_IFNAME="${5:-eth0}" CNI_PATH="$CNI" "$CNI/$1"
}
lo_conf='{"cniVersion":"1.1.0","name":"lo","type":"kelp-loopback"}'
hl_conf=$(printf '{"cniVersion":"1.1.0","name":"ktlsan-hl","type":"kelp-host-local","ipam":{"type":"kelp-host-local","dataDir":"%s","ranges":[[{"subnet":"10.71.0.0/24"}],[{"subnet":"fd71::/64"}]],"routes":[{"dst":"0.0.0.0/0"}]}}' "$DATA")
br_conf=$(printf '{"cniVersion":"1.1.0","name":"ktlsan","type":"kelp-bridge","bridge":"ktlsanbr","isDefaultGateway":true,"ipMasq":true,"hairpinMode":true,"ipam":{"type":"kelp-host-local","dataDir":"%s","ranges":[[{"subnet":"10.72.0.0/24"}]]}}' "$DATA")
pm_conf() { # PREVRESULT
	jq -cn --argjson prev "$1" '{cniVersion:"1.1.0",name:"ktlsan",type:"kelp-portmap",capabilities:{portMappings:true},
		runtimeConfig:{portMappings:[{hostPort:18080,containerPort:80,protocol:"tcp"},{hostPort:18081,containerPort:81,protocol:"udp"}]},prevResult:$prev}'
}
bad=0
pod=/run/netns/$P-pod
for i in $(seq "$LOOPS"); do
	run kelp-loopback ADD "c$i" "$pod" lo <<<"$lo_conf" >/dev/null &&
		run kelp-loopback DEL "c$i" "$pod" lo <<<"$lo_conf" >/dev/null &&
		run kelp-host-local ADD "c$i" "$pod" <<<"$hl_conf" >/dev/null &&
		run kelp-host-local CHECK "c$i" "$pod" <<<"$hl_conf" >/dev/null &&
		run kelp-host-local DEL "c$i" "$pod" <<<"$hl_conf" >/dev/null &&
		res=$(run kelp-bridge ADD "c$i" "$pod" <<<"$br_conf") &&
		run kelp-portmap ADD "c$i" "$pod" < <(pm_conf "$res") >/dev/null &&
		run kelp-portmap CHECK "c$i" "$pod" < <(pm_conf "$res") >/dev/null &&
		run kelp-bridge CHECK "c$i" "$pod" < <(jq -c --argjson p "$res" '. + {prevResult: $p}' <<<"$br_conf") >/dev/null &&
		run kelp-portmap DEL "c$i" "$pod" < <(pm_conf "$res") >/dev/null &&
		run kelp-bridge DEL "c$i" "$pod" <<<"$br_conf" >/dev/null &&
		run kelp-bridge DEL "c$i" "$pod" <<<"$br_conf" >/dev/null || { bad=$((bad + 1)); echo "round $i failed" >&2; }
	[ "$bad" -gt 3 ] && break
done
check_eq "$LOOPS rounds of loopback, host-local, bridge and portmap ADD/CHECK/DEL" 0 "$bad"
check_eq "every address released" "" "$(find "$DATA" -type f ! -name lock ! -name 'last_reserved_ip.*' 2>/dev/null)"
check_eq "no veth left in the pod" "" "$(ip -n "$P-pod" -o link show type veth 2>/dev/null)"
run kelp-bridge GC "" "" <<<"$(jq -c '. + {"cni.dev/valid-attachments":[]}' <<<"$br_conf")" >/dev/null
run kelp-host-local STATUS "" "" <<<"$hl_conf" >/dev/null
reports "CNI plugins, $LOOPS rounds"
exit 0
