#include "elems.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"

void kp_elemvec_push(struct kp_elemvec *v, const struct kp_elem *e)
{
	if (v->n == v->cap) {
		v->cap = v->cap ? v->cap * 2 : 16;
		v->v = xrealloc(v->v, v->cap * sizeof(*v->v));
	}
	v->v[v->n++] = *e;
}

void kp_elemvec_free(struct kp_elemvec *v)
{
	free(v->v);
	memset(v, 0, sizeof(*v));
}

int kp_elem_cmp(const struct kp_elem *a, const struct kp_elem *b)
{
	if (a->fam != b->fam)
		return a->fam - b->fam;
	if (a->set != b->set)
		return a->set - b->set;
	if (a->klen != b->klen)
		return a->klen - b->klen;
	int c = memcmp(a->key, b->key, a->klen);
	if (c)
		return c;
	if (a->set == KS_LBALLOW && (c = memcmp(a->key_end, b->key_end, a->klen)))
		return c;
	if (a->dlen != b->dlen)
		return a->dlen - b->dlen;
	return memcmp(a->data, b->data, a->dlen);
}

bool kp_elem_same_key(const struct kp_elem *a, const struct kp_elem *b)
{
	return a->fam == b->fam && a->set == b->set && a->klen == b->klen && !memcmp(a->key, b->key, a->klen) &&
	       (a->set != KS_LBALLOW || !memcmp(a->key_end, b->key_end, a->klen));
}

size_t kp_elem_idkey(const struct kp_elem *e, uint8_t *buf)
{
	buf[0] = e->fam;
	buf[1] = e->set;
	memcpy(buf + 2, e->key, e->klen);
	return 2 + (size_t)e->klen;
}

static int cmp_void(const void *a, const void *b)
{
	return kp_elem_cmp(a, b);
}

void kp_elemvec_sort(struct kp_elemvec *v)
{
	if (v->n < 2)
		return;
	qsort(v->v, v->n, sizeof(*v->v), cmp_void);
	size_t w = 1;
	for (size_t i = 1; i < v->n; i++)
		if (kp_elem_cmp(&v->v[w - 1], &v->v[i]))
			v->v[w++] = v->v[i];
	v->n = w;
}

size_t kp_elem_owned_key(const struct kp_elem *e, uint8_t *buf)
{
	int cls;
	switch (e->set) {
	case KS_SVC:
	case KS_EXT:
	case KS_NOEP:
		cls = 0;
		break;
	case KS_NODEPORT:
	case KS_NOEP_NP:
		cls = 1;
		break;
	default:
		return 0;
	}
	buf[0] = e->fam;
	buf[1] = (uint8_t)cls;
	memcpy(buf + 2, e->key, e->klen);
	return 2 + (size_t)e->klen;
}

bool kp_elem_group(const struct kp_elem *e, struct kp_group *ret)
{
	if ((e->set != KS_SVC && e->set != KS_EXT && e->set != KS_NODEPORT) || e->data[0] != KV_GOTO)
		return false;
	ret->fam = e->fam;
	ret->path = e->data[1];
	memcpy(&ret->n, e->data + 4, 4);
	memcpy(&ret->timeout, e->data + 8, 4);
	return true;
}

/* ---- building ------------------------------------------------------------------------------ */

static size_t alen(int fam)
{
	return fam == KP_V4 ? 4 : 16;
}

/* Append a 4-byte register-padded field. */
static size_t put32(uint8_t *p, size_t off, const void *v, size_t len)
{
	memset(p + off, 0, 4);
	memcpy(p + off, v, len);
	return off + 4;
}

static size_t put_addr(uint8_t *p, size_t off, const struct kp_addr *a)
{
	memcpy(p + off, a->ip, alen(a->fam));
	return off + alen(a->fam);
}

struct ep {
	struct kp_addr addr;
	uint16_t port; /* network order */
	uint8_t cond;
	bool local;  /* on this node */
	bool remote; /* on another node (neither: the slice does not say where) */
};

static int ep_cmp(const void *pa, const void *pb)
{
	const struct ep *a = pa, *b = pb;
	int c = memcmp(a->addr.ip, b->addr.ip, 16);
	return c ? c : (int)a->port - (int)b->port;
}

