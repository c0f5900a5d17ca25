#!/bin/bash
# Image pulls from a real registry: Debian's docker-registry on 127.0.0.1 (random free ports),
# images built here from busybox-static and pushed with skopeo. Tags, digests, a multi-platform
# index, plain HTTP only where configured, a mirror for another registry name, Basic auth
# (htpasswd) and Bearer token auth; bad input leaves the store as it was.
. "$(dirname "$0")/lib.sh"
. "$KELP_SRC/tests/integration/_images.sh"
require_root
for t in umoci skopeo jq docker-registry htpasswd /usr/bin/python3 openssl; do
	command -v $t >/dev/null || skip_all "$t is not installed (scripts/deps.sh)"
done

L=$TEST_TMP/oci
{ img_layout "$L" one amd64 && img_layout "$L" arm arm64 && img_layout "$L" bad1 && img_layout "$L" bad2 && img_done "$L"; } >&2 ||
	{ fail "build test images with umoci"; exit 1; }
idx=$(img_index "$L" multi one:amd64 arm:arm64) || { fail "build a multi-platform index"; exit 1; }
R=$(reg_up plain) || { fail "start docker-registry"; exit 1; }
reg_push "$L" one "$R/test/bb:one" && reg_push "$L" multi "$R/test/multi:1" && reg_push "$L" bad1 "$R/test/corrupt:1" &&
	reg_push "$L" bad2 "$R/test/short:1" || { fail "push test images with skopeo"; exit 1; }

# plain HTTP only where configured
err=$(kd image pull -q "$R/test/bb:one" 2>&1)
check_match "plain-HTTP registry not configured: refused (HTTPS only)" "https://$R/v2/test/bb/manifests/one: .*(SSL|TLS)" "$err"
check_eq "refused pull: store unchanged" "" "$(store_files)"
printf 'registries:\n  "%s":\n    plain_http: true\n' "$R" >"$IMG_CONF"
out=$(kd image pull "$R/test/bb:one" 2>"$TEST_TMP/progress")
check_match "pull by tag" "^$R/test/bb:one sha256:[0-9a-f]{64}$" "$out"
check_match "pull reports bytes per layer" "bytes done" "$(cat "$TEST_TMP/progress")"
insp=$(kd image inspect "$R/test/bb:one")
mdigest=$(skopeo inspect --tls-verify=false --raw "docker://$R/test/bb:one" | sha256sum | cut -d' ' -f1)
check_eq "pull by tag: manifest digest as the registry has it" "sha256:$mdigest" "$(jq -r .manifest <<<"$insp")"
check "pull by tag: layers unpacked" cmp /bin/busybox "$(jq -r '.layers[0].path' <<<"$insp")/bin/busybox"
out=$(kd image pull -q "$R/test/bb@sha256:$mdigest" 2>&1)
check_eq "pull by digest" "$R/test/bb@sha256:$mdigest $(jq -r .id <<<"$insp")" "$out"
err=$(kd image pull -q "$R/test/bb@sha256:$(printf '%064d' 0)" 2>&1)
check_match "pull of a missing digest: HTTP 404" "HTTP 404" "$err"

# a multi-platform index: this node's platform, another one asked for, and one it lacks
kd image pull -q "$R/test/multi:1" >&2
check_eq "index: this node's platform (amd64)" "$(kd image inspect "$R/test/bb:one" | jq -r .id)" "$(kd image inspect "$R/test/multi:1" | jq -r .id)"
check_eq "index: repo digest is the index" "$idx" "$(kd image inspect "$R/test/multi:1" | jq -r .repoDigest)"
kd image pull -q --platform linux/arm64 "$R/test/multi:1" >&2
check_eq "index: --platform linux/arm64 picks the arm64 image" arm64 \
	"$(cat "$IMG_ROOT/blobs/sha256/$(kd image inspect "$R/test/multi:1" | jq -r .id | cut -c8-)" | jq -r .architecture)"
before=$(store_files)
ls_before=$(kd image ls -q)
err=$(kd image pull -q --platform linux/s390x "$R/test/multi:1" 2>&1)
check_match "index without this platform: says so" "no manifest for platform linux/s390x in the index \(it has: linux/amd64, linux/arm64\)" "$err"
check_eq "index without this platform: store unchanged" "$before" "$(store_files)"
check_eq "index without this platform: images unchanged" "$ls_before" "$(kd image ls -q)"

