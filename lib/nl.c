#include "nl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/if_bridge.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"

struct nl {
	struct mnl_socket *s;
	uint32_t seq, portid;
};

#define NL_BUF 32768

int nl_netns_enter(int netns_fd, int *ret_saved, struct kelp_err *err)
{
	int saved = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (saved < 0)
		return kelp_error(err, errno, "open the current network namespace");
	if (setns(netns_fd, CLONE_NEWNET) < 0) {
		int e = errno;
		close(saved);
		return kelp_error(err, e, "enter network namespace");
	}
	*ret_saved = saved;
	return 0;
}

int nl_netns_leave(int saved, struct kelp_err *err)
{
	int r = setns(saved, CLONE_NEWNET);
	int e = errno;
	close(saved);
	if (r < 0)
		return kelp_error(err, e, "return to the original network namespace");
	return 0;
}

int nl_mnl_socket(int netns_fd, int bus, const char *what, struct mnl_socket **ret, struct kelp_err *err)
{
	int saved = -1;
	if (netns_fd >= 0 && nl_netns_enter(netns_fd, &saved, err) < 0)
		return -1;
	/* the socket belongs to the namespace it is made in, for its whole life */
	struct mnl_socket *s = mnl_socket_open2(bus, SOCK_CLOEXEC);
	int e = errno;
	if (saved >= 0 && nl_netns_leave(saved, err) < 0) {
		if (s)
			mnl_socket_close(s);
		return -1;
	}
	if (!s)
		return kelp_error(err, e, "open %s socket", what);
	if (mnl_socket_bind(s, 0, MNL_SOCKET_AUTOPID) < 0) {
		e = errno;
		mnl_socket_close(s);
		return kelp_error(err, e, "bind %s socket", what);
	}
	*ret = s;
	return 0;
}

int nl_open(int netns_fd, struct nl **ret, struct kelp_err *err)
{
	struct mnl_socket *s;
	if (nl_mnl_socket(netns_fd, NETLINK_ROUTE, "rtnetlink", &s, err) < 0)
		return -1;
	struct nl *nl = xcalloc(1, sizeof(*nl));
	nl->s = s;
	nl->portid = mnl_socket_get_portid(s);
	nl->seq = (uint32_t)time(NULL);
	*ret = nl;
	return 0;
}

void nl_close(struct nl *nl)
{
	if (!nl)
		return;
	mnl_socket_close(nl->s);
	free(nl);
}

/* Send one request and read until its ACK (or, for dumps, NLMSG_DONE). Returns -1 with errno. */
static int talk(struct nl *nl, struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
	char *buf = xmalloc(NL_BUF);
	nlh->nlmsg_seq = ++nl->seq;
	/* NLM_F_DUMP shares its bits with NLM_F_REPLACE | NLM_F_EXCL: only GETs dump */
	bool dump = (nlh->nlmsg_type % 4) == 2 && (nlh->nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP;
	if (!dump)
		nlh->nlmsg_flags |= NLM_F_ACK;
	int ret = -1;
	if (mnl_socket_sendto(nl->s, nlh, nlh->nlmsg_len) < 0)
		goto out;
	for (;;) {
		ssize_t n = mnl_socket_recvfrom(nl->s, buf, NL_BUF);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			goto out;
		}
		int r = mnl_cb_run(buf, (size_t)n, nl->seq, nl->portid, cb, data);
		if (r < 0)
			goto out;
		if (r == MNL_CB_STOP) {
			ret = 0;
			goto out;
		}
	}
out:;
	int e = errno;
	free(buf);
	errno = e;
	return ret;
}

static struct nlmsghdr *new_msg(char *buf, uint16_t type, uint16_t flags)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	return nlh;
}

/* ---- links -------------------------------------------------------------------------------- */

static int link_attr_cb(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;
	if (mnl_attr_type_valid(a, IFLA_MAX) < 0)
		return MNL_CB_OK;
	tb[mnl_attr_get_type(a)] = a;
	return MNL_CB_OK;
}

