/* Unit tests of lib/nl.c and lib/nft.c in a network namespace of the test's own (unshare):
 * links, veth, bridge, vxlan, addresses, routes, neighbours, FDB; nftables batches that apply
 * whole, and a failing batch whose error names the object that failed and that applies nothing. */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netlink.h>
#include <linux/neighbour.h>
#include <linux/if_addr.h>
#include <libnftnl/udata.h>

#include "test_util.h"

#include "cleanup.h"
#include "nft.h"
#include "nl.h"

static int in_private_netns;

static int setup(void **state)
{
	(void)state;
	/* everything below happens in a namespace that ends with this process */
	in_private_netns = geteuid() == 0 && unshare(CLONE_NEWNET) == 0;
	return 0;
}

#define NEED_NETNS()                                                                               \
	do {                                                                                       \
		if (!in_private_netns) {                                                           \
			skip_because("needs root to make a private network namespace");            \
			return;                                                                    \
		}                                                                                  \
	} while (0)

#define OK(call)                                                                                   \
	do {                                                                                       \
		if ((call) < 0)                                                                    \
			failf("%s: %s", #call, err.msg);                                           \
	} while (0)

static void test_links(void **state)
{
	(void)state;
	NEED_NETNS();
	struct kelp_err err = {0};
	struct nl *nl;
	struct nl_link l, br, v;
	OK(nl_open(-1, &nl, &err));
	assert_int_equal(nl_link_get(nl, "kt-none", &l, &err), -1);
	assert_int_equal(err.code, ENODEV);
	assert_string_equal(err.msg, "link kt-none does not exist");
	OK(nl_bridge_add(nl, "kt-br", 1400, false, &err));
	OK(nl_link_get(nl, "kt-br", &br, &err));
	assert_string_equal(br.kind, "bridge");
	assert_int_equal(br.mtu, 1400);
	assert_int_equal(nl_bridge_add(nl, "kt-br", 0, false, &err), -1);
	assert_int_equal(err.code, EEXIST);
	OK(nl_veth_add(nl, "kt-v0", "kt-v1", -1, 0, &err));
	OK(nl_link_get(nl, "kt-v0", &v, &err));
	assert_string_equal(v.kind, "veth");
	OK(nl_link_set_master(nl, v.index, br.index, &err));
	OK(nl_brport_set_hairpin(nl, v.index, true, &err));
	OK(nl_link_set_up(nl, v.index, true, &err));
	OK(nl_link_set_promisc(nl, br.index, true, &err));
	OK(nl_link_get_index(nl, v.index, &l, &err));
	assert_int_equal(l.master, br.index);
	assert_true(l.flags & IFF_UP);
	OK(nl_link_get(nl, "kt-br", &br, &err));
	assert_true(br.flags & IFF_PROMISC);
	uint8_t mac[6] = {0x02, 0, 0, 0, 0, 0x42};
	OK(nl_link_set_mac(nl, v.index, mac, &err));
	OK(nl_link_get_index(nl, v.index, &l, &err));
	assert_memory_equal(l.mac, mac, 6);
	OK(nl_link_del(nl, v.index, &err));
	assert_int_equal(nl_link_get(nl, "kt-v1", &l, &err), -1); /* the peer went with it */
	OK(nl_link_del(nl, br.index, &err));
	nl_close(nl);
}

static void test_addresses_routes(void **state)
{
	(void)state;
	NEED_NETNS();
	struct kelp_err err = {0};
	struct nl *nl;
	struct nl_link d;
	OK(nl_open(-1, &nl, &err));
	OK(nl_bridge_add(nl, "kt-ar", 0, false, &err));
	OK(nl_link_get(nl, "kt-ar", &d, &err));
	OK(nl_link_set_up(nl, d.index, true, &err));
	uint8_t a4[4] = {10, 9, 8, 7}, a6[16] = {0xfd, 0, [15] = 7};
	OK(nl_addr_add(nl, d.index, AF_INET, a4, 24, 0, &err));
	OK(nl_addr_add(nl, d.index, AF_INET6, a6, 64, IFA_F_NODAD, &err));
	assert_int_equal(nl_addr_add(nl, d.index, AF_INET, a4, 24, 0, &err), -1);
	assert_int_equal(err.code, EEXIST);
	char want[128];
	snprintf(want, sizeof(want), "add address 10.9.8.7/24 to link #%d: File exists", d.index);
	assert_string_equal(err.msg, want);
	struct nl_addr *addrs;
	size_t n;
	OK(nl_addr_list(nl, d.index, AF_INET, &addrs, &n, &err));
	assert_int_equal(n, 1);
	assert_memory_equal(addrs[0].addr, a4, 4);
	assert_int_equal(addrs[0].prefix, 24);
	free(addrs);
	struct nl_route r = {.family = AF_INET, .dst = {10, 99, 0, 0}, .dst_len = 16, .has_gw = true,
			     .gw = {10, 9, 8, 1}, .oif = d.index, .scope = -1, .priority = 7};
	OK(nl_route_add(nl, &r, false, &err));
	assert_int_equal(nl_route_add(nl, &r, false, &err), -1);
	assert_int_equal(err.code, EEXIST);
	OK(nl_route_add(nl, &r, true, &err)); /* replace */
	struct nl_route *routes;
	OK(nl_route_list(nl, AF_INET, &routes, &n, &err));
	int found = 0;
	for (size_t i = 0; i < n; i++)
		if (routes[i].dst_len == 16 && memcmp(routes[i].dst, r.dst, 4) == 0 && routes[i].has_gw &&
		    memcmp(routes[i].gw, r.gw, 4) == 0 && routes[i].priority == 7)
			found++;
	free(routes);
	assert_int_equal(found, 1);
	OK(nl_route_del(nl, &r, &err));
	assert_int_equal(nl_route_del(nl, &r, &err), -1);
	assert_int_equal(err.code, ESRCH);
	OK(nl_addr_del(nl, d.index, AF_INET, a4, 24, &err));
	OK(nl_addr_list(nl, d.index, AF_INET, &addrs, &n, &err));
	assert_int_equal(n, 0);
	free(addrs);
	OK(nl_link_del(nl, d.index, &err));
	nl_close(nl);
}

static void test_vxlan_neigh_fdb(void **state)
{
	(void)state;
	NEED_NETNS();
	struct kelp_err err = {0};
	struct nl *nl;
	struct nl_link d;
	OK(nl_open(-1, &nl, &err));
	uint8_t mac[6] = {0x02, 0, 0, 0, 0x53, 1}, peer[6] = {0x02, 0, 0, 0, 0x53, 2};
	struct nl_vxlan v = {.name = "kt-vx", .vni = 42, .family = AF_INET, .local = {192, 168, 9, 1}, .port = 4789,
			     .mtu = 1450, .mac = mac};
	OK(nl_vxlan_add(nl, &v, &err));
	OK(nl_link_get(nl, "kt-vx", &d, &err));
	assert_string_equal(d.kind, "vxlan");
	assert_memory_equal(d.mac, mac, 6);
	OK(nl_link_set_up(nl, d.index, true, &err));
	uint8_t ip[4] = {10, 80, 2, 0}, under[4] = {192, 168, 9, 2};
	OK(nl_neigh_set(nl, d.index, AF_INET, ip, peer, &err));
	OK(nl_neigh_set(nl, d.index, AF_INET, ip, peer, &err)); /* replace: still one */
	OK(nl_fdb_set(nl, d.index, peer, AF_INET, under, &err));
	struct nl_neigh *ne;
	size_t n;
	OK(nl_neigh_list(nl, d.index, AF_INET, &ne, &n, &err));
	size_t perm = 0;
	for (size_t i = 0; i < n; i++)
		if (ne[i].state & NUD_PERMANENT) {
			perm++;
			assert_memory_equal(ne[i].ip, ip, 4);
			assert_memory_equal(ne[i].mac, peer, 6);
		}
	free(ne);
	assert_int_equal(perm, 1);
	OK(nl_neigh_list(nl, d.index, AF_BRIDGE, &ne, &n, &err));
	size_t remote = 0;
	for (size_t i = 0; i < n; i++)
		if (ne[i].has_ip) {
			remote++;
			assert_memory_equal(ne[i].ip, under, 4);
			assert_memory_equal(ne[i].mac, peer, 6);
		}
	free(ne);
	assert_int_equal(remote, 1);
	OK(nl_fdb_del(nl, d.index, peer, AF_INET, under, &err));
	OK(nl_neigh_del(nl, d.index, AF_INET, ip, &err));
	OK(nl_link_del(nl, d.index, &err));
	nl_close(nl);
}

static struct nftnl_table *table(const char *name)
{
	struct nftnl_table *t = nftnl_table_alloc();
	nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, NFPROTO_INET);
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, name);
	return t;
}

