/* Netlink (rtnetlink over libmnl): links, veth, bridge, vxlan, addresses, routes, neighbours and
 * FDB entries. A handle is bound to the network namespace it was opened in (the socket is made
 * inside that namespace), so a caller works on a container's netns without entering it.
 * Errors carry the kernel's errno and name the object ("add address 10.1.0.2/24 to eth0: File
 * exists"). Addresses are raw bytes in network order with their family (4 or 16 bytes). */
#pragma once
#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct nl;

/* A bound libmnl socket of netlink `bus` made inside netns_fd (-1: the caller's namespace);
 * `what` names it in errors. Shared by nl_open and nft_open. */
struct mnl_socket;
int nl_mnl_socket(int netns_fd, int bus, const char *what, struct mnl_socket **ret, struct kelp_err *err);

/* Open a handle in the namespace netns_fd (-1: the caller's). */
int nl_open(int netns_fd, struct nl **ret, struct kelp_err *err);
void nl_close(struct nl *nl);
static inline void nl_closep(struct nl **p)
{
	if (*p)
		nl_close(*p);
}
#define cleanup_nl __attribute__((cleanup(nl_closep)))

/* Run the calling thread inside netns_fd until nl_netns_leave (for sysctls and /proc/sys/net). */
int nl_netns_enter(int netns_fd, int *ret_saved, struct kelp_err *err);
int nl_netns_leave(int saved, struct kelp_err *err);

struct nl_link {
	int index;
	char name[IF_NAMESIZE];
	unsigned flags; /* IFF_* */
	uint32_t mtu;
	uint8_t mac[6];
	int master; /* 0: none */
	char kind[16]; /* "bridge", "veth", "vxlan"; "" for plain devices */
};

/* Look a link up; ENODEV (in err->code) when there is none. */
int nl_link_get(struct nl *nl, const char *name, struct nl_link *ret, struct kelp_err *err);
int nl_link_get_index(struct nl *nl, int index, struct nl_link *ret, struct kelp_err *err);
int nl_link_set_up(struct nl *nl, int index, bool up, struct kelp_err *err);
int nl_link_set_promisc(struct nl *nl, int index, bool on, struct kelp_err *err);
int nl_link_set_mtu(struct nl *nl, int index, uint32_t mtu, struct kelp_err *err);
int nl_link_set_master(struct nl *nl, int index, int master, struct kelp_err *err);
int nl_link_set_mac(struct nl *nl, int index, const uint8_t mac[6], struct kelp_err *err);
int nl_link_del(struct nl *nl, int index, struct kelp_err *err);

/* A bridge (mtu 0: the default); vlan_filtering turns on 802.1Q filtering. */
int nl_bridge_add(struct nl *nl, const char *name, uint32_t mtu, bool vlan_filtering, struct kelp_err *err);
/* A veth pair: `name` here, `peer` created directly inside peer_netns_fd (-1: here too). */
int nl_veth_add(struct nl *nl, const char *name, const char *peer, int peer_netns_fd, uint32_t mtu,
		struct kelp_err *err);
/* Bridge port settings of a link enslaved to a bridge. */
int nl_brport_set_hairpin(struct nl *nl, int index, bool on, struct kelp_err *err);
/* 802.1Q on a bridge port: add vid (pvid + untagged as asked) or delete it. */
int nl_bridge_vlan(struct nl *nl, int index, uint16_t vid, bool pvid, bool untagged, bool del, struct kelp_err *err);

struct nl_vxlan {
	const char *name;
	uint32_t vni;
	int family; /* of local: AF_INET or AF_INET6 */
	uint8_t local[16];
	int dev_index; /* underlay device, 0: any */
	uint16_t port; /* UDP port, host order */
	uint32_t mtu;  /* 0: default */
	bool learning;
	const uint8_t *mac; /* NULL: kernel-chosen */
};
int nl_vxlan_add(struct nl *nl, const struct nl_vxlan *v, struct kelp_err *err);

struct nl_addr {
	int family;
	uint8_t addr[16];
	int prefix;
};
/* IFA_F_NODAD etc. in flags. Adding an existing address fails with EEXIST. */
int nl_addr_add(struct nl *nl, int index, int family, const uint8_t *addr, int prefix, uint32_t flags,
		struct kelp_err *err);
int nl_addr_del(struct nl *nl, int index, int family, const uint8_t *addr, int prefix, struct kelp_err *err);
/* Addresses of a link (family 0: both); *ret is malloc'd. */
int nl_addr_list(struct nl *nl, int index, int family, struct nl_addr **ret, size_t *ret_n, struct kelp_err *err);

struct nl_route {
	int family;
	uint8_t dst[16];
	int dst_len;
	bool has_gw;
	uint8_t gw[16];
	int oif;	   /* 0: none */
	uint32_t table;	   /* 0: main */
	int scope;	   /* -1: kernel default (universe, or link without a gateway) */
	uint32_t priority; /* 0: none */
	uint32_t mtu, advmss;
	bool onlink;
};
/* replace: NLM_F_REPLACE instead of NLM_F_EXCL. */
int nl_route_add(struct nl *nl, const struct nl_route *r, bool replace, struct kelp_err *err);
int nl_route_del(struct nl *nl, const struct nl_route *r, struct kelp_err *err);
/* Routes of the main table (family AF_INET/AF_INET6); *ret is malloc'd. */
int nl_route_list(struct nl *nl, int family, struct nl_route **ret, size_t *ret_n, struct kelp_err *err);

/* Permanent neighbour entries (ARP / NDP) and bridge FDB entries (dst: remote VTEP). */
int nl_neigh_set(struct nl *nl, int index, int family, const uint8_t *ip, const uint8_t mac[6], struct kelp_err *err);
int nl_neigh_del(struct nl *nl, int index, int family, const uint8_t *ip, struct kelp_err *err);
int nl_fdb_set(struct nl *nl, int index, const uint8_t mac[6], int family, const uint8_t *dst, struct kelp_err *err);
int nl_fdb_del(struct nl *nl, int index, const uint8_t mac[6], int family, const uint8_t *dst, struct kelp_err *err);

struct nl_neigh {
	int family; /* of ip/dst */
	uint8_t ip[16]; /* neighbours: the address; FDB: the remote VTEP (has_ip) */
	bool has_ip;
	uint8_t mac[6];
	uint16_t state; /* NUD_* */
};
/* Neighbour entries (family AF_INET/AF_INET6) or FDB entries (AF_BRIDGE) of a link. */
int nl_neigh_list(struct nl *nl, int index, int family, struct nl_neigh **ret, size_t *ret_n, struct kelp_err *err);

/* "aa:bb:cc:dd:ee:ff" */
void nl_mac_fmt(const uint8_t mac[6], char buf[18]);
int nl_mac_parse(const char *s, uint8_t ret[6]);