static int linkinfo_attr_cb(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;
	if (mnl_attr_type_valid(a, IFLA_INFO_MAX) < 0)
		return MNL_CB_OK;
	tb[mnl_attr_get_type(a)] = a;
	return MNL_CB_OK;
}

static int link_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nl_link *l = data;
	struct ifinfomsg *ifm = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[IFLA_MAX + 1] = {0};
	mnl_attr_parse(nlh, sizeof(*ifm), link_attr_cb, tb);
	memset(l, 0, sizeof(*l));
	l->index = ifm->ifi_index;
	l->flags = ifm->ifi_flags;
	if (tb[IFLA_IFNAME])
		snprintf(l->name, sizeof(l->name), "%s", mnl_attr_get_str(tb[IFLA_IFNAME]));
	if (tb[IFLA_MTU])
		l->mtu = mnl_attr_get_u32(tb[IFLA_MTU]);
	if (tb[IFLA_MASTER])
		l->master = (int)mnl_attr_get_u32(tb[IFLA_MASTER]);
	if (tb[IFLA_ADDRESS] && mnl_attr_get_payload_len(tb[IFLA_ADDRESS]) == 6)
		memcpy(l->mac, mnl_attr_get_payload(tb[IFLA_ADDRESS]), 6);
	if (tb[IFLA_LINKINFO]) {
		const struct nlattr *li[IFLA_INFO_MAX + 1] = {0};
		mnl_attr_parse_nested(tb[IFLA_LINKINFO], linkinfo_attr_cb, li);
		if (li[IFLA_INFO_KIND])
			snprintf(l->kind, sizeof(l->kind), "%s", mnl_attr_get_str(li[IFLA_INFO_KIND]));
	}
	return MNL_CB_OK;
}

static int link_get(struct nl *nl, const char *name, int index, struct nl_link *ret, struct kelp_err *err)
{
	char buf[1024];
	struct nlmsghdr *nlh = new_msg(buf, RTM_GETLINK, 0);
	struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	ifm->ifi_family = AF_UNSPEC;
	ifm->ifi_index = index;
	if (name)
		mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	struct nl_link l;
	memset(&l, 0, sizeof(l));
	l.index = -1;
	if (talk(nl, nlh, link_cb, &l) < 0 || l.index < 0) {
		int e = errno ? errno : ENODEV;
		if (e == ENODEV || e == ENOENT)
			return name ? kelp_fail(err, ENODEV, "link %s does not exist", name)
				    : kelp_fail(err, ENODEV, "link #%d does not exist", index);
		return name ? kelp_error(err, e, "get link %s", name) : kelp_error(err, e, "get link #%d", index);
	}
	*ret = l;
	return 0;
}

int nl_link_get(struct nl *nl, const char *name, struct nl_link *ret, struct kelp_err *err)
{
	if (!name || !*name || strlen(name) >= IF_NAMESIZE)
		return kelp_fail(err, EINVAL, "link name \"%s\" is not valid", name ? name : "");
	errno = 0;
	return link_get(nl, name, 0, ret, err);
}

int nl_link_get_index(struct nl *nl, int index, struct nl_link *ret, struct kelp_err *err)
{
	errno = 0;
	return link_get(nl, NULL, index, ret, err);
}

static int link_change(struct nl *nl, int index, unsigned flags, unsigned change, int attr, uint32_t value,
		       struct kelp_err *err, const char *what)
{
	char buf[1024];
	struct nlmsghdr *nlh = new_msg(buf, RTM_NEWLINK, 0);
	struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	ifm->ifi_family = AF_UNSPEC;
	ifm->ifi_index = index;
	ifm->ifi_flags = flags;
	ifm->ifi_change = change;
	if (attr)
		mnl_attr_put_u32(nlh, attr, value);
	if (talk(nl, nlh, NULL, NULL) < 0)
		return kelp_error(err, errno, "%s of link #%d", what, index);
	return 0;
}