# a layer whose digest does not match, and a truncated one (the registry's files spoiled)
bad1=$(skopeo inspect --tls-verify=false "docker://$R/test/corrupt:1" | jq -r '.Layers[1]')
bad2=$(skopeo inspect --tls-verify=false "docker://$R/test/short:1" | jq -r '.Layers[1]')
f1=$TEST_TMP/reg-data/docker/registry/v2/blobs/sha256/${bad1:7:2}/${bad1:7}/data
f2=$TEST_TMP/reg-data/docker/registry/v2/blobs/sha256/${bad2:7:2}/${bad2:7}/data
printf 'X' | dd of="$f1" bs=1 seek=20 conv=notrunc 2>/dev/null
truncate -s 50 "$f2"
err=$(kd image pull -q "$R/test/corrupt:1" 2>&1)
check_match "layer digest mismatch: refused" "blob $bad1: digest mismatch" "$err"
err=$(kd image pull -q "$R/test/short:1" 2>&1)
check_match "truncated layer: refused" "blob $bad2: truncated, got 50 of [0-9]+ bytes" "$err"
check_eq "bad layers: store unchanged" "$before" "$(store_files)"
check_eq "bad layers: images unchanged" "$ls_before" "$(kd image ls -q)"
check_eq "bad layers: no partial blobs left" "" "$(find "$IMG_ROOT/ingest" "$IMG_ROOT/tmp" -mindepth 1 ! -name '*.lock')"

# a mirror for another registry name
printf 'registries:\n  "%s":\n    plain_http: true\n  registry.kelp-test.invalid:\n    mirrors: ["http://%s"]\n' "$R" "$R" >"$IMG_CONF"
out=$(kd image pull -q registry.kelp-test.invalid/test/bb:one 2>&1)
check_match "mirror: another registry name served by the local registry" "^registry.kelp-test.invalid/test/bb:one sha256:" "$out"
printf 'registries:\n  registry.kelp-test.invalid:\n    mirrors: ["http://127.0.0.1:1"]\n' >"$IMG_CONF"
err=$(kd image pull -q registry.kelp-test.invalid/test/bb:one 2>&1)
check_match "mirror down: falls back to the registry itself (over HTTPS)" "https://registry.kelp-test.invalid/v2/" "$err"

