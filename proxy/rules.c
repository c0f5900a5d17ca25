#include "rules.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <libnftnl/expr.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_nat.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"

/* nft's datatype numbers, so that `nft list ruleset` shows the sets readably */
enum { T_VERDICT = 1, T_INTEGER = 4, T_IPADDR = 7, T_IP6ADDR = 8, T_PROTO = 12, T_SERVICE = 13, T_MARK = 19 };
#define CAT2(a, b) (((a) << 6) | (b))
#define CAT3(a, b, c) (((((a) << 6) | (b)) << 6) | (c))
#define CAT4(a, b, c, d) ((((((a) << 6) | (b)) << 6) | (c)) << 6 | (d))

#define R(n) (NFT_REG32_00 + (n))
#define REG_DATA R(11)
#define REG_SCRATCH R(15)

static const uint16_t nfproto[KP_NFAM] = {NFPROTO_IPV4, NFPROTO_IPV6};

const char *kp_set_name(int set)
{
	static const char *const names[KS_NSETS] = {
		"service-ips",    "external-ips",          "nodeports",      "cluster-endpoints", "external-endpoints",
		"nodeport-endpoints", "no-endpoints",      "no-endpoint-nodeports", "external-masq", "nodeport-masq",
		"hairpin",        "lb-guarded",            "lb-allowed"};
	return names[set];
}

static size_t alen(int fam)
{
	return fam == KP_V4 ? 4 : 16;
}

static struct nftnl_expr *ex(const char *name)
{
	struct nftnl_expr *e = nftnl_expr_alloc(name);
	if (!e)
		abort();
	return e;
}

static struct nftnl_rule *rule_new(int fam, const char *chain)
{
	struct nftnl_rule *r = nftnl_rule_alloc();
	if (!r)
		abort();
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, KP_TABLE);
	nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, chain);
	nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, nfproto[fam]);
	return r;
}

static void rule_add(struct nft_batch *b, int fam, struct nftnl_rule *r, const char *chain)
{
	char label[128];
	snprintf(label, sizeof(label), "add rule %s %s/%s", fam == KP_V4 ? "ip" : "ip6", KP_TABLE, chain);
	nft_batch_rule(b, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, nfproto[fam], r, label);
	nftnl_rule_free(r);
}

#define NO_DREG UINT32_MAX

/* dreg NO_DREG: a membership test; NFT_REG_VERDICT: a verdict map. */
static void lookup(struct nftnl_rule *r, const char *set, uint32_t sreg, uint32_t dreg, bool inv)
{
	struct nftnl_expr *e = ex("lookup");
	nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, set);
	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, sreg);
	if (dreg != NO_DREG)
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_DREG, dreg);
	if (inv)
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_FLAGS, NFT_LOOKUP_F_INV);
	nftnl_rule_add_expr(r, e);
}

static void bitwise(struct nftnl_rule *r, uint32_t sreg, uint32_t dreg, uint32_t mask, uint32_t xor)
{
	struct nftnl_expr *e = ex("bitwise");
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, sreg);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, dreg);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, 4);
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, &mask, 4);
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, &xor, 4);
	nftnl_rule_add_expr(r, e);
}

static void meta_set(struct nftnl_rule *r, uint32_t key, uint32_t sreg)
{
	struct nftnl_expr *e = ex("meta");
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_SREG, sreg);
	nftnl_rule_add_expr(r, e);
}

static void ct_load(struct nftnl_rule *r, uint32_t key, uint32_t dreg)
{
	struct nftnl_expr *e = ex("ct");
	nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, key);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, dreg);
	nftnl_rule_add_expr(r, e);
}

/* "<32-bit reg> & bits != 0" */
static void test_bits(struct nftnl_rule *r, uint32_t reg, uint32_t bits)
{
	uint32_t zero = 0;
	bitwise(r, reg, reg, bits, 0);
	nft_expr_cmp(r, reg, NFT_CMP_NEQ, &zero, 4);
}

/* meta mark |= KP_MASQ_MARK */
static void mark_masq(struct nftnl_rule *r)
{
	nft_expr_meta(r, NFT_META_MARK, REG_SCRATCH);
	bitwise(r, REG_SCRATCH, REG_SCRATCH, ~KP_MASQ_MARK, KP_MASQ_MARK);
	meta_set(r, NFT_META_MARK, REG_SCRATCH);
}

/* daddr . l4proto . th dport into R(base).. (the key of service-ips / external-ips); returns
 * the registers used */
static uint32_t load_tuple_at(struct nftnl_rule *r, int fam, uint32_t base)
{
	uint32_t a = (uint32_t)alen(fam) / 4;
	nft_expr_payload(r, NFT_PAYLOAD_NETWORK_HEADER, fam == KP_V4 ? 16 : 24, a * 4, R(base));
	nft_expr_meta(r, NFT_META_L4PROTO, R(base + a));
	nft_expr_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, R(base + a + 1));
	return a + 2;
}

