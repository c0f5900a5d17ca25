#!/bin/bash
# kelp-proxy watch: atomic and incremental. While a loop rewrites the files of 100 other
# services, a client connects to a stable service 1,000 times and never fails; a one-service
# change sends a batch of the same size with 10 and with 200 other services; endpoints added and
# removed through the watched directory take effect; a bad file is logged (file, object, field)
# and changes nothing, and the daemon goes on; SIGTERM leaves the rules in place.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/_svc_topology.sh"
require_root
[ -x "$PROXY" ] || skip_all "$PROXY is not built (make all)"

WATCH_PID=
LOOP_PID=
kt_extra_cleanup() {
	[ -n "$LOOP_PID" ] && kill "$LOOP_PID" 2>/dev/null
	[ -n "$WATCH_PID" ] && kill "$WATCH_PID" 2>/dev/null && wait "$WATCH_PID" 2>/dev/null
	topo_cleanup
}
topo_start "kt72-$$" p1:11 p2:12

PARTIAL='kelp_proxy_syncs_total{kind="partial"}'
FULL='kelp_proxy_syncs_total{kind="full"}'

# watch_start DIR: the daemon in the node netns ($! is kelp-proxy itself), and its first sync.
watch_start() {
	ip netns exec "$TOPO_P-node" "$PROXY" "${KP_OPTS[@]}" --state-dir "$KP_STATE" watch "$1" \
		</dev/null >/dev/null 2>>"$TEST_TMP/watch.log" &
	WATCH_PID=$!
	local i
	for i in $(seq 200); do
		[ "$(metric "$FULL")" = 1 ] && return 0
		kill -0 "$WATCH_PID" 2>/dev/null || break
		sleep 0.05
	done
	echo "watch $1: no full sync within 10 s; its log:" >&2
	cat "$TEST_TMP/watch.log" >&2
	return 1
}
# watch_stop: SIGTERM, and the daemon's exit status.
watch_stop() {
	kill -TERM "$WATCH_PID"
	wait "$WATCH_PID"
	local rc=$?
	WATCH_PID=
	return $rc
}
# wait_partial N: until the daemon has committed N partial syncs (5 s at most).
wait_partial() {
	local i
	for i in $(seq 100); do
		[ "$(metric "$PARTIAL")" -ge "$1" ] 2>/dev/null && return 0
		sleep 0.05
	done
	echo "wait_partial: wanted $1 partial syncs, have '$(metric "$PARTIAL")'; the daemon's log:" >&2
	tail -5 "$TEST_TMP/watch.log" >&2
	return 1
}
# put FILE: write stdin to FILE the way tools that replace files do (temp in the same file
# system, then rename), so the daemon sees one moved_to.
put() {
	cat >"$TEST_TMP/put.tmp" && mv -f "$TEST_TMP/put.tmp" "$1"
}

# ---- 1,000 connections while 100 other services change ---------------------------------
W=$TEST_TMP/watched
S=$TEST_TMP/stage
mkdir -p "$W" "$S/a" "$S/b"
svc_manifest stable ip=10.96.0.10 eps="p1 p2" >"$W/stable.yaml"
for i in $(seq 100); do
	printf -v f 'other-%03d' "$i"
	# Two versions of each: other endpoints, another port, another protocol.
	svc_manifest "$f" ip=10.96.1.$i eps="p1 p2" rv=1 >"$S/a/$f.yaml"
	svc_manifest "$f" ip=10.96.1.$i ports="http:TCP:80:8080 dns:UDP:53:8080" eps="p2" rv=2 >"$S/b/$f.yaml"
	svc_manifest "$f" ip=10.96.1.$i eps="p1 p2" rv=1 >"$W/$f.yaml"
done
watch_start "$W" || {
	fail "watch: starts and syncs the directory"
	exit 1
}
ok "watch: starts and syncs the directory"
r=$(get client -n 20 -w 1000 tcp 10.96.0.10 80)
check_eq "watch: the stable service answers" "p1 p2" "$(distinct <<<"$r")"

