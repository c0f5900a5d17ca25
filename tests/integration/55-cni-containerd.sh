#!/bin/bash
# A real caller: Debian's containerd (1.6) with its CRI plugin runs a pod whose network comes
# from a conflist of kelp-bridge + kelp-host-local + kelp-portmap (a private conf and bin dir),
# driven over the CRI socket as a kubelet would (a small python3-grpcio client written here,
# messages encoded by hand with the field numbers of k8s.io/cri-api). containerd runs inside a
# "node" netns this test creates (nsenter --net keeps the host's mounts), so the bridge, the
# rules and the pod's netns stay out of the root netns. The pod reaches its gateway and is
# reached on its hostPort; after StopPodSandbox + RemovePodSandbox nothing is left.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/_oci-image.sh"
require_root
command -v containerd >/dev/null && command -v ctr >/dev/null || skip_all "containerd is not installed"
command -v containerd-shim-runc-v2 >/dev/null || skip_all "containerd-shim-runc-v2 is missing"
/usr/bin/python3 -c 'import grpc' 2>/dev/null || skip_all "python3-grpcio is missing (scripts/deps.sh)"

CNI=$BUILD/cni
NODE=kt55-$$-node
B=$TEST_TMP/ctrd
SOCK=$B/containerd.sock
CGP=$CG_BASE/pods  # lib.sh removes $CG_BASE on exit
CTRD_PID=
E=(nsenter --net="/run/netns/$NODE")
cni_dir_existed=0
[ -e /var/lib/cni ] && cni_dir_existed=1
mkdir -p "$B"/{root,state,rtroot,net.d,ipam,logs,cni-bin} || exit 1
# The private bin dir: kelp's plugins, and kelp-loopback as the "loopback" containerd always runs.
for p in "$CNI"/kelp-*; do ln -s "$p" "$B/cni-bin/"; done
ln -s "$CNI/kelp-loopback" "$B/cni-bin/loopback"
ctr_() { timeout 30 ctr --address "$SOCK" --namespace k8s.io "$@"; }
cri() { PYTHONPATH="$KELP_SRC/tests/integration" timeout 90 /usr/bin/python3 "$B/cri.py" "$SOCK" "$@"; }
kt_extra_cleanup() {
	local f p m
	if [ -S "$SOCK" ] && [ -f "$B/pod.id" ]; then
		cri stop-pod "$(cat "$B/pod.id")" >/dev/null 2>&1
		cri rm-pod "$(cat "$B/pod.id")" >/dev/null 2>&1
	fi
	for f in "$B"/state/io.containerd.runtime.v2.task/*/*/shim.pid; do
		[ -f "$f" ] && p=$(cat "$f") && [ -n "$p" ] && kill "$p" 2>/dev/null
	done
	if [ -n "$CTRD_PID" ] && kill -0 "$CTRD_PID" 2>/dev/null; then
		kill "$CTRD_PID"
		for _ in $(seq 1 50); do kill -0 "$CTRD_PID" 2>/dev/null || break; sleep 0.1; done
		kill -0 "$CTRD_PID" 2>/dev/null && kill -9 "$CTRD_PID"
	fi
	for m in $(awk -v t="$TEST_TMP/" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo | sort -r); do
		umount "$m" 2>/dev/null || umount -l "$m"
	done
	ip netns del "$NODE" 2>/dev/null
	# libcni's result cache: containerd makes /var/lib/cni/results; remove it if it was not there
	[ $cni_dir_existed = 0 ] && rmdir /var/lib/cni/results /var/lib/cni 2>/dev/null
	return 0
}
ip netns add "$NODE" || { fail "create netns"; exit 1; }
ip netns exec "$NODE" ip link set lo up

cat >"$B/cri.py" <<'PYCLIENT'
# CRI runtime.v1 calls over grpc with hand-encoded protobuf messages.
import sys, grpc
from _cri_wire import decode, f_bytes, f_int, f_msg, first, varint

def sandbox_config(name, cgroup_parent, logdir, host_port, container_port):
    meta = f_bytes(1, name) + f_bytes(2, name + "-uid") + f_bytes(3, "kt55")
    port = f_int(1, 0) + f_int(2, int(container_port)) + f_int(3, int(host_port))
    linux = f_bytes(1, cgroup_parent)
    return f_bytes(1, meta) + f_bytes(2, name) + f_bytes(3, logdir) + f_bytes(5, port) + f_bytes(8, linux)

