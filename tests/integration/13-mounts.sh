#!/bin/bash
# 13-mounts.sh — mounts and their options (tmpfs, bind ro, rbind, file bind), read-only rootfs,
# masked and read-only paths, /dev and linux.devices, --no-pivot, rootfsPropagation, and a mount
# destination under a symlink that points outside the rootfs.
. "$(dirname "$0")/lib.sh"
require_root

HOST_MOUNTS=()
kt_extra_cleanup() {
	local m
	for m in "${HOST_MOUNTS[@]}"; do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
	done
}

# run_in NAME [RUN-OPTS...]: `run` the bundle NAME in the foreground; its stdout.
run_in() {
	local n=$1
	shift
	(cd "$TEST_TMP/$n" && kelp_rt run "$@" "$(cid "$n")")
}
# add_mount NAME JSON: append a mount to NAME's config.json.
add_mount() { bundle_set "$1" '.mounts += [$m]' --argjson m "$2"; }
# has_opt OPTS OPT: OPT is one of the comma-separated OPTS.
has_opt() { [[ ,$1, == *,$2,* ]]; }

# ---- tmpfs with options ----------------------------------------------------------------------

mk tmpfs sh -c 'probe mount-opts /mnt/t; printf "#!/bin/sh\necho ran\n" >/mnt/t/s && chmod 755 /mnt/t/s && /mnt/t/s; echo "exec=$?"'
add_mount tmpfs '{"destination": "/mnt/t", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "noexec", "size=1m"]}'
out=$(run_in tmpfs 2>&1)
line=$(sed -n 1p <<<"$out")
read -r mopts fstype sopts <<<"$line"
check_eq "tmpfs: fstype" tmpfs "$fstype"
check "tmpfs: nosuid in mountinfo ($mopts)" has_opt "$mopts" nosuid
check "tmpfs: noexec in mountinfo ($mopts)" has_opt "$mopts" noexec
check "tmpfs: rw in mountinfo ($mopts)" has_opt "$mopts" rw
check "tmpfs: size=1m in mountinfo ($sopts)" has_opt "$sopts" size=1024k
check_match "tmpfs: noexec is enforced (exec fails)" 'exec=126' "$out"

# ---- bind mounts -----------------------------------------------------------------------------

hd=$TEST_TMP/hostdir
mkdir -p "$hd"
echo hello-bind >"$hd/file"
mk bindro sh -c 'cat /mnt/ro/file; probe write /mnt/ro/new; probe mount-opts /mnt/ro'
add_mount bindro "$(jq -n --arg s "$hd" '{destination: "/mnt/ro", type: "bind", source: $s, options: ["bind", "ro"]}')"
out=$(run_in bindro 2>&1)
check_eq "bind ro: host content visible" hello-bind "$(sed -n 1p <<<"$out")"
check_eq "bind ro: writing fails with EROFS (30)" 30 "$(sed -n 2p <<<"$out")"
check "bind ro: 'ro' in mountinfo" has_opt "$(sed -n 3p <<<"$out" | awk '{ print $1 }')" ro
check_eq "bind ro: nothing written on the host" "file" "$(ls "$hd")"

mk bindrw sh -c 'echo from-container >/mnt/rw/new && cat /mnt/rw/file'
add_mount bindrw "$(jq -n --arg s "$hd" '{destination: "/mnt/rw", type: "bind", source: $s, options: ["bind"]}')"
out=$(run_in bindrw 2>&1)
check_eq "bind rw: host content visible" hello-bind "$out"
check_eq "bind rw: a write inside reaches the host" from-container "$(cat "$hd/new" 2>&1)"
rm -f "$hd/new"