# The loop alternates versions b and a; half the files are renamed into place, half rewritten
# in place (close_write); about 100 files a second (a 10 ms pause: `read -t` on a fifo that
# never has data, no fork), enough to keep the daemon committing all through the client's run
# without starving the client of CPU.
declare -a VA VB
for i in $(seq 100); do
	printf -v f 'other-%03d.yaml' "$i"
	IFS= read -r -d '' "VA[i]" <"$S/a/$f"
	IFS= read -r -d '' "VB[i]" <"$S/b/$f"
done
mkfifo "$TEST_TMP/tick"
churn() {
	local i f
	exec 9<>"$TEST_TMP/tick"
	pause() {
		read -r -t 0.01 -u 9
		[ ! -e "$TEST_TMP/stop" ]
	}
	while [ ! -e "$TEST_TMP/stop" ]; do
		for i in $(seq 100); do
			printf -v f 'other-%03d.yaml' "$i"
			if [ $((i % 2)) = 0 ]; then
				printf '%s' "${VB[i]}" >"$TEST_TMP/churn.tmp" && mv -f "$TEST_TMP/churn.tmp" "$W/$f"
			else
				printf '%s' "${VB[i]}" >"$W/$f"
			fi
			pause || return 0
		done
		for i in $(seq 100); do
			printf -v f 'other-%03d.yaml' "$i"
			printf '%s' "${VA[i]}" >"$W/$f"
			pause || return 0
		done
	done
}
# The client makes its 1,000 connections in 20 rounds of 50; before each round it waits for the
# daemon to commit at least 5 more changes, so connections and commits interleave for the whole
# run however fast or busy the machine is.
p0=$(metric "$PARTIAL")
churn &
LOOP_PID=$!
r=
last=$p0
for _ in $(seq 20); do
	for i in $(seq 200); do
		now=$(metric "$PARTIAL")
		[ "$now" -ge $((last + 5)) ] 2>/dev/null && break
		sleep 0.02
	done
	last=$now
	r+=$(get client -n 50 -w 2000 tcp 10.96.0.10 80)$'\n'
done
p1=$(metric "$PARTIAL")
touch "$TEST_TMP/stop"
wait "$LOOP_PID"
LOOP_PID=
r=${r%$'\n'}
n_ok=$(awk '$1 == "p1" || $1 == "p2"' <<<"$r" | wc -l)
check_eq "1,000 connections to the stable service during the churn: none failed" 1000 "$n_ok" ||
	grep -v '^p[12] ' <<<"$r" | sort | uniq -c | head >&2
check_eq "the stable service kept both endpoints throughout" "p1 p2" "$(distinct <<<"$r")"
echo "churn: $((p1 - p0)) partial syncs during the client's run" >&2
if [ $((p1 - p0)) -ge 100 ]; then
	ok "the other services really changed during the run (>= 100 partial syncs)"
else
	fail "the other services really changed during the run (>= 100 partial syncs)" "only $((p1 - p0))"
fi
check_eq "no object refused during the churn" 0 "$(metric kelp_proxy_sync_errors_total)" ||
	tail -5 "$TEST_TMP/watch.log" >&2

# Once the loop stops, the last version of every file is what runs: write version b everywhere.
for i in $(seq 100); do
	printf -v f 'other-%03d.yaml' "$i"
	printf '%s' "${VB[i]}" >"$W/$f"
done
for i in $(seq 50); do
	r=$(get client -w 500 udp 10.96.1.77 53)
	[ "$r" = "p2 $CLIENT_IP" ] && break
	sleep 0.1
done
check_eq "after the churn, the last version of a changed file runs" "p2 $CLIENT_IP" "$r"
check_eq "after the churn: 101 services" 101 "$(metric kelp_proxy_services)"
# Bad input through the watched directory: each error is logged naming the file, the object and
# the field, the service keeps its rules, and the daemon goes on (the removal below).
sed '1,/^kind: Service$/b; /^---$/,$b; s/^    protocol: UDP$/    protocol: XTP/; s/^    port: 80$/    port: 85/' <<<"${VB[7]}" |
	put "$W/other-007.yaml"
