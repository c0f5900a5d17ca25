/* kelp-portmap: runtimeConfig.portMappings as nftables DNAT (host port to container port, TCP
 * and UDP, optional hostIP), in the prerouting and output hooks so that other machines and the
 * node itself (localhost included) reach the pod; masquerade for hairpin and localhost
 * traffic. A chained plugin: the container's addresses come from prevResult. Every rule carries
 * the attachment's tag, so DEL needs nothing but the ids. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <linux/netfilter.h>
#include <linux/rtnetlink.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nf_tables.h>
#include <libnftnl/expr.h>

#include "cleanup.h"
#include "cni.h"
#include "fs.h"
#include "masq.h"
#include "config.h"

static const struct cni_nft_chain chains[] = {
	{"prerouting", NF_INET_PRE_ROUTING, -100, "nat"},
	{"output", NF_INET_LOCAL_OUT, -100, "nat"},
	{"postrouting", NF_INET_POST_ROUTING, 100, "nat"},
};

static void match_family(struct nftnl_rule *r, int family)
{
	uint8_t p = family == AF_INET ? NFPROTO_IPV4 : NFPROTO_IPV6;
	nft_expr_meta(r, NFT_META_NFPROTO, NFT_REG_1);
	nft_expr_cmp(r, NFT_REG_1, NFT_CMP_EQ, &p, 1);
}

static void match_l4(struct nftnl_rule *r, uint8_t proto, uint16_t port)
{
	uint16_t be = htons(port);
	nft_expr_meta(r, NFT_META_L4PROTO, NFT_REG_1);
	nft_expr_cmp(r, NFT_REG_1, NFT_CMP_EQ, &proto, 1);
	nft_expr_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, NFT_REG_1);
	nft_expr_cmp(r, NFT_REG_1, NFT_CMP_EQ, &be, 2);
}

/* [fib daddr type local | ip daddr HOSTIP] l4proto dport HP dnat to CIP:CP */
static struct nftnl_rule *dnat_rule(const char *chain, const char *tag, const struct mapping *m, const struct cni_ip *cip)
{
	struct nftnl_rule *r = cni_nft_rule_new(chain, tag);
	uint8_t a[16];
	match_family(r, cip->family);
	if (m->has_host_ip) {
		int len = cni_ip_bytes(&m->host_ip, a);
		nft_match_prefix(r, cip->family == AF_INET ? 16 : 24, a, (uint32_t)len, len * 8, false);
	} else {
		uint32_t local = RTN_LOCAL;
		nft_expr_fib_daddr_type(r, NFT_REG_1);
		nft_expr_cmp(r, NFT_REG_1, NFT_CMP_EQ, &local, 4);
	}
	match_l4(r, m->proto, m->host_port);
	int len = cni_ip_bytes(cip, a);
	uint16_t cp = htons(m->container_port);
	nft_expr_immediate(r, NFT_REG_1, a, (uint32_t)len);
	nft_expr_immediate(r, NFT_REG_2, &cp, 2);
	nft_expr_nat(r, NFT_NAT_DNAT, cip->family == AF_INET ? NFPROTO_IPV4 : NFPROTO_IPV6, NFT_REG_1, NFT_REG_2);
	return r;
}

/* Replies must come back through the node: masquerade what was DNATed to the pod from its own
 * subnet (hairpin) or from the loopback net (localhost). */
static struct nftnl_rule *snat_rule(const char *tag, const struct cni_ip *cip, bool localhost)
{
	struct nftnl_rule *r = cni_nft_rule_new("postrouting", tag);
	bool v4 = cip->family == AF_INET;
	uint8_t a[16];
	int len = cni_ip_bytes(cip, a);
	match_family(r, cip->family);
	nft_match_prefix(r, v4 ? 16 : 24, a, (uint32_t)len, len * 8, false);
	if (localhost) {
		static const uint8_t lo4[4] = {127, 0, 0, 0}, lo6[16] = {[15] = 1};
		nft_match_prefix(r, v4 ? 12 : 8, v4 ? lo4 : lo6, (uint32_t)len, v4 ? 8 : 128, false);
	} else {
		nft_match_prefix(r, v4 ? 12 : 8, a, (uint32_t)len, cip->prefix, false);
	}
	/* ct status & dnat != 0 */
	struct nftnl_expr *e = nftnl_expr_alloc("ct");
	if (!e)
		abort();
	nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, NFT_CT_STATUS);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, NFT_REG_1);
	nftnl_rule_add_expr(r, e);
	uint32_t mask = IPS_DST_NAT, zero = 0;
	nft_expr_bitwise(r, NFT_REG_1, &mask, 4);
	nft_expr_cmp(r, NFT_REG_1, NFT_CMP_NEQ, &zero, 4);
	nft_expr_masq(r);
	return r;
}

static char *tag_of(const struct cni_req *req)
{
	return cni_nft_tag("kelp-portmap", req->name, req->containerid, req->ifname);
}