static void load_tuple(struct nftnl_rule *r, int fam)
{
	load_tuple_at(r, fam, 0);
}

/* l4proto . th dport into R(base), R(base + 1) (the key of nodeports) */
static uint32_t load_proto_port_at(struct nftnl_rule *r, uint32_t base)
{
	nft_expr_meta(r, NFT_META_L4PROTO, R(base));
	nft_expr_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, R(base + 1));
	return 2;
}

static void load_proto_port(struct nftnl_rule *r)
{
	load_proto_port_at(r, 0);
}

static void load_saddr(struct nftnl_rule *r, int fam, uint32_t reg)
{
	nft_expr_payload(r, NFT_PAYLOAD_NETWORK_HEADER, fam == KP_V4 ? 12 : 8, (uint32_t)alen(fam), reg);
}

static void goto_chain(struct nftnl_rule *r, const char *chain, int verdict)
{
	nft_expr_verdict(r, verdict, chain);
}

/* fib daddr type local, not loopback (kube-proxy's default NodePort addresses), and within
 * one of the --nodeport-addresses CIDRs when given (cidr NULL: any). */
static void nodeport_addr(struct nftnl_rule *r, int fam, const struct kp_cidr *cidr)
{
	uint32_t local = RTN_LOCAL;
	nft_expr_fib_daddr_type(r, R(0));
	nft_expr_cmp(r, R(0), NFT_CMP_EQ, &local, 4);
	uint8_t lo[16] = {0};
	if (fam == KP_V4) {
		lo[0] = 127;
		nft_match_prefix(r, 16, lo, 4, 8, true);
	} else {
		lo[15] = 1;
		nft_match_prefix(r, 24, lo, 16, 128, true);
	}
	if (cidr)
		nft_match_prefix(r, fam == KP_V4 ? 16 : 24, cidr->ip, (uint32_t)alen(fam), cidr->prefix, false);
}

/* [mark for masquerade,] then the verdict map's goto. */
static void vmap(struct nftnl_rule *r, const char *map, bool masq)
{
	if (masq) {
		lookup(r, map, R(0), NO_DREG, false); /* only service traffic is marked */
		mark_masq(r);
	}
	lookup(r, map, R(0), NFT_REG_VERDICT, false);
}

static void add_chain(struct nft_batch *b, int fam, const char *name, const char *type, int hook, int prio)
{
	struct nftnl_chain *c = nftnl_chain_alloc();
	if (!c)
		abort();
	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, KP_TABLE);
	nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, name);
	nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, nfproto[fam]);
	if (type) {
		nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, type);
		nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, (uint32_t)hook);
		nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, prio);
		nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
	}
	char label[128];
	snprintf(label, sizeof(label), "add chain %s %s/%s", fam == KP_V4 ? "ip" : "ip6", KP_TABLE, name);
	nft_batch_chain(b, NFT_MSG_NEWCHAIN, NLM_F_CREATE, nfproto[fam], c, label);
	nftnl_chain_free(c);
}

struct setdef {
	int set;
	uint32_t ktype[KP_NFAM], klen[KP_NFAM], dtype[KP_NFAM], dlen[KP_NFAM], flags;
};

