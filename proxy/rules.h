/* kelp-proxy's nftables objects: per family one table `kelp-proxy` with fixed chains and a few
 * global named sets and maps (their elements carry the services, see elems.h), plus one chain
 * per group of targets with the same endpoint count and affinity timeout. This file turns them
 * into batch messages; nothing here decides what a service needs. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "elems.h"
#include "model.h"
#include "nft.h"
#include "nft.h"

#define KP_TABLE "kelp-proxy"
#define KP_MASQ_MARK 0x4000u

struct kp_opts {
	const char *node;
	struct kp_cidr *cluster_cidrs; /* traffic from outside them is masqueraded */
	size_t n_cluster_cidrs;
	struct kp_cidr *np_cidrs; /* node addresses that take NodePorts; none: every local one */
	size_t n_np_cidrs;
	bool masq_all;
};

/* Replace both families' tables (a previous run's included) with the fixed objects, empty
 * sets. Counts object messages into *ret_objects. */
void kp_rules_base(struct nft_batch *b, const struct kp_opts *o);
/* Only the deletion of both tables (flush); a missing table is no error: it is created first. */
void kp_rules_delete_tables(struct nft_batch *b);

void kp_rules_group_add(struct nft_batch *b, const struct kp_group *g);
void kp_rules_group_del(struct nft_batch *b, const struct kp_group *g);
void kp_group_chain_name(const struct kp_group *g, char *buf, size_t size);

/* Element messages, packed many to a message per set. Add all deletions, then all additions;
 * kp_emit_flush between the two phases and at the end. */
struct kp_emit;
struct kp_emit *kp_emit_new(struct nft_batch *b);
void kp_emit_elem(struct kp_emit *e, const struct kp_elem *el, bool del);
void kp_emit_flush(struct kp_emit *e);
void kp_emit_free(struct kp_emit *e);

const char *kp_set_name(int set);
