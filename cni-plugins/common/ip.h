/* IPv4 and IPv6 addresses and prefixes as one 128-bit number (IPv4 in the low 32 bits), so
 * range arithmetic (next address, contains, overlap) is the same code for both families. */
#pragma once
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

typedef unsigned __int128 cni_u128;

struct cni_ip {
	int family; /* AF_INET or AF_INET6; 0 when unset */
	cni_u128 a;
	int prefix; /* -1 when the text had no "/N" */
};

#define CNI_IP_STRLEN (INET6_ADDRSTRLEN + 4)

/* "10.1.2.3", "10.1.2.3/24", "fd00::1/64". need_prefix: the "/N" is required. */
int cni_ip_parse(const char *s, bool need_prefix, struct cni_ip *ret);
/* Text form; with_prefix adds "/N" when prefix >= 0. Returns buf. */
char *cni_ip_fmt(const struct cni_ip *ip, bool with_prefix, char buf[CNI_IP_STRLEN]);
/* Address in network byte order: 4 or 16 bytes; returns the length. */
int cni_ip_bytes(const struct cni_ip *ip, uint8_t out[16]);
void cni_ip_from_bytes(int family, const uint8_t *b, int prefix, struct cni_ip *ret);
int cni_ip_bits(int family); /* 32 or 128 */
/* First and last address of ip's prefix. */
cni_u128 cni_ip_first(const struct cni_ip *net);
cni_u128 cni_ip_last(const struct cni_ip *net);
bool cni_ip_contains(const struct cni_ip *net, const struct cni_ip *ip);
bool cni_ip_equal(const struct cni_ip *a, const struct cni_ip *b); /* address and family only */
