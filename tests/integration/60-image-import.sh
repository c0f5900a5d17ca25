#!/bin/bash
# Image store, import for air-gapped nodes: OCI layout directories, OCI archives and
# docker-archive tarballs from images built here from busybox-static; layers unpacked once with
# whiteouts translated; rm frees what nothing else uses; bad input changes nothing.
. "$(dirname "$0")/lib.sh"
. "$KELP_SRC/tests/integration/_images.sh"
require_root
for t in umoci skopeo jq; do command -v $t >/dev/null || skip_all "$t is not installed (scripts/deps.sh)"; done

L=$TEST_TMP/oci
img_layout "$L" one >&2 && img_layout "$L" two >&2 && img_done "$L" || { fail "build test images with umoci"; exit 1; }

out=$(kd image import --name test/bb "$L" 2>&1)
check_eq "import an OCI layout: both tags" "docker.io/test/bb:one docker.io/test/bb:two" "$(echo $out)"
check_eq "ls lists them" "docker.io/test/bb:one docker.io/test/bb:two" "$(kd image ls -q | tr '\n' ' ' | sed 's/ $//')"
insp=$(kd image inspect test/bb:one)
check_eq "inspect: two layers" 2 "$(jq '.layers | length' <<<"$insp")"
l1=$(jq -r '.layers[0].path' <<<"$insp")
l2=$(jq -r '.layers[1].path' <<<"$insp")
check "layer 1 holds busybox" cmp /bin/busybox "$l1/bin/busybox"
check_eq "layer 1: symlink kept" busybox "$(readlink "$l1/bin/sh")"
check_eq "layer 2: whiteout is a 0:0 char device" "character special file 0:0" "$(stat -c '%F %t:%T' "$l2/etc/del-me")"
check_eq "layer 2: opaque dir xattr" y "$(getfattr --only-values -n trusted.overlay.opaque "$l2/opq" 2>/dev/null)"
check_eq "layer 2: no .wh. files left" "" "$(find "$l1" "$l2" -name '.wh.*')"
# the base layer is shared by the two tags (one layer directory per diffID)
check_eq "one layer dir per diffID" 3 "$(ls "$IMG_ROOT/layers" | wc -l)"
check_eq "shared base layer has 2 refs" 2 "$(jq '.layers[0].refs' <<<"$insp")"
id=$(jq -r .id <<<"$insp")
check_eq "inspect by short id" "$id" "$(kd image inspect "${id:7:12}" | jq -r .id)"

before=$(store_files)
kd image rm test/bb:one >&2
check_eq "rm one tag: the other stays" "docker.io/test/bb:two" "$(kd image ls -q)"
check_eq "rm: shared layer kept, refs now 1" 1 "$(kd image inspect test/bb:two | jq '.layers[0].refs')"
check "rm: the shared layer dir is still there" test -d "$l1/bin"
check "rm: only one-tag blobs and layer went" test "$(store_files | wc -l)" -lt "$(wc -l <<<"$before")"
kd image rm test/bb:two >&2
check_eq "rm the last: store empty" "" "$(store_files)"
check_eq "rm a missing image fails" "kelpd image rm: image docker.io/test/bb:two: not in the store" "$(kd image rm test/bb:two 2>&1 >/dev/null)"

# OCI archive: the layout in a tar
tar -C "$L" -cf "$TEST_TMP/oci.tar" .
check_eq "import an OCI archive" "docker.io/library/arch:one docker.io/library/arch:two" "$(kd image import --name arch "$TEST_TMP/oci.tar" 2>&1 | tr '\n' ' ' | sed 's/ $//')"
check_eq "archive import leaves no temp dirs" "" "$(find "$IMG_ROOT/tmp" -mindepth 1 -type d)"

# docker-archive (`docker save` format), written by skopeo
skopeo copy -q "oci:$L:one" "docker-archive:$TEST_TMP/docker.tar:example.com/team/app:v1" >&2
check_eq "import a docker-archive: its RepoTags" "example.com/team/app:v1" "$(kd image import "$TEST_TMP/docker.tar" 2>&1)"
dinsp=$(kd image inspect example.com/team/app:v1)
check_eq "docker-archive: same config as the layout image" "$(kd image inspect arch:one | jq -r .id)" "$(jq -r .id <<<"$dinsp")"
check "docker-archive: layers unpacked" test -x "$(jq -r '.layers[0].path' <<<"$dinsp")/bin/busybox"

