#include "nft.h"
#include "nl.h"

#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <libnftnl/expr.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"

struct nft {
	struct mnl_socket *s;
	uint32_t portid, seq;
};

struct nft_obj {
	uint32_t seq;
	char *label;
};

struct nft_batch {
	struct nft *n;
	uint32_t seq; /* used when n is NULL */
	char *buf;
	size_t len, cap;
	struct nft_obj *objs;
	size_t n_objs, cap_objs;
};

int nft_open(int netns_fd, struct nft **ret, struct kelp_err *err)
{
	struct mnl_socket *s;
	if (nl_mnl_socket(netns_fd, NETLINK_NETFILTER, "nfnetlink", &s, err) < 0)
		return -1;
	/* extended ACKs name the attribute the kernel refused; a large receive buffer so that no
	 * error report of a big batch is ever dropped */
	int one = 1, rcv = 4 << 20;
	mnl_socket_setsockopt(s, NETLINK_EXT_ACK, &one, sizeof(one));
	if (setsockopt(mnl_socket_get_fd(s), SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof(rcv)) < 0)
		setsockopt(mnl_socket_get_fd(s), SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	struct nft *n = xcalloc(1, sizeof(*n));
	n->s = s;
	n->portid = mnl_socket_get_portid(s);
	n->seq = (uint32_t)time(NULL);
	*ret = n;
	return 0;
}

void nft_close(struct nft *n)
{
	if (!n)
		return;
	mnl_socket_close(n->s);
	free(n);
}

/* Room for one more message of at most `need` bytes. */
static char *reserve(struct nft_batch *b, size_t need)
{
	if (b->len + need > b->cap) {
		b->cap = (b->cap + need) * 2;
		b->buf = xrealloc(b->buf, b->cap);
	}
	return b->buf + b->len;
}

static void put_done(struct nft_batch *b, struct nlmsghdr *nlh)
{
	b->len += NLMSG_ALIGN(nlh->nlmsg_len);
}

static uint32_t next_seq(struct nft_batch *b)
{
	return b->n ? ++b->n->seq : ++b->seq;
}

struct nft_batch *nft_batch_begin(struct nft *n)
{
	struct nft_batch *b = xcalloc(1, sizeof(*b));
	b->n = n;
	char *p = reserve(b, 256);
	struct nlmsghdr *nlh = nftnl_batch_begin(p, next_seq(b));
	put_done(b, nlh);
	return b;
}

void nft_batch_free(struct nft_batch *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->n_objs; i++)
		free(b->objs[i].label);
	free(b->objs);
	free(b->buf);
	free(b);
}

size_t nft_batch_count(const struct nft_batch *b)
{
	return b->n_objs;
}

size_t nft_batch_bytes(const struct nft_batch *b)
{
	return b->len;
}

/* No NLM_F_ACK: the kernel reports every failed message anyway, and one ACK per message of a
 * 100,000-element batch overflowed the receive buffer (ENOBUFS after the batch was applied). */
static struct nlmsghdr *obj_header(struct nft_batch *b, uint16_t type, uint16_t flags, uint16_t family, const char *label)
{
	char *p = reserve(b, 65536);
	uint32_t seq = next_seq(b);
	struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(p, type, family, flags, seq);
	if (b->n_objs == b->cap_objs) {
		b->cap_objs = b->cap_objs ? b->cap_objs * 2 : 64;
		b->objs = xrealloc(b->objs, b->cap_objs * sizeof(*b->objs));
	}
	b->objs[b->n_objs].seq = seq;
	b->objs[b->n_objs].label = xstrdup(label ? label : "object");
	b->n_objs++;
	return nlh;
}

struct nlmsghdr *nft_batch_msg(struct nft_batch *b, uint16_t type, uint16_t flags, uint16_t family, const char *label)
{
	return obj_header(b, type, flags, family, label);
}

void nft_batch_msg_done(struct nft_batch *b, struct nlmsghdr *nlh)
{
	put_done(b, nlh);
}

void nft_batch_table(struct nft_batch *b, uint16_t type, uint16_t flags, uint16_t family, struct nftnl_table *t,
		     const char *label)
{
	struct nlmsghdr *nlh = obj_header(b, type, flags, family, label);
	nftnl_table_nlmsg_build_payload(nlh, t);
	put_done(b, nlh);
}