static const struct setdef setdefs[] = {
	{KS_SVC, {CAT3(T_IPADDR, T_PROTO, T_SERVICE), CAT3(T_IP6ADDR, T_PROTO, T_SERVICE)}, {12, 24}, {NFT_DATA_VERDICT, NFT_DATA_VERDICT}, {0, 0}, NFT_SET_MAP},
	{KS_EXT, {CAT3(T_IPADDR, T_PROTO, T_SERVICE), CAT3(T_IP6ADDR, T_PROTO, T_SERVICE)}, {12, 24}, {NFT_DATA_VERDICT, NFT_DATA_VERDICT}, {0, 0}, NFT_SET_MAP},
	{KS_NODEPORT, {CAT2(T_PROTO, T_SERVICE), CAT2(T_PROTO, T_SERVICE)}, {8, 8}, {NFT_DATA_VERDICT, NFT_DATA_VERDICT}, {0, 0}, NFT_SET_MAP},
	{KS_EPS_SVC, {CAT4(T_IPADDR, T_PROTO, T_SERVICE, T_MARK), CAT4(T_IP6ADDR, T_PROTO, T_SERVICE, T_MARK)}, {16, 28}, {CAT2(T_IPADDR, T_SERVICE), CAT2(T_IP6ADDR, T_SERVICE)}, {8, 20}, NFT_SET_MAP},
	{KS_EPS_EXT, {CAT4(T_IPADDR, T_PROTO, T_SERVICE, T_MARK), CAT4(T_IP6ADDR, T_PROTO, T_SERVICE, T_MARK)}, {16, 28}, {CAT2(T_IPADDR, T_SERVICE), CAT2(T_IP6ADDR, T_SERVICE)}, {8, 20}, NFT_SET_MAP},
	{KS_EPS_NP, {CAT3(T_PROTO, T_SERVICE, T_MARK), CAT3(T_PROTO, T_SERVICE, T_MARK)}, {12, 12}, {CAT2(T_IPADDR, T_SERVICE), CAT2(T_IP6ADDR, T_SERVICE)}, {8, 20}, NFT_SET_MAP},
	{KS_NOEP, {CAT3(T_IPADDR, T_PROTO, T_SERVICE), CAT3(T_IP6ADDR, T_PROTO, T_SERVICE)}, {12, 24}, {0, 0}, {0, 0}, 0},
	{KS_NOEP_NP, {CAT2(T_PROTO, T_SERVICE), CAT2(T_PROTO, T_SERVICE)}, {8, 8}, {0, 0}, {0, 0}, 0},
	{KS_EXTMASQ, {CAT3(T_IPADDR, T_PROTO, T_SERVICE), CAT3(T_IP6ADDR, T_PROTO, T_SERVICE)}, {12, 24}, {0, 0}, {0, 0}, 0},
	{KS_NPMASQ, {CAT2(T_PROTO, T_SERVICE), CAT2(T_PROTO, T_SERVICE)}, {8, 8}, {0, 0}, {0, 0}, 0},
	{KS_HAIRPIN, {CAT2(T_IPADDR, T_IPADDR), CAT2(T_IP6ADDR, T_IP6ADDR)}, {8, 32}, {0, 0}, {0, 0}, 0},
	{KS_LBGUARD, {CAT3(T_IPADDR, T_PROTO, T_SERVICE), CAT3(T_IP6ADDR, T_PROTO, T_SERVICE)}, {12, 24}, {0, 0}, {0, 0}, 0},
	{KS_LBALLOW, {CAT4(T_IPADDR, T_PROTO, T_SERVICE, T_IPADDR), CAT4(T_IP6ADDR, T_PROTO, T_SERVICE, T_IP6ADDR)}, {16, 40}, {0, 0}, {0, 0}, NFT_SET_INTERVAL | NFT_SET_CONCAT},
};

static struct nftnl_set *set_obj(int fam, const char *name)
{
	struct nftnl_set *s = nftnl_set_alloc();
	if (!s)
		abort();
	nftnl_set_set_str(s, NFTNL_SET_TABLE, KP_TABLE);
	nftnl_set_set_str(s, NFTNL_SET_NAME, name);
	nftnl_set_set_u32(s, NFTNL_SET_FAMILY, nfproto[fam]);
	return s;
}

static void add_set(struct nft_batch *b, int fam, const struct setdef *d, uint32_t *id)
{
	struct nftnl_set *s = set_obj(fam, kp_set_name(d->set));
	nftnl_set_set_u32(s, NFTNL_SET_ID, ++*id);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, d->ktype[fam]);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, d->klen[fam]);
	nftnl_set_set_u32(s, NFTNL_SET_FLAGS, d->flags);
	if (d->flags & NFT_SET_MAP) {
		nftnl_set_set_u32(s, NFTNL_SET_DATA_TYPE, d->dtype[fam]);
		nftnl_set_set_u32(s, NFTNL_SET_DATA_LEN, d->dlen[fam]);
	}
	if (d->flags & NFT_SET_CONCAT) {
		/* field lengths of the concatenation, for the pipapo set type */
		uint32_t al = (uint32_t)alen(fam);
		uint8_t fl[4] = {(uint8_t)al, 1, 2, (uint8_t)al};
		nftnl_set_set_data(s, NFTNL_SET_DESC_CONCAT, fl, sizeof(fl));
	}
	char label[128];
	snprintf(label, sizeof(label), "add set %s %s/%s", fam == KP_V4 ? "ip" : "ip6", KP_TABLE, kp_set_name(d->set));
	nft_batch_set(b, NFT_MSG_NEWSET, NLM_F_CREATE, nfproto[fam], s, label);
	nftnl_set_free(s);
}

/* The session affinity sets: client . entry . bucket, added by the data path with a timeout
 * per element (the service's timeoutSeconds, set by the group chain's dynset). A set and not a
 * map client . entry -> endpoint: nft 1.0.6 cannot print a dynset whose data comes from a map
 * lookup, and `nft list ruleset` must work. */
