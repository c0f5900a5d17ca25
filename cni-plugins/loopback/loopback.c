/* kelp-loopback: bring `lo` up inside the container's netns (down again on DEL). */
#include <errno.h>
#include <net/if.h>

#include "cleanup.h"
#include "cni.h"
#include "nl.h"

static int lo_open(const struct cni_req *req, struct nl **ret_nl, struct nl_link *ret_lo, struct cni_err *err)
{
	cleanup_close int ns = cni_netns_open(req->netns, err);
	if (ns < 0)
		return -1;
	if (nl_open(ns, ret_nl, &err->k) < 0)
		return err->code = CNI_ERR_IO, -1;
	if (nl_link_get(*ret_nl, "lo", ret_lo, &err->k) < 0) {
		nl_close(*ret_nl);
		*ret_nl = NULL;
		return err->code = CNI_ERR_INTERNAL, -1;
	}
	return 0;
}

static int lo_add(struct cni_req *req, struct cni_result *ret, struct cni_err *err)
{
	cleanup_nl struct nl *nl = NULL;
	struct nl_link lo;
	if (lo_open(req, &nl, &lo, err) < 0)
		return -1;
	if (nl_link_set_up(nl, lo.index, true, &err->k) < 0)
		return cni_wrap(err, CNI_ERR_INTERNAL, "loopback");
	/* As a chained plugin, pass the previous result on (spec: prevResult handling). */
	if (req->has_prev) {
		*ret = req->prev;
		cni_result_init(&req->prev);
		req->has_prev = false;
		return 0;
	}
	/* Spec 1.0+: report lo and the addresses the kernel gives it. */
	int idx = cni_result_add_iface(ret, "lo", "00:00:00:00:00:00", req->netns, -1);
	struct nl_addr *addrs = NULL;
	size_t n = 0;
	if (nl_addr_list(nl, lo.index, 0, &addrs, &n, &err->k) < 0)
		return cni_wrap(err, CNI_ERR_INTERNAL, "loopback");
	for (size_t i = 0; i < n && ret->n_ips < CNI_MAX_IPS; i++) {
		struct cni_ipconf *x = &ret->ips[ret->n_ips++];
		cni_ip_from_bytes(addrs[i].family, addrs[i].addr, addrs[i].prefix, &x->addr);
		x->has_gw = false;
		x->iface = idx;
	}
	free(addrs);
	return 0;
}

static int lo_del(struct cni_req *req, struct cni_err *err)
{
	/* Best effort: a netns that is gone has no lo to take down. */
	if (!req->netns || !*req->netns)
		return 0;
	cleanup_nl struct nl *nl = NULL;
	struct nl_link lo;
	if (lo_open(req, &nl, &lo, err) < 0)
		return err->code == CNI_ERR_UNKNOWN_CONTAINER ? 0 : -1;
	if (nl_link_set_up(nl, lo.index, false, &err->k) < 0)
		return cni_wrap(err, CNI_ERR_INTERNAL, "loopback");
	return 0;
}

static int lo_check(struct cni_req *req, struct cni_err *err)
{
	cleanup_nl struct nl *nl = NULL;
	struct nl_link lo;
	if (lo_open(req, &nl, &lo, err) < 0)
		return -1;
	if (!(lo.flags & IFF_UP))
		return cni_fail(err, CNI_ERR_INTERNAL, "loopback: lo is down in %s", req->netns);
	return 0;
}

static int lo_status(struct cni_req *req, struct cni_err *err)
{
	(void)req;
	(void)err;
	return 0;
}

static int lo_gc(struct cni_req *req, struct cni_err *err)
{
	/* Nothing outside the container's own netns. */
	(void)req;
	(void)err;
	return 0;
}

static const struct cni_plugin plugin = {
	.name = "kelp-loopback",
	.add = lo_add,
	.del = lo_del,
	.check = lo_check,
	.status = lo_status,
	.gc = lo_gc,
};

int main(int argc, char **argv)
{
	return cni_main(argc, argv, &plugin);
}
