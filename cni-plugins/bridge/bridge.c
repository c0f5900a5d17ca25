/* kelp-bridge: a veth pair per attachment, the host end on a Linux bridge, addresses from the
 * delegated IPAM plugin, optional gateway address on the bridge and masquerade (nftables). ADD
 * undoes its own steps when a later one fails. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <linux/if_addr.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>

#include "cleanup.h"
#include "cni.h"
#include "config.h"
#include "fs.h"
#include "masq.h"
#include "nl.h"

static const struct cni_nft_chain masq_chains[] = {{"postrouting", NF_INET_POST_ROUTING, 100, "nat"}};

/* The host end's name: stable per attachment, so DEL finds it without the container's netns. */
static void host_veth_name(const struct cni_req *req, char buf[IF_NAMESIZE])
{
	uint32_t h = 2166136261u;
	const char *parts[] = {req->name, req->containerid, req->ifname};
	for (int i = 0; i < 3; i++) {
		for (const char *p = parts[i]; *p; p++)
			h = (h ^ (uint8_t)*p) * 16777619u;
		h = (h ^ 0) * 16777619u;
	}
	snprintf(buf, IF_NAMESIZE, "veth%08x", h);
}

static char *masq_tag(const struct cni_req *req)
{
	return cni_nft_tag("kelp-bridge", req->name, req->containerid, req->ifname);
}

/* `ip saddr ADDR ip daddr != SUBNET ip daddr != MULTICAST masquerade`, one per address. */
static int masq_add(const struct cni_req *req, const struct cni_result *res, struct cni_err *err)
{
	cleanup_free char *tag = masq_tag(req);
	struct cni_nft_rule rules[CNI_MAX_IPS];
	size_t n = 0;
	static const uint8_t mc4[4] = {224, 0, 0, 0}, mc6[16] = {0xff};
	for (size_t i = 0; i < res->n_ips; i++) {
		const struct cni_ip *ip = &res->ips[i].addr;
		bool v4 = ip->family == AF_INET;
		uint8_t a[16];
		int len = cni_ip_bytes(ip, a);
		struct nftnl_rule *r = cni_nft_rule_new("postrouting", tag);
		uint8_t proto = v4 ? NFPROTO_IPV4 : NFPROTO_IPV6;
		nft_expr_meta(r, NFT_META_NFPROTO, NFT_REG_1);
		nft_expr_cmp(r, NFT_REG_1, NFT_CMP_EQ, &proto, 1);
		nft_match_prefix(r, v4 ? 12 : 8, a, (uint32_t)len, len * 8, false);
		nft_match_prefix(r, v4 ? 16 : 24, a, (uint32_t)len, ip->prefix, true);
		nft_match_prefix(r, v4 ? 16 : 24, v4 ? mc4 : mc6, (uint32_t)len, v4 ? 4 : 8, true);
		nft_expr_masq(r);
		rules[n++] = (struct cni_nft_rule){"postrouting", r};
	}
	return cni_nft_apply(tag, masq_chains, ARRAY_SIZE(masq_chains), rules, n, err);
}

static int masq_del(const struct cni_req *req, struct cni_err *err)
{
	cleanup_free char *tag = masq_tag(req);
	return cni_nft_apply(tag, masq_chains, ARRAY_SIZE(masq_chains), NULL, 0, err);
}

static int sysctl_set(const char *path, const char *value, struct cni_err *err)
{
	struct kelp_err k;
	cleanup_free char *cur = NULL;
	size_t len;
	if (kelp_read_file_at(AT_FDCWD, path, 64, &cur, &len, &k) == 0 && strncmp(cur, value, strlen(value)) == 0)
		return 0;
	if (kelp_write_file_at(AT_FDCWD, path, value, &err->k) < 0)
		return cni_wrap(err, CNI_ERR_INTERNAL, "sysctl");
	return 0;
}

