/* linux.netDevices: move host network interfaces into the container's network namespace.
 * Plain rtnetlink messages, no library: kelp is linked statically and Debian ships libmnl only
 * as a shared library. The kernel drops an interface's addresses when it changes namespace, so
 * the permanent global ones are read first and added again (runtime-spec), then the interface
 * is brought up. Everything that can be checked is checked before the first move. */
#include "netdev.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"

#define NL_BUF 32768

struct req {
	struct nlmsghdr n;
	union {
		struct ifinfomsg ifi;
		struct ifaddrmsg ifa;
	};
	char attrs[256];
};

static void add_attr(struct nlmsghdr *n, unsigned short type, const void *data, size_t len)
{
	struct rtattr *a = (struct rtattr *)((char *)n + NLMSG_ALIGN(n->nlmsg_len));
	a->rta_type = type;
	a->rta_len = (unsigned short)RTA_LENGTH(len);
	memcpy(RTA_DATA(a), data, len);
	n->nlmsg_len = NLMSG_ALIGN(n->nlmsg_len) + RTA_ALIGN(a->rta_len);
}

static int rtnl_socket(void)
{
	return socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
}

/* Send one request and read its answer: 0, or -errno from the kernel's ack. For a dump or a
 * GET, cb sees every message of the answer. */
static int rtnl_talk(int fd, struct nlmsghdr *n, int (*cb)(struct nlmsghdr *m, void *data), void *data)
{
	static uint32_t seq;
	n->nlmsg_seq = ++seq;
	n->nlmsg_flags |= NLM_F_REQUEST | (cb ? 0 : NLM_F_ACK);
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	if (sendto(fd, n, n->nlmsg_len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	cleanup_free char *buf = xmalloc(NL_BUF);
	for (;;) {
		ssize_t len = recv(fd, buf, NL_BUF, 0);
		if (len < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (struct nlmsghdr *m = (struct nlmsghdr *)buf; NLMSG_OK(m, (size_t)len); m = NLMSG_NEXT(m, len)) {
			if (m->nlmsg_seq != n->nlmsg_seq)
				continue;
			if (m->nlmsg_type == NLMSG_ERROR) {
				struct nlmsgerr *e = NLMSG_DATA(m);
				return e->error;
			}
			if (m->nlmsg_type == NLMSG_DONE)
				return 0;
			if (cb && cb(m, data) < 0)
				return -EIO;
			if (cb && !(m->nlmsg_flags & NLM_F_MULTI))
				return 0;
		}
	}
}

/* ---- lookups ------------------------------------------------------------------------------ */

struct link_info {
	int index;
	char name[IFNAMSIZ];
};

static int link_cb(struct nlmsghdr *m, void *data)
{
	struct link_info *li = data;
	if (m->nlmsg_type != RTM_NEWLINK)
		return 0;
	struct ifinfomsg *ifi = NLMSG_DATA(m);
	li->index = ifi->ifi_index;
	int len = (int)IFLA_PAYLOAD(m);
	for (struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len))
		if (a->rta_type == IFLA_IFNAME)
			snprintf(li->name, sizeof(li->name), "%s", (char *)RTA_DATA(a));
	return 0;
}

/* The link named `name` (index 0 for a lookup by name) or with `index`: 0, -ENODEV, or -errno. */
static int link_get(int fd, const char *name, int index, struct link_info *ret)
{
	struct req r = { 0 };
	r.n.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
	r.n.nlmsg_type = RTM_GETLINK;
	r.ifi.ifi_family = AF_UNSPEC;
	r.ifi.ifi_index = index;
	if (name)
		add_attr(&r.n, IFLA_IFNAME, name, strlen(name) + 1);
	memset(ret, 0, sizeof(*ret));
	int e = rtnl_talk(fd, &r.n, link_cb, ret);
	if (e == 0 && ret->index == 0)
		e = -ENODEV;
	return e;
}

/* ---- addresses ---------------------------------------------------------------------------- */

struct saved_addr {
	struct ifaddrmsg ifa;
	unsigned char local[16], address[16], broadcast[4];
	size_t alen;
	bool has_local, has_address, has_broadcast;
};

struct addr_list {
	int index;
	struct saved_addr *a;
	size_t n;
};

static int addr_cb(struct nlmsghdr *m, void *data)
{
	struct addr_list *l = data;
	if (m->nlmsg_type != RTM_NEWADDR)
		return 0;
	struct ifaddrmsg *ifa = NLMSG_DATA(m);
	if ((int)ifa->ifa_index != l->index || ifa->ifa_scope != RT_SCOPE_UNIVERSE)
		return 0;
	uint32_t flags = ifa->ifa_flags;
	struct saved_addr s = { .ifa = *ifa, .alen = ifa->ifa_family == AF_INET6 ? 16 : 4 };
	int len = (int)IFA_PAYLOAD(m);
	for (struct rtattr *a = IFA_RTA(ifa); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		size_t plen = RTA_PAYLOAD(a);
		if (a->rta_type == IFA_FLAGS && plen >= 4)
			memcpy(&flags, RTA_DATA(a), 4);
		else if (a->rta_type == IFA_LOCAL && plen == s.alen)
			memcpy(s.local, RTA_DATA(a), plen), s.has_local = true;
		else if (a->rta_type == IFA_ADDRESS && plen == s.alen)
			memcpy(s.address, RTA_DATA(a), plen), s.has_address = true;
		else if (a->rta_type == IFA_BROADCAST && plen == 4)
			memcpy(s.broadcast, RTA_DATA(a), plen), s.has_broadcast = true;
	}
	/* only what was configured to stay: not DHCP leases, not autoconfigured addresses */
	if (!(flags & IFA_F_PERMANENT) || (ifa->ifa_family != AF_INET && ifa->ifa_family != AF_INET6))
		return 0;
	l->a = xrealloc(l->a, (l->n + 1) * sizeof(*l->a));
	l->a[l->n++] = s;
	return 0;
}

static int addrs_save(int fd, int index, struct addr_list *ret)
{
	struct req r = { 0 };
	r.n.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg));
	r.n.nlmsg_type = RTM_GETADDR;
	r.n.nlmsg_flags = NLM_F_DUMP;
	r.ifa.ifa_family = AF_UNSPEC;
	ret->index = index;
	return rtnl_talk(fd, &r.n, addr_cb, ret);
}