int nl_link_set_up(struct nl *nl, int index, bool up, struct kelp_err *err)
{
	return link_change(nl, index, up ? IFF_UP : 0, IFF_UP, 0, 0, err, up ? "set up" : "set down");
}

int nl_link_set_promisc(struct nl *nl, int index, bool on, struct kelp_err *err)
{
	return link_change(nl, index, on ? IFF_PROMISC : 0, IFF_PROMISC, 0, 0, err, "set promiscuous mode");
}

int nl_link_set_mtu(struct nl *nl, int index, uint32_t mtu, struct kelp_err *err)
{
	return link_change(nl, index, 0, 0, IFLA_MTU, mtu, err, "set the MTU");
}

int nl_link_set_master(struct nl *nl, int index, int master, struct kelp_err *err)
{
	return link_change(nl, index, 0, 0, IFLA_MASTER, (uint32_t)master, err, "set the master");
}

int nl_link_set_mac(struct nl *nl, int index, const uint8_t mac[6], struct kelp_err *err)
{
	char buf[1024];
	struct nlmsghdr *nlh = new_msg(buf, RTM_NEWLINK, 0);
	struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	ifm->ifi_family = AF_UNSPEC;
	ifm->ifi_index = index;
	mnl_attr_put(nlh, IFLA_ADDRESS, 6, mac);
	if (talk(nl, nlh, NULL, NULL) < 0)
		return kelp_error(err, errno, "set the MAC address of link #%d", index);
	return 0;
}

int nl_link_del(struct nl *nl, int index, struct kelp_err *err)
{
	char buf[1024];
	struct nlmsghdr *nlh = new_msg(buf, RTM_DELLINK, 0);
	struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	ifm->ifi_family = AF_UNSPEC;
	ifm->ifi_index = index;
	if (talk(nl, nlh, NULL, NULL) < 0)
		return kelp_error(err, errno, "delete link #%d", index);
	return 0;
}

static struct nlmsghdr *newlink_msg(char *buf, const char *name, uint32_t mtu)
{
	struct nlmsghdr *nlh = new_msg(buf, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
	struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	ifm->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	if (mtu)
		mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
	return nlh;
}

int nl_bridge_add(struct nl *nl, const char *name, uint32_t mtu, bool vlan_filtering, struct kelp_err *err)
{
	char buf[1024];
	struct nlmsghdr *nlh = newlink_msg(buf, name, mtu);
	struct nlattr *li = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "bridge");
	if (vlan_filtering) {
		struct nlattr *d = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
		mnl_attr_put_u8(nlh, IFLA_BR_VLAN_FILTERING, 1);
		mnl_attr_nest_end(nlh, d);
	}
	mnl_attr_nest_end(nlh, li);
	if (talk(nl, nlh, NULL, NULL) < 0)
		return kelp_error(err, errno, "create bridge %s", name);
	return 0;
}

int nl_veth_add(struct nl *nl, const char *name, const char *peer, int peer_netns_fd, uint32_t mtu,
		struct kelp_err *err)
{
	char buf[1024];
	struct nlmsghdr *nlh = newlink_msg(buf, name, mtu);
	struct nlattr *li = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
	struct nlattr *d = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
	struct nlattr *p = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
	struct ifinfomsg *pifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*pifm));
	memset(pifm, 0, sizeof(*pifm));
	mnl_attr_put_strz(nlh, IFLA_IFNAME, peer);
	if (mtu)
		mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
	if (peer_netns_fd >= 0)
		mnl_attr_put_u32(nlh, IFLA_NET_NS_FD, (uint32_t)peer_netns_fd);
	mnl_attr_nest_end(nlh, p);
	mnl_attr_nest_end(nlh, d);
	mnl_attr_nest_end(nlh, li);
	if (talk(nl, nlh, NULL, NULL) < 0)
		return kelp_error(err, errno, "create veth pair %s / %s", name, peer);
	return 0;
}

