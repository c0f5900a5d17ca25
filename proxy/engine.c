#include "proxy.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <linux/netfilter.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "elems.h"
#include "engine_int.h"
#include "fs.h"
#include "hmap.h"
#include "kube_manifest.h"
#include "log.h"
#include "model.h"

struct kp_engine *kp_engine_new(const struct kp_opts *opts, struct nft *nft, kp_report_fn report, void *ctx)
{
	struct kp_engine *e = xcalloc(1, sizeof(*e));
	e->opts = *opts;
	e->nft = nft;
	e->dry_run = nft == NULL;
	e->report = report;
	e->report_ctx = ctx;
	hmap_init(&e->svcs);
	hmap_init(&e->slices);
	hmap_init(&e->files);
	hmap_init(&e->owners);
	hmap_init(&e->groups);
	hmap_init(&e->prev);
	return e;
}

static void svcrec_free(struct svcrec *r)
{
	if (!r)
		return;
	kp_service_free(r->svc);
	free(r->svc_file);
	free(r->slices);
	free(r);
}

static void slicerec_free(struct slicerec *r)
{
	if (!r)
		return;
	kp_slice_free(r->sl);
	free(r->file);
	free(r);
}

static void prev_free(struct prevobj *p)
{
	if (!p)
		return;
	if (p->svc)
		kp_service_free(p->svc);
	if (p->sl)
		kp_slice_free(p->sl);
	free(p->file);
	free(p);
}

static void filerec_free(struct filerec *f)
{
	if (!f)
		return;
	strv_free(f->keys);
	free(f);
}

void kp_engine_free(struct kp_engine *e)
{
	if (!e)
		return;
	struct hmap_ent *ent;
	for (size_t i = 0; hmap_next(&e->svcs, &i, &ent);)
		svcrec_free(ent->val);
	for (size_t i = 0; hmap_next(&e->slices, &i, &ent);)
		slicerec_free(ent->val);
	for (size_t i = 0; hmap_next(&e->files, &i, &ent);)
		filerec_free(ent->val);
	for (size_t i = 0; hmap_next(&e->prev, &i, &ent);)
		prev_free(ent->val);
	hmap_free(&e->svcs);
	hmap_free(&e->slices);
	hmap_free(&e->files);
	hmap_free(&e->owners);
	acount_free(&e->hairpin);
	hmap_free(&e->groups);
	hmap_free(&e->prev);
	free(e);
}

const struct kp_metrics *kp_engine_metrics(const struct kp_engine *e)
{
	return &e->m;
}

size_t kp_engine_last_messages(const struct kp_engine *e)
{
	return e->m.last_messages;
}

size_t kp_engine_n_services(const struct kp_engine *e)
{
	size_t n = 0;
	struct hmap_ent *ent;
	for (size_t i = 0; hmap_next(&e->svcs, &i, &ent);)
		n += ((struct svcrec *)ent->val)->svc != NULL;
	return n;
}

size_t kp_engine_n_endpoints(const struct kp_engine *e)
{
	size_t n = 0;
	struct hmap_ent *ent;
	for (size_t i = 0; hmap_next(&e->slices, &i, &ent);)
		n += ((struct slicerec *)ent->val)->sl->n_eps;
	return n;
}

