/* nftables rules that belong to one attachment, tagged with a comment "<plugin> <network>
 * <containerid> <ifname>" so that DEL and GC remove exactly them. All of kelp's CNI rules live
 * in table `inet kelp-cni`; the table goes away with its last rule. Changes hold an flock on
 * the network namespace itself (its nsfs inode, the same for every opener), so that "last rule
 * gone, drop the table" cannot race another plugin's ADD, and no lock file is left behind. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include <libnftnl/rule.h>

#include "cni.h"
#include "nft.h"

#define CNI_NFT_TABLE "kelp-cni"
#define CNI_NFT_LOCK "/proc/thread-self/ns/net"

/* The base chains of the table: name, hook (NF_INET_*), priority, chain type ("nat"). */
struct cni_nft_chain {
	const char *name;
	int hook;
	int prio;
	const char *type;
};

/* A rule builder for one attachment: fills r (table/chain are set by the caller). */
struct cni_nft_rule {
	const char *chain;
	struct nftnl_rule *r;
};

int cni_nft_lock(struct cni_err *err);

/* Tag of an attachment; the buffer is malloc'd. */
char *cni_nft_tag(const char *plugin, const char *net, const char *id, const char *ifname);

/* Replace the attachment's rules (those tagged `tag`) by `rules` in one transaction, creating
 * the table and the base chains as needed. n_rules 0: only delete (and drop the table when it
 * is left empty). Takes ownership of the nftnl rules. */
int cni_nft_apply(const char *tag, const struct cni_nft_chain *chains, size_t n_chains, struct cni_nft_rule *rules,
		  size_t n_rules, struct cni_err *err);

/* Delete the rules whose tag starts with `prefix` ("<plugin> <network> ") and whose attachment
 * keep() rejects: GC. */
int cni_nft_gc(const char *prefix, bool (*keep)(const char *id, const char *ifname, void *data), void *data,
	       const struct cni_nft_chain *chains, size_t n_chains, struct cni_err *err);

/* A new rule for `chain` with its comment set to tag. */
struct nftnl_rule *cni_nft_rule_new(const char *chain, const char *tag);
/* Does the rule set in the table carry a rule tagged tag? (CHECK) */
int cni_nft_has(const char *tag, const struct cni_nft_chain *chains, size_t n_chains, bool *ret, struct cni_err *err);