/* The bridge, created when missing; ret_created says whether this call made it. */
static int ensure_bridge(struct nl *nl, const struct br_conf *c, struct nl_link *ret, bool *ret_created,
			 struct cni_err *err)
{
	*ret_created = false;
	if (nl_link_get(nl, c->bridge, ret, &err->k) < 0) {
		if (err->k.code != ENODEV)
			return err->code = CNI_ERR_INTERNAL, -1;
		if (nl_bridge_add(nl, c->bridge, c->mtu, c->vlan > 0, &err->k) < 0 && err->k.code != EEXIST)
			return err->code = CNI_ERR_INTERNAL, -1;
		*ret_created = true;
		if (nl_link_get(nl, c->bridge, ret, &err->k) < 0)
			return err->code = CNI_ERR_INTERNAL, -1;
	} else if (strcmp(ret->kind, "bridge") != 0) {
		return cni_fail(err, CNI_ERR_CONFIG, "bridge: %s exists and is not a bridge (it is a %s)", c->bridge,
				*ret->kind ? ret->kind : "plain device");
	}
	if (c->promisc && !(ret->flags & IFF_PROMISC) && nl_link_set_promisc(nl, ret->index, true, &err->k) < 0)
		return err->code = CNI_ERR_INTERNAL, -1;
	if (!(ret->flags & IFF_UP) && nl_link_set_up(nl, ret->index, true, &err->k) < 0)
		return err->code = CNI_ERR_INTERNAL, -1;
	return 0;
}

/* The gateway addresses on the bridge (isGateway), and forwarding on. */
static int ensure_gateway(struct nl *nl, const struct br_conf *c, int br, const struct cni_result *res,
			  struct cni_err *err)
{
	struct nl_addr *have = NULL;
	size_t n = 0;
	if (nl_addr_list(nl, br, 0, &have, &n, &err->k) < 0)
		return err->code = CNI_ERR_INTERNAL, -1;
	int rc = -1;
	bool v4 = false, v6 = false;
	for (size_t i = 0; i < res->n_ips; i++) {
		const struct cni_ipconf *x = &res->ips[i];
		if (!x->has_gw)
			continue;
		struct cni_ip gw = x->gw;
		gw.prefix = x->addr.prefix;
		uint8_t gb[16];
		int len = cni_ip_bytes(&gw, gb);
		bool present = false;
		for (size_t j = 0; j < n; j++) {
			if (have[j].family != gw.family)
				continue;
			if (memcmp(have[j].addr, gb, (size_t)len) == 0) {
				present = true;
				continue;
			}
			struct cni_ip h;
			cni_ip_from_bytes(have[j].family, have[j].addr, have[j].prefix, &h);
			if (gw.family == AF_INET6 && (h.a >> 118) == (cni_u128)0x3fa) /* fe80::/10 */
				continue;
			/* another address of this family: the reference refuses unless forceAddress */
			if (!c->force_address) {
				char hb[CNI_IP_STRLEN], gbuf[CNI_IP_STRLEN];
				cni_fail(err, CNI_ERR_INTERNAL, "bridge %s already has address %s, not gateway %s (set forceAddress to replace it)",
					 c->bridge, cni_ip_fmt(&h, true, hb), cni_ip_fmt(&gw, true, gbuf));
				goto out;
			}
			if (cni_ip_contains(&gw, &h) || cni_ip_contains(&h, &gw)) {
				if (nl_addr_del(nl, br, have[j].family, have[j].addr, have[j].prefix, &err->k) < 0) {
					err->code = CNI_ERR_INTERNAL;
					goto out;
				}
			}
		}
		if (!present && nl_addr_add(nl, br, gw.family, gb, gw.prefix, gw.family == AF_INET6 ? IFA_F_NODAD : 0,
					    &err->k) < 0 && err->k.code != EEXIST) {
			err->code = CNI_ERR_INTERNAL;
			goto out;
		}
		if (gw.family == AF_INET)
			v4 = true;
		else
			v6 = true;
	}
	if (v4 && sysctl_set("/proc/sys/net/ipv4/ip_forward", "1", err) < 0)
		goto out;
	if (v6 && sysctl_set("/proc/sys/net/ipv6/conf/all/forwarding", "1", err) < 0)
		goto out;
	rc = 0;
out:
	free(have);
	return rc;
}