void kp_report(struct kp_engine *e, const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	e->errors_this_sync++;
	if (e->report)
		e->report(e->report_ctx, line);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the model ----------------------------------------------------------------------------- */

static struct svcrec *svcrec_get(struct kp_engine *e, const char *key, bool create)
{
	void **v = hmap_gets(&e->svcs, key);
	if (v)
		return *v;
	if (!create)
		return NULL;
	struct svcrec *r = xcalloc(1, sizeof(*r));
	hmap_put(&e->svcs, key, strlen(key), r);
	return r;
}

static void svc_key(char *buf, size_t size, const char *ns, const char *name)
{
	snprintf(buf, size, "%s/%s", ns, name);
}

static void svcrec_add_slice(struct svcrec *r, struct kp_slice *sl)
{
	r->slices = xrealloc(r->slices, (r->n_slices + 1) * sizeof(*r->slices));
	r->slices[r->n_slices++] = sl;
}

static void svcrec_del_slice(struct svcrec *r, struct kp_slice *sl)
{
	for (size_t i = 0; i < r->n_slices; i++)
		if (r->slices[i] == sl) {
			r->slices[i] = r->slices[--r->n_slices];
			return;
		}
}

/* ---- changes ------------------------------------------------------------------------------- */

/* Replace (or delete: obj NULL) an object of the model; the old one goes to the undo record. */
static void apply_service(struct kp_engine *e, struct change *c)
{
	struct svcrec *r = svcrec_get(e, c->key, true);
	c->old_svc = r->svc;
	c->old_file = r->svc_file;
	r->svc = c->svc;
	r->svc_file = c->file ? xstrdup(c->file) : NULL;
	c->applied = true;
}

static void undo_service(struct kp_engine *e, struct change *c)
{
	struct svcrec *r = svcrec_get(e, c->key, false);
	free(r->svc_file);
	r->svc = c->old_svc;
	r->svc_file = c->old_file;
	c->old_svc = NULL;
	c->old_file = NULL;
	c->applied = false;
}

/* After a commit: the old versions go. */
static void commit_service(struct kp_engine *e, struct change *c)
{
	(void)e;
	kp_service_free(c->old_svc);
	free(c->old_file);
	c->old_svc = NULL;
	c->old_file = NULL;
	c->svc = NULL; /* owned by the model now */
}

static void apply_slice(struct kp_engine *e, struct change *c)
{
	void **v = hmap_gets(&e->slices, c->key);
	struct slicerec *sr = v ? *v : NULL;
	char k[600];
	if (sr) {
		svc_key(k, sizeof(k), sr->sl->ns, sr->sl->service);
		svcrec_del_slice(svcrec_get(e, k, true), sr->sl);
		c->old_sl = sr->sl;
		c->old_file = sr->file;
	}
	if (c->sl) {
		if (!sr) {
			sr = xcalloc(1, sizeof(*sr));
			hmap_put(&e->slices, c->key, strlen(c->key), sr);
		}
		sr->sl = c->sl;
		sr->file = c->file ? xstrdup(c->file) : NULL;
		svc_key(k, sizeof(k), c->sl->ns, c->sl->service);
		svcrec_add_slice(svcrec_get(e, k, true), c->sl);
	} else if (sr) {
		hmap_del(&e->slices, c->key, strlen(c->key));
		free(sr);
	}
	c->applied = true;
}

static void undo_slice(struct kp_engine *e, struct change *c)
{
	void **v = hmap_gets(&e->slices, c->key);
	struct slicerec *sr = v ? *v : NULL;
	char k[600];
	if (sr) {
		svc_key(k, sizeof(k), sr->sl->ns, sr->sl->service);
		svcrec_del_slice(svcrec_get(e, k, true), sr->sl);
		free(sr->file);
		sr->file = NULL;
	}
	if (c->old_sl) {
		if (!sr) {
			sr = xcalloc(1, sizeof(*sr));
			hmap_put(&e->slices, c->key, strlen(c->key), sr);
		}
		sr->sl = c->old_sl;
		sr->file = c->old_file;
		svc_key(k, sizeof(k), c->old_sl->ns, c->old_sl->service);
		svcrec_add_slice(svcrec_get(e, k, true), c->old_sl);
	} else if (sr) {
		hmap_del(&e->slices, c->key, strlen(c->key));
		free(sr);
	}
	c->old_sl = NULL;
	c->old_file = NULL;
	c->applied = false;
}

static void commit_slice(struct change *c)
{
	kp_slice_free(c->old_sl);
	free(c->old_file);
	c->old_sl = NULL;
	c->old_file = NULL;
	c->sl = NULL;
}

void kp_change_free(struct change *c)
{
	if (c->applied)
		abort(); /* applied changes are committed or undone first */
	kp_service_free(c->svc);
	kp_slice_free(c->sl);
	/* key, file and where belong to the run's changes (sync.c) */
}

/* ---- the difference ------------------------------------------------------------------------ */

static void elems_of(struct kp_engine *e, struct svcrec *r, struct kp_elemvec *out)
{
	if (r && r->svc)
		kp_service_elems(e->opts.node, r->svc, r->slices, r->n_slices, out);
}

static void delta_add(struct hmap *m, const void *key, size_t klen, intptr_t d)
{
	void **v = hmap_get(m, key, klen);
	if (v)
		*v = (void *)((intptr_t)*v + d);
	else
		hmap_put(m, key, klen, (void *)d);
}

static intptr_t count_of(const struct hmap *m, const void *key, size_t klen)
{
	void **v = hmap_get(m, key, klen);
	return v ? (intptr_t)*v : 0;
}

/* An address claimed by two services: the later one is refused. */
static const char *conflict_desc(const struct kp_elem *el, char *buf, size_t size)
{
	char a[64];
	struct kp_addr addr = {.fam = el->fam};
	if (el->set == KS_NODEPORT || el->set == KS_NOEP_NP) {
		uint16_t p;
		memcpy(&p, el->key + 4, 2);
		snprintf(buf, size, "node port %u/%s", ntohs(p), kp_proto_name(el->key[0]));
		return buf;
	}
	size_t l = el->fam == KP_V4 ? 4 : 16;
	memcpy(addr.ip, el->key, l);
	uint16_t p;
	memcpy(&p, el->key + l + 4, 2);
	snprintf(buf, size, "%s port %u/%s", kp_addr_str(&addr, a, sizeof(a)), ntohs(p), kp_proto_name(el->key[l]));
	return buf;
}

struct affected {
	struct svcrec *r;
	struct change *svc_change;
	struct kp_elemvec old, new;
};

static struct affected *affected_add(struct hmap *idx, struct affected **v, size_t *n, size_t *cap, struct svcrec *r,
				     const char *key)
{
	void **p = hmap_gets(idx, key);
	if (p)
		return &(*v)[(size_t)(uintptr_t)*p];
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		*v = xrealloc(*v, *cap * sizeof(**v));
	}
	struct affected *a = &(*v)[*n];
	memset(a, 0, sizeof(*a));
	a->r = r;
	hmap_put(idx, key, strlen(key), (void *)(uintptr_t)*n);
	(*n)++;
	return a;
}