def main():
    sock, verb, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    ch = grpc.insecure_channel("unix://" + sock)
    def call(method, body):
        rpc = ch.unary_unary("/runtime.v1.RuntimeService/" + method,
                             request_serializer=lambda b: b, response_deserializer=lambda b: b)
        return decode(rpc(body, timeout=60))
    if verb == "run-pod":  # NAME CGPARENT LOGDIR HOSTPORT CONTAINERPORT
        r = call("RunPodSandbox", f_bytes(1, sandbox_config(*args)))
        print(r[1][0].decode())
    elif verb == "pod-ip":  # ID
        r = call("PodSandboxStatus", f_bytes(1, args[0]))
        st = decode(r[1][0])
        print(decode(st[5][0])[1][0].decode())
    elif verb == "create":  # POD NAME CGPARENT LOGDIR HOSTPORT CONTAINERPORT IMAGE CMD...
        pod, name, cgp, logdir, hp, cp, image, cmd = args[0], args[1], args[2], args[3], args[4], args[5], args[6], args[7:]
        cfg = f_bytes(1, f_bytes(1, "c")) + f_bytes(2, f_bytes(1, image))
        for c in cmd:
            cfg += f_bytes(3, c)
        cfg += f_bytes(11, "c.log")
        r = call("CreateContainer", f_bytes(1, pod) + f_bytes(2, cfg) + f_bytes(3, sandbox_config(name, cgp, logdir, hp, cp)))
        print(r[1][0].decode())
    elif verb == "start":
        call("StartContainer", f_bytes(1, args[0]))
    elif verb == "exec":  # ID CMD...
        body = f_bytes(1, args[0])
        for c in args[1:]:
            body += f_bytes(2, c)
        r = call("ExecSync", body + f_int(3, 20))
        sys.stdout.write(r.get(1, [b""])[0].decode())
        sys.exit(r.get(3, [0])[0])
    elif verb == "stop-pod":
        call("StopPodSandbox", f_bytes(1, args[0]))
    elif verb == "rm-pod":
        call("RemovePodSandbox", f_bytes(1, args[0]))
    else:
        sys.exit("unknown verb " + verb)

try:
    main()
except grpc.RpcError as e:
    sys.exit("%s: %s" % (e.code(), e.details()))
PYCLIENT

cat >"$B/net.d/10-kt55.conflist" <<EOF
{"cniVersion":"1.0.0","name":"kt55","plugins":[
 {"type":"kelp-bridge","bridge":"kt55br","isGateway":true,"ipMasq":true,"hairpinMode":true,
  "ipam":{"type":"kelp-host-local","dataDir":"$B/ipam","ranges":[[{"subnet":"10.92.0.0/24"}]],"routes":[{"dst":"0.0.0.0/0"}]}},
 {"type":"kelp-portmap","capabilities":{"portMappings":true}}]}
EOF
capeff=$((16#$(awk '/^CapEff/{print $2}' /proc/self/status)))
restrict=true
(((capeff >> 24) & 1)) && restrict=false
{
containerd_toml_head "$B" "$SOCK"
cat <<EOF
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/kt55-pause:1"
  restrict_oom_score_adj = $restrict
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        Root = "$B/rtroot"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$B/cni-bin"
    conf_dir = "$B/net.d"
    max_conf_num = 1
EOF
} >"$B/config.toml"
setsid "${E[@]}" containerd --config "$B/config.toml" >"$B/containerd.log" 2>&1 </dev/null &
CTRD_PID=$!
for _ in $(seq 1 100); do
	ctr_ version >/dev/null 2>&1 && break
	sleep 0.1
done
check "containerd up in the node netns" ctr_ version
mkdir -p "$B/img-pause" "$B/img-bb"
check "import the sandbox image" ctr_ images import --base-name localhost/kt55-pause "$(oci_image_archive "$B/img-pause" sleep 100000)"
check "import the busybox image" ctr_ images import --base-name localhost/kt55-bb "$(oci_image_archive "$B/img-bb" sh)"

pod=$(cri run-pod kt55-pod "$CGP" "$B/logs" 8080 80 2>&1)
if [[ $pod =~ ^[0-9a-f]{64}$ ]]; then
	ok "RunPodSandbox with the kelp conflist"
	echo "$pod" >"$B/pod.id"
else
	fail "RunPodSandbox with the kelp conflist" "$pod"
	tail -30 "$B/containerd.log" >&2
	exit 1
fi
ip=$(cri pod-ip "$pod" 2>&1)
check_match "the pod's IP comes from kelp-host-local" '^10\.92\.0\.[0-9]+$' "$ip"
c=$(cri create "$pod" kt55-pod "$CGP" "$B/logs" 8080 80 localhost/kt55-bb:1 sh -c 'echo hello-kt55 > /tmp/index.html; exec httpd -f -p 80 -h /tmp' 2>&1)
check_match "CreateContainer" '^[0-9a-f]{64}$' "$c"
check "StartContainer" cri start "$c"
check "the pod reaches its gateway" cri exec "$c" ping -c1 -W2 10.92.0.1
http_get() {
	"${E[@]}" timeout 5 bash -c 'exec 3<>/dev/tcp/$0/$1 && printf "GET /index.html HTTP/1.0\r\n\r\n" >&3 && cat <&3' "$1" "$2" 2>/dev/null | tail -1
}
got=""
for _ in 1 2 3 4 5 6 7 8 9 10; do
	got=$(http_get 10.92.0.1 8080)
	[ -n "$got" ] && break
	sleep 0.3
done
check_eq "the pod is reached on its hostPort" hello-kt55 "$got"
check_eq "and on the node's localhost" hello-kt55 "$(http_get 127.0.0.1 8080)"
check "StopPodSandbox" cri stop-pod "$pod"
check "RemovePodSandbox" cri rm-pod "$pod"
rm -f "$B/pod.id"
check_eq "after removal: no kelp nft table" "" "$("${E[@]}" nft list tables)"
check_eq "after removal: no allocation" "" "$(ls "$B/ipam/kt55" | grep -v -e lock -e last_reserved)"
check_eq "after removal: only the bridge is left in the node" "kt55br lo" "$("${E[@]}" ip -br link | awk '{print $1}' | sort | xargs)"
exit 0
