#include "masq.h"

#include <errno.h>
#include <fcntl.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netlink.h>
#include <linux/netfilter/nf_tables.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "cleanup.h"

int cni_nft_lock(struct cni_err *err)
{
	int fd = open(CNI_NFT_LOCK, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cni_syserr(err, CNI_ERR_IO, errno, "open %s", CNI_NFT_LOCK);
	while (flock(fd, LOCK_EX) < 0)
		if (errno != EINTR) {
			int e = errno;
			close(fd);
			return cni_syserr(err, CNI_ERR_IO, e, "lock %s", CNI_NFT_LOCK);
		}
	return fd;
}

char *cni_nft_tag(const char *plugin, const char *net, const char *id, const char *ifname)
{
	return xasprintf("%s %s %s %s", plugin, net, id, ifname);
}

struct nftnl_rule *cni_nft_rule_new(const char *chain, const char *tag)
{
	struct nftnl_rule *r = nftnl_rule_alloc();
	if (!r)
		abort();
	nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_INET);
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, CNI_NFT_TABLE);
	nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, chain);
	/* the comment `nft list ruleset` shows */
	struct nftnl_udata_buf *u = nftnl_udata_buf_alloc(NFT_USERDATA_MAXLEN);
	if (!u)
		abort();
	nftnl_udata_put_strz(u, NFTNL_UDATA_RULE_COMMENT, tag);
	nftnl_rule_set_data(r, NFTNL_RULE_USERDATA, nftnl_udata_buf_data(u), nftnl_udata_buf_len(u));
	nftnl_udata_buf_free(u);
	return r;
}

static int comment_cb(const struct nftnl_udata *attr, void *data)
{
	const char **ret = data;
	if (nftnl_udata_type(attr) == NFTNL_UDATA_RULE_COMMENT) {
		const char *s = nftnl_udata_get(attr);
		size_t len = nftnl_udata_len(attr);
		if (len > 0 && s[len - 1] == '\0')
			*ret = s;
	}
	return 0;
}

static const char *rule_comment(const struct nftnl_rule *r)
{
	uint32_t len = 0;
	const void *d = nftnl_rule_get_data(r, NFTNL_RULE_USERDATA, &len);
	const char *c = NULL;
	if (d && len)
		nftnl_udata_parse(d, len, comment_cb, &c);
	return c;
}

/* One dump of the table's rules: handles of the rules picked, and how many there are in all. */
struct scan {
	const char *tag, *prefix;
	bool (*keep)(const char *id, const char *ifname, void *data);
	void *data;
	size_t total;
	size_t n;
	struct {
		uint64_t handle;
		char chain[64];
	} *picked;
};

static bool pick(const struct scan *s, const char *c)
{
	if (!c)
		return false;
	if (s->tag)
		return strcmp(c, s->tag) == 0;
	size_t pl = strlen(s->prefix);
	if (strncmp(c, s->prefix, pl) != 0)
		return false;
	char id[256], ifn[64];
	if (sscanf(c + pl, "%255s %63s", id, ifn) != 2)
		return false;
	return !s->keep(id, ifn, s->data);
}

static int scan_cb(const struct nftnl_rule *r, void *data)
{
	struct scan *s = data;
	s->total++;
	if (!pick(s, rule_comment(r)))
		return 0;
	s->picked = xrealloc(s->picked, (s->n + 1) * sizeof(*s->picked));
	s->picked[s->n].handle = nftnl_rule_get_u64(r, NFTNL_RULE_HANDLE);
	snprintf(s->picked[s->n].chain, sizeof(s->picked[s->n].chain), "%s", nftnl_rule_get_str(r, NFTNL_RULE_CHAIN));
	s->n++;
	return 0;
}

static void add_base(struct nft_batch *b, const struct cni_nft_chain *chains, size_t n_chains)
{
	struct nftnl_table *t = nftnl_table_alloc();
	if (!t)
		abort();
	nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, NFPROTO_INET);
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, CNI_NFT_TABLE);
	nft_batch_table(b, NFT_MSG_NEWTABLE, NLM_F_CREATE, NFPROTO_INET, t, "add table inet " CNI_NFT_TABLE);
	nftnl_table_free(t);
	for (size_t i = 0; i < n_chains; i++) {
		struct nftnl_chain *c = nftnl_chain_alloc();
		if (!c)
			abort();
		nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, NFPROTO_INET);
		nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, CNI_NFT_TABLE);
		nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, chains[i].name);
		nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, (uint32_t)chains[i].hook);
		nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, chains[i].prio);
		nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, chains[i].type);
		nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
		char label[128];
		snprintf(label, sizeof(label), "add chain inet %s %s", CNI_NFT_TABLE, chains[i].name);
		nft_batch_chain(b, NFT_MSG_NEWCHAIN, NLM_F_CREATE, NFPROTO_INET, c, label);
		nftnl_chain_free(c);
	}
}