# rbind: a host dir with a mount below it.
rb=$TEST_TMP/rbsrc
mkdir -p "$rb/sub"
echo top >"$rb/topfile"
if mount -t tmpfs -o size=1m kelp-test-rb "$rb/sub"; then
	HOST_MOUNTS+=("$rb/sub")
	echo in-submount >"$rb/sub/subfile"
	mk rbind sh -c 'cat /mnt/rb/topfile /mnt/rb/sub/subfile'
	add_mount rbind "$(jq -n --arg s "$rb" '{destination: "/mnt/rb", type: "bind", source: $s, options: ["rbind"]}')"
	check_eq "rbind: the submount is visible" "top in-submount" "$(run_in rbind 2>&1 | tr '\n' ' ' | sed 's/ $//')"
	mk bindnr sh -c 'cat /mnt/b/topfile; ls -A /mnt/b/sub | wc -l'
	add_mount bindnr "$(jq -n --arg s "$rb" '{destination: "/mnt/b", type: "bind", source: $s, options: ["bind"]}')"
	check_eq "bind (not recursive): the submount is not visible" "top 0" "$(run_in bindnr 2>&1 | tr '\n' ' ' | sed 's/ $//')"
else
	fail "rbind: host tmpfs for the test"
fi

# a single file
echo single-file-content >"$TEST_TMP/single.txt"
mk fbind sh -c 'cat /etc/single.txt; test -f /etc/single.txt && echo is-file'
add_mount fbind "$(jq -n --arg s "$TEST_TMP/single.txt" '{destination: "/etc/single.txt", type: "bind", source: $s, options: ["bind"]}')"
check_eq "bind of a single file" "single-file-content is-file" "$(run_in fbind 2>&1 | tr '\n' ' ' | sed 's/ $//')"

# ---- read-only rootfs --------------------------------------------------------------------------

mk rofs sh -c 'probe write /newfile; touch /newfile2 2>&1; probe write /tmp/x'
out=$(run_in rofs 2>&1)
check_eq "readonly rootfs: writing / fails with EROFS (30)" 30 "$(sed -n 1p <<<"$out")"
check_match "readonly rootfs: touch says Read-only" 'Read-only file system' "$(sed -n 2p <<<"$out")"
check "readonly rootfs: nothing created in the bundle" test ! -e "$TEST_TMP/rofs/rootfs/newfile"
mk rwfs sh -c 'probe write /newfile'
bundle_set rwfs '.root.readonly = false'
check_eq "writable rootfs (readonly false): writing / works" ok "$(run_in rwfs 2>&1)"

# ---- masked and read-only paths ----------------------------------------------------------------

mk masked sh -c 'cat /proc/keys | wc -c; ls -A /sys/firmware | wc -l; test -d /sys/firmware && echo dir; probe mount-opts /sys/firmware | cut -d" " -f2'
out=$(run_in masked 2>&1)
check_eq "masked path: /proc/keys reads empty" 0 "$(sed -n 1p <<<"$out" | tr -d ' ')"
check_eq "masked path: /sys/firmware is an empty dir" "0 dir" "$(sed -n 2,3p <<<"$out" | tr -d ' ' | tr '\n' ' ' | sed 's/ $//')"
check_eq "masked path: /sys/firmware has a tmpfs over it" tmpfs "$(sed -n 4p <<<"$out")"
check "masked path: the host's /sys/firmware is not empty (the check can fail)" test -n "$(ls -A /sys/firmware)"

mk rop sh -c 'probe write /proc/sys/kernel/hostname; echo x 2>&1 >/proc/sys/kernel/hostname'
out=$(run_in rop 2>&1)
check_eq "readonly path: /proc/sys/kernel/hostname write fails EROFS (30)" 30 "$(sed -n 1p <<<"$out")"
check_match "readonly path: sh says Read-only" 'Read-only' "$(sed -n 2,\$p <<<"$out")"
check_eq "readonly path: the host's hostname is unchanged" "$(hostname)" "$(cat /proc/sys/kernel/hostname)"

# ---- /dev ---------------------------------------------------------------------------------------

mk dev sh -c 'for d in null zero full random urandom tty; do stat -c "%n %F %t:%T %a" /dev/$d; done;
	ls -ln /dev/kelpnull; head -c 3 /dev/zero | od -An -tx1 | tr -d " "; echo x >/dev/null && echo null-ok'
