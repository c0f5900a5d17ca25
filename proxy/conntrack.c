/* Conntrack entries that outlive their endpoint: a UDP client keeps its entry (and so the
 * dead endpoint) as long as it keeps sending, so entries of removed endpoints are deleted, as
 * kube-proxy does. libnetfilter_conntrack: dump, match, delete. */
#include <arpa/inet.h>
#include <errno.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "proxy.h"

struct ct_ctx {
	const struct kp_ct_target *eps, *svcs;
	size_t n_eps, n_svcs;
	bool all_protos;
	struct nf_conntrack **del;
	size_t n_del, cap_del;
};

static bool addr_eq(const struct nf_conntrack *ct, int fam, enum nf_conntrack_attr a4, enum nf_conntrack_attr a6,
		    const uint8_t *ip)
{
	const void *v = nfct_get_attr(ct, fam == 0 ? a4 : a6);
	return v && !memcmp(v, ip, fam == 0 ? 4 : 16);
}

static int ct_cb(enum nf_conntrack_msg_type type, struct nf_conntrack *ct, void *data)
{
	(void)type;
	struct ct_ctx *c = data;
	uint8_t l3 = nfct_get_attr_u8(ct, ATTR_L3PROTO);
	int fam = l3 == AF_INET ? 0 : l3 == AF_INET6 ? 1 : -1;
	if (fam < 0)
		return NFCT_CB_CONTINUE;
	uint8_t l4 = nfct_get_attr_u8(ct, ATTR_L4PROTO);
	uint32_t status = nfct_get_attr_u32(ct, ATTR_STATUS);
	bool hit = false;
	if (l4 == IPPROTO_UDP && (status & IPS_DST_NAT)) {
		uint16_t rport = nfct_get_attr_u16(ct, ATTR_REPL_PORT_SRC);
		for (size_t i = 0; i < c->n_eps && !hit; i++)
			hit = c->eps[i].fam == fam && (!c->eps[i].port || c->eps[i].port == rport) &&
			      addr_eq(ct, fam, ATTR_REPL_IPV4_SRC, ATTR_REPL_IPV6_SRC, c->eps[i].ip);
	}
	if (c->all_protos || l4 == IPPROTO_UDP) {
		uint16_t dport = nfct_get_attr_u16(ct, ATTR_ORIG_PORT_DST);
		for (size_t i = 0; i < c->n_svcs && !hit; i++) {
			const struct kp_ct_target *t = &c->svcs[i];
			if (t->node_port)
				hit = (status & IPS_DST_NAT) && t->proto == l4 && t->port == dport;
			else
				hit = t->fam == fam && (!t->port || t->port == dport) &&
				      addr_eq(ct, fam, ATTR_ORIG_IPV4_DST, ATTR_ORIG_IPV6_DST, t->ip);
		}
	}
	if (hit) {
		if (c->n_del == c->cap_del) {
			c->cap_del = c->cap_del ? c->cap_del * 2 : 16;
			c->del = xrealloc(c->del, c->cap_del * sizeof(*c->del));
		}
		struct nf_conntrack *copy = nfct_clone(ct);
		if (copy)
			c->del[c->n_del++] = copy;
	}
	return NFCT_CB_CONTINUE;
}

int kp_conntrack_delete(const struct kp_ct_target *eps, size_t n_eps, const struct kp_ct_target *svcs, size_t n_svcs,
			bool all_protos, struct kelp_err *err)
{
	if (!n_eps && !n_svcs)
		return 0;
	struct ct_ctx c = {.eps = eps, .svcs = svcs, .n_eps = n_eps, .n_svcs = n_svcs, .all_protos = all_protos};
	struct nfct_handle *h = nfct_open(CONNTRACK, 0);
	if (!h)
		return kelp_error(err, errno, "open conntrack netlink socket");
	int ret = 0;
	nfct_callback_register(h, NFCT_T_ALL, ct_cb, &c);
	for (int i = 0; i < 2; i++) {
		uint32_t family = i == 0 ? AF_INET : AF_INET6;
		if (nfct_query(h, NFCT_Q_DUMP, &family) < 0 && errno != ENOENT) {
			ret = kelp_error(err, errno, "dump conntrack table");
			break;
		}
	}
	nfct_callback_unregister(h);
	for (size_t i = 0; i < c.n_del; i++) {
		/* already gone is fine: it expired or a peer deleted it */
		if (ret == 0 && nfct_query(h, NFCT_Q_DESTROY, c.del[i]) < 0 && errno != ENOENT)
			ret = kelp_error(err, errno, "delete conntrack entry");
		nfct_destroy(c.del[i]);
	}
	free(c.del);
	nfct_close(h);
	return ret;
}
