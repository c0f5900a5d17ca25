#include "overlay.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <linux/neighbour.h>
#include <string.h>

#include "cleanup.h"
#include "fs.h"
#include "nl.h"

void vx_conf_free(struct vx_conf *c)
{
	free(c->node);
	free(c->peers_file);
	free(c->device);
	memset(c, 0, sizeof(*c));
}

int vx_conf_parse(const struct kj *n, struct vx_conf *c, struct cni_err *err)
{
	memset(c, 0, sizeof(*c));
	bool has_vni = false, has_port = false, has_mtu = false;
	uint32_t port = 4789;
	if (kj_req_string(n, "nodeName", &c->node, &err->k) < 0 || kj_req_string(n, "peersFile", &c->peers_file, &err->k) < 0 ||
	    kj_opt_string(n, "device", &c->device, &err->k) < 0 || kj_opt_uint32(n, "vni", &c->vni, &has_vni, &err->k) < 0 ||
	    kj_opt_uint32(n, "port", &port, &has_port, &err->k) < 0 || kj_opt_uint32(n, "mtu", &c->mtu, &has_mtu, &err->k) < 0)
		return err->code = CNI_ERR_CONFIG, -1;
	if (!has_vni)
		c->vni = 1;
	if (c->vni < 1 || c->vni > 0xffffff)
		return cni_fail(err, CNI_ERR_CONFIG, "vni: %u is out of range (1-16777215)", c->vni);
	if (port < 1 || port > 65535)
		return cni_fail(err, CNI_ERR_CONFIG, "port: %u is out of range", port);
	c->port = (uint16_t)port;
	if (!has_mtu)
		c->mtu = 1450; /* 1500 underlay minus the 50 bytes of VXLAN over IPv4 */
	if (!c->device)
		c->device = xasprintf("kelp.%u", c->vni);
	if (!cni_ifname_valid(c->device))
		return cni_fail(err, CNI_ERR_CONFIG, "device: \"%s\" is not a valid interface name", c->device);
	if (kj_field(n, "delegate", &c->delegate, &err->k) > 0 && kj_expect_object(&c->delegate, &err->k) < 0)
		return err->code = CNI_ERR_CONFIG, -1;
	return 0;
}

void vx_peers_free(struct vx_peers *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->v[i].name);
	free(p->v);
	memset(p, 0, sizeof(*p));
}

const struct vx_peer *vx_peers_find(const struct vx_peers *p, const char *name)
{
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->v[i].name, name) == 0)
			return &p->v[i];
	return NULL;
}

static int ip4_field(const struct kj *o, const char *key, bool prefix, struct cni_ip *ret, struct cni_err *err)
{
	cleanup_free char *s = NULL;
	if (kj_req_string(o, key, &s, &err->k) < 0)
		return err->code = CNI_ERR_CONFIG, -1;
	if (cni_ip_parse(s, prefix, ret) < 0 || ret->family != AF_INET)
		return cni_fail(err, CNI_ERR_CONFIG, "%s.%s: \"%s\" is not an IPv4 %s", o->path, key, s, prefix ? "prefix" : "address");
	return 0;
}

static int peers_parse(const struct kj *root, struct vx_peers *p, struct cni_err *err)
{
	struct kj nodes;
	if (kj_required(root, "nodes", &nodes, &err->k) < 0 || kj_expect_array(&nodes, &err->k) < 0)
		return err->code = CNI_ERR_CONFIG, -1;
	p->v = xcalloc(kj_len(&nodes) + 1, sizeof(*p->v));
	for (size_t i = 0; i < kj_len(&nodes); i++) {
		struct kj o;
		kj_index(&nodes, i, &o);
		struct vx_peer *x = &p->v[p->n];
		cleanup_free char *mac = NULL;
		if (kj_expect_object(&o, &err->k) < 0 || kj_req_string(&o, "name", &x->name, &err->k) < 0)
			return err->code = CNI_ERR_CONFIG, -1;
		p->n++; /* counted as soon as it owns its name: vx_peers_free frees the first n */
		if (kj_req_string(&o, "vtepMAC", &mac, &err->k) < 0)
			return err->code = CNI_ERR_CONFIG, -1;
		if (ip4_field(&o, "underlayIP", false, &x->underlay, err) < 0 || ip4_field(&o, "podSubnet", true, &x->subnet, err) < 0)
			return -1;
		x->subnet.a = cni_ip_first(&x->subnet);
		if (nl_mac_parse(mac, x->mac) < 0)
			return cni_fail(err, CNI_ERR_CONFIG, "%s.vtepMAC: \"%s\" is not a MAC address", o.path, mac);
		for (size_t j = 0; j + 1 < p->n; j++) {
			if (strcmp(p->v[j].name, x->name) == 0)
				return cni_fail(err, CNI_ERR_CONFIG, "%s.name: node %s is listed twice", o.path, x->name);
			if (cni_ip_contains(&p->v[j].subnet, &x->subnet) || cni_ip_contains(&x->subnet, &p->v[j].subnet))
				return cni_fail(err, CNI_ERR_CONFIG, "%s.podSubnet: overlaps the pod subnet of node %s", o.path,
						p->v[j].name);
		}
	}
	return 0;
}

