/* kelp-vxlan: a flannel-like overlay. Each node owns a pod subnet; the node's VXLAN device gets
 * one route, one neighbour and one FDB entry per peer node (from the peers file a node agent
 * rewrites); local pods attach through the delegated kelp-bridge with kelp-host-local on the
 * node's subnet. `kelp-vxlan sync CONFIG` applies a changed peers file; every ADD does too;
 * `kelp-vxlan remove CONFIG` removes the network's device. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include "cleanup.h"
#include "cni.h"
#include "fs.h"
#include "overlay.h"

static bool has_key(const struct kj *o, const char *key)
{
	struct kj f;
	struct kelp_err e;
	return o->v && kj_field(o, key, &f, &e) > 0;
}

/* The delegate's config: "delegate" plus what the overlay decides (name, version, the node's
 * subnet for IPAM, the device MTU), and the request's runtimeConfig/prevResult/args. */
static char *delegate_conf(const struct cni_req *req, const struct vx_conf *c, const struct vx_peer *self,
			   char **ret_type, size_t *ret_len)
{
	static const char *const own[] = {"cniVersion", "name", "type", "ipam", NULL};
	char buf[CNI_IP_STRLEN];
	struct kelp_err e;
	cleanup_free char *type = NULL, *ipam_type = NULL;
	struct kj ipam = {0};
	if (c->delegate.v) {
		kj_opt_string(&c->delegate, "type", &type, &e);
		if (kj_field(&c->delegate, "ipam", &ipam, &e) > 0)
			kj_opt_string(&ipam, "type", &ipam_type, &e);
	}
	yajl_gen g = kg_new(false);
	yajl_gen_map_open(g);
	kg_key_str(g, "cniVersion", req->version);
	kg_key_str(g, "name", req->name);
	kg_key_str(g, "type", type ? type : "kelp-bridge");
	for (size_t i = 0; c->delegate.v && i < c->delegate.v->u.object.len; i++) {
		const char *k = c->delegate.v->u.object.keys[i];
		bool skip = false;
		for (const char *const *o = own; *o; o++)
			skip |= strcmp(*o, k) == 0;
		if (skip)
			continue;
		kg_key(g, k);
		cni_gen_value(g, c->delegate.v->u.object.values[i]);
	}
	if (!has_key(&c->delegate, "bridge"))
		kg_key_str(g, "bridge", "kelp-vx0");
	if (!has_key(&c->delegate, "isDefaultGateway"))
		kg_key_bool(g, "isDefaultGateway", true);
	if (!has_key(&c->delegate, "mtu"))
		kg_key_int(g, "mtu", c->mtu);
	kg_key(g, "ipam");
	yajl_gen_map_open(g);
	kg_key_str(g, "type", ipam_type ? ipam_type : "kelp-host-local");
	for (size_t i = 0; ipam.v && YAJL_IS_OBJECT(ipam.v) && i < ipam.v->u.object.len; i++) {
		if (strcmp(ipam.v->u.object.keys[i], "type") == 0 || strcmp(ipam.v->u.object.keys[i], "ranges") == 0)
			continue;
		kg_key(g, ipam.v->u.object.keys[i]);
		cni_gen_value(g, ipam.v->u.object.values[i]);
	}
	/* the node's subnet; with no peers file left (DEL after removal) any range does: IPAM
	 * releases by container id */
	kg_key(g, "ranges");
	yajl_gen_array_open(g);
	yajl_gen_array_open(g);
	yajl_gen_map_open(g);
	kg_key_str(g, "subnet", self ? cni_ip_fmt(&self->subnet, true, buf) : "127.0.0.0/8");
	yajl_gen_map_close(g);
	yajl_gen_array_close(g);
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
	const char *pass[] = {"runtimeConfig", "prevResult", "args"};
	for (size_t i = 0; i < ARRAY_SIZE(pass); i++) {
		struct kj f;
		if (kj_field(&req->conf, pass[i], &f, &e) > 0) {
			kg_key(g, pass[i]);
			cni_gen_value(g, f.v);
		}
	}
	yajl_gen_map_close(g);
	*ret_type = xstrdup(type ? type : "kelp-bridge");
	return kg_finish(g, ret_len);
}

static int load(const struct cni_req *req, struct vx_conf *c, struct vx_peers *p, bool need_peers, struct cni_err *err)
{
	memset(p, 0, sizeof(*p));
	if (vx_conf_parse(&req->conf, c, err) < 0)
		return -1;
	if (vx_peers_load(c->peers_file, p, err) < 0) {
		if (need_peers)
			return -1;
		memset(err, 0, sizeof(*err));
	}
	return 0;
}

static int run_delegate(struct cni_req *req, const struct vx_conf *c, const struct vx_peers *p, const char *cmd,
			struct cni_result *ret, struct cni_err *err)
{
	cleanup_free char *type = NULL;
	size_t len;
	cleanup_free char *conf = delegate_conf(req, c, vx_peers_find(p, c->node), &type, &len);
	return cni_delegate_conf(req, type, cmd, conf, len, ret, err);
}