void nft_batch_chain(struct nft_batch *b, uint16_t type, uint16_t flags, uint16_t family, struct nftnl_chain *c,
		     const char *label)
{
	struct nlmsghdr *nlh = obj_header(b, type, flags, family, label);
	nftnl_chain_nlmsg_build_payload(nlh, c);
	put_done(b, nlh);
}

void nft_batch_rule(struct nft_batch *b, uint16_t type, uint16_t flags, uint16_t family, struct nftnl_rule *r,
		    const char *label)
{
	struct nlmsghdr *nlh = obj_header(b, type, flags, family, label);
	nftnl_rule_nlmsg_build_payload(nlh, r);
	put_done(b, nlh);
}

void nft_batch_set(struct nft_batch *b, uint16_t type, uint16_t flags, uint16_t family, struct nftnl_set *s,
		   const char *label)
{
	struct nlmsghdr *nlh = obj_header(b, type, flags, family, label);
	nftnl_set_nlmsg_build_payload(nlh, s);
	put_done(b, nlh);
}

void nft_batch_setelem(struct nft_batch *b, uint16_t type, uint16_t flags, uint16_t family, struct nftnl_set *s,
		       const char *label)
{
	struct nlmsghdr *nlh = obj_header(b, type, flags, family, label);
	nftnl_set_elems_nlmsg_build_payload(nlh, s);
	put_done(b, nlh);
}

static const char *label_of(const struct nft_batch *b, uint32_t seq)
{
	for (size_t i = 0; i < b->n_objs; i++)
		if (b->objs[i].seq == seq)
			return b->objs[i].label;
	return NULL;
}

/* The extended ACK's message, if the kernel gave one. */
static const char *ext_ack_msg(const struct nlmsghdr *nlh)
{
	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return NULL;
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
	size_t off = sizeof(*e);
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
		off += mnl_nlmsg_get_payload_len(&e->msg);
	const struct nlattr *a;
	mnl_attr_for_each(a, nlh, off) {
		if (mnl_attr_get_type(a) == NLMSGERR_ATTR_MSG)
			return mnl_attr_get_str(a);
	}
	return NULL;
}

int nft_batch_commit(struct nft_batch *b, struct kelp_err *err)
{
	char *p = reserve(b, 256);
	struct nlmsghdr *nlh = nftnl_batch_end(p, next_seq(b));
	put_done(b, nlh);
	if (!b->n)
		return 0;
	int bufsz = (int)b->len + 65536;
	/* a large batch needs a send buffer that holds it whole */
	if (setsockopt(mnl_socket_get_fd(b->n->s), SOL_SOCKET, SO_SNDBUFFORCE, &bufsz, sizeof(bufsz)) < 0)
		setsockopt(mnl_socket_get_fd(b->n->s), SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof(bufsz));
	if (mnl_socket_sendto(b->n->s, b->buf, b->len) < 0)
		return kelp_error(err, errno, "send nftables batch");
	/* The kernel handles the batch inside sendmsg: every error report is queued by now, and
	 * silence means success. */
	cleanup_free char *rbuf = xmalloc(MNL_SOCKET_BUFFER_SIZE * 4);
	int fd = mnl_socket_get_fd(b->n->s);
	int first_err = 0;
	char first_label[256] = "", first_ext[256] = "";
	for (;;) {
		ssize_t n = recv(fd, rbuf, MNL_SOCKET_BUFFER_SIZE * 4, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			return kelp_error(err, errno, "receive nftables answers (the batch's outcome is unknown)");
		}
		const struct nlmsghdr *h = (const struct nlmsghdr *)rbuf;
		size_t left = (size_t)n;
		for (; mnl_nlmsg_ok(h, (int)left); h = mnl_nlmsg_next(h, (int *)&left)) {
			if (h->nlmsg_type != NLMSG_ERROR)
				continue;
			const struct nlmsgerr *e = mnl_nlmsg_get_payload(h);
			if (e->error == 0 || first_err)
				continue;
			first_err = -e->error;
			const char *l = label_of(b, h->nlmsg_seq);
			snprintf(first_label, sizeof(first_label), "%s", l ? l : "nftables batch");
			const char *x = ext_ack_msg(h);
			if (x)
				snprintf(first_ext, sizeof(first_ext), " (%s)", x);
		}
	}
	if (first_err)
		return kelp_error(err, first_err, "%s%s", first_label, first_ext);
	return 0;
}