static void del_picked(struct nft_batch *b, const struct scan *s)
{
	for (size_t i = 0; i < s->n; i++) {
		struct nftnl_rule *r = nftnl_rule_alloc();
		if (!r)
			abort();
		nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_INET);
		nftnl_rule_set_str(r, NFTNL_RULE_TABLE, CNI_NFT_TABLE);
		nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, s->picked[i].chain);
		nftnl_rule_set_u64(r, NFTNL_RULE_HANDLE, s->picked[i].handle);
		char label[128];
		snprintf(label, sizeof(label), "delete rule %s handle %llu", s->picked[i].chain,
			 (unsigned long long)s->picked[i].handle);
		nft_batch_rule(b, NFT_MSG_DELRULE, 0, NFPROTO_INET, r, label);
		nftnl_rule_free(r);
	}
}

static void del_table(struct nft_batch *b)
{
	struct nftnl_table *t = nftnl_table_alloc();
	if (!t)
		abort();
	nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, NFPROTO_INET);
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, CNI_NFT_TABLE);
	nft_batch_table(b, NFT_MSG_DELTABLE, 0, NFPROTO_INET, t, "delete table inet " CNI_NFT_TABLE);
	nftnl_table_free(t);
}

static int run(struct scan *s, const struct cni_nft_chain *chains, size_t n_chains, struct cni_nft_rule *rules,
	       size_t n_rules, struct cni_err *err)
{
	cleanup_close int lock = cni_nft_lock(err);
	if (lock < 0)
		return -1;
	struct nft *n;
	if (nft_open(-1, &n, &err->k) < 0)
		return err->code = CNI_ERR_IO, -1;
	int rc = -1;
	struct nft_batch *b = NULL;
	if (nft_rule_list(n, NFPROTO_INET, CNI_NFT_TABLE, NULL, scan_cb, s, &err->k) < 0) {
		err->code = CNI_ERR_IO;
		goto out;
	}
	if (n_rules == 0 && s->n == 0) {
		rc = 0;
		goto out;
	}
	b = nft_batch_begin(n);
	if (n_rules == 0 && s->n == s->total) {
		del_table(b); /* our rules were the last ones */
	} else {
		if (n_rules > 0)
			add_base(b, chains, n_chains);
		del_picked(b, s);
		for (size_t i = 0; i < n_rules; i++) {
			char label[160];
			snprintf(label, sizeof(label), "add rule %s %s", rules[i].chain, s->tag ? s->tag : "");
			nft_batch_rule(b, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, NFPROTO_INET, rules[i].r, label);
		}
	}
	if (nft_batch_commit(b, &err->k) < 0) {
		err->code = CNI_ERR_INTERNAL;
		goto out;
	}
	rc = 0;
out:
	nft_batch_free(b);
	nft_close(n);
	free(s->picked);
	return rc;
}

int cni_nft_apply(const char *tag, const struct cni_nft_chain *chains, size_t n_chains, struct cni_nft_rule *rules,
		  size_t n_rules, struct cni_err *err)
{
	struct scan s = {.tag = tag};
	int rc = run(&s, chains, n_chains, rules, n_rules, err);
	for (size_t i = 0; i < n_rules; i++)
		nftnl_rule_free(rules[i].r);
	return rc;
}

int cni_nft_gc(const char *prefix, bool (*keep)(const char *id, const char *ifname, void *data), void *data,
	       const struct cni_nft_chain *chains, size_t n_chains, struct cni_err *err)
{
	struct scan s = {.prefix = prefix, .keep = keep, .data = data};
	return run(&s, chains, n_chains, NULL, 0, err);
}

static int has_cb(const struct nftnl_rule *r, void *data)
{
	struct scan *s = data;
	const char *c = rule_comment(r);
	if (c && strcmp(c, s->tag) == 0)
		s->n++;
	return 0;
}

int cni_nft_has(const char *tag, const struct cni_nft_chain *chains, size_t n_chains, bool *ret, struct cni_err *err)
{
	(void)chains;
	(void)n_chains;
	struct nft *n;
	if (nft_open(-1, &n, &err->k) < 0)
		return err->code = CNI_ERR_IO, -1;
	struct scan s = {.tag = tag};
	int rc = nft_rule_list(n, NFPROTO_INET, CNI_NFT_TABLE, NULL, has_cb, &s, &err->k);
	nft_close(n);
	if (rc < 0)
		return err->code = CNI_ERR_IO, -1;
	*ret = s.n > 0;
	return 0;
}
