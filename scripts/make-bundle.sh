#!/bin/bash
# make-bundle.sh — write a minimal OCI bundle: a busybox rootfs plus a config.json.
#
# Usage: scripts/make-bundle.sh DIR [ARG...]
#   DIR   the bundle directory: created if missing; it must be empty or a bundle this script
#         made before (its rootfs and config.json are then replaced).
#   ARG   the container's process.args (default: sh).
# Env:
#   KELP_BUNDLE_HOST_TOOLS=1  also copy the static test helpers ($BUILD/tests/helpers/*, built
#                             by `make`) into rootfs/bin, e.g. /bin/probe.
#   BUILD                     build directory for the helpers (default: build, in the tree).
#   BUSYBOX                   the busybox binary to copy (default: /bin/busybox). It must be
#                             statically linked: Debian's busybox-static package.
#
# The rootfs is Debian's static busybox with one symlink per applet in /bin, /etc/passwd and
# /etc/group (root, nobody), /etc/hostname and a 1777 /tmp. config.json is written here, not by
# any runtime's `spec`, so every runtime gets the same bundle: OCI 1.0.2, a read-only root,
# Docker's 14 default capabilities, RLIMIT_NOFILE 1024, noNewPrivileges, the usual mounts, a
# deny-all device rule, pid/network/ipc/uts/mount namespaces, and runc's masked and read-only
# paths. The only output is one line, `bundle: DIR`; errors go to stderr with a non-zero exit.
set -u

die() {
	echo "make-bundle: $*" >&2
	exit 1
}

[ $# -ge 1 ] && [ -n "$1" ] || die "usage: make-bundle.sh DIR [ARG...]"
dir=$1
shift
[ $# -gt 0 ] || set -- sh

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
busybox=${BUSYBOX:-/bin/busybox}

command -v jq >/dev/null 2>&1 || die "jq is missing: apt-get install jq"
[ -f "$busybox" ] && [ -x "$busybox" ] || die "$busybox is missing: apt-get install busybox-static"

# A dynamically linked busybox cannot run in a rootfs without libc: refuse it with the fix.
is_static() {
	local out
	if command -v file >/dev/null 2>&1; then
		out=$(file -L "$1" 2>/dev/null)
		case "$out" in
		*"statically linked"* | *"static-pie linked"*) return 0 ;;
		*"dynamically linked"*) return 1 ;;
		esac
	fi
	# No file(1): a binary with an ELF interpreter (PT_INTERP) is dynamic.
	if command -v readelf >/dev/null 2>&1; then
		! readelf -l "$1" 2>/dev/null | grep -q 'Requesting program interpreter'
		return
	fi
	LC_ALL=C ldd "$1" 2>&1 | grep -q 'not a dynamic executable'
}
is_static "$busybox" ||
	die "$busybox is dynamically linked and cannot run inside the bundle: apt-get install busybox-static"

helpers=()
if [ "${KELP_BUNDLE_HOST_TOOLS:-0}" = 1 ]; then
	build=${BUILD:-build}
	case "$build" in /*) ;; *) build=$here/$build ;; esac
	for h in "$build"/tests/helpers/*; do
		[ -f "$h" ] && [ -x "$h" ] && helpers+=("$h")
	done
	[ ${#helpers[@]} -gt 0 ] || die "KELP_BUNDLE_HOST_TOOLS=1 but no helpers in $build/tests/helpers (run make)"
fi

# Refuse to clobber a directory that is not (yet) a bundle of ours.
if [ -e "$dir" ]; then
	[ -d "$dir" ] || die "$dir exists and is not a directory"
	if [ -n "$(ls -A "$dir")" ]; then
		[ -f "$dir/config.json" ] && [ -e "$dir/rootfs/bin/busybox" ] ||
			die "$dir is not empty and is not a bundle made by this script"
		rm -rf --one-file-system "$dir/rootfs" "$dir/config.json" || die "cannot remove the old bundle in $dir"
	fi
fi
mkdir -p "$dir" || die "cannot create $dir"
dir=$(cd "$dir" && pwd) || die "cannot enter $dir"
rootfs=$dir/rootfs

umask 022
mkdir -p "$rootfs"/{bin,dev,etc,proc,root,sys,tmp} || die "cannot create $rootfs"
chmod 1777 "$rootfs/tmp"
chmod 0700 "$rootfs/root"
cp "$busybox" "$rootfs/bin/busybox" || die "cannot copy $busybox"
chmod 0755 "$rootfs/bin/busybox"
applets=$("$busybox" --list) || die "$busybox --list failed"
names=()
for a in $applets; do
	case "$a" in busybox | */* | "") continue ;; esac
	names+=("$a")