static void add_affinity_set(struct nft_batch *b, int fam, bool nodeport, uint32_t *id)
{
	uint32_t at = fam == KP_V4 ? T_IPADDR : T_IP6ADDR, al = (uint32_t)alen(fam);
	struct nftnl_set *s = set_obj(fam, nodeport ? "affinity-nodeport" : "affinity");
	nftnl_set_set_u32(s, NFTNL_SET_ID, ++*id);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE,
			  nodeport ? CAT4(at, T_PROTO, T_SERVICE, T_MARK) : (CAT4(at, at, T_PROTO, T_SERVICE) << 6 | T_MARK));
	nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, nodeport ? al + 12 : 2 * al + 12);
	nftnl_set_set_u32(s, NFTNL_SET_FLAGS, NFT_SET_TIMEOUT | NFT_SET_EVAL);
	nftnl_set_set_u32(s, NFTNL_SET_DESC_SIZE, 65536);
	char label[128];
	snprintf(label, sizeof(label), "add set %s %s/%s", fam == KP_V4 ? "ip" : "ip6", KP_TABLE,
		 nodeport ? "affinity-nodeport" : "affinity");
	nft_batch_set(b, NFT_MSG_NEWSET, NLM_F_CREATE, nfproto[fam], s, label);
	nftnl_set_free(s);
}

static void table_msg(struct nft_batch *b, int fam, uint16_t type)
{
	struct nftnl_table *t = nftnl_table_alloc();
	if (!t)
		abort();
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, KP_TABLE);
	nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, nfproto[fam]);
	char label[128];
	snprintf(label, sizeof(label), "%s table %s %s", type == NFT_MSG_NEWTABLE ? "add" : "delete",
		 fam == KP_V4 ? "ip" : "ip6", KP_TABLE);
	nft_batch_table(b, type, type == NFT_MSG_NEWTABLE ? NLM_F_CREATE : 0, nfproto[fam], t, label);
	nftnl_table_free(t);
}

void kp_rules_delete_tables(struct nft_batch *b)
{
	for (int fam = 0; fam < KP_NFAM; fam++) {
		/* "add table" first so that the delete never fails on a missing table */
		table_msg(b, fam, NFT_MSG_NEWTABLE);
		table_msg(b, fam, NFT_MSG_DELTABLE);
	}
}