/* The pod's first address of each family from prevResult. */
static int pod_ips(const struct cni_req *req, struct cni_ip out[2], size_t *ret_n)
{
	*ret_n = 0;
	bool v4 = false, v6 = false;
	for (size_t i = 0; i < req->prev.n_ips; i++) {
		const struct cni_ipconf *x = &req->prev.ips[i];
		if (x->iface >= 0 && (size_t)x->iface < req->prev.n_ifaces && !req->prev.ifaces[x->iface].sandbox)
			continue; /* an address on the host side */
		if ((x->addr.family == AF_INET && !v4) || (x->addr.family == AF_INET6 && !v6)) {
			out[(*ret_n)++] = x->addr;
			if (x->addr.family == AF_INET)
				v4 = true;
			else
				v6 = true;
		}
	}
	return 0;
}

/* localhost DNAT needs route_localnet on the host interfaces facing the pod */
static void route_localnet(const struct cni_result *prev)
{
	for (size_t i = 0; i < prev->n_ifaces; i++) {
		if (prev->ifaces[i].sandbox || !kelp_name_is_safe(prev->ifaces[i].name))
			continue;
		cleanup_free char *p = xasprintf("/proc/sys/net/ipv4/conf/%s/route_localnet", prev->ifaces[i].name);
		struct kelp_err ignored;
		kelp_write_file_at(AT_FDCWD, p, "1", &ignored);
	}
}

static int pm_add(struct cni_req *req, struct cni_result *ret, struct cni_err *err)
{
	struct mapping m[PM_MAX];
	size_t n;
	if (!req->has_prev)
		return cni_fail(err, CNI_ERR_CONFIG, "prevResult: required (kelp-portmap is a chained plugin)");
	if (pm_parse_mappings(req, m, &n, err) < 0)
		return -1;
	struct cni_ip ips[2];
	size_t n_ips;
	pod_ips(req, ips, &n_ips);
	if (n > 0 && n_ips == 0)
		return cni_fail(err, CNI_ERR_CONFIG, "prevResult: no container address to map ports to");
	cleanup_free char *tag = tag_of(req);
	struct cni_nft_rule rules[PM_MAX * 4 + 4];
	size_t nr = 0;
	for (size_t k = 0; k < n_ips; k++) {
		bool any = false;
		for (size_t i = 0; i < n; i++) {
			if (m[i].has_host_ip && m[i].host_ip.family != ips[k].family)
				continue;
			rules[nr++] = (struct cni_nft_rule){"prerouting", dnat_rule("prerouting", tag, &m[i], &ips[k])};
			rules[nr++] = (struct cni_nft_rule){"output", dnat_rule("output", tag, &m[i], &ips[k])};
			any = true;
		}
		if (any) {
			rules[nr++] = (struct cni_nft_rule){"postrouting", snat_rule(tag, &ips[k], false)};
			if (ips[k].family == AF_INET)
				rules[nr++] = (struct cni_nft_rule){"postrouting", snat_rule(tag, &ips[k], true)};
		}
	}
	if (nr > 0) {
		route_localnet(&req->prev);
		if (cni_nft_apply(tag, chains, ARRAY_SIZE(chains), rules, nr, err) < 0)
			return -1;
	}
	/* pass the previous result on unchanged */
	*ret = req->prev;
	cni_result_init(&req->prev);
	req->has_prev = false;
	return 0;
}

static int pm_del(struct cni_req *req, struct cni_err *err)
{
	cleanup_free char *tag = tag_of(req);
	return cni_nft_apply(tag, chains, ARRAY_SIZE(chains), NULL, 0, err);
}

static int pm_check(struct cni_req *req, struct cni_err *err)
{
	struct mapping m[PM_MAX];
	size_t n;
	if (pm_parse_mappings(req, m, &n, err) < 0)
		return -1;
	if (n == 0)
		return 0;
	cleanup_free char *tag = tag_of(req);
	bool has = false;
	if (cni_nft_has(tag, chains, ARRAY_SIZE(chains), &has, err) < 0)
		return -1;
	if (!has)
		return cni_fail(err, CNI_ERR_INTERNAL, "port mappings of %s/%s are missing", req->containerid, req->ifname);
	return 0;
}

static int pm_status(struct cni_req *req, struct cni_err *err)
{
	(void)req;
	(void)err;
	return 0;
}

static bool keep_valid(const char *id, const char *ifname, void *data)
{
	const struct cni_req *req = data;
	for (size_t i = 0; i < req->n_valid; i++)
		if (strcmp(id, req->valid_ids[i]) == 0 && strcmp(ifname, req->valid_ifnames[i]) == 0)
			return true;
	return false;
}

static int pm_gc(struct cni_req *req, struct cni_err *err)
{
	cleanup_free char *prefix = xasprintf("kelp-portmap %s ", req->name);
	return cni_nft_gc(prefix, keep_valid, req, chains, ARRAY_SIZE(chains), err);
}

static const struct cni_plugin plugin = {
	.name = "kelp-portmap",
	.add = pm_add,
	.del = pm_del,
	.check = pm_check,
	.status = pm_status,
	.gc = pm_gc,
};

int main(int argc, char **argv)
{
	return cni_main(argc, argv, &plugin);
}
