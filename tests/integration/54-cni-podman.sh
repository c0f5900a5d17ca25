#!/bin/bash
# A real caller: podman (Debian's, CNI backend) runs a container on a conflist of kelp-bridge +
# kelp-host-local + kelp-portmap from a private config and plugin dir. podman itself runs in a
# "node" netns this test creates (nsenter --net keeps the host's mounts, cgroups included), so
# the bridge, the rules and the pod's netns never touch the root netns. The container reaches
# its gateway and is reached on its hostPort; `podman rm` leaves no rule and no allocation.
. "$(dirname "$0")/lib.sh"
require_root
command -v podman >/dev/null || skip_all "podman is not installed (Debian package podman)"

CNI=$BUILD/cni
NODE=kt54-$$-node
base=$TEST_TMP/podman
mkdir -p "$base"/{root,run,net.d,ipam,tmp}
cni_dir_existed=0
[ -e /var/lib/cni ] && cni_dir_existed=1
E=(nsenter --net="/run/netns/$NODE")
pm() { timeout 120 "${E[@]}" env CONTAINERS_CONF="$base/containers.conf" podman --root "$base/root" --runroot "$base/run" --storage-driver vfs "$@"; }
kt_extra_cleanup() {
	pm rm -f -t 0 kt54-c >/dev/null 2>&1
	ip netns del "$NODE" 2>/dev/null
	# libcni's result cache: podman makes /var/lib/cni/results; remove it if it was not there
	[ $cni_dir_existed = 0 ] && rmdir /var/lib/cni/results /var/lib/cni 2>/dev/null
}
ip netns add "$NODE" || { fail "create netns"; exit 1; }
ip netns exec "$NODE" ip link set lo up

cat >"$base/containers.conf" <<EOF
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$base/events.log"
runtime = "runc"
tmp_dir = "$base/tmp"
[network]
network_backend = "cni"
cni_plugin_dirs = ["$CNI"]
network_config_dir = "$base/net.d"
default_network = "kt54"
EOF
cat >"$base/net.d/kt54.conflist" <<EOF
{"cniVersion":"1.0.0","name":"kt54","plugins":[
 {"type":"kelp-bridge","bridge":"kt54br","isGateway":true,"ipMasq":true,"hairpinMode":true,
  "ipam":{"type":"kelp-host-local","dataDir":"$base/ipam","ranges":[[{"subnet":"10.91.0.0/24"}]],"routes":[{"dst":"0.0.0.0/0"}]}},
 {"type":"kelp-portmap","capabilities":{"portMappings":true}}]}
EOF
make_bundle img >/dev/null && tar -C "$TEST_TMP/img/rootfs" -cf "$base/rootfs.tar" . || { fail "make a busybox rootfs"; exit 1; }
check "podman import of a busybox rootfs" pm import "$base/rootfs.tar" localhost/kt54-bb:1
out=$(pm network ls --format '{{.Name}}' 2>&1)
check_match "podman lists the kelp network" 'kt54' "$out"
# The VM's hard limits are below podman's defaults: ask for modest ones.
check "podman run -p 8080:80 on the kelp network" pm run -d --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 \
	--name kt54-c -p 8080:80 --network kt54 localhost/kt54-bb:1 \
	sh -c 'echo hello-kt54 > /tmp/index.html; exec httpd -f -p 80 -h /tmp'
check_match "the container got an address of the range" 'inet 10\.91\.0\.[0-9]+/24' "$(pm exec kt54-c ip -4 addr show eth0 2>&1)"
check "the container reaches its gateway" pm exec kt54-c ping -c1 -W2 10.91.0.1
# an HTTP GET from the node (bash's /dev/tcp: no client tool needed)
http_get() {
	"${E[@]}" timeout 5 bash -c 'exec 3<>/dev/tcp/$0/$1 && printf "GET /index.html HTTP/1.0\r\n\r\n" >&3 && cat <&3' "$1" "$2" 2>/dev/null | tail -1
}
got=""
for _ in 1 2 3 4 5 6 7 8 9 10; do
	got=$(http_get 10.91.0.1 8080)
	[ -n "$got" ] && break
	sleep 0.3
done
check_eq "the container is reached on its hostPort" hello-kt54 "$got"
check_eq "and on the node's localhost" hello-kt54 "$(http_get 127.0.0.1 8080)"
check_match "portmap rules tagged for the container" 'comment "kelp-portmap kt54 [0-9a-f]+ eth0"' "$("${E[@]}" nft list ruleset)"
check "podman rm" pm rm -f -t 0 kt54-c
check_eq "after rm: no kelp nft table" "" "$("${E[@]}" nft list tables)"
check_eq "after rm: no allocation" "" "$(ls "$base/ipam/kt54" | grep -v -e lock -e last_reserved)"
check_eq "after rm: only the bridge is left in the node" "kt54br lo" "$("${E[@]}" ip -br link | awk '{print $1}' | sort | xargs)"
exit 0
