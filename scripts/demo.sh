#!/bin/sh
# demo.sh — from a fresh Debian 12 machine (as root) to a running container:
# install the dependencies, build kelp, make a busybox bundle from Debian's busybox-static,
# and `kelp run` a container that prints its hostname, its PID and its effective capabilities.
set -eu
cd "$(dirname "$0")/.."
./scripts/deps.sh
make -s all
bundle=${DEMO_BUNDLE:-/tmp/kelp-demo/bundle}
./scripts/make-bundle.sh "$bundle" sh -c \
	'echo "hostname: $(hostname)"; echo "pid: $$"; grep CapEff /proc/self/status'
id="kelp-demo-$$"
exec ./build/bin/kelp --root /run/kelp-demo run --bundle "$bundle" "$id"