/* Check the new elements' addresses against other services; on a conflict the service change
 * is refused (its old version stays) and the elements recomputed. */
static void claim(struct kp_engine *e, struct affected *a, struct hmap *claims, bool full)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		const struct kp_elem *bad = NULL;
		struct svcrec *other = NULL;
		for (size_t i = 0; i < a->new.n && !bad; i++) {
			const struct kp_elem *el = &a->new.v[i];
			uint8_t k[64];
			size_t kl = kp_elem_owned_key(el, k);
			if (!kl)
				continue;
			void **c = hmap_get(claims, k, kl);
			if (c && *c != a->r) {
				bad = el;
				other = *c;
				break;
			}
			if (!full && !c) {
				void **o = hmap_get(&e->owners, k, kl);
				if (o && *o != a->r) {
					/* an affected owner releases its keys unless it claims them again */
					struct svcrec *orec = *o;
					bool releasing = orec->affected;
					if (!releasing) {
						bad = el;
						other = orec;
					}
				}
			}
		}
		if (!bad) {
			for (size_t i = 0; i < a->new.n; i++) {
				uint8_t k[64];
				size_t kl = kp_elem_owned_key(&a->new.v[i], k);
				if (kl)
					hmap_put(claims, k, kl, a->r);
			}
			return;
		}
		char desc[128], on[600] = "another service";
		if (other && other->svc)
			snprintf(on, sizeof(on), "Service %s/%s", other->svc->ns, other->svc->name);
		conflict_desc(bad, desc, sizeof(desc));
		struct change *c = a->svc_change;
		kp_report(e, "%s: spec: %s is already used by %s", c ? c->where : "Service", desc, on);
		kp_elemvec_free(&a->new);
		if (c && c->applied) {
			undo_service(e, c);
			c->refused = true;
		}
		elems_of(e, a->r, &a->new);
		if (!c)
			break;
	}
	/* still in conflict (cannot happen for a version that was programmed): nothing for it */
	kp_elemvec_free(&a->new);
}