int nl_brport_set_hairpin(struct nl *nl, int index, bool on, struct kelp_err *err)
{
	char buf[1024];
	struct nlmsghdr *nlh = new_msg(buf, RTM_SETLINK, 0);
	struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	ifm->ifi_family = AF_BRIDGE;
	ifm->ifi_index = index;
	struct nlattr *p = mnl_attr_nest_start(nlh, IFLA_PROTINFO | NLA_F_NESTED);
	mnl_attr_put_u8(nlh, IFLA_BRPORT_MODE, on ? 1 : 0);
	mnl_attr_nest_end(nlh, p);
	if (talk(nl, nlh, NULL, NULL) < 0)
		return kelp_error(err, errno, "set hairpin mode of bridge port #%d", index);
	return 0;
}

int nl_bridge_vlan(struct nl *nl, int index, uint16_t vid, bool pvid, bool untagged, bool del, struct kelp_err *err)
{
	char buf[1024];
	struct nlmsghdr *nlh = new_msg(buf, del ? RTM_DELLINK : RTM_SETLINK, 0);
	struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	ifm->ifi_family = AF_BRIDGE;
	ifm->ifi_index = index;
	struct nlattr *spec = mnl_attr_nest_start(nlh, IFLA_AF_SPEC);
	struct bridge_vlan_info vi = {.vid = vid};
	if (pvid)
		vi.flags |= BRIDGE_VLAN_INFO_PVID;
	if (untagged)
		vi.flags |= BRIDGE_VLAN_INFO_UNTAGGED;
	mnl_attr_put(nlh, IFLA_BRIDGE_VLAN_INFO, sizeof(vi), &vi);
	mnl_attr_nest_end(nlh, spec);
	if (talk(nl, nlh, NULL, NULL) < 0)
		return kelp_error(err, errno, "%s vlan %u on bridge port #%d", del ? "delete" : "add", vid, index);
	return 0;
}

int nl_vxlan_add(struct nl *nl, const struct nl_vxlan *v, struct kelp_err *err)
{
	char buf[1024];
	struct nlmsghdr *nlh = newlink_msg(buf, v->name, v->mtu);
	if (v->mac)
		mnl_attr_put(nlh, IFLA_ADDRESS, 6, v->mac);
	struct nlattr *li = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "vxlan");
	struct nlattr *d = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
	mnl_attr_put_u32(nlh, IFLA_VXLAN_ID, v->vni);
	if (v->family == AF_INET)
		mnl_attr_put(nlh, IFLA_VXLAN_LOCAL, 4, v->local);
	else if (v->family == AF_INET6)
		mnl_attr_put(nlh, IFLA_VXLAN_LOCAL6, 16, v->local);
	if (v->dev_index)
		mnl_attr_put_u32(nlh, IFLA_VXLAN_LINK, (uint32_t)v->dev_index);
	mnl_attr_put_u16(nlh, IFLA_VXLAN_PORT, htons(v->port));
	mnl_attr_put_u8(nlh, IFLA_VXLAN_LEARNING, v->learning ? 1 : 0);
	mnl_attr_nest_end(nlh, d);
	mnl_attr_nest_end(nlh, li);
	if (talk(nl, nlh, NULL, NULL) < 0)
		return kelp_error(err, errno, "create vxlan %s (vni %u)", v->name, v->vni);
	return 0;
}

/* ---- addresses ---------------------------------------------------------------------------- */

static const char *addr_str(int family, const uint8_t *a, int prefix, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];
	if (!inet_ntop(family, a, ip, sizeof(ip)))
		strcpy(ip, "?");
	if (prefix >= 0)
		snprintf(buf, len, "%s/%d", ip, prefix);
	else
		snprintf(buf, len, "%s", ip);
	return buf;
}

