/* nftables over libnftnl + libmnl: one batch per change (BEGIN, the objects, END) sent with a
 * single sendmsg, so the kernel applies all of it or none; every object keeps its sequence
 * number and a label, and an error the kernel reports is mapped back to the object that caused
 * it ("add rule kelp-cni/postrouting masquerade 10.1.0.2: No such file or directory").
 * Also small builders for the rule expressions kelp uses, and a rule dump to find rules by
 * their user data (kelp tags its rules so that it can delete exactly its own). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libnftnl/chain.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>

#include "error.h"

struct nlmsghdr;

struct nft;
struct nft_batch;

/* A socket in netns_fd (-1: the caller's namespace). */
int nft_open(int netns_fd, struct nft **ret, struct kelp_err *err);
void nft_close(struct nft *n);

/* n NULL: a batch that is built but never sent (unit tests count its messages). */
struct nft_batch *nft_batch_begin(struct nft *n);
void nft_batch_free(struct nft_batch *b);
/* Append one object message. type: NFT_MSG_NEWTABLE, NFT_MSG_DELRULE, ...; flags: NLM_F_CREATE,
 * NLM_F_EXCL, NLM_F_APPEND; family: NFPROTO_*. The object is serialised now (the caller still
 * owns and frees it). label names it in errors. */
void nft_batch_table(struct nft_batch *b, uint16_t type, uint16_t flags, uint16_t family, struct nftnl_table *t,
		     const char *label);
void nft_batch_chain(struct nft_batch *b, uint16_t type, uint16_t flags, uint16_t family, struct nftnl_chain *c,
		     const char *label);
void nft_batch_rule(struct nft_batch *b, uint16_t type, uint16_t flags, uint16_t family, struct nftnl_rule *r,
		    const char *label);
void nft_batch_set(struct nft_batch *b, uint16_t type, uint16_t flags, uint16_t family, struct nftnl_set *s,
		   const char *label);
void nft_batch_setelem(struct nft_batch *b, uint16_t type, uint16_t flags, uint16_t family, struct nftnl_set *s,
		       const char *label);
/* A message whose attributes the caller appends (at most 64 KiB): its header, then done. */
struct nlmsghdr *nft_batch_msg(struct nft_batch *b, uint16_t type, uint16_t flags, uint16_t family, const char *label);
void nft_batch_msg_done(struct nft_batch *b, struct nlmsghdr *nlh);
size_t nft_batch_count(const struct nft_batch *b); /* object messages so far */
size_t nft_batch_bytes(const struct nft_batch *b);
/* END, send, and collect the kernel's answers. On error the message names the first failed
 * object; nothing of the batch was applied. */
int nft_batch_commit(struct nft_batch *b, struct kelp_err *err);

/* The elements of a set or map (a dump): cb gets each key and data. A missing set lists nothing. */
int nft_set_elems(struct nft *n, uint16_t family, const char *table, const char *set,
		  void (*cb)(const void *key, uint32_t klen, const void *data, uint32_t dlen, void *ctx), void *ctx,
		  struct kelp_err *err);

/* Rules of family/table/chain; cb gets each one (owned by the dump) and returns <0 to stop.
 * A table or chain that does not exist lists nothing. */
int nft_rule_list(struct nft *n, uint16_t family, const char *table, const char *chain,
		  int (*cb)(const struct nftnl_rule *r, void *data), void *data, struct kelp_err *err);

/* Expression builders (registers: NFT_REG32_00 ...; data in network order). */
void nft_expr_meta(struct nftnl_rule *r, uint32_t key, uint32_t dreg);
void nft_expr_payload(struct nftnl_rule *r, uint32_t base, uint32_t offset, uint32_t len, uint32_t dreg);
void nft_expr_cmp(struct nftnl_rule *r, uint32_t sreg, uint32_t op, const void *data, uint32_t len);
void nft_expr_bitwise(struct nftnl_rule *r, uint32_t reg, const void *mask, uint32_t len);
void nft_expr_immediate(struct nftnl_rule *r, uint32_t dreg, const void *data, uint32_t len);
void nft_expr_verdict(struct nftnl_rule *r, int verdict, const char *chain);
void nft_expr_masq(struct nftnl_rule *r);
/* dnat/snat: nat_type NFT_NAT_DNAT, family NFPROTO_IPV4/6, registers 0 for "none". */
void nft_expr_nat(struct nftnl_rule *r, uint32_t nat_type, uint32_t family, uint32_t reg_addr, uint32_t reg_proto);
void nft_expr_fib_daddr_type(struct nftnl_rule *r, uint32_t dreg);
/* "<network header field> [!]= addr/prefix": payload, mask (when prefix < full), cmp. */
void nft_match_prefix(struct nftnl_rule *r, uint32_t offset, const uint8_t *addr, uint32_t len, int prefix, bool neq);
