#!/bin/sh
# deps.sh — install every build and test dependency of kelp from Debian (idempotent).
# Run as root on Debian 12. Packages already installed are skipped, so a second run is quick
# and needs no network.
set -eu

# Build: compiler, pkg-config and the -dev packages of the libraries kelp links.
BUILD="build-essential pkg-config libseccomp-dev libcap-dev libyajl-dev libcmocka-dev"
# Tests and demo: the busybox rootfs, JSON checks, namespaces tools, the peers compared in bench/.
TEST="busybox-static jq iproute2 util-linux procps time runc crun file"

missing=""
for p in $BUILD $TEST; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps.sh: missing packages:$missing (run as root to install them)" >&2
	exit 1
fi
echo "deps.sh: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || apt-get update
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