static int alen(int family)
{
	return family == AF_INET ? 4 : 16;
}

static int addr_msg(struct nl *nl, uint16_t type, uint16_t flags, int index, int family, const uint8_t *addr,
		    int prefix, uint32_t ifa_flags)
{
	char buf[1024];
	struct nlmsghdr *nlh = new_msg(buf, type, flags);
	struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = (uint8_t)family;
	ifa->ifa_prefixlen = (uint8_t)prefix;
	ifa->ifa_index = (uint32_t)index;
	ifa->ifa_scope = RT_SCOPE_UNIVERSE;
	mnl_attr_put(nlh, IFA_LOCAL, alen(family), addr);
	mnl_attr_put(nlh, IFA_ADDRESS, alen(family), addr);
	if (family == AF_INET && prefix < 31) {
		/* the broadcast address `ip addr add ... brd +` would set */
		uint32_t a;
		memcpy(&a, addr, 4);
		uint32_t mask = prefix == 0 ? 0 : htonl(~((1u << (32 - prefix)) - 1));
		uint32_t brd = a | ~mask;
		mnl_attr_put(nlh, IFA_BROADCAST, 4, &brd);
	}
	if (ifa_flags)
		mnl_attr_put_u32(nlh, IFA_FLAGS, ifa_flags);
	return talk(nl, nlh, NULL, NULL);
}

int nl_addr_add(struct nl *nl, int index, int family, const uint8_t *addr, int prefix, uint32_t flags,
		struct kelp_err *err)
{
	char s[64];
	if (addr_msg(nl, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, index, family, addr, prefix, flags) < 0)
		return kelp_error(err, errno, "add address %s to link #%d", addr_str(family, addr, prefix, s, sizeof(s)),
				  index);
	return 0;
}

int nl_addr_del(struct nl *nl, int index, int family, const uint8_t *addr, int prefix, struct kelp_err *err)
{
	char s[64];
	if (addr_msg(nl, RTM_DELADDR, 0, index, family, addr, prefix, 0) < 0)
		return kelp_error(err, errno, "delete address %s from link #%d",
				  addr_str(family, addr, prefix, s, sizeof(s)), index);
	return 0;
}

struct addr_list {
	int index, family;
	struct nl_addr *v;
	size_t n;
};

static int addr_attr_cb(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;
	if (mnl_attr_type_valid(a, IFA_MAX) < 0)
		return MNL_CB_OK;
	tb[mnl_attr_get_type(a)] = a;
	return MNL_CB_OK;
}

static int addr_cb(const struct nlmsghdr *nlh, void *data)
{
	struct addr_list *l = data;
	struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
	if ((int)ifa->ifa_index != l->index || (l->family && ifa->ifa_family != l->family))
		return MNL_CB_OK;
	if (ifa->ifa_family != AF_INET && ifa->ifa_family != AF_INET6)
		return MNL_CB_OK;
	const struct nlattr *tb[IFA_MAX + 1] = {0};
	mnl_attr_parse(nlh, sizeof(*ifa), addr_attr_cb, tb);
	const struct nlattr *a = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
	if (!a || mnl_attr_get_payload_len(a) != (uint16_t)alen(ifa->ifa_family))
		return MNL_CB_OK;
	l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
	struct nl_addr *x = &l->v[l->n++];
	memset(x, 0, sizeof(*x));
	x->family = ifa->ifa_family;
	x->prefix = ifa->ifa_prefixlen;
	memcpy(x->addr, mnl_attr_get_payload(a), alen(ifa->ifa_family));
	return MNL_CB_OK;
}

