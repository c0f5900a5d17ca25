#include "ip.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cni_ip_bits(int family)
{
	return family == AF_INET ? 32 : 128;
}

int cni_ip_bytes(const struct cni_ip *ip, uint8_t out[16])
{
	int n = ip->family == AF_INET ? 4 : 16;
	cni_u128 a = ip->a;
	for (int i = n - 1; i >= 0; i--) {
		out[i] = (uint8_t)(a & 0xff);
		a >>= 8;
	}
	return n;
}

void cni_ip_from_bytes(int family, const uint8_t *b, int prefix, struct cni_ip *ret)
{
	int n = family == AF_INET ? 4 : 16;
	cni_u128 a = 0;
	for (int i = 0; i < n; i++)
		a = (a << 8) | b[i];
	ret->family = family;
	ret->a = a;
	ret->prefix = prefix;
}

int cni_ip_parse(const char *s, bool need_prefix, struct cni_ip *ret)
{
	char buf[CNI_IP_STRLEN];
	uint8_t b[16];
	if (!s || strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	int prefix = -1;
	char *slash = strchr(buf, '/');
	if (slash) {
		*slash = '\0';
		char *end;
		const char *p = slash + 1;
		if (*p < '0' || *p > '9')
			return -1;
		long v = strtol(p, &end, 10);
		if (*end || v < 0 || v > 128)
			return -1;
		prefix = (int)v;
	} else if (need_prefix) {
		return -1;
	}
	int family;
	if (inet_pton(AF_INET, buf, b) == 1)
		family = AF_INET;
	else if (inet_pton(AF_INET6, buf, b) == 1)
		family = AF_INET6;
	else
		return -1;
	if (prefix > cni_ip_bits(family))
		return -1;
	cni_ip_from_bytes(family, b, prefix, ret);
	return 0;
}

char *cni_ip_fmt(const struct cni_ip *ip, bool with_prefix, char buf[CNI_IP_STRLEN])
{
	uint8_t b[16];
	cni_ip_bytes(ip, b);
	if (!inet_ntop(ip->family, b, buf, INET6_ADDRSTRLEN))
		strcpy(buf, "?");
	if (with_prefix && ip->prefix >= 0)
		snprintf(buf + strlen(buf), 5, "/%d", ip->prefix);
	return buf;
}

static cni_u128 host_mask(const struct cni_ip *net)
{
	int bits = cni_ip_bits(net->family);
	int host = bits - (net->prefix < 0 ? bits : net->prefix);
	if (host <= 0)
		return 0;
	if (host >= 128)
		return ~(cni_u128)0;
	return ((cni_u128)1 << host) - 1;
}

cni_u128 cni_ip_first(const struct cni_ip *net)
{
	return net->a & ~host_mask(net);
}

cni_u128 cni_ip_last(const struct cni_ip *net)
{
	cni_u128 last = net->a | host_mask(net);
	if (net->family == AF_INET)
		last &= 0xffffffffu;
	return last;
}

bool cni_ip_contains(const struct cni_ip *net, const struct cni_ip *ip)
{
	return net->family == ip->family && ip->a >= cni_ip_first(net) && ip->a <= cni_ip_last(net);
}

bool cni_ip_equal(const struct cni_ip *a, const struct cni_ip *b)
{
	return a->family == b->family && a->a == b->a;
}