static int vx_add(struct cni_req *req, struct cni_result *ret, struct cni_err *err)
{
	struct vx_conf c;
	struct vx_peers p;
	int rc = load(req, &c, &p, true, err);
	if (rc == 0)
		rc = vx_sync(&c, &p, err);
	if (rc == 0)
		rc = run_delegate(req, &c, &p, "ADD", ret, err);
	vx_peers_free(&p);
	vx_conf_free(&c);
	return rc;
}

static int vx_del(struct cni_req *req, struct cni_err *err)
{
	struct vx_conf c;
	struct vx_peers p;
	int rc = load(req, &c, &p, false, err);
	if (rc == 0)
		rc = run_delegate(req, &c, &p, "DEL", NULL, err);
	vx_peers_free(&p);
	vx_conf_free(&c);
	return rc;
}

static int vx_check(struct cni_req *req, struct cni_err *err)
{
	struct vx_conf c;
	struct vx_peers p;
	int rc = load(req, &c, &p, true, err);
	if (rc == 0)
		rc = run_delegate(req, &c, &p, "CHECK", NULL, err);
	vx_peers_free(&p);
	vx_conf_free(&c);
	return rc;
}

static int vx_status(struct cni_req *req, struct cni_err *err)
{
	struct vx_conf c;
	struct vx_peers p;
	int rc = load(req, &c, &p, true, err);
	if (rc == 0 && !vx_peers_find(&p, c.node))
		rc = cni_fail(err, CNI_ERR_UNAVAILABLE, "node %s has no pod subnet in %s yet", c.node, c.peers_file);
	if (rc < 0 && err->code != CNI_ERR_UNAVAILABLE)
		err->code = CNI_ERR_UNAVAILABLE;
	if (rc == 0)
		rc = run_delegate(req, &c, &p, "STATUS", NULL, err);
	vx_peers_free(&p);
	vx_conf_free(&c);
	return rc;
}

static int vx_gc(struct cni_req *req, struct cni_err *err)
{
	struct vx_conf c;
	struct vx_peers p;
	int rc = load(req, &c, &p, false, err);
	if (rc == 0) {
		/* the delegate must see the valid attachments too */
		struct kj f;
		struct kelp_err e;
		cleanup_free char *type = NULL;
		size_t len;
		cleanup_free char *conf = delegate_conf(req, &c, vx_peers_find(&p, c.node), &type, &len);
		if (kj_field(&req->conf, "cni.dev/valid-attachments", &f, &e) > 0) {
			yajl_gen g = kg_new(false);
			yajl_gen_map_open(g);
			kg_key(g, "cni.dev/valid-attachments");
			cni_gen_value(g, f.v);
			yajl_gen_map_close(g);
			size_t l2;
			cleanup_free char *va = kg_finish(g, &l2);
			/* splice {"cni.dev/valid-attachments":...} into the object: drop its '}' and our '{' */
			char *joined = xasprintf("%.*s,%s", (int)(len - 1), conf, va + 1);
			free(conf);
			conf = joined;
			len = strlen(conf);
		}
		rc = cni_delegate_conf(req, type, "GC", conf, len, NULL, err);
	}
	vx_peers_free(&p);
	vx_conf_free(&c);
	return rc;
}

/* `kelp-vxlan sync|remove CONFIG`: the node agent's entry points. */
static int vx_cli(int argc, char **argv)
{
	if (argc != 3 || (strcmp(argv[1], "sync") != 0 && strcmp(argv[1], "remove") != 0)) {
		fprintf(stderr, "usage: kelp-vxlan sync|remove CONFIG\n");
		return 2;
	}
	cleanup_free char *text = NULL;
	size_t len;
	struct cni_err err = {0};
	struct kj root;
	if (kelp_read_file_at(AT_FDCWD, argv[2], 1 << 22, &text, &len, &err.k) < 0 ||
	    kj_parse(text, len, argv[2], &root, &err.k) < 0) {
		fprintf(stderr, "kelp-vxlan: %s\n", err.k.msg);
		return 1;
	}
	struct vx_conf c;
	struct vx_peers p = {0};
	int rc = vx_conf_parse(&root, &c, &err);
	if (rc == 0 && strcmp(argv[1], "sync") == 0) {
		rc = vx_peers_load(c.peers_file, &p, &err);
		if (rc == 0)
			rc = vx_sync(&c, &p, &err);
	} else if (rc == 0) {
		cleanup_free char *bridge = NULL;
		if (c.delegate.v)
			kj_opt_string(&c.delegate, "bridge", &bridge, &err.k);
		rc = vx_remove(&c, bridge ? bridge : "kelp-vx0", &err);
	}
	if (rc < 0)
		fprintf(stderr, "kelp-vxlan %s: %s\n", argv[1], err.k.msg);
	vx_peers_free(&p);
	vx_conf_free(&c);
	yajl_tree_free(root.v);
	return rc < 0 ? 1 : 0;
}

static const struct cni_plugin plugin = {
	.name = "kelp-vxlan",
	.add = vx_add,
	.del = vx_del,
	.check = vx_check,
	.status = vx_status,
	.gc = vx_gc,
	.cli = vx_cli,
};

int main(int argc, char **argv)
{
	return cni_main(argc, argv, &plugin);
}