struct ctlist {
	struct kp_ct_target *v;
	size_t n, cap;
};

static void ct_push(struct ctlist *l, uint8_t fam, const uint8_t *ip, uint16_t port)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	struct kp_ct_target *t = &l->v[l->n++];
	memset(t, 0, sizeof(*t));
	t->fam = fam;
	memcpy(t->ip, ip, fam == KP_V4 ? 4 : 16);
	t->port = port;
}

static bool has_udp(const struct kp_service *s)
{
	for (size_t i = 0; s && i < s->n_ports; i++)
		if (s->ports[i].proto == IPPROTO_UDP)
			return true;
	return false;
}

static bool vec_has(const struct kp_elemvec *v, const struct kp_elem *el)
{
	size_t lo = 0, hi = v->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = kp_elem_cmp(&v->v[mid], el);
		if (!c)
			return true;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* UDP conntrack entries that must go after this change: those DNATed to an endpoint that left,
 * and those of a service address that had no endpoint (their replies were rejections). */
static void stale_udp(const struct affected *a, const struct kp_service *old_svc, struct ctlist *eps, struct ctlist *svcs)
{
	if (!has_udp(old_svc) && !(a->r->svc && has_udp(a->r->svc)))
		return;
	for (size_t i = 0; i < a->old.n; i++) {
		const struct kp_elem *el = &a->old.v[i];
		if (el->set == KS_EPS_SVC || el->set == KS_EPS_EXT || el->set == KS_EPS_NP) {
			bool kept = false;
			for (size_t j = 0; j < a->new.n && !kept; j++)
				kept = a->new.v[j].set == el->set && a->new.v[j].fam == el->fam &&
				       !memcmp(a->new.v[j].data, el->data, el->dlen);
			if (!kept) {
				uint16_t port;
				memcpy(&port, el->data + (el->fam == KP_V4 ? 4 : 16), 2);
				ct_push(eps, el->fam, el->data, port);
			}
		} else if (el->set == KS_NOEP && !vec_has(&a->new, el)) {
			/* it had no endpoint: clients' entries hold rejections */
			size_t l = el->fam == KP_V4 ? 4 : 16;
			if (el->key[l] == IPPROTO_UDP) {
				uint16_t port;
				memcpy(&port, el->key + l + 4, 2);
				ct_push(svcs, el->fam, el->key, port);
			}
		}
	}
}

/* Session affinity entries remember a bucket of an entry; when the entry's endpoints change,
 * buckets mean other endpoints, so the entry's remembered clients are forgotten in the same
 * transaction (they choose again at their next connection). */
struct aff_reset {
	struct kp_elemvec entries; /* verdict map elements (fam, set, key) of the entries */
	int fam, nodeport;
	size_t alen;
	struct nftnl_set *del;
	size_t n_del;
};

static void aff_match(const void *key, uint32_t klen, const void *data, uint32_t dlen, void *ctx)
{
	(void)data;
	(void)dlen;
	struct aff_reset *g = ctx;
	for (size_t i = 0; i < g->entries.n; i++) {
		const struct kp_elem *el = &g->entries.v[i];
		if (el->fam != g->fam || (el->set == KS_NODEPORT) != g->nodeport || klen != g->alen + el->klen + 4 ||
		    memcmp((const uint8_t *)key + g->alen, el->key, el->klen))
			continue;
		if (!g->del) {
			g->del = nftnl_set_alloc();
			if (!g->del)
				abort();
			nftnl_set_set_str(g->del, NFTNL_SET_TABLE, KP_TABLE);
			nftnl_set_set_str(g->del, NFTNL_SET_NAME, g->nodeport ? "affinity-nodeport" : "affinity");
		}
		struct nftnl_set_elem *se = nftnl_set_elem_alloc();
		if (!se)
			abort();
		nftnl_set_elem_set(se, NFTNL_SET_ELEM_KEY, key, klen);
		nftnl_set_elem_add(g->del, se);
		g->n_del++;
		return;
	}
}

/* NFT_MSG_DESTROYSETELEM (Linux 6.3): a delete that an element which expired meanwhile does
 * not fail. libnftnl 1.2.4 has no name for it; the payload is the one of DELSETELEM. */
#define KP_MSG_DESTROYSETELEM 30

static void affinity_reset(struct kp_engine *e, struct nft_batch *b, const struct kp_elemvec *entries)
{
	for (int fam = 0; fam < KP_NFAM; fam++)
		for (int np = 0; np < 2; np++) {
			bool any = false;
			for (size_t i = 0; i < entries->n && !any; i++)
				any = entries->v[i].fam == fam && (entries->v[i].set == KS_NODEPORT) == np;
			if (!any)
				continue;
			struct aff_reset g = {.entries = *entries, .fam = fam, .nodeport = np, .alen = fam == KP_V4 ? 4 : 16};
			struct kelp_err err = {0};
			if (nft_set_elems(e->nft, fam == KP_V4 ? NFPROTO_IPV4 : NFPROTO_IPV6, KP_TABLE,
					     np ? "affinity-nodeport" : "affinity", aff_match, &g, &err) < 0)
				log_warn("session affinity entries of changed services stay: %s", err.msg);
			if (g.del) {
				char label[128];
				snprintf(label, sizeof(label), "delete %zu element(s) from %s %s/%s", g.n_del,
					 fam == KP_V4 ? "ip" : "ip6", KP_TABLE, np ? "affinity-nodeport" : "affinity");
				nft_batch_setelem(b, KP_MSG_DESTROYSETELEM, 0, fam == KP_V4 ? NFPROTO_IPV4 : NFPROTO_IPV6, g.del,
						 label);
				nftnl_set_free(g.del);
			}
		}
}

static bool is_eps(int set)
{
	return set == KS_EPS_SVC || set == KS_EPS_EXT || set == KS_EPS_NP;
}

static void group_key(const struct kp_group *g, uint8_t *k)
{
	memset(k, 0, 12);
	k[0] = g->fam;
	k[1] = g->path;
	memcpy(k + 4, &g->n, 4);
	memcpy(k + 8, &g->timeout, 4);
}

static void group_from_key(const uint8_t *k, struct kp_group *g)
{
	g->fam = k[0];
	g->path = k[1];
	memcpy(&g->n, k + 4, 4);
	memcpy(&g->timeout, k + 8, 4);
}

/* The reference-counted sets: hairpin pairs and group chains, as deltas. */
static void count_shared(const struct kp_elemvec *v, intptr_t d, struct hmap *hp, struct hmap *gr)
{
	for (size_t i = 0; i < v->n; i++) {
		const struct kp_elem *el = &v->v[i];
		struct kp_group g;
		if (el->set == KS_HAIRPIN) {
			uint8_t k[64];
			delta_add(hp, k, kp_elem_idkey(el, k), d);
		} else if (kp_elem_group(el, &g)) {
			uint8_t k[12];
			group_key(&g, k);
			delta_add(gr, k, 12, d);
		}
	}
}

static void emit_diff(struct kp_emit *em, const struct kp_elemvec *from, const struct kp_elemvec *to, bool del)
{
	for (size_t i = 0; i < from->n; i++) {
		const struct kp_elem *el = &from->v[i];
		if (el->set == KS_HAIRPIN || vec_has(to, el))
			continue;
		kp_emit_elem(em, el, del);
	}
}

/* The count of a hairpin element's address (id key: fam, set, addr . addr). */
static intptr_t hp_count(const struct acount *t, const uint8_t *idkey)
{
	uint8_t ip[16] = {0};
	memcpy(ip, idkey + 2, idkey[0] == KP_V4 ? 4 : 16);
	return acount_get(t, idkey[0], ip);
}

static void hairpin_elem(const uint8_t *k, size_t kl, struct kp_elem *el)
{
	memset(el, 0, sizeof(*el));
	el->fam = k[0];
	el->set = k[1];
	el->klen = (uint8_t)(kl - 2);
	memcpy(el->key, k + 2, kl - 2);
}

static void apply_counts(struct hmap *global, const struct hmap *delta)
{
	struct hmap_ent *ent;
	for (size_t i = 0; hmap_next(delta, &i, &ent);) {
		intptr_t after = count_of(global, ent->key, ent->klen) + (intptr_t)ent->val;
		if (after > 0)
			hmap_put(global, ent->key, ent->klen, (void *)after);
		else
			hmap_del(global, ent->key, ent->klen);
	}
}

int kp_engine_run(struct kp_engine *e, struct change *ch, size_t n, bool full, double t0, struct kelp_err *err)
{
	struct hmap affidx, claims, hp, gr;
	hmap_init(&affidx);
	hmap_init(&claims);
	hmap_init(&hp);
	hmap_init(&gr);
	struct affected *aff = NULL;
	size_t n_aff = 0, cap_aff = 0;
	char k[600];
	int ret = -1;

	if (full) {
		/* start-up: the tables are replaced, nothing is programmed yet */
		hmap_free(&e->owners);
		acount_free(&e->hairpin);
		hmap_free(&e->groups);
		e->total_elems = 0;
	}
	/* 1. which services change, and their elements before */
	for (size_t i = 0; i < n; i++) {
		struct change *c = &ch[i];
		if (c->is_svc) {
			struct affected *a = affected_add(&affidx, &aff, &n_aff, &cap_aff, svcrec_get(e, c->key, true), c->key);
			a->svc_change = c;
			kp_state_touch(e, c->key);
		} else {
			void **v = hmap_gets(&e->slices, c->key);
			if (v) {
				struct slicerec *sr = *v;
				svc_key(k, sizeof(k), sr->sl->ns, sr->sl->service);
				affected_add(&affidx, &aff, &n_aff, &cap_aff, svcrec_get(e, k, true), k);
				kp_state_touch(e, k);
			}
			if (c->sl) {
				svc_key(k, sizeof(k), c->sl->ns, c->sl->service);
				affected_add(&affidx, &aff, &n_aff, &cap_aff, svcrec_get(e, k, true), k);
				kp_state_touch(e, k);
			}
		}
	}
	for (size_t i = 0; i < n_aff; i++) {
		aff[i].r->affected = true;
		if (!full)
			elems_of(e, aff[i].r, &aff[i].old);
	}
	struct kp_service **old_svcs = xcalloc(n_aff ? n_aff : 1, sizeof(*old_svcs));
	for (size_t i = 0; i < n_aff; i++)
		old_svcs[i] = aff[i].r->svc;

	/* 2. the new model */
	for (size_t i = 0; i < n; i++) {
		if (ch[i].is_svc)
			apply_service(e, &ch[i]);
		else
			apply_slice(e, &ch[i]);
	}

	/* 3. the batch */
	struct nft_batch *b = nft_batch_begin(e->nft);
	struct kp_emit *em = kp_emit_new(b);
	if (full)
		kp_rules_base(b, &e->opts);
	size_t total = 0;
	for (size_t i = 0; i < n_aff; i++) {
		struct affected *a = &aff[i];
		elems_of(e, a->r, &a->new);
		claim(e, a, &claims, full);
		count_shared(&a->old, -1, &hp, &gr);
		if (full) {
			/* start-up: hairpin addresses are counted in place (no delta: the table was empty) */
			for (size_t j = 0; j < a->new.n; j++) {
				const struct kp_elem *el = &a->new.v[j];
				struct kp_group g;
				if (el->set == KS_HAIRPIN) {
					uint8_t ip[16] = {0};
					memcpy(ip, el->key, el->fam == KP_V4 ? 4 : 16);
					uint32_t c = acount_get(&e->hairpin, el->fam, ip);
					if (!c)
						kp_emit_elem(em, el, false);
					acount_set(&e->hairpin, el->fam, ip, c + 1);
				} else if (kp_elem_group(el, &g)) {
					uint8_t gk[12];
					group_key(&g, gk);
					delta_add(&gr, gk, 12, 1);
				}
			}
		} else {
			count_shared(&a->new, +1, &hp, &gr);
		}
		total += a->new.n;
		if (full) {
			/* group chains come before the elements that jump to them */
			for (size_t j = 0; j < a->new.n; j++) {
				struct kp_group g;
				uint8_t gk[12];
				if (!kp_elem_group(&a->new.v[j], &g))
					continue;
				group_key(&g, gk);
				if (!hmap_get(&e->groups, gk, 12)) {
					kp_rules_group_add(b, &g);
					hmap_put(&e->groups, gk, 12, (void *)(intptr_t)0);
				}
			}
			emit_diff(em, &a->new, &a->old, false);
			a->r->n_elems = (uint32_t)a->new.n;
			kp_elemvec_free(&a->new);
		}
	}
	if (full) {
		hmap_free(&e->groups); /* the markers above; the counts come with the commit */
		hmap_init(&e->groups);
	} else {
		struct hmap_ent *ent;
		for (size_t i = 0; hmap_next(&gr, &i, &ent);) {
			struct kp_group g;
			group_from_key(ent->key, &g);
			if (count_of(&e->groups, ent->key, 12) == 0 && (intptr_t)ent->val > 0)
				kp_rules_group_add(b, &g);
		}
		for (size_t i = 0; i < n_aff; i++)
			emit_diff(em, &aff[i].old, &aff[i].new, true);
	}
	{
		struct hmap_ent *ent;
		for (size_t i = 0; hmap_next(&hp, &i, &ent);) {
			intptr_t before = full ? 0 : hp_count(&e->hairpin, ent->key);
			intptr_t after = before + (intptr_t)ent->val;
			if (before > 0 && after <= 0) {
				struct kp_elem el;
				hairpin_elem(ent->key, ent->klen, &el);
				kp_emit_elem(em, &el, true);
			}
		}
	}
	kp_emit_flush(em);
	if (!full)
		for (size_t i = 0; i < n_aff; i++)
			emit_diff(em, &aff[i].new, &aff[i].old, false);
	{
		struct hmap_ent *ent;
		for (size_t i = 0; hmap_next(&hp, &i, &ent);) {
			intptr_t before = full ? 0 : hp_count(&e->hairpin, ent->key);
			intptr_t after = before + (intptr_t)ent->val;
			if (before <= 0 && after > 0) {
				struct kp_elem el;
				hairpin_elem(ent->key, ent->klen, &el);
				kp_emit_elem(em, &el, false);
			}
		}
	}
	kp_emit_flush(em);
	if (!full) {
		struct hmap_ent *ent;
		for (size_t i = 0; hmap_next(&gr, &i, &ent);) {
			struct kp_group g;
			group_from_key(ent->key, &g);
			intptr_t before = count_of(&e->groups, ent->key, 12);
			if (before > 0 && before + (intptr_t)ent->val <= 0)
				kp_rules_group_del(b, &g);
		}
	}
	kp_emit_free(em);
	if (!full && !e->dry_run) {
		struct kp_elemvec entries = {0};
		for (size_t i = 0; i < n_aff; i++) {
			struct affected *a = &aff[i];
			if (!(old_svcs[i] && old_svcs[i]->affinity_timeout))
				continue;
			bool changed = false;
			for (size_t j = 0; j < a->old.n && !changed; j++)
				changed = is_eps(a->old.v[j].set) && !vec_has(&a->new, &a->old.v[j]);
			for (size_t j = 0; j < a->new.n && !changed; j++)
				changed = is_eps(a->new.v[j].set) && !vec_has(&a->old, &a->new.v[j]);
			for (size_t j = 0; j < a->old.n && changed; j++) {
				int set = a->old.v[j].set;
				if (set == KS_SVC || set == KS_EXT || set == KS_NODEPORT)
					kp_elemvec_push(&entries, &a->old.v[j]);
			}
		}
		if (entries.n)
			affinity_reset(e, b, &entries);
		kp_elemvec_free(&entries);
	}

	/* 4. commit */
	size_t msgs = nft_batch_count(b);
	int r = 0;
	double t_built = now_s();
	/* start-up: the state's shards are written on another CPU while the kernel commits */
	struct kp_state_write *sw = full && e->run_state_dir && !e->dry_run ? kp_state_begin(e, e->run_state_dir) : NULL;
	if (!e->dry_run && (msgs > 0 || full))
		r = nft_batch_commit(b, err);
	if (sw) {
		struct kelp_err serr;
		if (kp_state_end(sw, r == 0, &serr) < 0)
			log_warn("%s (written again after the sync)", serr.msg);
	}
	if (getenv("KELP_PROXY_TIMING"))
		fprintf(stderr, "kelp-proxy: %zu messages, %zu bytes: built in %.3f s, committed in %.3f s\n", msgs,
			nft_batch_bytes(b), t_built - t0, now_s() - t_built);
	nft_batch_free(b);
	if (r < 0) {
		for (size_t i = n; i-- > 0;) {
			if (!ch[i].applied)
				continue;
			if (ch[i].is_svc)
				undo_service(e, &ch[i]);
			else
				undo_slice(e, &ch[i]);
		}
		if (full) {
			hmap_free(&e->owners);
			acount_free(&e->hairpin);
		}
		goto out;
	}

	/* 5. the new state */
	struct ctlist ct_eps = {0}, ct_svcs = {0};
	for (size_t i = 0; i < n_aff; i++) {
		struct affected *a = &aff[i];
		for (size_t j = 0; j < a->old.n; j++) {
			uint8_t kk[64];
			size_t kl = kp_elem_owned_key(&a->old.v[j], kk);
			if (!kl)
				continue;
			void **o = hmap_get(&e->owners, kk, kl);
			if (o && *o == a->r)
				hmap_del(&e->owners, kk, kl);
		}
		if (!full) {
			stale_udp(a, old_svcs[i], &ct_eps, &ct_svcs);
			e->total_elems = e->total_elems - a->r->n_elems + a->new.n;
			a->r->n_elems = (uint32_t)a->new.n;
		}
	}
	{
		struct hmap_ent *ent;
		for (size_t i = 0; hmap_next(&claims, &i, &ent);)
			hmap_put(&e->owners, ent->key, ent->klen, ent->val);
	}
	if (full)
		e->total_elems = total;
	{
		struct hmap_ent *ent;
		for (size_t i = 0; hmap_next(&hp, &i, &ent);) {
			intptr_t after = hp_count(&e->hairpin, ent->key) + (intptr_t)ent->val;
			uint8_t ip[16] = {0};
			const uint8_t *k = ent->key;
			memcpy(ip, k + 2, k[0] == KP_V4 ? 4 : 16);
			acount_set(&e->hairpin, k[0], ip, after > 0 ? (uint32_t)after : 0);
		}
	}
	apply_counts(&e->groups, &gr);
	for (size_t i = 0; i < n; i++) {
		if (!ch[i].applied)
			continue;
		if (ch[i].is_svc)
			commit_service(e, &ch[i]);
		else
			commit_slice(&ch[i]);
		ch[i].applied = false;
	}
	/* records with neither a service nor slices go */
	for (size_t i = 0; i < n_aff; i++) {
		struct svcrec *rec = aff[i].r;
		rec->affected = false;
		if (!rec->svc && !rec->n_slices) {
			struct hmap_ent *ent;
			for (size_t j = 0; hmap_next(&e->svcs, &j, &ent);)
				if (ent->val == rec) {
					hmap_del(&e->svcs, ent->key, ent->klen);
					break;
				}
			aff[i].r = NULL;
			svcrec_free(rec);
		}
	}
	double dt = now_s() - t0;
	if (full)
		e->m.syncs_full++;
	else
		e->m.syncs_partial++;
	e->m.duration_count++;
	e->m.duration_sum += dt;
	e->m.last_duration = dt;
	e->m.last_messages = msgs;
	if (!e->dry_run && (ct_eps.n || ct_svcs.n)) {
		struct kelp_err cerr;
		if (kp_conntrack_delete(ct_eps.v, ct_eps.n, ct_svcs.v, ct_svcs.n, false, &cerr) < 0)
			log_warn("stale UDP conntrack entries: %s", cerr.msg);
	}
	free(ct_eps.v);
	free(ct_svcs.v);
	ret = 0;
out:
	for (size_t i = 0; i < n_aff; i++) {
		if (aff[i].r)
			aff[i].r->affected = false;
		kp_elemvec_free(&aff[i].old);
		kp_elemvec_free(&aff[i].new);
	}
	free(aff);
	free(old_svcs);
	hmap_free(&affidx);
	hmap_free(&claims);
	hmap_free(&hp);
	hmap_free(&gr);
	malloc_trim(0);
	return ret;
}
