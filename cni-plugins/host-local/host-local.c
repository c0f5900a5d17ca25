/* kelp-host-local: IPAM from ranges of a config, allocations on disk under a lock. */
#include <errno.h>
#include <string.h>

#include "cleanup.h"
#include "cni.h"
#include "config.h"
#include "store.h"

static bool owned_by(const struct hl_alloc *a, const char *id, const char *ifname)
{
	return strcmp(a->id, id) == 0 && (!a->ifname || strcmp(a->ifname, ifname) == 0);
}

static bool in_set(const struct hl_set *s, const struct cni_ip *ip, size_t *ret_range)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->r[i].subnet.family == ip->family && ip->a >= s->r[i].start && ip->a <= s->r[i].end) {
			if (ret_range)
				*ret_range = i;
			return true;
		}
	return false;
}

static bool is_allocated(const struct hl_alloc *al, size_t n, cni_u128 a, int family)
{
	for (size_t i = 0; i < n; i++)
		if (al[i].ip.family == family && al[i].ip.a == a)
			return true;
	return false;
}

/* Walk the set's addresses round-robin, starting after the last one handed out. */
static int allocate(struct hl_store *st, const struct hl_set *s, size_t set_idx, const char *id, const char *ifname,
		    struct cni_ipconf *ret, struct cni_err *err)
{
	struct cni_ip last;
	size_t ri = 0;
	cni_u128 cur = s->r[0].start;
	if (hl_store_last(st, set_idx, &last) == 0 && in_set(s, &last, &ri)) {
		cur = last.a;
		if (cur == s->r[ri].end) {
			ri = (ri + 1) % s->n;
			cur = s->r[ri].start;
		} else {
			cur++;
		}
	}
	size_t start_ri = ri;
	cni_u128 start_cur = cur;
	for (;;) {
		const struct hl_range *r = &s->r[ri];
		struct cni_ip cand = {.family = r->subnet.family, .a = cur, .prefix = r->subnet.prefix};
		if (!(cur == r->gw.a)) {
			int x = hl_store_reserve(st, &cand, id, ifname, err);
			if (x < 0)
				return -1;
			if (x == 0) {
				if (hl_store_set_last(st, set_idx, &cand, err) < 0) {
					hl_store_release_ip(st, &cand, err);
					return -1;
				}
				memset(ret, 0, sizeof(*ret));
				ret->addr = cand;
				ret->has_gw = true;
				ret->gw = r->gw;
				ret->iface = -1;
				return 0;
			}
		}
		if (cur == r->end) {
			ri = (ri + 1) % s->n;
			cur = s->r[ri].start;
		} else {
			cur++;
		}
		if (ri == start_ri && cur == start_cur)
			break;
	}
	char buf[CNI_IP_STRLEN];
	return cni_fail(err, CNI_ERR_TRY_AGAIN, "no IP addresses available in range set %zu (%s ...)", set_idx,
			cni_ip_fmt(&s->r[0].subnet, true, buf));
}

static int hl_add(struct cni_req *req, struct cni_result *ret, struct cni_err *err)
{
	struct hl_conf c;
	if (hl_conf_parse(req, &c, err) < 0) {
		hl_conf_free(&c);
		return -1;
	}
	struct hl_store st;
	if (hl_store_open(c.data_dir, true, &st, err) < 0) {
		hl_conf_free(&c);
		return -1;
	}
	struct hl_alloc *al = NULL;
	size_t n = 0;
	int rc = -1;
	if (hl_store_list(&st, &al, &n, err) < 0)
		goto out;
	/* Same container and interface twice: refuse, as the reference does. */
	for (size_t i = 0; i < n; i++)
		if (owned_by(&al[i], req->containerid, req->ifname)) {
			char buf[CNI_IP_STRLEN];
			cni_fail(err, CNI_ERR_EXISTS, "%s has been allocated to %s/%s, duplicate allocation is not allowed",
				 cni_ip_fmt(&al[i].ip, false, buf), req->containerid, req->ifname);
			goto out;
		}
	for (size_t s = 0; s < c.n_sets; s++) {
		if (allocate(&st, &c.sets[s], s, req->containerid, req->ifname, &ret->ips[ret->n_ips], err) < 0) {
			/* undo this call's claims: bad input changes nothing */
			struct cni_err ignored;
			for (size_t k = 0; k < ret->n_ips; k++)
				hl_store_release_ip(&st, &ret->ips[k].addr, &ignored);
			ret->n_ips = 0;
			goto out;
		}
		ret->n_ips++;
	}
	for (size_t i = 0; i < c.n_routes; i++)
		ret->routes[ret->n_routes++] = c.routes[i];
	rc = 0;
out:
	hl_allocs_free(al, n);
	if (rc < 0)
		hl_store_close_undo(&st);
	else
		hl_store_close(&st);
	hl_conf_free(&c);
	return rc;
}

/* Release every allocation drop() picks. */
/* What the read-side commands (DEL, GC, CHECK, STATUS) look at: the network's config, its
 * store and the allocations in it. */
struct hl_view {
	struct hl_conf c;
	struct hl_store st;
	bool parsed, have_store;
	struct hl_alloc *al;
	size_t n;
};

/* -1 for a bad config; 1 when the store cannot be opened (err says why: ENOENT means nothing
 * was ever allocated on the network), each caller deciding what that means for it; else 0
 * with the allocations listed, or -1 when listing them failed (then `parsed` is true).
 * Always view_close() after. */