printf 'spec: {ports: [\n' | put "$W/other-008.yaml"
for i in $(seq 50); do
	grep -q "other-008.yaml:" "$TEST_TMP/watch.log" && break
	sleep 0.1
done
line=$(grep -F "$W/other-007.yaml" "$TEST_TMP/watch.log" | grep -F "Service default/other-007" |
	grep -F "spec.ports[1].protocol")
check_match "watch: a bad object's error names the file, the Service and the field" . "$line" ||
	tail -3 "$TEST_TMP/watch.log" >&2
check_match "watch: a YAML syntax error names the file, line and column" "$W/other-008.yaml:[0-9]+:[0-9]+: " \
	"$(grep -F "$W/other-008.yaml" "$TEST_TMP/watch.log")"
check_eq "watch: the refused service keeps its rules" "p2 $CLIENT_IP" "$(get client -w 1000 udp 10.96.1.7 53)"
check_match "watch: the refused version is not applied (its new port does not answer)" '^error ' \
	"$(get client -w 500 tcp 10.96.1.7 85)"
check_eq "watch: the unreadable file's service keeps its rules" "p2 $CLIENT_IP" "$(get client -w 1000 tcp 10.96.1.8 80)"
check "watch: the daemon goes on after bad input" kill -0 "$WATCH_PID"
rm "$W/other-042.yaml"
for i in $(seq 50); do
	[ "$(metric kelp_proxy_services)" = 100 ] && break
	sleep 0.1
done
check_eq "a removed file removes its service" 100 "$(metric kelp_proxy_services)"
check_match "the removed service no longer answers" '^error ' "$(get client -w 500 tcp 10.96.1.42 80)"

watch_stop
check_eq "watch exits 0 on SIGTERM" 0 "$?"
r=$(get client -n 10 -w 1000 tcp 10.96.0.10 80)
check_eq "the rules stay after the daemon exits" 0 "$(count_of error <<<"$r")"
check "flush" kp flush

# ---- batch size of a one-service change: 10 vs 200 other services ------------------------
# batch_size N: watch a directory with a target service and N others; add an endpoint to the
# target; print the batch size of that change (and check the change works; then remove it).
batch_size() {
	local n=$1 d=$TEST_TMP/batch-$1 i msgs p r
	mkdir -p "$d"
	KP_STATE=$TEST_TMP/kp-batch-$n
	svc_manifest target ip=10.96.2.1 eps="p1" >"$d/target.yaml"
	for i in $(seq "$n"); do
		svc_manifest "o$i" ip=10.96.$((3 + i / 200)).$((i % 200 + 1)) eps="p1 p2"
	done >"$d/others.yaml"
	watch_start "$d" || return 1
	p=$(metric "$PARTIAL")
	svc_manifest target ip=10.96.2.1 eps="p1 p2" rv=1001 | put "$d/target.yaml"
	wait_partial $((p + 1)) || return 1
	msgs=$(metric kelp_proxy_last_sync_netlink_messages)
	r=$(get client -n 30 -w 1000 tcp 10.96.2.1 80)
	check_eq "$n other services: an endpoint added through the watched directory gets connections" \
		"p1 p2" "$(distinct <<<"$r")"
	svc_manifest target ip=10.96.2.1 eps="p1" rv=1002 | put "$d/target.yaml"
	wait_partial $((p + 2)) || return 1
	r=$(get client -n 30 -w 1000 tcp 10.96.2.1 80)
	check_eq "$n other services: an endpoint removed through the watched directory gets no new connection" \
		"p1" "$(distinct <<<"$r")"
	watch_stop || return 1
	kp flush >/dev/null || return 1
	BATCH=$msgs
}
BATCH=
batch_size 10 || fail "batch size with 10 other services"
b10=$BATCH
BATCH=
batch_size 200 || fail "batch size with 200 other services"
b200=$BATCH
echo "one-service change: $b10 netlink messages with 10 other services, $b200 with 200" >&2
check_match "a one-service change sends a non-empty batch" '^[1-9][0-9]*$' "$b10"
check_eq "a one-service change: the same batch size with 10 and 200 other services" "$b10" "$b200"
exit 0