static void base_family(struct nft_batch *b, const struct kp_opts *o, int fam)
{
	uint32_t id = 0;
	table_msg(b, fam, NFT_MSG_NEWTABLE);
	for (size_t i = 0; i < ARRAY_SIZE(setdefs); i++)
		add_set(b, fam, &setdefs[i], &id);
	add_affinity_set(b, fam, false, &id);
	add_affinity_set(b, fam, true, &id);

	add_chain(b, fam, "services", NULL, 0, 0);
	add_chain(b, fam, "nodeports", NULL, 0, 0);
	add_chain(b, fam, "reject-check", NULL, 0, 0);
	add_chain(b, fam, "reject-service", NULL, 0, 0);
	add_chain(b, fam, "nat-prerouting", "nat", NF_INET_PRE_ROUTING, -100);
	add_chain(b, fam, "nat-output", "nat", NF_INET_LOCAL_OUT, -100);
	add_chain(b, fam, "nat-postrouting", "nat", NF_INET_POST_ROUTING, 100);
	add_chain(b, fam, "filter-input", "filter", NF_INET_LOCAL_IN, -10);
	add_chain(b, fam, "filter-forward", "filter", NF_INET_FORWARD, -10);
	add_chain(b, fam, "filter-output", "filter", NF_INET_LOCAL_OUT, -10);
	add_chain(b, fam, "firewall-check", NULL, 0, 0);
	add_chain(b, fam, "filter-prerouting-pre-dnat", "filter", NF_INET_PRE_ROUTING, -110);
	add_chain(b, fam, "filter-output-pre-dnat", "filter", NF_INET_LOCAL_OUT, -110);

	size_t n_cc = 0;
	for (size_t i = 0; i < o->n_cluster_cidrs; i++)
		n_cc += o->cluster_cidrs[i].fam == fam;
	bool mark_offcluster = !o->masq_all && n_cc > 0;
	if (mark_offcluster)
		add_chain(b, fam, "mark-offcluster", NULL, 0, 0);

	struct nftnl_rule *r;
	/* services: cluster IPs, then external IPs, then node ports */
	if (mark_offcluster) {
		r = rule_new(fam, "services");
		load_tuple(r, fam);
		lookup(r, "service-ips", R(0), NO_DREG, false);
		goto_chain(r, "mark-offcluster", NFT_JUMP);
		rule_add(b, fam, r, "services");
		for (size_t i = 0; i < o->n_cluster_cidrs; i++) {
			if (o->cluster_cidrs[i].fam != fam)
				continue;
			r = rule_new(fam, "mark-offcluster");
			nft_match_prefix(r, fam == KP_V4 ? 12 : 8, o->cluster_cidrs[i].ip, (uint32_t)alen(fam),
					 o->cluster_cidrs[i].prefix, false);
			goto_chain(r, NULL, NFT_RETURN);
			rule_add(b, fam, r, "mark-offcluster");
		}
		r = rule_new(fam, "mark-offcluster");
		mark_masq(r);
		rule_add(b, fam, r, "mark-offcluster");
	}
	r = rule_new(fam, "services");
	load_tuple(r, fam);
	vmap(r, "service-ips", o->masq_all);
	rule_add(b, fam, r, "services");

	r = rule_new(fam, "services");
	load_tuple(r, fam);
	lookup(r, "external-masq", R(0), NO_DREG, false);
	mark_masq(r);
	rule_add(b, fam, r, "services");
	r = rule_new(fam, "services");
	load_tuple(r, fam);
	vmap(r, "external-ips", o->masq_all);
	rule_add(b, fam, r, "services");

	size_t n_np = 0;
	for (size_t i = 0; i < o->n_np_cidrs; i++) {
		if (o->np_cidrs[i].fam != fam)
			continue;
		n_np++;
		r = rule_new(fam, "services");
		nodeport_addr(r, fam, &o->np_cidrs[i]);
		goto_chain(r, "nodeports", NFT_GOTO);
		rule_add(b, fam, r, "services");
	}
	if (o->n_np_cidrs == 0) {
		r = rule_new(fam, "services");
		nodeport_addr(r, fam, NULL);
		goto_chain(r, "nodeports", NFT_GOTO);
		rule_add(b, fam, r, "services");
	}
	r = rule_new(fam, "nodeports");
	load_proto_port(r);
	lookup(r, "nodeport-masq", R(0), NO_DREG, false);
	mark_masq(r);
	rule_add(b, fam, r, "nodeports");
	r = rule_new(fam, "nodeports");
	load_proto_port(r);
	vmap(r, "nodeports", o->masq_all);
	rule_add(b, fam, r, "nodeports");

	/* base nat chains */
	static const char *const dst[] = {"nat-prerouting", "nat-output"};
	for (int i = 0; i < 2; i++) {
		r = rule_new(fam, dst[i]);
		goto_chain(r, "services", NFT_JUMP);
		rule_add(b, fam, r, dst[i]);
	}
	/* masquerade what was marked, and hairpin connections */
	struct nftnl_expr *e;
	r = rule_new(fam, "nat-postrouting");
	nft_expr_meta(r, NFT_META_MARK, R(0));
	test_bits(r, R(0), KP_MASQ_MARK);
	nft_expr_meta(r, NFT_META_MARK, R(0));
	bitwise(r, R(0), R(0), ~KP_MASQ_MARK, 0);
	meta_set(r, NFT_META_MARK, R(0));
	e = ex("masq");
	nftnl_expr_set_u32(e, NFTNL_EXPR_MASQ_FLAGS, NF_NAT_RANGE_PROTO_RANDOM_FULLY);
	nftnl_rule_add_expr(r, e);
	rule_add(b, fam, r, "nat-postrouting");
	r = rule_new(fam, "nat-postrouting");
	ct_load(r, NFT_CT_STATUS, R(0));
	test_bits(r, R(0), IPS_DST_NAT);
	load_saddr(r, fam, R(0));
	nft_expr_payload(r, NFT_PAYLOAD_NETWORK_HEADER, fam == KP_V4 ? 16 : 24, (uint32_t)alen(fam), R(alen(fam) / 4));
	lookup(r, "hairpin", R(0), NO_DREG, false);
	e = ex("masq");
	nftnl_expr_set_u32(e, NFTNL_EXPR_MASQ_FLAGS, NF_NAT_RANGE_PROTO_RANDOM_FULLY);
	nftnl_rule_add_expr(r, e);
	rule_add(b, fam, r, "nat-postrouting");

	/* filter: new connections to a service without endpoints are rejected; sources outside a
	 * load balancer's source ranges are dropped */
	static const char *const flt[] = {"filter-input", "filter-forward", "filter-output"};
	for (int i = 0; i < 3; i++) {
		r = rule_new(fam, flt[i]);
		ct_load(r, NFT_CT_STATE, R(0));
		test_bits(r, R(0), NF_CT_STATE_BIT(IP_CT_NEW));
		goto_chain(r, "reject-check", NFT_JUMP);
		rule_add(b, fam, r, flt[i]);
	}
	r = rule_new(fam, "reject-check");
	load_tuple(r, fam);
	lookup(r, "no-endpoints", R(0), NO_DREG, false);
	goto_chain(r, "reject-service", NFT_GOTO);
	rule_add(b, fam, r, "reject-check");
	/* load-balancer source ranges: checked before DNAT rewrites the destination */
	static const char *const pre[] = {"filter-prerouting-pre-dnat", "filter-output-pre-dnat"};
	for (int i = 0; i < 2; i++) {
		r = rule_new(fam, pre[i]);
		ct_load(r, NFT_CT_STATE, R(0));
		test_bits(r, R(0), NF_CT_STATE_BIT(IP_CT_NEW));
		goto_chain(r, "firewall-check", NFT_JUMP);
		rule_add(b, fam, r, pre[i]);
	}
	r = rule_new(fam, "firewall-check");
	load_tuple(r, fam);
	lookup(r, "lb-guarded", R(0), NO_DREG, false);
	load_saddr(r, fam, R(alen(fam) / 4 + 2));
	lookup(r, "lb-allowed", R(0), NO_DREG, true);
	goto_chain(r, NULL, NF_DROP);
	rule_add(b, fam, r, "firewall-check");
	for (size_t i = 0; i < (n_np ? o->n_np_cidrs : 1); i++) {
		if (n_np && o->np_cidrs[i].fam != fam)
			continue;
		r = rule_new(fam, "reject-check");
		nodeport_addr(r, fam, n_np ? &o->np_cidrs[i] : NULL);
		load_proto_port(r);
		lookup(r, "no-endpoint-nodeports", R(0), NO_DREG, false);
		goto_chain(r, "reject-service", NFT_GOTO);
		rule_add(b, fam, r, "reject-check");
	}
	uint8_t tcp = IPPROTO_TCP;
	r = rule_new(fam, "reject-service");
	nft_expr_meta(r, NFT_META_L4PROTO, R(0));
	nft_expr_cmp(r, R(0), NFT_CMP_EQ, &tcp, 1);
	e = ex("reject");
	nftnl_expr_set_u32(e, NFTNL_EXPR_REJECT_TYPE, NFT_REJECT_TCP_RST);
	nftnl_expr_set_u8(e, NFTNL_EXPR_REJECT_CODE, 0);
	nftnl_rule_add_expr(r, e);
	rule_add(b, fam, r, "reject-service");
	r = rule_new(fam, "reject-service");
	e = ex("reject");
	nftnl_expr_set_u32(e, NFTNL_EXPR_REJECT_TYPE, NFT_REJECT_ICMP_UNREACH);
	nftnl_expr_set_u8(e, NFTNL_EXPR_REJECT_CODE, fam == KP_V4 ? 3 /* port unreachable */ : 4 /* icmpv6 port */);
	nftnl_rule_add_expr(r, e);
	rule_add(b, fam, r, "reject-service");
}