/* The endpoints of port p in family fam: every slice port of the same name and protocol. */
static size_t collect(const char *node, const struct kp_port *p, int fam, struct kp_slice *const *slices, size_t n_slices,
		      struct ep **ret)
{
	size_t n = 0, cap = 0;
	struct ep *v = NULL;
	for (size_t i = 0; i < n_slices; i++) {
		const struct kp_slice *sl = slices[i];
		if (sl->fam != fam)
			continue;
		uint16_t port = 0;
		for (size_t j = 0; j < sl->n_ports; j++)
			if (!strcmp(sl->ports[j].name, p->name) && sl->ports[j].proto == p->proto && sl->ports[j].port)
				port = sl->ports[j].port;
		if (!port)
			continue;
		for (size_t j = 0; j < sl->n_eps; j++) {
			if (n == cap) {
				cap = cap ? cap * 2 : 16;
				v = xrealloc(v, cap * sizeof(*v));
			}
			const struct kp_endpoint *e = &sl->eps[j];
			v[n++] = (struct ep){.addr = e->addr,
					     .port = htons(port),
					     .cond = e->cond,
					     .local = node && e->node && !strcmp(e->node, node),
					     .remote = node && e->node && strcmp(e->node, node)};
		}
	}
	if (n)
		qsort(v, n, sizeof(*v), ep_cmp);
	/* the same address in two slices counts once */
	size_t w = 0;
	for (size_t i = 0; i < n; i++)
		if (!w || ep_cmp(&v[w - 1], &v[i]))
			v[w++] = v[i];
	*ret = v;
	return w;
}

/* kube-proxy's choice: ready endpoints; when none, serving terminating ones. */
static size_t usable(struct ep *v, size_t n)
{
	size_t w = 0;
	for (size_t i = 0; i < n; i++)
		if (v[i].cond & KP_EP_READY)
			v[w++] = v[i];
	if (w)
		return w;
	for (size_t i = 0; i < n; i++)
		if ((v[i].cond & KP_EP_SERVING) && (v[i].cond & KP_EP_TERMINATING))
			v[w++] = v[i];
	return w;
}

static void key_elem(struct kp_elemvec *out, int fam, int set, const uint8_t *key, size_t klen)
{
	struct kp_elem e = {.fam = (uint8_t)fam, .set = (uint8_t)set, .klen = (uint8_t)klen};
	memcpy(e.key, key, klen);
	kp_elemvec_push(out, &e);
}

/* One entry of a service (a cluster IP, an external IP or a node port; key: its tuple): the
 * verdict map element that sends it to its group chain, and its endpoint buckets. */
static void target(struct kp_elemvec *out, int fam, int path, const uint8_t *key, size_t klen, const struct ep *eps,
		   size_t n, bool local_only, uint32_t timeout)
{
	static const int vset[] = {0, KS_SVC, KS_EXT, KS_NODEPORT}, eset[] = {0, KS_EPS_SVC, KS_EPS_EXT, KS_EPS_NP},
			 noset[] = {0, KS_NOEP, KS_NOEP, KS_NOEP_NP};
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (!local_only || eps[i].local)
			k++;
	if (n == 0) {
		key_elem(out, fam, noset[path], key, klen);
		return;
	}
	struct kp_elem d = {.fam = (uint8_t)fam, .set = (uint8_t)vset[path], .klen = (uint8_t)klen, .dlen = 12};
	memcpy(d.key, key, klen);
	/* Local policy and no local endpoint: dropped, as kube-proxy does */
	d.data[0] = k ? KV_GOTO : KV_DROP;
	d.data[1] = (uint8_t)path;
	uint32_t n32 = (uint32_t)k;
	memcpy(d.data + 4, &n32, 4);
	memcpy(d.data + 8, &timeout, 4);
	kp_elemvec_push(out, &d);
	uint32_t b = 0;
	for (size_t i = 0; i < n; i++) {
		if (local_only && !eps[i].local)
			continue;
		struct kp_elem e = {.fam = (uint8_t)fam, .set = (uint8_t)eset[path], .klen = (uint8_t)(klen + 4)};
		memcpy(e.key, key, klen);
		memcpy(e.key + klen, &b, 4);
		b++;
		size_t off = put_addr(e.data, 0, &eps[i].addr);
		e.dlen = (uint8_t)put32(e.data, off, &eps[i].port, 2);
		kp_elemvec_push(out, &e);
	}
}