int nl_addr_list(struct nl *nl, int index, int family, struct nl_addr **ret, size_t *ret_n, struct kelp_err *err)
{
	char buf[256];
	struct nlmsghdr *nlh = new_msg(buf, RTM_GETADDR, NLM_F_DUMP);
	struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = (uint8_t)family;
	struct addr_list l = {.index = index, .family = family};
	if (talk(nl, nlh, addr_cb, &l) < 0) {
		free(l.v);
		return kelp_error(err, errno, "list addresses of link #%d", index);
	}
	*ret = l.v;
	*ret_n = l.n;
	return 0;
}

/* ---- routes ------------------------------------------------------------------------------- */

static const char *route_str(const struct nl_route *r, char *buf, size_t len)
{
	char d[64], g[64];
	addr_str(r->family, r->dst, r->dst_len, d, sizeof(d));
	if (r->has_gw)
		snprintf(buf, len, "%s via %s", d, addr_str(r->family, r->gw, -1, g, sizeof(g)));
	else
		snprintf(buf, len, "%s", d);
	return buf;
}

static void route_fill(struct nlmsghdr *nlh, const struct nl_route *r, bool del)
{
	struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = (uint8_t)r->family;
	rtm->rtm_dst_len = (uint8_t)r->dst_len;
	rtm->rtm_table = r->table && r->table < 256 ? (uint8_t)r->table : (r->table ? RT_TABLE_UNSPEC : RT_TABLE_MAIN);
	rtm->rtm_protocol = del ? 0 : RTPROT_BOOT;
	rtm->rtm_type = RTN_UNICAST;
	if (r->scope >= 0)
		rtm->rtm_scope = (uint8_t)r->scope;
	else if (del)
		rtm->rtm_scope = RT_SCOPE_NOWHERE;
	else
		rtm->rtm_scope = (r->has_gw || r->family == AF_INET6) ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
	if (r->onlink)
		rtm->rtm_flags |= RTNH_F_ONLINK;
	if (r->table >= 256)
		mnl_attr_put_u32(nlh, RTA_TABLE, r->table);
	if (r->dst_len > 0)
		mnl_attr_put(nlh, RTA_DST, alen(r->family), r->dst);
	if (r->has_gw)
		mnl_attr_put(nlh, RTA_GATEWAY, alen(r->family), r->gw);
	if (r->oif)
		mnl_attr_put_u32(nlh, RTA_OIF, (uint32_t)r->oif);
	if (r->priority)
		mnl_attr_put_u32(nlh, RTA_PRIORITY, r->priority);
	if (!del && (r->mtu || r->advmss)) {
		struct nlattr *m = mnl_attr_nest_start(nlh, RTA_METRICS);
		if (r->mtu)
			mnl_attr_put_u32(nlh, RTAX_MTU, r->mtu);
		if (r->advmss)
			mnl_attr_put_u32(nlh, RTAX_ADVMSS, r->advmss);
		mnl_attr_nest_end(nlh, m);
	}
}

int nl_route_add(struct nl *nl, const struct nl_route *r, bool replace, struct kelp_err *err)
{
	char buf[1024], s[160];
	struct nlmsghdr *nlh = new_msg(buf, RTM_NEWROUTE, NLM_F_CREATE | (replace ? NLM_F_REPLACE : NLM_F_EXCL));
	route_fill(nlh, r, false);
	if (talk(nl, nlh, NULL, NULL) < 0)
		return kelp_error(err, errno, "add route %s", route_str(r, s, sizeof(s)));
	return 0;
}

int nl_route_del(struct nl *nl, const struct nl_route *r, struct kelp_err *err)
{
	char buf[1024], s[160];
	struct nlmsghdr *nlh = new_msg(buf, RTM_DELROUTE, 0);
	route_fill(nlh, r, true);
	if (talk(nl, nlh, NULL, NULL) < 0)
		return kelp_error(err, errno, "delete route %s", route_str(r, s, sizeof(s)));
	return 0;
}

struct route_list {
	int family;
	struct nl_route *v;
	size_t n;
};