void kp_rules_base(struct nft_batch *b, const struct kp_opts *o)
{
	kp_rules_delete_tables(b);
	for (int fam = 0; fam < KP_NFAM; fam++)
		base_family(b, o, fam);
}

void kp_group_chain_name(const struct kp_group *g, char *buf, size_t size)
{
	static const char *const path[] = {"", "cluster", "external", "nodeport"};
	if (g->timeout)
		snprintf(buf, size, "%s-endpoints-%u-affinity-%u", path[g->path & 3], g->n, g->timeout);
	else
		snprintf(buf, size, "%s-endpoints-%u", path[g->path & 3], g->n);
}

static void dynset(struct nftnl_rule *r, const char *set, uint32_t op, uint32_t sreg_key, uint32_t sreg_data,
		   uint64_t timeout_ms)
{
	struct nftnl_expr *e = ex("dynset");
	nftnl_expr_set_str(e, NFTNL_EXPR_DYNSET_SET_NAME, set);
	nftnl_expr_set_u32(e, NFTNL_EXPR_DYNSET_OP, op);
	nftnl_expr_set_u32(e, NFTNL_EXPR_DYNSET_SREG_KEY, sreg_key);
	if (sreg_data)
		nftnl_expr_set_u32(e, NFTNL_EXPR_DYNSET_SREG_DATA, sreg_data);
	if (timeout_ms)
		nftnl_expr_set_u64(e, NFTNL_EXPR_DYNSET_TIMEOUT, timeout_ms);
	nftnl_rule_add_expr(r, e);
}

static void dnat_data(struct nftnl_rule *r, int fam)
{
	nft_expr_nat(r, NFT_NAT_DNAT, nfproto[fam], REG_DATA, REG_DATA + (uint32_t)alen(fam) / 4);
}