static int view_open(struct cni_req *req, struct hl_view *v, struct cni_err *err)
{
	memset(v, 0, sizeof(*v));
	if (hl_conf_parse(req, &v->c, err) < 0)
		return -1;
	v->parsed = true;
	if (hl_store_open(v->c.data_dir, false, &v->st, err) < 0)
		return 1;
	v->have_store = true;
	return hl_store_list(&v->st, &v->al, &v->n, err);
}

static void view_close(struct hl_view *v)
{
	hl_allocs_free(v->al, v->n);
	if (v->have_store)
		hl_store_close(&v->st);
	hl_conf_free(&v->c);
}

static int release_where(struct cni_req *req, bool (*drop)(const struct cni_req *, const struct hl_alloc *),
			 struct cni_err *err)
{
	struct hl_view v;
	int rc = view_open(req, &v, err);
	if (rc == 1) /* nothing was ever allocated on this network */
		rc = err->k.code == ENOENT ? 0 : -1;
	struct cni_err e2 = {0};
	for (size_t i = 0; rc == 0 && i < v.n; i++)
		if (drop(req, &v.al[i]) && hl_store_release_ip(&v.st, &v.al[i].ip, &e2) < 0) {
			*err = e2; /* keep going: release as much as possible */
			rc = -1;
		}
	view_close(&v);
	return rc;
}

static bool drop_mine(const struct cni_req *req, const struct hl_alloc *a)
{
	return owned_by(a, req->containerid, req->ifname);
}

static int hl_del(struct cni_req *req, struct cni_err *err)
{
	return release_where(req, drop_mine, err);
}

static bool drop_invalid(const struct cni_req *req, const struct hl_alloc *a)
{
	for (size_t i = 0; i < req->n_valid; i++)
		if (strcmp(a->id, req->valid_ids[i]) == 0 && (!a->ifname || strcmp(a->ifname, req->valid_ifnames[i]) == 0))
			return false;
	return true;
}

static int hl_gc(struct cni_req *req, struct cni_err *err)
{
	return release_where(req, drop_invalid, err);
}

static int hl_check(struct cni_req *req, struct cni_err *err)
{
	struct hl_view v;
	int rc = view_open(req, &v, err);
	if (rc == 1)
		rc = cni_fail(err, CNI_ERR_INTERNAL, "no allocations for %s/%s on network %s", req->containerid,
			      req->ifname, req->name);
	struct hl_conf c = v.c;
	struct hl_alloc *al = v.al;
	size_t n = v.n;
	for (size_t s = 0; rc == 0 && s < c.n_sets; s++) {
		bool found = false;
		for (size_t i = 0; i < n; i++)
			if (owned_by(&al[i], req->containerid, req->ifname) && in_set(&c.sets[s], &al[i].ip, NULL))
				found = true;
		if (!found)
			rc = cni_fail(err, CNI_ERR_INTERNAL, "%s/%s holds no address of range set %zu", req->containerid,
				      req->ifname, s);
	}
	/* and every address the runtime recorded is still ours */
	for (size_t k = 0; rc == 0 && req->has_prev && k < req->prev.n_ips; k++) {
		bool found = false;
		for (size_t i = 0; i < n; i++)
			if (cni_ip_equal(&al[i].ip, &req->prev.ips[k].addr) && owned_by(&al[i], req->containerid, req->ifname))
				found = true;
		char buf[CNI_IP_STRLEN];
		if (!found)
			rc = cni_fail(err, CNI_ERR_INTERNAL, "address %s of prevResult is not allocated to %s/%s",
				      cni_ip_fmt(&req->prev.ips[k].addr, false, buf), req->containerid, req->ifname);
	}
	view_close(&v);
	return rc;
}

/* STATUS: ready while every range set still has a free address. */
static int hl_status(struct cni_req *req, struct cni_err *err)
{
	struct hl_view v;
	int rc = view_open(req, &v, err);
	if (rc == 1) {
		/* nothing allocated yet: ready */
		rc = err->k.code == ENOENT ? 0 : (err->code = CNI_ERR_UNAVAILABLE, -1);
		view_close(&v);
		return rc;
	}
	if (rc < 0 && v.parsed) /* the store could not be read */
		err->code = CNI_ERR_UNAVAILABLE;
	struct hl_conf c = v.c;
	struct hl_alloc *al = v.al;
	size_t n = v.n;
	for (size_t s = 0; rc == 0 && s < c.n_sets; s++) {
		bool free_found = false;
		for (size_t i = 0; !free_found && i < c.sets[s].n; i++) {
			const struct hl_range *r = &c.sets[s].r[i];
			/* at most n+1 taken addresses in a row before a free one, if any */
			for (cni_u128 a = r->start, k = 0; a <= r->end && k <= n + 1; a++, k++) {
				if (a != r->gw.a && !is_allocated(al, n, a, r->subnet.family)) {
					free_found = true;
					break;
				}
				if (a == r->end)
					break;
			}
		}
		if (!free_found)
			rc = cni_fail(err, CNI_ERR_UNAVAILABLE, "range set %zu of network %s is exhausted", s, req->name);
	}
	view_close(&v);
	return rc;
}

const struct cni_plugin kelp_host_local_plugin = {
	.name = "kelp-host-local",
	.ipam = true,
	.add = hl_add,
	.del = hl_del,
	.check = hl_check,
	.status = hl_status,
	.gc = hl_gc,
};