done
# perl (Essential in Debian) makes the ~270 links in one process; ln is the slow fallback.
if command -v perl >/dev/null 2>&1; then
	perl -e 'my $d = shift; for (@ARGV) { symlink("busybox", "$d/$_") or die "symlink $_: $!\n" }' \
		"$rootfs/bin" "${names[@]}" || die "cannot link the applets"
else
	for a in "${names[@]}"; do
		ln -s busybox "$rootfs/bin/$a" || die "cannot link applet $a"
	done
fi
for h in "${helpers[@]}"; do
	# A helper replaces an applet of the same name.
	rm -f "$rootfs/bin/${h##*/}"
	cp "$h" "$rootfs/bin/" || die "cannot copy $h"
done
printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' \
	>"$rootfs/etc/passwd"
printf '%s\n' 'root:x:0:' 'nobody:x:65534:' >"$rootfs/etc/group"
echo kelp >"$rootfs/etc/hostname"

# One jq per argument keeps any byte sequence (newlines, leading dashes) intact.
args_json=
for a in "$@"; do
	enc=$(printf '%s' "$a" | jq -Rs .) || die "cannot encode the argument '$a'"
	args_json=${args_json:+$args_json,}$enc
done
args_json="[$args_json]"
jq -n --argjson args "$args_json" '
def caps: ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"];
{
	ociVersion: "1.0.2",
	process: {
		terminal: false,
		user: { uid: 0, gid: 0 },
		args: $args,
		env: [ "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm" ],
		cwd: "/",
		capabilities: { bounding: caps, effective: caps, permitted: caps },
		rlimits: [ { type: "RLIMIT_NOFILE", hard: 1024, soft: 1024 } ],
		noNewPrivileges: true
	},
	root: { path: "rootfs", readonly: true },
	hostname: "kelp",
	mounts: [
		{ destination: "/proc", type: "proc", source: "proc" },
		{ destination: "/dev", type: "tmpfs", source: "tmpfs",
		  options: [ "nosuid", "strictatime", "mode=755", "size=65536k" ] },
		{ destination: "/dev/pts", type: "devpts", source: "devpts",
		  options: [ "nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5" ] },
		{ destination: "/dev/shm", type: "tmpfs", source: "shm",
		  options: [ "nosuid", "noexec", "nodev", "mode=1777", "size=65536k" ] },
		{ destination: "/dev/mqueue", type: "mqueue", source: "mqueue",
		  options: [ "nosuid", "noexec", "nodev" ] },
		{ destination: "/sys", type: "sysfs", source: "sysfs",
		  options: [ "nosuid", "noexec", "nodev", "ro" ] },
		{ destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup",
		  options: [ "nosuid", "noexec", "nodev", "relatime", "ro" ] }
	],
	linux: {
		resources: { devices: [ { allow: false, access: "rwm" } ] },
		namespaces: [ { type: "pid" }, { type: "network" }, { type: "ipc" }, { type: "uts" },
			      { type: "mount" } ],
		maskedPaths: [ "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
			"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
			"/sys/firmware", "/proc/scsi" ],
		readonlyPaths: [ "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger" ]
	}
}' >"$dir/config.json.tmp" && mv "$dir/config.json.tmp" "$dir/config.json" || {
	rm -f "$dir/config.json.tmp"
	die "cannot write $dir/config.json"
}

echo "bundle: $dir"