/* The entry's key at R(base): daddr . proto . dport, or proto . dport for node ports. */
static uint32_t load_entry_at(struct nftnl_rule *r, const struct kp_group *g, uint32_t base)
{
	return g->path == KP_PATH_NODEPORT ? load_proto_port_at(r, base) : load_tuple_at(r, g->fam, base);
}

static void numgen(struct nftnl_rule *r, uint32_t dreg, uint32_t mod)
{
	struct nftnl_expr *e = ex("numgen");
	nftnl_expr_set_u32(e, NFTNL_EXPR_NG_DREG, dreg);
	nftnl_expr_set_u32(e, NFTNL_EXPR_NG_MODULUS, mod);
	nftnl_expr_set_u32(e, NFTNL_EXPR_NG_TYPE, NFT_NG_RANDOM);
	nftnl_expr_set_u32(e, NFTNL_EXPR_NG_OFFSET, 0);
	nftnl_rule_add_expr(r, e);
}

/* A group chain: pick one of N endpoints of the entry at random. Registers: [client address]
 * [entry key][bucket], so that "client . entry . bucket" (the affinity key) and "entry . bucket"
 * (the endpoints key) are both contiguous. With session affinity, one rule per bucket first:
 * a client remembered with bucket i keeps it (and its timeout restarts). */
void kp_rules_group_add(struct nft_batch *b, const struct kp_group *g)
{
	static const char *const eps_map[] = {"", "cluster-endpoints", "external-endpoints", "nodeport-endpoints"};
	char name[64];
	kp_group_chain_name(g, name, sizeof(name));
	int fam = g->fam;
	const char *aff = g->path == KP_PATH_NODEPORT ? "affinity-nodeport" : "affinity";
	uint32_t a = (uint32_t)alen(fam) / 4;
	uint64_t timeout = (uint64_t)g->timeout * 1000;
	add_chain(b, fam, name, NULL, 0, 0);
	struct nftnl_rule *r;
	for (uint32_t i = 0; g->timeout && i < g->n; i++) {
		r = rule_new(fam, name);
		load_saddr(r, fam, R(0));
		uint32_t k = load_entry_at(r, g, a);
		nft_expr_immediate(r, R(a + k), &i, 4);
		lookup(r, aff, R(0), NO_DREG, false);
		dynset(r, aff, NFT_DYNSET_OP_UPDATE, R(0), 0, timeout);
		lookup(r, eps_map[g->path & 3], R(a), REG_DATA, false);
		dnat_data(r, fam);
		rule_add(b, fam, r, name);
	}
	r = rule_new(fam, name);
	if (g->timeout)
		load_saddr(r, fam, R(0));
	uint32_t k = load_entry_at(r, g, a);
	numgen(r, R(a + k), g->n);
	if (g->timeout)
		dynset(r, aff, NFT_DYNSET_OP_ADD, R(0), 0, timeout);
	lookup(r, eps_map[g->path & 3], R(a), REG_DATA, false);
	dnat_data(r, fam);
	rule_add(b, fam, r, name);
}

void kp_rules_group_del(struct nft_batch *b, const struct kp_group *g)
{
	char name[64], label[128];
	kp_group_chain_name(g, name, sizeof(name));
	struct nftnl_chain *c = nftnl_chain_alloc();
	if (!c)
		abort();
	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, KP_TABLE);
	nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, name);
	nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, nfproto[g->fam]);
	snprintf(label, sizeof(label), "delete chain %s %s/%s", g->fam == KP_V4 ? "ip" : "ip6", KP_TABLE, name);
	nft_batch_chain(b, NFT_MSG_DELCHAIN, 0, nfproto[g->fam], c, label);
	nftnl_chain_free(c);
}

/* ---- elements ------------------------------------------------------------------------------ */

/* Elements are encoded straight into netlink attributes (a start-up sync has 200,000 of them:
 * no libnftnl object for each), up to this many bytes or elements a message; the batch
 * reserves 64 KiB a message. */
#define ELEMS_PER_MSG 400
#define ELEM_BYTES_MAX 60000

struct ebuf {
	char *buf;
	size_t len, cap;
	unsigned count;
};

struct kp_emit {
	struct nft_batch *b;
	struct ebuf pending[KP_NFAM][KS_NSETS][2];
};

struct kp_emit *kp_emit_new(struct nft_batch *b)
{
	struct kp_emit *e = xcalloc(1, sizeof(*e));
	e->b = b;
	return e;
}

static void *eb_room(struct ebuf *eb, size_t n)
{
	if (eb->len + n > eb->cap) {
		eb->cap = (eb->len + n) * 2 > 4096 ? (eb->len + n) * 2 : 4096;
		eb->buf = xrealloc(eb->buf, eb->cap);
	}
	return eb->buf + eb->len;
}