static int route_attr_cb(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;
	if (mnl_attr_type_valid(a, RTA_MAX) < 0)
		return MNL_CB_OK;
	tb[mnl_attr_get_type(a)] = a;
	return MNL_CB_OK;
}

static int route_cb(const struct nlmsghdr *nlh, void *data)
{
	struct route_list *l = data;
	struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
	if (rtm->rtm_family != l->family || rtm->rtm_type != RTN_UNICAST)
		return MNL_CB_OK;
	const struct nlattr *tb[RTA_MAX + 1] = {0};
	mnl_attr_parse(nlh, sizeof(*rtm), route_attr_cb, tb);
	uint32_t table = tb[RTA_TABLE] ? mnl_attr_get_u32(tb[RTA_TABLE]) : rtm->rtm_table;
	if (table != RT_TABLE_MAIN)
		return MNL_CB_OK;
	l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
	struct nl_route *r = &l->v[l->n++];
	memset(r, 0, sizeof(*r));
	r->family = rtm->rtm_family;
	r->dst_len = rtm->rtm_dst_len;
	r->scope = rtm->rtm_scope;
	r->table = table;
	if (tb[RTA_DST])
		memcpy(r->dst, mnl_attr_get_payload(tb[RTA_DST]), alen(r->family));
	if (tb[RTA_GATEWAY]) {
		r->has_gw = true;
		memcpy(r->gw, mnl_attr_get_payload(tb[RTA_GATEWAY]), alen(r->family));
	}
	if (tb[RTA_OIF])
		r->oif = (int)mnl_attr_get_u32(tb[RTA_OIF]);
	if (tb[RTA_PRIORITY])
		r->priority = mnl_attr_get_u32(tb[RTA_PRIORITY]);
	return MNL_CB_OK;
}

int nl_route_list(struct nl *nl, int family, struct nl_route **ret, size_t *ret_n, struct kelp_err *err)
{
	char buf[256];
	struct nlmsghdr *nlh = new_msg(buf, RTM_GETROUTE, NLM_F_DUMP);
	struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = (uint8_t)family;
	struct route_list l = {.family = family};
	if (talk(nl, nlh, route_cb, &l) < 0) {
		free(l.v);
		return kelp_error(err, errno, "list routes");
	}
	*ret = l.v;
	*ret_n = l.n;
	return 0;
}

/* ---- neighbours and FDB ------------------------------------------------------------------- */

static int neigh_msg(struct nl *nl, uint16_t type, uint16_t flags, uint8_t family, int index, uint8_t ntf,
		     const uint8_t *dst, int dst_family, const uint8_t *lladdr)
{
	char buf[1024];
	struct nlmsghdr *nlh = new_msg(buf, type, flags);
	struct ndmsg *nd = mnl_nlmsg_put_extra_header(nlh, sizeof(*nd));
	nd->ndm_family = family;
	nd->ndm_ifindex = index;
	nd->ndm_state = NUD_PERMANENT;
	nd->ndm_flags = ntf;
	if (dst)
		mnl_attr_put(nlh, NDA_DST, alen(dst_family), dst);
	if (lladdr)
		mnl_attr_put(nlh, NDA_LLADDR, 6, lladdr);
	return talk(nl, nlh, NULL, NULL);
}

int nl_neigh_set(struct nl *nl, int index, int family, const uint8_t *ip, const uint8_t mac[6], struct kelp_err *err)
{
	char s[64];
	if (neigh_msg(nl, RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, (uint8_t)family, index, 0, ip, family, mac) < 0)
		return kelp_error(err, errno, "set neighbour %s on link #%d", addr_str(family, ip, -1, s, sizeof(s)), index);
	return 0;
}

int nl_neigh_del(struct nl *nl, int index, int family, const uint8_t *ip, struct kelp_err *err)
{
	char s[64];
	if (neigh_msg(nl, RTM_DELNEIGH, 0, (uint8_t)family, index, 0, ip, family, NULL) < 0)
		return kelp_error(err, errno, "delete neighbour %s on link #%d", addr_str(family, ip, -1, s, sizeof(s)),
				  index);
	return 0;
}

