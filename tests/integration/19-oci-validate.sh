#!/bin/bash
# The OCI runtime-tools bundle validator, a tool of the OCI and not ours (Debian's
# golang-github-opencontainers-runtime-tools-dev, driven by tests/oci-validate), with the
# runtime-spec JSON schema: the configs that `kelp spec`, `kelp spec --rootless` and
# scripts/make-bundle.sh write pass them, and a config with a broken field does not.
. "$(dirname "$0")/lib.sh"

command -v go >/dev/null && [ -d /usr/share/gocode/src/github.com/opencontainers/runtime-tools/validate ] ||
	skip_all "go or the runtime-tools sources are missing (scripts/deps.sh installs golang-go and golang-github-opencontainers-runtime-tools-dev)"

OV=$TEST_TMP/oci-validate
case $BUILD in /*) cache=$BUILD/go-cache ;; *) cache=$KELP_SRC/$BUILD/go-cache ;; esac
# GOPATH mode: the Debian packages are the sources, nothing is fetched
if ! out=$(cd "$KELP_SRC" && GOPATH=/usr/share/gocode GO111MODULE=off GOFLAGS= GOCACHE="$cache" \
	go build -o "$OV" ./tests/oci-validate 2>&1); then
	fail "build tests/oci-validate" "$out"
	exit 1
fi

validate() { # NAME DIR
	local out
	out=$("$OV" "$2" 2>&1)
	check_eq "$1: valid for the OCI runtime-tools validator" "valid" "$out"
}

mkdir -p "$TEST_TMP/spec/rootfs" "$TEST_TMP/rootless/rootfs"
(cd "$TEST_TMP/spec" && "$KELP" spec) && validate "kelp spec" "$TEST_TMP/spec"
(cd "$TEST_TMP/rootless" && "$KELP" spec --rootless) && validate "kelp spec --rootless" "$TEST_TMP/rootless"
make_bundle b && validate "the bundle of scripts/make-bundle.sh" "$TEST_TMP/b"

# The validator can fail: an ambient capability that is not inheritable (runc's example spec
# before 1.2 had three), a relative mount destination, an unknown capability.
broken() { # NAME JQ-FILTER EXPECTED-REGEX
	mkdir -p "$TEST_TMP/broken/rootfs"
	jq "$2" "$TEST_TMP/spec/config.json" >"$TEST_TMP/broken/config.json"
	local out rc
	out=$("$OV" "$TEST_TMP/broken" 2>&1)
	rc=$?
	check_eq "$1: refused (exit 1)" 1 "$rc"
	check_match "$1: the problem is named" "$3" "$out"
}
broken "ambient without inheritable" '.process.capabilities.ambient = ["CAP_KILL"]' 'ambient capability "CAP_KILL"'
broken "relative mount destination" '.mounts[0].destination = "proc"' 'destination "proc" is not absolute'
broken "unknown capability" '.process.capabilities.bounding += ["CAP_BOGUS"]' 'CAP_BOGUS'