static void eb_attr(struct ebuf *eb, uint16_t type, const void *data, size_t len)
{
	size_t total = MNL_ALIGN(sizeof(struct nlattr) + len);
	struct nlattr *a = eb_room(eb, total);
	memset(a, 0, total);
	a->nla_type = type;
	a->nla_len = (uint16_t)(sizeof(struct nlattr) + len);
	memcpy((char *)a + sizeof(struct nlattr), data, len);
	eb->len += total;
}

static size_t eb_nest(struct ebuf *eb, uint16_t type)
{
	struct nlattr *a = eb_room(eb, sizeof(*a));
	a->nla_type = (uint16_t)(type | NLA_F_NESTED);
	a->nla_len = 0;
	size_t off = eb->len;
	eb->len += sizeof(*a);
	return off;
}

static void eb_nest_end(struct ebuf *eb, size_t off)
{
	((struct nlattr *)(eb->buf + off))->nla_len = (uint16_t)(eb->len - off);
}

static void eb_value(struct ebuf *eb, uint16_t type, const void *data, size_t len)
{
	size_t n = eb_nest(eb, type);
	eb_attr(eb, NFTA_DATA_VALUE, data, len);
	eb_nest_end(eb, n);
}

static void flush_one(struct kp_emit *e, int fam, int set, int del)
{
	struct ebuf *eb = &e->pending[fam][set][del];
	if (!eb->count)
		return;
	char label[128];
	snprintf(label, sizeof(label), "%s %u element(s) %s %s %s/%s", del ? "delete" : "add", eb->count,
		 del ? "from" : "to", fam == KP_V4 ? "ip" : "ip6", KP_TABLE, kp_set_name(set));
	struct nlmsghdr *nlh = nft_batch_msg(e->b, del ? NFT_MSG_DELSETELEM : NFT_MSG_NEWSETELEM,
					    del ? 0 : NLM_F_CREATE | NLM_F_EXCL, nfproto[fam], label);
	mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_TABLE, KP_TABLE);
	mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, kp_set_name(set));
	struct nlattr *nest = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_LIST_ELEMENTS);
	memcpy(mnl_nlmsg_get_payload_tail(nlh), eb->buf, eb->len);
	nlh->nlmsg_len += (uint32_t)eb->len;
	mnl_attr_nest_end(nlh, nest);
	nft_batch_msg_done(e->b, nlh);
	eb->len = 0;
	eb->count = 0;
}

void kp_emit_elem(struct kp_emit *e, const struct kp_elem *el, bool del)
{
	int fam = el->fam, set = el->set, d = del;
	struct ebuf *eb = &e->pending[fam][set][d];
	size_t elem = eb_nest(eb, NFTA_LIST_ELEM);
	eb_value(eb, NFTA_SET_ELEM_KEY, el->key, el->klen);
	if (set == KS_LBALLOW)
		eb_value(eb, NFTA_SET_ELEM_KEY_END, el->key_end, el->klen);
	if (!del && (set == KS_SVC || set == KS_EXT || set == KS_NODEPORT)) {
		size_t data = eb_nest(eb, NFTA_SET_ELEM_DATA), verdict = eb_nest(eb, NFTA_DATA_VERDICT);
		uint32_t code = htonl(el->data[0] == KV_GOTO ? (uint32_t)NFT_GOTO : (uint32_t)NF_DROP);
		eb_attr(eb, NFTA_VERDICT_CODE, &code, 4);
		if (el->data[0] == KV_GOTO) {
			struct kp_group g;
			char name[64];
			kp_elem_group(el, &g);
			kp_group_chain_name(&g, name, sizeof(name));
			eb_attr(eb, NFTA_VERDICT_CHAIN, name, strlen(name) + 1);
		}
		eb_nest_end(eb, verdict);
		eb_nest_end(eb, data);
	} else if (!del && el->dlen) {
		eb_value(eb, NFTA_SET_ELEM_DATA, el->data, el->dlen);
	}
	eb_nest_end(eb, elem);
	if (++eb->count >= ELEMS_PER_MSG || eb->len >= ELEM_BYTES_MAX)
		flush_one(e, fam, set, d);
}

void kp_emit_flush(struct kp_emit *e)
{
	/* deletions first: a changed element is deleted and added again in one batch */
	for (int d = 1; d >= 0; d--)
		for (int fam = 0; fam < KP_NFAM; fam++)
			for (int set = 0; set < KS_NSETS; set++)
				flush_one(e, fam, set, d);
}

void kp_emit_free(struct kp_emit *e)
{
	if (!e)
		return;
	for (int fam = 0; fam < KP_NFAM; fam++)
		for (int set = 0; set < KS_NSETS; set++)
			for (int d = 0; d < 2; d++)
				free(e->pending[fam][set][d].buf);
	free(e);
}