/* The first gateway of a family in the IPAM result. */
static const struct cni_ip *gateway_of(const struct cni_result *res, int family)
{
	for (size_t i = 0; i < res->n_ips; i++)
		if (res->ips[i].has_gw && res->ips[i].gw.family == family)
			return &res->ips[i].gw;
	return NULL;
}

/* Addresses, link up, routes: inside the container. */
static int configure_container(struct nl *cnl, int idx, const struct br_conf *c, struct cni_result *res,
			       struct cni_err *err)
{
	for (size_t i = 0; i < res->n_ips; i++) {
		uint8_t a[16];
		const struct cni_ip *ip = &res->ips[i].addr;
		cni_ip_bytes(ip, a);
		/* no DAD: the address is ours by IPAM, and waiting for DAD would delay the pod */
		if (nl_addr_add(cnl, idx, ip->family, a, ip->prefix, ip->family == AF_INET6 ? IFA_F_NODAD : 0, &err->k) < 0)
			return err->code = CNI_ERR_INTERNAL, -1;
	}
	if (nl_link_set_up(cnl, idx, true, &err->k) < 0)
		return err->code = CNI_ERR_INTERNAL, -1;
	if (c->is_default_gw) {
		for (int fam = AF_INET; fam != -1; fam = fam == AF_INET ? AF_INET6 : -1) {
			const struct cni_ip *gw = gateway_of(res, fam);
			if (!gw)
				continue;
			struct cni_ip dst = {.family = fam, .a = 0, .prefix = 0};
			bool dup = false;
			for (size_t i = 0; i < res->n_routes; i++)
				if (res->routes[i].dst.family == fam && res->routes[i].dst.prefix == 0)
					dup = true;
			if (!dup && cni_result_add_route(res, &dst, gw) < 0)
				return cni_fail(err, CNI_ERR_INTERNAL, "too many routes");
		}
	}
	for (size_t i = 0; i < res->n_routes; i++) {
		const struct cni_route *rt = &res->routes[i];
		struct nl_route r = {.family = rt->dst.family, .dst_len = rt->dst.prefix, .oif = idx, .scope = -1};
		struct cni_ip dst = rt->dst;
		dst.a = cni_ip_first(&dst);
		cni_ip_bytes(&dst, r.dst);
		const struct cni_ip *gw = rt->has_gw ? &rt->gw : gateway_of(res, rt->dst.family);
		if (gw) {
			r.has_gw = true;
			cni_ip_bytes(gw, r.gw);
		}
		if (rt->priority >= 0)
			r.priority = (uint32_t)rt->priority;
		if (rt->table >= 0)
			r.table = (uint32_t)rt->table;
		if (rt->scope >= 0)
			r.scope = (int)rt->scope;
		if (rt->mtu >= 0)
			r.mtu = (uint32_t)rt->mtu;
		if (rt->advmss >= 0)
			r.advmss = (uint32_t)rt->advmss;
		if (nl_route_add(cnl, &r, true, &err->k) < 0)
			return err->code = CNI_ERR_INTERNAL, -1;
	}
	return 0;
}