struct list_ctx {
	int (*cb)(const struct nftnl_rule *r, void *data);
	void *data;
	int stopped;
};

static int rule_cb(const struct nlmsghdr *nlh, void *data)
{
	struct list_ctx *c = data;
	if (c->stopped)
		return MNL_CB_OK;
	struct nftnl_rule *r = nftnl_rule_alloc();
	if (!r)
		abort();
	if (nftnl_rule_nlmsg_parse(nlh, r) == 0 && c->cb(r, c->data) < 0)
		c->stopped = 1;
	nftnl_rule_free(r);
	return MNL_CB_OK;
}

int nft_rule_list(struct nft *n, uint16_t family, const char *table, const char *chain,
		  int (*cb)(const struct nftnl_rule *r, void *data), void *data, struct kelp_err *err)
{
	cleanup_free char *buf = xmalloc(MNL_SOCKET_BUFFER_SIZE * 4);
	uint32_t seq = ++n->seq;
	struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETRULE, family, NLM_F_DUMP, seq);
	struct nftnl_rule *r = nftnl_rule_alloc();
	if (!r)
		abort();
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, table);
	if (chain)
		nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, chain);
	nftnl_rule_nlmsg_build_payload(nlh, r);
	nftnl_rule_free(r);
	if (mnl_socket_sendto(n->s, nlh, nlh->nlmsg_len) < 0)
		return kelp_error(err, errno, "list rules of %s", table);
	struct list_ctx c = {cb, data, 0};
	for (;;) {
		ssize_t len = mnl_socket_recvfrom(n->s, buf, MNL_SOCKET_BUFFER_SIZE * 4);
		if (len < 0) {
			if (errno == EINTR)
				continue;
			return kelp_error(err, errno, "list rules of %s", table);
		}
		int ret = mnl_cb_run(buf, (size_t)len, seq, n->portid, rule_cb, &c);
		if (ret < 0) {
			if (errno == ENOENT)
				return 0;
			return kelp_error(err, errno, "list rules of %s%s%s", table, chain ? "/" : "", chain ? chain : "");
		}
		if (ret == MNL_CB_STOP)
			return 0;
	}
}

/* ---- expressions ---------------------------------------------------------------------------- */

static struct nftnl_expr *expr(const char *name)
{
	struct nftnl_expr *e = nftnl_expr_alloc(name);
	if (!e)
		abort();
	return e;
}

void nft_expr_meta(struct nftnl_rule *r, uint32_t key, uint32_t dreg)
{
	struct nftnl_expr *e = expr("meta");
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, dreg);
	nftnl_rule_add_expr(r, e);
}

void nft_expr_payload(struct nftnl_rule *r, uint32_t base, uint32_t offset, uint32_t len, uint32_t dreg)
{
	struct nftnl_expr *e = expr("payload");
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, offset);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, dreg);
	nftnl_rule_add_expr(r, e);
}

void nft_expr_cmp(struct nftnl_rule *r, uint32_t sreg, uint32_t op, const void *data, uint32_t len)
{
	struct nftnl_expr *e = expr("cmp");
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, sreg);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
	nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
	nftnl_rule_add_expr(r, e);
}

void nft_expr_bitwise(struct nftnl_rule *r, uint32_t reg, const void *mask, uint32_t len)
{
	uint8_t zero[16] = {0};
	struct nftnl_expr *e = expr("bitwise");
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, reg);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, reg);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, len);
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, mask, len);
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, zero, len);
	nftnl_rule_add_expr(r, e);
}

void nft_expr_immediate(struct nftnl_rule *r, uint32_t dreg, const void *data, uint32_t len)
{
	struct nftnl_expr *e = expr("immediate");
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, dreg);
	nftnl_expr_set(e, NFTNL_EXPR_IMM_DATA, data, len);
	nftnl_rule_add_expr(r, e);
}

void nft_expr_verdict(struct nftnl_rule *r, int verdict, const char *chain)
{
	struct nftnl_expr *e = expr("immediate");
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, (uint32_t)verdict);
	if (chain)
		nftnl_expr_set_str(e, NFTNL_EXPR_IMM_CHAIN, chain);
	nftnl_rule_add_expr(r, e);
}

void nft_expr_masq(struct nftnl_rule *r)
{
	nftnl_rule_add_expr(r, expr("masq"));
}

