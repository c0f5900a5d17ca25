# bench/proxy/nft-dev.awk — a stand-in ruleset for checking bench/proxy.sh without kelp-proxy
# (KB_DEV=1): services 0 ... n-1 of gen.awk (their ClusterIPs, ports, NodePorts and endpoints)
# in a hand-written shape: one verdict map keyed by address . protocol . port, a chain per
# service whose dnat picks an endpoint from a named map with numgen. Only the harness is
# measured with it, never kelp-proxy.
#   awk -v n=N -f nft-dev.awk >FILE; nft -f FILE
function ip4(a) {
	return sprintf("%d.%d.%d.%d", int(a / 16777216) % 256, int(a / 65536) % 256, int(a / 256) % 256, a % 256)
}
BEGIN {
	print "table ip kelp-proxy {"
	print "\tmap services {\n\t\ttype ipv4_addr . inet_proto . inet_service : verdict"
	printf "\t\telements = { "
	for (i = 0; i < n; i++)
		printf "%s%s . %s . %d : goto svc-%d", (i ? ",\n\t\t\t" : ""), ip4(167772160 + 6291456 + 10 + i),
			(i % 4 == 3 ? "udp" : "tcp"), (i % 4 == 3 ? 53 : (i % 8 == 5 ? 443 : 80)), i
	print " }\n\t}"
	for (i = 0; i < n; i++) {
		printf "\tmap ep-%d {\n\t\ttypeof numgen random mod 10 : ip daddr . %s dport\n\t\telements = { ", i, (i % 4 == 3 ? "udp" : "tcp")
		for (j = 0; j < 10; j++)
			printf "%s%d : %s . %d", (j ? ", " : ""), j, ip4(167772160 + 8388608 + 16 * i + j + 1),
				(i % 4 == 3 ? 5353 : (i % 8 == 5 ? 8443 : 8080))
		print " }\n\t}"
		printf "\tchain svc-%d {\n\t\tmeta l4proto %s dnat ip addr . port to numgen random mod 10 map @ep-%d\n\t}\n", i, (i % 4 == 3 ? "udp" : "tcp"), i
	}
	print "\tchain prerouting {\n\t\ttype nat hook prerouting priority -100; policy accept;"
	print "\t\tip daddr . meta l4proto . th dport vmap @services\n\t}"
	print "\tchain output {\n\t\ttype nat hook output priority -100; policy accept;"
	print "\t\tip daddr . meta l4proto . th dport vmap @services\n\t}\n}"
}