static int br_add(struct cni_req *req, struct cni_result *ret, struct cni_err *err)
{
	struct br_conf c;
	if (br_conf_parse(req, &c, err) < 0) {
		br_conf_free(&c);
		return -1;
	}
	int rc = -1;
	bool ipam_done = false, veth_done = false, br_created = false;
	cleanup_nl struct nl *hnl = NULL, *cnl = NULL;
	struct cni_result ipam;
	cni_result_init(&ipam);
	char hname[IF_NAMESIZE];
	host_veth_name(req, hname);
	struct nl_link br, hv, cv;
	cleanup_close int ns = cni_netns_open(req->netns, err);
	if (ns < 0)
		goto out;
	if (nl_open(-1, &hnl, &err->k) < 0 || nl_open(ns, &cnl, &err->k) < 0) {
		err->code = CNI_ERR_IO;
		goto out;
	}
	/* Checked before anything is changed: ADD twice must change nothing. */
	if (nl_link_get(cnl, req->ifname, &cv, &err->k) == 0) {
		cni_fail(err, CNI_ERR_EXISTS, "interface %s already exists in %s", req->ifname, req->netns);
		goto out;
	}
	if (nl_link_get(hnl, hname, &hv, &err->k) == 0) {
		cni_fail(err, CNI_ERR_EXISTS, "host interface %s of %s/%s already exists", hname, req->containerid, req->ifname);
		goto out;
	}
	if (cni_delegate(req, c.ipam_type, "ADD", &ipam, err) < 0)
		goto out;
	ipam_done = true;
	if (ipam.n_ips == 0) {
		cni_fail(err, CNI_ERR_CONFIG, "IPAM plugin %s returned no addresses", c.ipam_type);
		goto out;
	}
	if (ensure_bridge(hnl, &c, &br, &br_created, err) < 0)
		goto out;
	if (nl_veth_add(hnl, hname, req->ifname, ns, c.mtu ? c.mtu : br.mtu, &err->k) < 0) {
		err->code = CNI_ERR_INTERNAL;
		goto out;
	}
	veth_done = true;
	if (nl_link_get(hnl, hname, &hv, &err->k) < 0 || nl_link_set_master(hnl, hv.index, br.index, &err->k) < 0 ||
	    (c.hairpin && nl_brport_set_hairpin(hnl, hv.index, true, &err->k) < 0) ||
	    (c.vlan > 0 && (nl_bridge_vlan(hnl, hv.index, (uint16_t)c.vlan, true, true, false, &err->k) < 0 ||
			    nl_bridge_vlan(hnl, hv.index, 1, false, false, true, &err->k) < 0)) ||
	    nl_link_set_up(hnl, hv.index, true, &err->k) < 0 || nl_link_get(cnl, req->ifname, &cv, &err->k) < 0) {
		err->code = CNI_ERR_INTERNAL;
		goto out;
	}
	if (c.is_gw && ensure_gateway(hnl, &c, br.index, &ipam, err) < 0)
		goto out;
	if (configure_container(cnl, cv.index, &c, &ipam, err) < 0)
		goto out;
	if (c.ip_masq && masq_add(req, &ipam, err) < 0)
		goto out;
	/* the bridge's MAC may change as ports join: read it last */
	if (nl_link_get_index(hnl, br.index, &br, &err->k) < 0) {
		err->code = CNI_ERR_INTERNAL;
		goto out;
	}
	char m[18];
	nl_mac_fmt(br.mac, m);
	cni_result_add_iface(ret, c.bridge, m, NULL, -1);
	nl_mac_fmt(hv.mac, m);
	cni_result_add_iface(ret, hname, m, NULL, -1);
	nl_mac_fmt(cv.mac, m);
	cni_result_add_iface(ret, req->ifname, m, req->netns, -1);
	for (size_t i = 0; i < ipam.n_ips; i++) {
		ret->ips[i] = ipam.ips[i];
		ret->ips[i].iface = 2;
	}
	ret->n_ips = ipam.n_ips;
	memcpy(ret->routes, ipam.routes, ipam.n_routes * sizeof(ipam.routes[0]));
	ret->n_routes = ipam.n_routes;
	ret->dns_nameservers = TAKE_PTR(c.dns.dns_nameservers);
	ret->dns_search = TAKE_PTR(c.dns.dns_search);
	ret->dns_options = TAKE_PTR(c.dns.dns_options);
	ret->dns_domain = TAKE_PTR(c.dns.dns_domain);
	rc = 0;
out:
	if (rc < 0) {
		/* undo in reverse; errors here must not hide the one that matters */
		struct cni_err ignored = {0};
		if (c.ip_masq && ipam_done)
			masq_del(req, &ignored);
		if (veth_done && nl_link_get(hnl, hname, &hv, &ignored.k) == 0)
			nl_link_del(hnl, hv.index, &ignored.k);
		if (br_created && nl_link_get(hnl, c.bridge, &br, &ignored.k) == 0)
			nl_link_del(hnl, br.index, &ignored.k);
		if (ipam_done)
			cni_delegate(req, c.ipam_type, "DEL", NULL, &ignored);
	}
	cni_result_free(&ipam);
	br_conf_free(&c);
	return rc;
}