void nft_expr_nat(struct nftnl_rule *r, uint32_t nat_type, uint32_t family, uint32_t reg_addr, uint32_t reg_proto)
{
	struct nftnl_expr *e = expr("nat");
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_TYPE, nat_type);
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FAMILY, family);
	if (reg_addr)
		nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_ADDR_MIN, reg_addr);
	if (reg_proto)
		nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_PROTO_MIN, reg_proto);
	nftnl_rule_add_expr(r, e);
}

void nft_expr_fib_daddr_type(struct nftnl_rule *r, uint32_t dreg)
{
	struct nftnl_expr *e = expr("fib");
	nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_FLAGS, NFTA_FIB_F_DADDR);
	nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_RESULT, NFT_FIB_RESULT_ADDRTYPE);
	nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_DREG, dreg);
	nftnl_rule_add_expr(r, e);
}

void nft_match_prefix(struct nftnl_rule *r, uint32_t offset, const uint8_t *addr, uint32_t len, int prefix, bool neq)
{
	uint8_t mask[16] = {0}, net[16] = {0};
	for (int i = 0; i < (int)len; i++) {
		int bits = prefix - i * 8;
		mask[i] = bits >= 8 ? 0xff : bits <= 0 ? 0 : (uint8_t)(0xff << (8 - bits));
		net[i] = addr[i] & mask[i];
	}
	nft_expr_payload(r, NFT_PAYLOAD_NETWORK_HEADER, offset, len, NFT_REG_1);
	if (prefix < (int)len * 8)
		nft_expr_bitwise(r, NFT_REG_1, mask, len);
	nft_expr_cmp(r, NFT_REG_1, neq ? NFT_CMP_NEQ : NFT_CMP_EQ, net, len);
}

struct elems_ctx {
	void (*cb)(const void *key, uint32_t klen, const void *data, uint32_t dlen, void *ctx);
	void *ctx;
};

static int elems_cb(const struct nlmsghdr *nlh, void *data)
{
	struct elems_ctx *d = data;
	struct nftnl_set *s = nftnl_set_alloc();
	if (!s)
		abort();
	if (nftnl_set_elems_nlmsg_parse(nlh, s) == 0) {
		struct nftnl_set_elems_iter *it = nftnl_set_elems_iter_create(s);
		struct nftnl_set_elem *e;
		while (it && (e = nftnl_set_elems_iter_next(it))) {
			uint32_t kl = 0, dl = 0;
			const void *k = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &kl);
			const void *v = nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_DATA) ? nftnl_set_elem_get(e, NFTNL_SET_ELEM_DATA, &dl)
										   : NULL;
			if (k)
				d->cb(k, kl, v, v ? dl : 0, d->ctx);
		}
		if (it)
			nftnl_set_elems_iter_destroy(it);
	}
	nftnl_set_free(s);
	return MNL_CB_OK;
}

int nft_set_elems(struct nft *n, uint16_t family, const char *table, const char *set,
		  void (*cb)(const void *key, uint32_t klen, const void *data, uint32_t dlen, void *ctx), void *ctx,
		  struct kelp_err *err)
{
	cleanup_free char *buf = xmalloc(MNL_SOCKET_BUFFER_SIZE * 4);
	uint32_t seq = ++n->seq;
	struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETSETELEM, family, NLM_F_DUMP | NLM_F_ACK, seq);
	struct nftnl_set *s = nftnl_set_alloc();
	if (!s)
		abort();
	nftnl_set_set_str(s, NFTNL_SET_TABLE, table);
	nftnl_set_set_str(s, NFTNL_SET_NAME, set);
	nftnl_set_elems_nlmsg_build_payload(nlh, s);
	nftnl_set_free(s);
	if (mnl_socket_sendto(n->s, nlh, nlh->nlmsg_len) < 0)
		return kelp_error(err, errno, "list %s/%s", table, set);
	struct elems_ctx d = {cb, ctx};
	for (;;) {
		ssize_t len = mnl_socket_recvfrom(n->s, buf, MNL_SOCKET_BUFFER_SIZE * 4);
		if (len < 0) {
			if (errno == EINTR)
				continue;
			return kelp_error(err, errno, "list %s/%s", table, set);
		}
		int r = mnl_cb_run(buf, (size_t)len, seq, n->portid, elems_cb, &d);
		if (r < 0)
			return errno == ENOENT ? 0 : kelp_error(err, errno, "list %s/%s", table, set);
		if (r == MNL_CB_STOP)
			return 0;
	}
}