int vx_peers_parse(const char *text, size_t len, const char *what, struct vx_peers *p, struct cni_err *err)
{
	memset(p, 0, sizeof(*p));
	struct kj root;
	if (kj_parse(text, len, what, &root, &err->k) < 0)
		return err->code = CNI_ERR_DECODE, -1;
	int r = peers_parse(&root, p, err);
	yajl_tree_free(root.v);
	if (r < 0) {
		vx_peers_free(p);
		cni_wrap(err, 0, "%s", what); /* a field's error names the file too */
	}
	return r;
}

int vx_peers_load(const char *path, struct vx_peers *p, struct cni_err *err)
{
	memset(p, 0, sizeof(*p));
	cleanup_free char *text = NULL;
	size_t len;
	if (kelp_read_file_at(AT_FDCWD, path, 1 << 22, &text, &len, &err->k) < 0)
		return cni_wrap(err, CNI_ERR_IO, "peers file");
	return vx_peers_parse(text, len, path, p, err);
}

/* ---- sync ----------------------------------------------------------------------------------- */

static void gw_of(const struct vx_peer *x, uint8_t out[16])
{
	cni_ip_bytes(&x->subnet, out); /* the subnet's first address stands for the node */
}

int vx_sync(const struct vx_conf *c, const struct vx_peers *p, struct cni_err *err)
{
	const struct vx_peer *self = vx_peers_find(p, c->node);
	if (!self)
		return cni_fail(err, CNI_ERR_CONFIG, "nodeName: node %s is not in %s", c->node, c->peers_file);
	cleanup_nl struct nl *nl = NULL;
	if (nl_open(-1, &nl, &err->k) < 0)
		return err->code = CNI_ERR_IO, -1;
	struct nl_link dev;
	if (nl_link_get(nl, c->device, &dev, &err->k) < 0) {
		if (err->k.code != ENODEV)
			return err->code = CNI_ERR_INTERNAL, -1;
		struct nl_vxlan v = {.name = c->device, .vni = c->vni, .family = AF_INET, .port = c->port, .mtu = c->mtu,
				     .learning = false, .mac = self->mac};
		cni_ip_bytes(&self->underlay, v.local);
		if (nl_vxlan_add(nl, &v, &err->k) < 0 && err->k.code != EEXIST)
			return err->code = CNI_ERR_INTERNAL, -1;
		if (nl_link_get(nl, c->device, &dev, &err->k) < 0)
			return err->code = CNI_ERR_INTERNAL, -1;
	} else if (strcmp(dev.kind, "vxlan") != 0) {
		return cni_fail(err, CNI_ERR_CONFIG, "device: %s exists and is not a vxlan device", c->device);
	}
	uint8_t self_gw[16];
	gw_of(self, self_gw);
	if (nl_addr_add(nl, dev.index, AF_INET, self_gw, 32, 0, &err->k) < 0 && err->k.code != EEXIST)
		return err->code = CNI_ERR_INTERNAL, -1;
	if (!(dev.flags & IFF_UP) && nl_link_set_up(nl, dev.index, true, &err->k) < 0)
		return err->code = CNI_ERR_INTERNAL, -1;

	int rc = -1;
	struct nl_route *routes = NULL;
	struct nl_neigh *neigh = NULL, *fdb = NULL;
	size_t n_routes = 0, n_neigh = 0, n_fdb = 0;
	if (nl_route_list(nl, AF_INET, &routes, &n_routes, &err->k) < 0 ||
	    nl_neigh_list(nl, dev.index, AF_INET, &neigh, &n_neigh, &err->k) < 0 ||
	    nl_neigh_list(nl, dev.index, AF_BRIDGE, &fdb, &n_fdb, &err->k) < 0) {
		err->code = CNI_ERR_INTERNAL;
		goto out;
	}
	/* drop what no peer wants any more (or wants differently) */
	for (size_t i = 0; i < n_routes; i++) {
		struct nl_route *r = &routes[i];
		if (r->oif != dev.index || !r->has_gw)
			continue;
		bool want = false;
		for (size_t k = 0; k < p->n; k++) {
			uint8_t d[16];
			cni_ip_bytes(&p->v[k].subnet, d);
			if (&p->v[k] != self && r->dst_len == p->v[k].subnet.prefix && memcmp(r->dst, d, 4) == 0 &&
			    memcmp(r->gw, d, 4) == 0)
				want = true;
		}
		r->scope = -1;
		if (!want && nl_route_del(nl, r, &err->k) < 0 && err->k.code != ESRCH) {
			err->code = CNI_ERR_INTERNAL;
			goto out;
		}
		r->priority = want; /* reused below: 1 = already in place */
	}
	for (size_t i = 0; i < n_neigh; i++) {
		if (!neigh[i].has_ip || !(neigh[i].state & NUD_PERMANENT))
			continue;
		bool want = false;
		for (size_t k = 0; k < p->n; k++) {
			uint8_t g[16];
			gw_of(&p->v[k], g);
			if (&p->v[k] != self && memcmp(neigh[i].ip, g, 4) == 0 && memcmp(neigh[i].mac, p->v[k].mac, 6) == 0)
				want = true;
		}
		if (!want && nl_neigh_del(nl, dev.index, AF_INET, neigh[i].ip, &err->k) < 0 && err->k.code != ENOENT) {
			err->code = CNI_ERR_INTERNAL;
			goto out;
		}
	}
	for (size_t i = 0; i < n_fdb; i++) {
		if (!fdb[i].has_ip)
			continue;
		bool want = false;
		for (size_t k = 0; k < p->n; k++) {
			uint8_t u[16];
			cni_ip_bytes(&p->v[k].underlay, u);
			if (&p->v[k] != self && memcmp(fdb[i].ip, u, 4) == 0 && memcmp(fdb[i].mac, p->v[k].mac, 6) == 0)
				want = true;
		}
		if (!want && nl_fdb_del(nl, dev.index, fdb[i].mac, fdb[i].family, fdb[i].ip, &err->k) < 0 &&
		    err->k.code != ENOENT) {
			err->code = CNI_ERR_INTERNAL;
			goto out;
		}
	}
	/* add what is missing: FDB (where), neighbour (which MAC), route (which subnet) */
	for (size_t k = 0; k < p->n; k++) {
		const struct vx_peer *x = &p->v[k];
		if (x == self)
			continue;
		uint8_t g[16], u[16];
		gw_of(x, g);
		cni_ip_bytes(&x->underlay, u);
		if (nl_fdb_set(nl, dev.index, x->mac, AF_INET, u, &err->k) < 0 ||
		    nl_neigh_set(nl, dev.index, AF_INET, g, x->mac, &err->k) < 0) {
			err->code = CNI_ERR_INTERNAL;
			goto out;
		}
		bool have = false;
		for (size_t i = 0; i < n_routes; i++)
			if (routes[i].oif == dev.index && routes[i].has_gw && routes[i].priority == 1 &&
			    routes[i].dst_len == x->subnet.prefix && memcmp(routes[i].dst, g, 4) == 0)
				have = true;
		if (have)
			continue;
		struct nl_route r = {.family = AF_INET, .dst_len = x->subnet.prefix, .has_gw = true, .oif = dev.index,
				     .scope = -1, .onlink = true};
		memcpy(r.dst, g, 4);
		memcpy(r.gw, g, 4);
		if (nl_route_add(nl, &r, true, &err->k) < 0) {
			err->code = CNI_ERR_INTERNAL;
			goto out;
		}
	}
	rc = 0;
out:
	free(routes);
	free(neigh);
	free(fdb);
	return rc;
}

int vx_remove(const struct vx_conf *c, const char *bridge, struct cni_err *err)
{
	cleanup_nl struct nl *nl = NULL;
	struct nl_link dev;
	if (nl_open(-1, &nl, &err->k) < 0)
		return err->code = CNI_ERR_IO, -1;
	const char *names[] = {c->device, bridge};
	const char *kinds[] = {"vxlan", "bridge"};
	for (int i = 0; i < 2; i++) {
		if (nl_link_get(nl, names[i], &dev, &err->k) < 0) {
			if (err->k.code == ENODEV)
				continue;
			return err->code = CNI_ERR_INTERNAL, -1;
		}
		if (strcmp(dev.kind, kinds[i]) != 0)
			return cni_fail(err, CNI_ERR_CONFIG, "%s is not a %s device", names[i], kinds[i]);
		if (nl_link_del(nl, dev.index, &err->k) < 0)
			return err->code = CNI_ERR_INTERNAL, -1;
	}
	return 0;
}