static int br_del(struct cni_req *req, struct cni_err *err)
{
	struct br_conf c;
	if (br_conf_parse(req, &c, err) < 0) {
		br_conf_free(&c);
		return -1;
	}
	int rc = 0;
	struct cni_err first = {0};
	/* the container end (and with it the pair), if the netns is still there */
	if (req->netns && *req->netns) {
		struct cni_err e = {0};
		int ns = cni_netns_open(req->netns, &e);
		if (ns >= 0) {
			cleanup_nl struct nl *cnl = NULL;
			struct nl_link cv;
			if (nl_open(ns, &cnl, &e.k) == 0 && nl_link_get(cnl, req->ifname, &cv, &e.k) == 0 &&
			    nl_link_del(cnl, cv.index, &e.k) < 0 && e.k.code != ENODEV) {
				first = e;
				rc = -1;
			}
			close(ns);
		}
	}
	/* the host end, should the container end be unreachable */
	{
		char hname[IF_NAMESIZE];
		host_veth_name(req, hname);
		cleanup_nl struct nl *hnl = NULL;
		struct nl_link hv;
		struct cni_err e = {0};
		if (nl_open(-1, &hnl, &e.k) == 0 && nl_link_get(hnl, hname, &hv, &e.k) == 0 &&
		    nl_link_del(hnl, hv.index, &e.k) < 0 && e.k.code != ENODEV && rc == 0) {
			first = e;
			rc = -1;
		}
	}
	struct cni_err e = {0};
	if (masq_del(req, &e) < 0 && rc == 0) {
		first = e;
		rc = -1;
	}
	if (cni_delegate(req, c.ipam_type, "DEL", NULL, &e) < 0 && rc == 0) {
		first = e;
		rc = -1;
	}
	br_conf_free(&c);
	if (rc < 0) {
		*err = first;
		if (!err->code)
			err->code = CNI_ERR_INTERNAL;
	}
	return rc;
}