static int addr_add(int fd, int index, const struct saved_addr *s)
{
	struct req r = { 0 };
	r.n.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg));
	r.n.nlmsg_type = RTM_NEWADDR;
	r.n.nlmsg_flags = NLM_F_CREATE | NLM_F_REPLACE;
	r.ifa = s->ifa;
	r.ifa.ifa_index = (uint32_t)index;
	if (s->has_local)
		add_attr(&r.n, IFA_LOCAL, s->local, s->alen);
	if (s->has_address)
		add_attr(&r.n, IFA_ADDRESS, s->address, s->alen);
	if (s->has_broadcast)
		add_attr(&r.n, IFA_BROADCAST, s->broadcast, 4);
	return rtnl_talk(fd, &r.n, NULL, NULL);
}

/* ---- links -------------------------------------------------------------------------------- */

static int link_move(int fd, int index, int netns_fd, const char *tmp_name)
{
	struct req r = { 0 };
	r.n.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
	r.n.nlmsg_type = RTM_NEWLINK;
	r.ifi.ifi_family = AF_UNSPEC;
	r.ifi.ifi_index = index;
	uint32_t nsfd = (uint32_t)netns_fd;
	add_attr(&r.n, IFLA_NET_NS_FD, &nsfd, sizeof(nsfd));
	/* a name nothing in the container can hold, so the move never clashes; renamed after */
	add_attr(&r.n, IFLA_IFNAME, tmp_name, strlen(tmp_name) + 1);
	return rtnl_talk(fd, &r.n, NULL, NULL);
}

static int link_set(int fd, int index, const char *name, bool up)
{
	struct req r = { 0 };
	r.n.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
	r.n.nlmsg_type = RTM_NEWLINK;
	r.ifi.ifi_family = AF_UNSPEC;
	r.ifi.ifi_index = index;
	if (up) {
		r.ifi.ifi_flags = IFF_UP;
		r.ifi.ifi_change = IFF_UP;
	}
	if (name)
		add_attr(&r.n, IFLA_IFNAME, name, strlen(name) + 1);
	return rtnl_talk(fd, &r.n, NULL, NULL);
}

