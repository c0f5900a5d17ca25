# shellcheck shell=bash
# _oci-image.sh — sourced by the client tests (30-containerd, 31-podman, 55-cni-containerd), after lib.sh.
#
#   oci_image_archive DIR [CMD...]   write DIR/busybox-oci.tar: an OCI image layout as a tar, one
#                             uncompressed layer holding Debian's static busybox, tagged "1" (the
#                             index's org.opencontainers.image.ref.name), whose Cmd is CMD (default
#                             sh). Prints the tar's path.
#
# Built by hand (tar, sha256sum, jq, perl), so no registry and no image tool is needed, and the same
# bytes give the same digests on every run. `ctr images import --base-name NAME` makes it
# NAME:1; `podman pull oci-archive:TAR` loads it. The image config: Cmd, PATH, WorkingDir /.

_oci_blob() { # LAYOUT FILE: move FILE into LAYOUT/blobs/sha256 under its digest; print the digest
	local layout=$1 f=$2 sum
	sum=$(sha256sum "$f" | awk '{ print $1 }') || return 1
	[ -n "$sum" ] || return 1
	mv "$f" "$layout/blobs/sha256/$sum" || return 1
	printf 'sha256:%s\n' "$sum"
}

oci_image_archive() {
	local dir=${1:?oci_image_archive DIR [CMD...]}
	shift
	[ $# -gt 0 ] || set -- sh
	local cmd_json
	cmd_json=$(jq -nc '$ARGS.positional' --args "$@") || return 1
	local rootfs=$dir/image-rootfs layout=$dir/image-layout arch
	local busybox=${BUSYBOX:-/bin/busybox}
	[ -x "$busybox" ] || {
		echo "oci_image_archive: $busybox is missing (apt-get install busybox-static)" >&2
		return 1
	}
	rm -rf --one-file-system "$rootfs" "$layout" || return 1
	mkdir -p "$rootfs"/{bin,dev,etc,proc,root,sys,tmp} "$layout/blobs/sha256" || return 1
	chmod 1777 "$rootfs/tmp" && chmod 0700 "$rootfs/root" || return 1
	cp "$busybox" "$rootfs/bin/busybox" && chmod 0755 "$rootfs/bin/busybox" || return 1
	# One symlink per applet, made in one perl process: ~400 `ln` forks take seconds on a busy
	# 2-core machine (perl is Essential in Debian).
	"$busybox" --list | perl -e 'my $d = shift;
		while (my $a = <STDIN>) {
			chomp $a;
			next if $a eq "busybox" || $a eq "" || $a =~ m{/};
			symlink("busybox", "$d/$a") or die "symlink $a: $!\n";
		}' "$rootfs/bin" || return 1
	printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' \
		>"$rootfs/etc/passwd" || return 1
	printf '%s\n' 'root:x:0:' 'nobody:x:65534:' >"$rootfs/etc/group" || return 1

	# The layer: files owned by root, fixed times, sorted, so its digest is reproducible.
	tar -C "$rootfs" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
		-cf "$dir/layer.tar" . || return 1
	local layer layer_size config config_size manifest manifest_size
	layer_size=$(stat -c %s "$dir/layer.tar") || return 1
	layer=$(_oci_blob "$layout" "$dir/layer.tar") || return 1

	# The image's platform is the host's, as the busybox in it is; clients check it on import.
	case "$(uname -m)" in
	x86_64) arch=amd64 ;;
	aarch64) arch=arm64 ;;
	*) arch=$(uname -m) ;;
	esac
	jq -n --arg diff "$layer" --argjson cmd "$cmd_json" --arg arch "$arch" '{
		architecture: $arch, os: "linux",
		config: { Cmd: $cmd, WorkingDir: "/",
			  Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"] },
		rootfs: { type: "layers", diff_ids: [$diff] },
		history: [ { created_by: "kelp tests: busybox-static" } ]
	}' >"$dir/config.json" || return 1
	config_size=$(stat -c %s "$dir/config.json") || return 1
	config=$(_oci_blob "$layout" "$dir/config.json") || return 1

	jq -n --arg c "$config" --argjson cs "$config_size" --arg l "$layer" --argjson ls "$layer_size" '{
		schemaVersion: 2,
		mediaType: "application/vnd.oci.image.manifest.v1+json",
		config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: $c, size: $cs },
		layers: [ { mediaType: "application/vnd.oci.image.layer.v1.tar", digest: $l, size: $ls } ]
	}' >"$dir/manifest.json" || return 1
	manifest_size=$(stat -c %s "$dir/manifest.json") || return 1
	manifest=$(_oci_blob "$layout" "$dir/manifest.json") || return 1

	jq -n --arg m "$manifest" --argjson ms "$manifest_size" '{
		schemaVersion: 2,
		manifests: [ { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $m,
			       size: $ms, annotations: { "org.opencontainers.image.ref.name": "1" } } ]
	}' >"$layout/index.json" || return 1
	printf '{"imageLayoutVersion":"1.0.0"}\n' >"$layout/oci-layout" || return 1

	tar -C "$layout" --sort=name --owner=0 --group=0 --numeric-owner -cf "$dir/busybox-oci.tar" . || return 1
	rm -rf --one-file-system "$rootfs" "$layout" || return 1
	printf '%s\n' "$dir/busybox-oci.tar"
}

#   containerd_toml_head DIR SOCK     the start of a private containerd 1.6 config.toml shared
#                             by the CRI tests: root and state under DIR, the gRPC socket SOCK,
#                             unused snapshotters off, debug logs; the caller appends its plugins.
containerd_toml_head() {
	cat <<EOT
version = 2
root = "$1/root"
state = "$1/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$2"
[ttrpc]
  address = "$2.ttrpc"
[debug]
  address = ""
  level = "debug"
[metrics]
  address = ""
EOT
}