int nl_fdb_set(struct nl *nl, int index, const uint8_t mac[6], int family, const uint8_t *dst, struct kelp_err *err)
{
	char m[18];
	if (neigh_msg(nl, RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, AF_BRIDGE, index, NTF_SELF, dst, family, mac) < 0)
		return kelp_error(err, errno, "set fdb entry %s on link #%d", (nl_mac_fmt(mac, m), m), index);
	return 0;
}

int nl_fdb_del(struct nl *nl, int index, const uint8_t mac[6], int family, const uint8_t *dst, struct kelp_err *err)
{
	char m[18];
	if (neigh_msg(nl, RTM_DELNEIGH, 0, AF_BRIDGE, index, NTF_SELF, dst, family, mac) < 0)
		return kelp_error(err, errno, "delete fdb entry %s on link #%d", (nl_mac_fmt(mac, m), m), index);
	return 0;
}

struct neigh_list {
	int index, family;
	struct nl_neigh *v;
	size_t n;
};

static int neigh_attr_cb(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;
	if (mnl_attr_type_valid(a, NDA_MAX) < 0)
		return MNL_CB_OK;
	tb[mnl_attr_get_type(a)] = a;
	return MNL_CB_OK;
}

static int neigh_cb(const struct nlmsghdr *nlh, void *data)
{
	struct neigh_list *l = data;
	struct ndmsg *nd = mnl_nlmsg_get_payload(nlh);
	if (nd->ndm_ifindex != l->index || nd->ndm_family != l->family)
		return MNL_CB_OK;
	const struct nlattr *tb[NDA_MAX + 1] = {0};
	mnl_attr_parse(nlh, sizeof(*nd), neigh_attr_cb, tb);
	l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
	struct nl_neigh *x = &l->v[l->n++];
	memset(x, 0, sizeof(*x));
	x->state = nd->ndm_state;
	if (tb[NDA_LLADDR] && mnl_attr_get_payload_len(tb[NDA_LLADDR]) == 6)
		memcpy(x->mac, mnl_attr_get_payload(tb[NDA_LLADDR]), 6);
	if (tb[NDA_DST]) {
		uint16_t len = mnl_attr_get_payload_len(tb[NDA_DST]);
		if (len == 4 || len == 16) {
			x->family = len == 4 ? AF_INET : AF_INET6;
			x->has_ip = true;
			memcpy(x->ip, mnl_attr_get_payload(tb[NDA_DST]), len);
		}
	}
	return MNL_CB_OK;
}

int nl_neigh_list(struct nl *nl, int index, int family, struct nl_neigh **ret, size_t *ret_n, struct kelp_err *err)
{
	char buf[256];
	struct nlmsghdr *nlh = new_msg(buf, RTM_GETNEIGH, NLM_F_DUMP);
	struct ndmsg *nd = mnl_nlmsg_put_extra_header(nlh, sizeof(*nd));
	nd->ndm_family = (uint8_t)family;
	struct neigh_list l = {.index = index, .family = family};
	if (talk(nl, nlh, neigh_cb, &l) < 0) {
		free(l.v);
		return kelp_error(err, errno, "list %s entries of link #%d", family == AF_BRIDGE ? "fdb" : "neighbour", index);
	}
	*ret = l.v;
	*ret_n = l.n;
	return 0;
}

void nl_mac_fmt(const uint8_t mac[6], char buf[18])
{
	snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
}

int nl_mac_parse(const char *s, uint8_t ret[6])
{
	unsigned v[6];
	int n = 0;
	if (!s || sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%n", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &n) != 6 ||
	    s[n] != '\0' || strlen(s) != 17)
		return -1;
	for (int i = 0; i < 6; i++)
		ret[i] = (uint8_t)v[i];
	return 0;
}