bundle_set dev '.linux.devices = [{ path: "/dev/kelpnull", type: "c", major: 1, minor: 3, fileMode: 384, uid: 1, gid: 2 }]'
out=$(run_in dev 2>&1)
for d in "null 1:3" "zero 1:5" "full 1:7" "random 1:8" "urandom 1:9" "tty 5:0"; do
	set -- $d
	check_eq "/dev/$1 is a character device $2 (mode 666)" "/dev/$1 character special file $2 666" \
		"$(grep "^/dev/$1 " <<<"$out")"
done
check_eq "linux.devices: /dev/kelpnull c 1,3 mode 0600 uid 1 gid 2" "crw------- 1 2 1, 3" \
	"$(grep kelpnull <<<"$out" | awk '{ print $1, $3, $4, $5, $6 }')"
check_eq "/dev/zero reads zeros" 000000 "$(grep -x '0*' <<<"$out")"
check_match "/dev/null is writable" 'null-ok' "$out"

# ---- --no-pivot, rootfsPropagation ----------------------------------------------------------------

mk nopivot sh -c 'echo $$; cat /etc/hostname; ls /proc/1/root/bin/busybox'
check_eq "run --no-pivot" "1 kelp /proc/1/root/bin/busybox" "$(run_in nopivot --no-pivot 2>&1 | tr '\n' ' ' | sed 's/ $//')"

mk prop sh -c 'cat /proc/self/mountinfo'
bundle_set prop '.linux.rootfsPropagation = "private"'
out=$(run_in prop 2>&1)
check_match "rootfsPropagation private: container runs, / is mounted" '^[0-9]+ [0-9]+ [0-9:]+ [^ ]+ / ' "$out"
check_eq "rootfsPropagation private: no shared or slave mount" "" "$(grep -E ' (shared|master):[0-9]+' <<<"$out")"

# ---- a destination under a symlink that leaves the rootfs ---------------------------------------
# rootfs/evil -> $outside, an absolute path that exists on the host. Resolved inside the rootfs
# it is rootfs$outside: mount points must be made (and mounts land) there, never on the host.

outside=$TEST_TMP/outside
mkdir -p "$outside"
echo bound-file >"$TEST_TMP/evilfile"
# evil_bundle NAME: the bundle, with tmpfs at /evil/sub and a file bound at /evil/file.
evil_bundle() {
	mk "$1" sh -c 'probe mount-opts /evil/sub | cut -d" " -f2; echo inside >/evil/sub/marker && echo wrote; cat /evil/file'
	ln -s "$outside" "$TEST_TMP/$1/rootfs/evil"
	add_mount "$1" '{"destination": "/evil/sub", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}'
	add_mount "$1" "$(jq -n --arg s "$TEST_TMP/evilfile" '{destination: "/evil/file", type: "bind", source: $s, options: ["bind"]}')"
}
# evil_checks NAME LABEL OUTPUT
evil_checks() {
	check_eq "symlink destination ($2): the host's outside dir stays empty" "" "$(ls -A "$outside")"
	check_eq "symlink destination ($2): no host mount under the outside dir" "" \
		"$(awk -v o="$outside" 'index($5, o) == 1' /proc/self/mountinfo)"
	check_eq "symlink destination ($2): mounted inside the rootfs (tmpfs at /evil/sub, file bound)" \
		"tmpfs wrote bound-file" "$(tr '\n' ' ' <<<"$3" | sed 's/ $//')"
	check "symlink destination ($2): mount points created inside the rootfs" \
		test -d "$TEST_TMP/$1/rootfs$outside/sub" -a -f "$TEST_TMP/$1/rootfs$outside/file"
}
# The symlink's target exists inside the rootfs too.
evil_bundle evil
mkdir -p "$TEST_TMP/evil/rootfs$outside"
evil_checks evil "target exists in the rootfs" "$(run_in evil 2>&1)"
# The target does not exist inside the rootfs: it is created there (as runc does).
evil_bundle evil2
evil_checks evil2 "target missing in the rootfs" "$(run_in evil2 2>&1)"

exit 0