static int br_check(struct cni_req *req, struct cni_err *err)
{
	struct br_conf c;
	if (br_conf_parse(req, &c, err) < 0) {
		br_conf_free(&c);
		return -1;
	}
	int rc = -1;
	cleanup_nl struct nl *hnl = NULL, *cnl = NULL;
	struct nl_link br, hv, cv;
	struct nl_addr *addrs = NULL;
	size_t n = 0;
	char hname[IF_NAMESIZE];
	host_veth_name(req, hname);
	cleanup_close int ns = cni_netns_open(req->netns, err);
	if (ns < 0)
		goto out;
	if (!req->has_prev) {
		cni_fail(err, CNI_ERR_CONFIG, "prevResult: required for CHECK");
		goto out;
	}
	if (cni_delegate(req, c.ipam_type, "CHECK", NULL, err) < 0)
		goto out;
	if (nl_open(-1, &hnl, &err->k) < 0 || nl_open(ns, &cnl, &err->k) < 0 ||
	    nl_link_get(hnl, c.bridge, &br, &err->k) < 0 || nl_link_get(hnl, hname, &hv, &err->k) < 0 ||
	    nl_link_get(cnl, req->ifname, &cv, &err->k) < 0) {
		err->code = CNI_ERR_INTERNAL;
		goto out;
	}
	if (hv.master != br.index) {
		cni_fail(err, CNI_ERR_INTERNAL, "%s is not a port of bridge %s", hname, c.bridge);
		goto out;
	}
	if (!(cv.flags & IFF_UP)) {
		cni_fail(err, CNI_ERR_INTERNAL, "%s is down in %s", req->ifname, req->netns);
		goto out;
	}
	if (nl_addr_list(cnl, cv.index, 0, &addrs, &n, &err->k) < 0) {
		err->code = CNI_ERR_INTERNAL;
		goto out;
	}
	for (size_t i = 0; i < req->prev.n_ips; i++) {
		const struct cni_ipconf *x = &req->prev.ips[i];
		if (x->iface >= 0 && (size_t)x->iface < req->prev.n_ifaces &&
		    strcmp(req->prev.ifaces[x->iface].name, req->ifname) != 0)
			continue;
		uint8_t a[16];
		int len = cni_ip_bytes(&x->addr, a);
		bool found = false;
		for (size_t j = 0; j < n; j++)
			if (addrs[j].family == x->addr.family && addrs[j].prefix == x->addr.prefix &&
			    memcmp(addrs[j].addr, a, (size_t)len) == 0)
				found = true;
		if (!found) {
			char b[CNI_IP_STRLEN];
			cni_fail(err, CNI_ERR_INTERNAL, "address %s is missing on %s", cni_ip_fmt(&x->addr, true, b), req->ifname);
			goto out;
		}
	}
	if (c.ip_masq) {
		cleanup_free char *tag = masq_tag(req);
		bool has = false;
		if (cni_nft_has(tag, masq_chains, ARRAY_SIZE(masq_chains), &has, err) < 0)
			goto out;
		if (!has) {
			cni_fail(err, CNI_ERR_INTERNAL, "masquerade rules of %s/%s are missing", req->containerid, req->ifname);
			goto out;
		}
	}
	rc = 0;
out:
	free(addrs);
	br_conf_free(&c);
	return rc;
}

static int br_status(struct cni_req *req, struct cni_err *err)
{
	struct br_conf c;
	int rc = br_conf_parse(req, &c, err);
	if (rc == 0)
		rc = cni_delegate(req, c.ipam_type, "STATUS", NULL, err);
	br_conf_free(&c);
	return rc;
}

static bool keep_valid(const char *id, const char *ifname, void *data)
{
	const struct cni_req *req = data;
	for (size_t i = 0; i < req->n_valid; i++)
		if (strcmp(id, req->valid_ids[i]) == 0 && strcmp(ifname, req->valid_ifnames[i]) == 0)
			return true;
	return false;
}

static int br_gc(struct cni_req *req, struct cni_err *err)
{
	struct br_conf c;
	if (br_conf_parse(req, &c, err) < 0) {
		br_conf_free(&c);
		return -1;
	}
	/* both, even if the first fails; report the first error */
	cleanup_free char *prefix = xasprintf("kelp-bridge %s ", req->name);
	int rc = cni_nft_gc(prefix, keep_valid, req, masq_chains, ARRAY_SIZE(masq_chains), err);
	struct cni_err e = {0};
	if (cni_delegate(req, c.ipam_type, "GC", NULL, &e) < 0 && rc == 0) {
		*err = e;
		rc = -1;
	}
	br_conf_free(&c);
	return rc;
}

static const struct cni_plugin plugin = {
	.name = "kelp-bridge",
	.add = br_add,
	.del = br_del,
	.check = br_check,
	.status = br_status,
	.gc = br_gc,
};

int main(int argc, char **argv)
{
	return cni_main(argc, argv, &plugin);
}