# bad input leaves the store as it was
before=$(store_files)
ls_before=$(kd image ls -q)
bad=$TEST_TMP/bad
cp -a "$L" "$bad"
big=$(jq -r '.layers[0].digest' <<<"$insp")
printf 'X' | dd of="$bad/blobs/sha256/${big#sha256:}" bs=1 seek=100 conv=notrunc 2>/dev/null
kd image rm arch:one arch:two example.com/team/app:v1 >&2
before=$(store_files)
ls_before=$(kd image ls -q)
err=$(kd image import --name bad "$bad" 2>&1)
check_match "corrupt layer blob: digest mismatch named" "blob $big: digest mismatch" "$err"
check_eq "corrupt layer blob: store unchanged" "$before" "$(store_files)"
check_eq "corrupt layer blob: no image" "$ls_before" "$(kd image ls -q)"
# a truncated blob
cp -a "$L" "$bad.2"
truncate -s 1000 "$bad.2/blobs/sha256/${big#sha256:}"
err=$(kd image import --name bad "$bad.2" 2>&1)
check_match "truncated layer blob refused" "blob $big: digest mismatch" "$err"
check_eq "truncated layer blob: store unchanged" "$before" "$(store_files)"
# docker-archive whose manifest.json points outside the archive
mkdir -p "$TEST_TMP/evil"
tar -C "$TEST_TMP/evil" -xf "$TEST_TMP/docker.tar"
jq '.[0].Config = "../../../../../../etc/passwd"' "$TEST_TMP/evil/manifest.json" >"$TEST_TMP/m.json" && mv "$TEST_TMP/m.json" "$TEST_TMP/evil/manifest.json"
tar -C "$TEST_TMP/evil" -cf "$TEST_TMP/evil.tar" .
err=$(kd image import "$TEST_TMP/evil.tar" 2>&1)
check_match "docker-archive pointing outside: refused" "import .*passwd" "$err"
check_eq "docker-archive pointing outside: store unchanged" "$before" "$(store_files)"
# hostile layers through the whole import: refused, nothing written outside, store unchanged
evil=/tmp/kelp-evil-$$
cat >"$TEST_TMP/hostile.py" <<'PY'
import io, sys, tarfile
kind, out, evil = sys.argv[1], sys.argv[2], sys.argv[3]
t = tarfile.open(out, 'w', format=tarfile.PAX_FORMAT)
def add(name, type=tarfile.REGTYPE, link='', data=b'pwned'):
    i = tarfile.TarInfo(name); i.type = type; i.linkname = link; i.mode = 0o644
    i.size = len(data) if type == tarfile.REGTYPE else 0
    t.addfile(i, io.BytesIO(data) if type == tarfile.REGTYPE else None)
if kind == 'dotdot': add('a/../../../../../../../..' + evil)
if kind == 'absolute': add(evil)
if kind == 'symlink': add('lnk', tarfile.SYMTYPE, '/tmp'); add('lnk/' + evil.split('/')[-1])
if kind == 'hardlink': add('h', tarfile.LNKTYPE, '../../../../../../../../etc/passwd')
t.close()
PY
for kind in dotdot:'"\.\." in the path' absolute:'absolute path' symlink:'goes through a symlink' hardlink:'"\.\." in the path'; do
	k=${kind%%:*}
	cp -a "$L" "$TEST_TMP/h-$k"
	/usr/bin/python3 "$TEST_TMP/hostile.py" "$k" "$TEST_TMP/h-$k.tar" "$evil" &&
		umoci raw add-layer --image "$TEST_TMP/h-$k:one" "$TEST_TMP/h-$k.tar" >&2
	umoci rm --image "$TEST_TMP/h-$k:two" >&2
	err=$(kd image import --name hostile/x "$TEST_TMP/h-$k" 2>&1)
	check_match "hostile layer ($k): refused, says why" "${kind#*:}" "$err"
	check "hostile layer ($k): nothing written outside" test ! -e "$evil"
	check_eq "hostile layer ($k): store unchanged" "$before" "$(store_files)"
done
check_eq "hostile layers: no image recorded" "$ls_before" "$(kd image ls -q)"
check_eq "hostile layers: no unpack leftovers" "" "$(find "$IMG_ROOT/tmp" "$IMG_ROOT/ingest" -mindepth 1)"
check_match "/etc/passwd untouched (one link)" "^1$" "$(stat -c %h /etc/passwd)"
err=$(kd image import "$TEST_TMP" 2>&1)
check_match "not an image: clear error" "no oci-layout file" "$err"
err=$(kd image import "$L" 2>&1)
check_match "a layout with tag-only names needs --name" "only a tag: give a name" "$err"
exit 0