# Basic auth (htpasswd), same storage
htpasswd -Bbc "$TEST_TMP/htpasswd" kelp s3cret 2>/dev/null
B=$(reg_up basic "auth:
  htpasswd:
    realm: kelp-test
    path: $TEST_TMP/htpasswd") || fail "start docker-registry with htpasswd"
printf 'registries:\n  "%s":\n    plain_http: true\n' "$B" >"$IMG_CONF"
kd image rm "$R/test/bb:one" "$R/test/bb@sha256:$mdigest" "$R/test/multi:1" "registry.kelp-test.invalid/test/bb:one" >/dev/null
before=$(store_files)
err=$(kd image pull -q "$B/test/bb:one" 2>&1)
check_match "Basic auth, no credentials: says so" "wants credentials and none were given" "$err"
err=$(kd image pull -q --creds kelp:wrong "$B/test/bb:one" 2>&1)
check_match "Basic auth, wrong password: refused" "refused the credentials of kelp" "$err"
check_eq "refused credentials: store unchanged" "$before" "$(store_files)"
check_match "Basic auth, right password: pulled" "^$B/test/bb:one sha256:" "$(kd image pull -q --creds kelp:s3cret "$B/test/bb:one" 2>&1)"

# Bearer token auth: a token server signing JWTs (RS256, x5c) that the registry trusts
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TEST_TMP/tok.key" -out "$TEST_TMP/tok.crt" -days 2 \
	-subj /CN=kelp-test-token 2>/dev/null
TP=$(_free_port)
cat >"$TEST_TMP/tokensrv.py" <<'PY'
import base64, json, sys, time, os
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import urlparse, parse_qs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
port, keyf, certf, log = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
key = serialization.load_pem_private_key(open(keyf, 'rb').read(), None)
der = x509.load_pem_x509_certificate(open(certf, 'rb').read()).public_bytes(serialization.Encoding.DER)
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b'=').decode()
class H(BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        q = parse_qs(urlparse(self.path).query)
        auth = self.headers.get('Authorization', '')
        user = 'identity' if getattr(self, 'identity', False) else ''
        if auth:
            u, _, p = base64.b64decode(auth.split(' ', 1)[1]).decode().partition(':')
            if (u, p) != ('kelp', 's3cret'):
                self.send_response(401); self.end_headers(); return
            user = u
        scope = q.get('scope', [''])[0].split(':')
        now = int(time.time())
        claims = {'iss': 'kelp-test-issuer', 'sub': user, 'aud': q.get('service', [''])[0], 'exp': now + 300,
                  'nbf': now - 10, 'iat': now, 'jti': os.urandom(8).hex(),
                  'access': [{'type': scope[0], 'name': scope[1], 'actions': ['pull']}] if len(scope) == 3 else []}
        head = {'typ': 'JWT', 'alg': 'RS256', 'x5c': [base64.b64encode(der).decode()]}
        signing = b64(json.dumps(head).encode()) + '.' + b64(json.dumps(claims).encode())
        sig = key.sign(signing.encode(), padding.PKCS1v15(), hashes.SHA256())
        body = json.dumps({'token': signing + '.' + b64(sig)}).encode()
        open(log, 'a').write('token for %r\n' % (user or 'anonymous'))
        self.send_response(200); self.send_header('Content-Type', 'application/json'); self.end_headers()
        self.wfile.write(body)
    def do_POST(self):
        # the identity-token flow: a refresh token in a form
        form = parse_qs(self.rfile.read(int(self.headers.get('Content-Length', '0'))).decode())
        if form.get('grant_type') != ['refresh_token'] or form.get('refresh_token') != ['kelp-refresh']:
            self.send_response(401); self.end_headers(); return
        self.path = '/token?' + '&'.join('%s=%s' % (k, form[k][0]) for k in ('scope', 'service') if k in form)
        self.headers.replace_header('Authorization', '') if 'Authorization' in self.headers else None
        self.identity = True
        return self.do_GET()
HTTPServer(('127.0.0.1', port), H).serve_forever()
PY
bg_start /usr/bin/python3 "$TEST_TMP/tokensrv.py" "$TP" "$TEST_TMP/tok.key" "$TEST_TMP/tok.crt" "$TEST_TMP/token.log"
T=$(reg_up token "auth:
  token:
    realm: http://127.0.0.1:$TP/token
    service: kelp-test
    issuer: kelp-test-issuer
    rootcertbundle: $TEST_TMP/tok.crt") || fail "start docker-registry with token auth"
for _ in $(seq 50); do (echo >"/dev/tcp/127.0.0.1/$TP") 2>/dev/null && break; sleep 0.1; done
printf 'registries:\n  "%s":\n    plain_http: true\n' "$T" >"$IMG_CONF"
kd image rm "$B/test/bb:one" >/dev/null
check_match "Bearer token, anonymous: pulled" "^$T/test/bb:one sha256:" "$(kd image pull -q "$T/test/bb:one" 2>&1)"
check_match "Bearer token, anonymous: token fetched" "token for 'anonymous'" "$(cat "$TEST_TMP/token.log" 2>/dev/null)"
kd image rm "$T/test/bb:one" >/dev/null
before=$(store_files)
err=$(kd image pull -q --creds kelp:wrong "$T/test/bb:one" 2>&1)
check_match "Bearer token, wrong password: refused" "refused the credentials of kelp" "$err"
check_eq "Bearer token refused: store unchanged" "$before" "$(store_files)"
check_match "Bearer token with username/password: pulled" "^$T/test/bb:one sha256:" "$(kd image pull -q --creds kelp:s3cret "$T/test/bb:one" 2>&1)"
check_match "Bearer token with username/password: token for kelp" "token for 'kelp'" "$(cat "$TEST_TMP/token.log" 2>/dev/null)"
kd image rm "$T/test/bb:one" >/dev/null
check_match "Bearer token from an identity token: pulled" "^$T/test/bb:one sha256:" "$(kd image pull -q --identity-token kelp-refresh "$T/test/bb:one" 2>&1)"
check_match "identity token: exchanged at the token server" "token for 'identity'" "$(cat "$TEST_TMP/token.log" 2>/dev/null)"
kd image rm "$T/test/bb:one" >/dev/null
err=$(kd image pull -q --identity-token bogus "$T/test/bb:one" 2>&1)
check_match "a bad identity token: refused" "refused the credentials" "$err"
exit 0