/* daddr . proto . dport as the key bytes */
static size_t tuple_key(uint8_t *k, const struct kp_addr *a, const struct kp_port *p)
{
	uint16_t port = htons(p->port);
	size_t off = put_addr(k, 0, a);
	off = put32(k, off, &p->proto, 1);
	return put32(k, off, &port, 2);
}

/* loadBalancerSourceRanges: the LB address is guarded; each range is an allowed source. */
static void lb_ranges(struct kp_elemvec *out, const struct kp_service *s, const struct kp_addr *a, const struct kp_port *p)
{
	struct kp_elem g = {.fam = a->fam, .set = KS_LBGUARD};
	g.klen = (uint8_t)tuple_key(g.key, a, p);
	kp_elemvec_push(out, &g);
	for (size_t i = 0; i < s->n_src_ranges; i++) {
		const struct kp_cidr *c = &s->src_ranges[i];
		if (c->fam != a->fam)
			continue;
		struct kp_elem e = {.fam = a->fam, .set = KS_LBALLOW};
		memcpy(e.key, g.key, g.klen);
		memcpy(e.key_end, g.key, g.klen);
		size_t l = alen(a->fam);
		memcpy(e.key + g.klen, c->ip, l);
		for (size_t j = 0; j < l; j++) {
			int bits = c->prefix - (int)j * 8;
			uint8_t m = bits >= 8 ? 0xff : bits <= 0 ? 0 : (uint8_t)(0xff << (8 - bits));
			e.key_end[g.klen + j] = (uint8_t)(c->ip[j] | (uint8_t)~m);
		}
		e.klen = (uint8_t)(g.klen + l);
		kp_elemvec_push(out, &e);
	}
}

void kp_service_elems(const char *node, const struct kp_service *s, struct kp_slice *const *slices, size_t n_slices,
		      struct kp_elemvec *out)
{
	if (s->headless || s->type == KP_EXTERNAL_NAME)
		return;
	for (int fam = 0; fam < KP_NFAM; fam++) {
		if (!s->has_cip[fam])
			continue;
		for (size_t i = 0; i < s->n_ports; i++) {
			const struct kp_port *p = &s->ports[i];
			struct ep *eps = NULL;
			size_t n = collect(node, p, fam, slices, n_slices, &eps);
			n = usable(eps, n);
			uint8_t key[40];
			size_t kl = tuple_key(key, &s->cluster_ips[fam], p);
			target(out, fam, KP_PATH_CLUSTER, key, kl, eps, n, s->itp_local, s->affinity_timeout);
			for (size_t j = 0; j < s->n_ext + s->n_lb; j++) {
				const struct kp_addr *a = j < s->n_ext ? &s->ext_ips[j] : &s->lb_ips[j - s->n_ext];
				if (a->fam != fam)
					continue;
				kl = tuple_key(key, a, p);
				target(out, fam, KP_PATH_EXTERNAL, key, kl, eps, n, s->etp_local, s->affinity_timeout);
				if (!s->etp_local)
					key_elem(out, fam, KS_EXTMASQ, key, kl);
				if (j >= s->n_ext && s->n_src_ranges)
					lb_ranges(out, s, a, p);
			}
			if (p->node_port && (s->type == KP_NODE_PORT || s->type == KP_LOAD_BALANCER)) {
				uint16_t np = htons(p->node_port);
				kl = put32(key, 0, &p->proto, 1);
				kl = put32(key, kl, &np, 2);
				target(out, fam, KP_PATH_NODEPORT, key, kl, eps, n, s->etp_local, s->affinity_timeout);
				if (!s->etp_local)
					key_elem(out, fam, KS_NPMASQ, key, kl);
			}
			/* Hairpin: a pod reaching itself through the service. Its packets enter this
			 * node's prerouting only from a pod on this node, so an endpoint that its slice
			 * places on another node needs no pair: each node holds its own pods' pairs
			 * (at 10,000 services on 10 nodes, 10,000 elements instead of 100,000). */
			for (size_t j = 0; j < n; j++) {
				if (eps[j].remote)
					continue;
				struct kp_elem h = {.fam = (uint8_t)fam, .set = KS_HAIRPIN};
				size_t off = put_addr(h.key, 0, &eps[j].addr);
				h.klen = (uint8_t)put_addr(h.key, off, &eps[j].addr);
				kp_elemvec_push(out, &h);
			}
			free(eps);
		}
	}
	kp_elemvec_sort(out);
}
