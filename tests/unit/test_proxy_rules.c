/* Unit tests of proxy/rules.c: the messages of the fixed ruleset, of a group chain and of
 * element batches (no kernel: batches without a socket are only built). */
#include <arpa/inet.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_util.h"

#include "rules.h"

static void test_base_ruleset(void **state)
{
	(void)state;
	struct kp_opts o = {.node = "n1"};
	struct nft_batch *b = nft_batch_begin(NULL);
	kp_rules_base(b, &o);
	size_t plain = nft_batch_count(b);
	nft_batch_free(b);
	/* two families, each: add + delete + add table, 15 sets, 15 chains and their rules */
	assert_true(plain > 2 * (3 + 15 + 15));

	struct kp_cidr cc[2];
	assert_int_equal(kp_cidr_parse("10.244.0.0/16", &cc[0]), 0);
	assert_int_equal(kp_cidr_parse("fd00::/64", &cc[1]), 0);
	o.cluster_cidrs = cc;
	o.n_cluster_cidrs = 2;
	b = nft_batch_begin(NULL);
	kp_rules_base(b, &o);
	/* per family: the mark-offcluster chain, its CIDR rule and its mark rule, the jump to it */
	assert_int_equal(nft_batch_count(b), plain + 2 * 4);
	nft_batch_free(b);
}

static void test_group_chains(void **state)
{
	(void)state;
	struct nft_batch *b = nft_batch_begin(NULL);
	struct kp_group g = {.fam = KP_V4, .path = KP_PATH_CLUSTER, .n = 3, .timeout = 0};
	kp_rules_group_add(b, &g);
	assert_int_equal(nft_batch_count(b), 2); /* the chain and its one rule */
	g.timeout = 60;
	kp_rules_group_add(b, &g);
	assert_int_equal(nft_batch_count(b), 2 + 1 + 3 + 1); /* a rule per bucket, then the choice */
	kp_rules_group_del(b, &g);
	assert_int_equal(nft_batch_count(b), 7 + 1);
	char name[64];
	kp_group_chain_name(&g, name, sizeof(name));
	assert_string_equal(name, "cluster-endpoints-3-affinity-60");
	g.path = KP_PATH_NODEPORT;
	g.timeout = 0;
	kp_group_chain_name(&g, name, sizeof(name));
	assert_string_equal(name, "nodeport-endpoints-3");
	nft_batch_free(b);
}

static void test_elements_packed(void **state)
{
	(void)state;
	struct nft_batch *b = nft_batch_begin(NULL);
	struct kp_emit *em = kp_emit_new(b);
	struct kp_elem el = {.fam = KP_V4, .set = KS_EPS_SVC, .klen = 16, .dlen = 8};
	for (uint32_t i = 0; i < 1000; i++) {
		memcpy(el.key + 12, &i, 4);
		kp_emit_elem(em, &el, false);
	}
	/* 400 elements a message: two full ones so far, the rest pending */
	assert_int_equal(nft_batch_count(b), 2);
	struct kp_elem v = {.fam = KP_V6, .set = KS_SVC, .klen = 24, .dlen = 12};
	v.data[0] = KV_GOTO;
	v.data[1] = KP_PATH_CLUSTER;
	uint32_t n = 2;
	memcpy(v.data + 4, &n, 4);
	kp_emit_elem(em, &v, false);
	kp_emit_elem(em, &el, true);
	kp_emit_flush(em);
	/* then: the deletion, the 200 others, the verdict element */
	assert_int_equal(nft_batch_count(b), 5);
	kp_emit_free(em);
	nft_batch_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base_ruleset),
		cmocka_unit_test(test_group_chains),
		cmocka_unit_test(test_elements_packed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