static struct nftnl_rule *masq_rule(const char *tbl, const char *chain)
{
	struct nftnl_rule *r = nftnl_rule_alloc();
	nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_INET);
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, tbl);
	nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, chain);
	uint8_t a[4] = {10, 1, 0, 0};
	nft_match_prefix(r, 12, a, 4, 16, false);
	nft_expr_masq(r);
	return r;
}

static int count_cb(const struct nftnl_rule *r, void *data)
{
	(void)r;
	(*(int *)data)++;
	return 0;
}

static void test_nft_batches(void **state)
{
	(void)state;
	NEED_NETNS();
	struct kelp_err err = {0};
	struct nft *n;
	OK(nft_open(-1, &n, &err));
	/* a good batch: table, base chain, rule */
	struct nft_batch *b = nft_batch_begin(n);
	struct nftnl_table *t = table("kt");
	nft_batch_table(b, NFT_MSG_NEWTABLE, NLM_F_CREATE, NFPROTO_INET, t, "add table kt");
	nftnl_table_free(t);
	struct nftnl_chain *c = nftnl_chain_alloc();
	nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, NFPROTO_INET);
	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, "kt");
	nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, "post");
	nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, NF_INET_POST_ROUTING);
	nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, 100);
	nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, "nat");
	nft_batch_chain(b, NFT_MSG_NEWCHAIN, NLM_F_CREATE, NFPROTO_INET, c, "add chain kt post");
	nftnl_chain_free(c);
	struct nftnl_rule *r = masq_rule("kt", "post");
	nft_batch_rule(b, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, NFPROTO_INET, r, "add rule kt post masq");
	nftnl_rule_free(r);
	assert_int_equal(nft_batch_count(b), 3);
	OK(nft_batch_commit(b, &err));
	nft_batch_free(b);
	int count = 0;
	OK(nft_rule_list(n, NFPROTO_INET, "kt", "post", count_cb, &count, &err));
	assert_int_equal(count, 1);
	/* a bad batch: the second object fails; the error names it; the first is not applied */
	b = nft_batch_begin(n);
	t = table("kt2");
	nft_batch_table(b, NFT_MSG_NEWTABLE, NLM_F_CREATE, NFPROTO_INET, t, "add table kt2");
	nftnl_table_free(t);
	r = masq_rule("kt", "nope");
	nft_batch_rule(b, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, NFPROTO_INET, r, "add rule kt nope");
	nftnl_rule_free(r);
	assert_int_equal(nft_batch_commit(b, &err), -1);
	nft_batch_free(b);
	assert_int_equal(err.code, ENOENT);
	if (strncmp(err.msg, "add rule kt nope", 16) != 0)
		failf("error not mapped to its object: %s", err.msg);
	count = 0;
	OK(nft_rule_list(n, NFPROTO_INET, "kt2", NULL, count_cb, &count, &err));
	assert_int_equal(count, 0);
	b = nft_batch_begin(n);
	t = table("kt2");
	nft_batch_table(b, NFT_MSG_DELTABLE, 0, NFPROTO_INET, t, "delete table kt2");
	nftnl_table_free(t);
	assert_int_equal(nft_batch_commit(b, &err), -1); /* it was never made */
	assert_int_equal(err.code, ENOENT);
	nft_batch_free(b);
	/* the dump of a missing table lists nothing, without error */
	count = 0;
	OK(nft_rule_list(n, NFPROTO_INET, "kt-missing", NULL, count_cb, &count, &err));
	assert_int_equal(count, 0);
	nft_close(n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_links),
		cmocka_unit_test(test_addresses_routes),
		cmocka_unit_test(test_vxlan_neigh_fdb),
		cmocka_unit_test(test_nft_batches),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
