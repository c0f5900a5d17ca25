# shellcheck shell=bash
# Helpers for the image tests (tests/integration/6*-image-*.sh), sourced after lib.sh:
#   img_layout DIR TAG [ARCH]     an OCI layout image: busybox-static (a base layer shared by
#                                 every TAG of DIR), then a layer that adds /etc/kelp-top,
#                                 deletes /etc/del-me (a whiteout) and makes /opq opaque
#   img_done DIR                  drop the helper tag "base" once the images are built
#   img_index DIR TAG TAG1 TAG2   a multi-platform index TAG over two images of DIR
#   reg_up NAME [AUTH-YAML]       Debian's docker-registry on 127.0.0.1:<free port>, storage
#                                 $TEST_TMP/reg-data (shared by every registry of the test);
#                                 prints host:port; stopped on exit
#   reg_push DIR TAG HOSTPORT/REPO:TAG   skopeo copy of an image or index (all platforms)
#   bg_start CMD...               a background server, stopped on exit
#   kd ARGS...                    build/bin/kelpd --root $IMG_ROOT --config $IMG_CONF ARGS...
#   store_files                   blobs and layers now in the store (one line each)
IMG_ROOT=$TEST_TMP/store
IMG_CONF=$TEST_TMP/kelpd.yaml
KELPD=$BUILD/bin/kelpd
: >"$IMG_CONF"
KT_PIDS=$TEST_TMP/bg-pids # helpers run in $(...) subshells: their background pids go here
: >"$KT_PIDS"

kd() { "$KELPD" --root "$IMG_ROOT" --config "$IMG_CONF" "$@"; }

store_files() {
	(cd "$IMG_ROOT" 2>/dev/null && find blobs/sha256 layers -mindepth 1 -maxdepth 1 | sort)
}

img_layout() { # DIR TAG [ARCH]
	local dir=$1 tag=$2 arch=${3:-amd64} b t
	if [ ! -d "$dir" ]; then
		# the shared base layer, built once: busybox, a file to delete, a dir to make opaque
		umoci init --layout "$dir" >&2 || return 1
		b=$TEST_TMP/bundle-base
		umoci new --image "$dir:base" >&2 || return 1
		umoci unpack --image "$dir:base" "$b" >&2 || return 1
		mkdir -p "$b/rootfs/bin" "$b/rootfs/etc" "$b/rootfs/opq"
		cp /bin/busybox "$b/rootfs/bin/busybox"
		ln -s busybox "$b/rootfs/bin/sh"
		echo base >"$b/rootfs/etc/del-me"
		echo old >"$b/rootfs/opq/old"
		umoci repack --image "$dir:base" "$b" >&2 || return 1
		rm -rf "$b"
	fi
	umoci tag --image "$dir:base" "$tag" >&2 || return 1
	# the top layer by hand, so it carries both kinds of whiteout
	t=$TEST_TMP/top-$tag
	mkdir -p "$t/etc" "$t/opq"
	echo "top $tag" >"$t/etc/kelp-top"
	: >"$t/etc/.wh.del-me"
	: >"$t/opq/.wh..wh..opq"
	echo new >"$t/opq/new"
	tar -C "$t" --owner=0 --group=0 -cf "$t.tar" etc opq || return 1
	umoci raw add-layer --image "$dir:$tag" "$t.tar" >&2 || return 1
	rm -rf "$t" "$t.tar"
	umoci config --image "$dir:$tag" --architecture "$arch" --os linux --config.cmd sh >&2
}

# Drop the helper tag "base" from a layout (its blobs stay: the images use them).
img_done() { umoci rm --image "$1:base" >&2; }

# The manifest descriptor of DIR:TAG, with a platform added.
_img_desc() { # DIR TAG ARCH
	local d
	d=$(jq -c --arg t "$2" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t)' "$1/index.json")
	jq -c --arg a "$3" 'del(.annotations) + {platform: {os: "linux", architecture: $a}}' <<<"$d"
}

img_index() { # DIR TAG TAG1:ARCH1 TAG2:ARCH2
	local dir=$1 tag=$2 a b idx digest size
	a=$(_img_desc "$dir" "${3%%:*}" "${3#*:}")
	b=$(_img_desc "$dir" "${4%%:*}" "${4#*:}")
	idx=$(jq -cn --argjson a "$a" --argjson b "$b" '{schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: [$a, $b]}')
	printf '%s' "$idx" >"$TEST_TMP/idx.json"
	digest=$(sha256sum "$TEST_TMP/idx.json" | cut -d' ' -f1)
	size=$(stat -c %s "$TEST_TMP/idx.json")
	cp "$TEST_TMP/idx.json" "$dir/blobs/sha256/$digest"
	jq --arg d "sha256:$digest" --argjson s "$size" --arg t "$tag" \
		'.manifests += [{mediaType: "application/vnd.oci.image.index.v1+json", digest: $d, size: $s, annotations: {"org.opencontainers.image.ref.name": $t}}]' \
		"$dir/index.json" >"$TEST_TMP/index.new" && mv "$TEST_TMP/index.new" "$dir/index.json"
	echo "sha256:$digest"
}

_free_port() {
	local p
	for _ in $(seq 50); do
		p=$((20000 + RANDOM % 40000))
		ss -ltnH "sport = :$p" 2>/dev/null | grep -q . || { echo "$p"; return 0; }
	done
	return 1
}

