/* kelp-vxlan's overlay: the config, the peers file a node agent rewrites, and the incremental
 * sync of the VXLAN device with exactly one route, one neighbour and one FDB entry per peer. */
#pragma once
#include <stdint.h>

#include "cni.h"
#include "ip.h"

struct vx_peer {
	char *name;
	struct cni_ip underlay; /* IPv4 */
	struct cni_ip subnet;	/* pod subnet, IPv4 */
	uint8_t mac[6];
};

struct vx_conf {
	char *node, *peers_file, *device;
	uint32_t vni, mtu;
	uint16_t port;
	struct kj delegate; /* .v NULL: none */
};

struct vx_peers {
	size_t n;
	struct vx_peer *v;
};

int vx_conf_parse(const struct kj *conf, struct vx_conf *ret, struct cni_err *err);
void vx_conf_free(struct vx_conf *c);
int vx_peers_load(const char *path, struct vx_peers *ret, struct cni_err *err);
/* The same from a buffer (what names it in errors). */
int vx_peers_parse(const char *text, size_t len, const char *what, struct vx_peers *ret, struct cni_err *err);
void vx_peers_free(struct vx_peers *p);
const struct vx_peer *vx_peers_find(const struct vx_peers *p, const char *name);

/* Bring the device and the per-peer entries to what the peers file says (current netns). */
int vx_sync(const struct vx_conf *c, const struct vx_peers *p, struct cni_err *err);
/* The network's removal: delete the VXLAN device (its routes, neighbours and FDB go with it)
 * and the pods' bridge, if they exist. */
int vx_remove(const struct vx_conf *c, const char *bridge, struct cni_err *err);