/* A netlink socket in the network namespace of pid (sockets keep the namespace they were
 * made in), and that namespace's fd. */
static int socket_in_netns(pid_t pid, int *ret_nsfd, struct kelp_err *err)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	cleanup_close int nsfd = open(path, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0)
		return kelp_error(err, errno, "open %s", path);
	cleanup_close int own = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (own < 0)
		return kelp_error(err, errno, "open /proc/self/ns/net");
	if (setns(nsfd, CLONE_NEWNET) < 0)
		return kelp_error(err, errno, "enter the container's network namespace");
	int fd = rtnl_socket();
	int saved = errno;
	if (setns(own, CLONE_NEWNET) < 0) {
		/* this process must not go on in the wrong namespace */
		if (fd >= 0)
			close(fd);
		return kelp_error(err, errno, "return to the runtime's network namespace");
	}
	if (fd < 0)
		return kelp_error(err, saved, "netlink socket in the container's network namespace");
	*ret_nsfd = TAKE_FD(nsfd);
	return fd;
}

int netdev_move_all(const struct spec_linux *l, pid_t pid, struct kelp_err *err)
{
	if (l->n_netdevs == 0)
		return 0;
	if (!l->ns[NS_NET].present)
		return kelp_fail(err, EINVAL, "linux.netDevices: the container has no network namespace of its own to move "
					      "devices into");
	cleanup_close int host = rtnl_socket();
	if (host < 0)
		return kelp_error(err, errno, "netlink socket");
	cleanup_close int nsfd = -1;
	cleanup_close int cont = socket_in_netns(pid, &nsfd, err);
	if (cont < 0)
		return -1;

	/* Check all first: every device exists here, no fixed name is taken there. */
	size_t n = l->n_netdevs;
	int index[n];
	for (size_t i = 0; i < n; i++) {
		struct link_info li;
		const char *want = l->netdev_name[i] ? l->netdev_name[i] : l->netdev_host[i];
		int e = link_get(host, l->netdev_host[i], 0, &li);
		if (e < 0)
			return kelp_error(err, -e, "linux.netDevices: network device %s", l->netdev_host[i]);
		index[i] = li.index;
		if (strchr(want, '%'))
			continue;
		e = link_get(cont, want, 0, &li);
		if (e == 0)
			return kelp_fail(err, EEXIST,
					 "linux.netDevices.%s: a device named %s exists in the container's network namespace "
					 "already",
					 l->netdev_host[i], want);
		if (e != -ENODEV)
			return kelp_error(err, -e, "linux.netDevices: look up %s in the container", want);
	}
	for (size_t i = 0; i < n; i++) {
		const char *host_name = l->netdev_host[i];
		const char *want = l->netdev_name[i] ? l->netdev_name[i] : host_name;
		struct addr_list addrs = { 0 };
		int e = addrs_save(host, index[i], &addrs);
		if (e < 0) {
			free(addrs.a);
			return kelp_error(err, -e, "linux.netDevices: addresses of %s", host_name);
		}
		char tmp[IFNAMSIZ];
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		snprintf(tmp, sizeof(tmp), "kelp%05x%05lx", (unsigned)pid & 0xfffff, (unsigned long)ts.tv_nsec & 0xfffff);
		struct link_info li;
		if ((e = link_move(host, index[i], nsfd, tmp)) < 0 || (e = link_get(cont, tmp, 0, &li)) < 0 ||
		    (e = link_set(cont, li.index, want, false)) < 0 || (e = link_get(cont, NULL, li.index, &li)) < 0) {
			free(addrs.a);
			return kelp_error(err, -e, "linux.netDevices: move %s into the container as %s", host_name, want);
		}
		for (size_t k = 0; k < addrs.n; k++)
			if ((e = addr_add(cont, li.index, &addrs.a[k])) < 0 && e != -EEXIST) {
				free(addrs.a);
				return kelp_error(err, -e, "linux.netDevices: add an address of %s to %s in the container",
						  host_name, li.name);
			}
		free(addrs.a);
		if ((e = link_set(cont, li.index, NULL, true)) < 0)
			return kelp_error(err, -e, "linux.netDevices: set %s up in the container", li.name);
	}
	return 0;
}