reg_up() { # NAME [AUTH-YAML]
	local name=$1 auth=${2:-} port dir=$TEST_TMP/reg-$1
	port=$(_free_port) || return 1
	mkdir -p "$dir" "$TEST_TMP/reg-data"
	{
		printf 'version: 0.1\nlog:\n  level: %s\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:%s\n' "${REG_LOG_LEVEL:-warn}" "$TEST_TMP/reg-data" "$port"
		[ -n "$auth" ] && printf '%s\n' "$auth"
	} >"$dir/config.yml"
	setsid docker-registry serve "$dir/config.yml" </dev/null >"$dir/log" 2>&1 &
	echo $! >>"$KT_PIDS"
	for _ in $(seq 100); do
		(echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && { echo "127.0.0.1:$port"; return 0; }
		sleep 0.05
	done
	cat "$dir/log" >&2
	return 1
}

reg_push() { # DIR TAG DEST
	skopeo copy -q --all --dest-tls-verify=false "oci:$1:$2" "docker://$3" >&2
}

# bg_start CMD...: a background server (output to $TEST_TMP/bg.log), stopped on exit
bg_start() {
	"$@" </dev/null >>"$TEST_TMP/bg.log" 2>&1 &
	echo $! >>"$KT_PIDS"
}

kt_extra_cleanup() {
	local p
	while read -r p; do kill "$p" 2>/dev/null; done <"$KT_PIDS"
	while read -r p; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.02; done
	done <"$KT_PIDS"
	declare -F kt_more_cleanup >/dev/null && kt_more_cleanup
	return 0
}

# img_random_layers DIR TAG N MB: N more layers of MB megabytes of random data each on DIR:TAG
# (files /rnd/N.bin; their sha256 sums in $TEST_TMP/rnd-TAG.sums).
img_random_layers() {
	local dir=$1 tag=$2 n=$3 mb=$4 i t
	: >"$TEST_TMP/rnd-$tag.sums"
	for i in $(seq "$n"); do
		t=$TEST_TMP/rnd-$tag-$i
		mkdir -p "$t/rnd"
		head -c "$((mb << 20))" /dev/urandom >"$t/rnd/$i.bin"
		(cd "$t" && sha256sum "rnd/$i.bin") >>"$TEST_TMP/rnd-$tag.sums"
		tar -C "$t" --owner=0 --group=0 -cf "$t.tar" rnd || return 1
		umoci raw add-layer --image "$dir:$tag" "$t.tar" >&2 || return 1
		rm -rf "$t" "$t.tar"
	done
}

# slow_proxy UPSTREAM: an HTTP proxy to UPSTREAM (host:port) that sends bodies at about
# ${SLOW_KBPS:-4000} kB/s, to catch a pull in the middle; prints its host:port; stopped on exit.
# The most blob requests it saw in flight at once go to $TEST_TMP/proxy-PORT.max.
slow_proxy() {
	local port
	port=$(_free_port) || return 1
	cat >"$TEST_TMP/slowproxy.py" <<'PY'
import sys, time, threading, urllib.request, urllib.error
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
port, up, kbps, stats = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
lock = threading.Lock()
now = [0, 0]  # blob requests in flight, the most seen at once
def inflight(d):
    with lock:
        now[0] += d
        if now[0] > now[1]:
            now[1] = now[0]
            open(stats, 'w').write('%d\n' % now[1])
class H(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def log_message(self, *a): pass
    def do_GET(self):
        # a blob counts as in flight until its last chunk is about to go: the client cannot
        # start its next request before that, so sequential downloads never overlap here
        self.counted = '/blobs/' in self.path
        if self.counted: inflight(1)
        try:
            self.get()
        finally:
            self.done()
    def done(self):
        if self.counted:
            self.counted = False
            inflight(-1)
    def get(self):
        req = urllib.request.Request('http://' + up + self.path)
        for h in ('Accept', 'Authorization'):
            if h in self.headers: req.add_header(h, self.headers[h])
        try:
            r = urllib.request.urlopen(req)
        except urllib.error.HTTPError as e:
            r = e
        body = r.read()
        self.send_response(r.status if hasattr(r, 'status') else r.code)
        for h in ('Content-Type', 'Docker-Content-Digest', 'WWW-Authenticate'):
            if r.headers.get(h): self.send_header(h, r.headers[h])
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        step = 32768
        for i in range(0, len(body), step):
            if i + step >= len(body): self.done()
            try:
                self.wfile.write(body[i:i + step]); self.wfile.flush()
            except OSError:
                return
            time.sleep(step / 1024 / kbps)
ThreadingHTTPServer(('127.0.0.1', port), H).serve_forever()
PY
	/usr/bin/python3 "$TEST_TMP/slowproxy.py" "$port" "$1" "${SLOW_KBPS:-4000}" "$TEST_TMP/proxy-$port.max" </dev/null >/dev/null 2>"$TEST_TMP/slowproxy.err" &
	echo $! >>"$KT_PIDS"
	for _ in $(seq 100); do
		(echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && { echo "127.0.0.1:$port"; return 0; }
		sleep 0.05
	done
	return 1
}

# Every blob in the store has the digest its name says.
store_blobs_ok() {
	local f bad=0
	for f in "$IMG_ROOT"/blobs/sha256/*; do
		[ -e "$f" ] || continue
		[ "$(sha256sum <"$f" | cut -d' ' -f1)" = "$(basename "$f")" ] || { echo "bad blob: $f" >&2; bad=1; }
	done
	return $bad
}

# img_many_files DIR TAG N: one more layer of N empty files (/many/N), slow to unpack.
img_many_files() {
	local t=$TEST_TMP/many-$2
	mkdir -p "$t/many"
	(cd "$t/many" && seq "$3" | xargs touch) || return 1
	tar -C "$t" --owner=0 --group=0 -cf "$t.tar" many || return 1
	umoci raw add-layer --image "$1:$2" "$t.tar" >&2 || return 1
	rm -rf "$t" "$t.tar"
}
