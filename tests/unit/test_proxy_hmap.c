/* Unit tests of proxy/hmap.c: the byte-string map and the address reference counts, through
 * growth, deletions and reinsertion (tombstones). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_util.h"

#include "hmap.h"

static void test_hmap(void **state)
{
	(void)state;
	struct hmap m;
	hmap_init(&m);
	char k[32];
	for (intptr_t i = 0; i < 5000; i++) {
		snprintf(k, sizeof(k), "ns/svc-%ld", (long)i);
		hmap_put(&m, k, strlen(k), (void *)(i + 1));
	}
	assert_int_equal(m.n, 5000);
	for (intptr_t i = 0; i < 5000; i += 2) {
		snprintf(k, sizeof(k), "ns/svc-%ld", (long)i);
		assert_ptr_equal(hmap_del(&m, k, strlen(k)), (void *)(i + 1));
	}
	assert_int_equal(m.n, 2500);
	for (intptr_t i = 0; i < 5000; i++) {
		snprintf(k, sizeof(k), "ns/svc-%ld", (long)i);
		void **v = hmap_gets(&m, k);
		if (i % 2 == 0)
			assert_null(v);
		else
			assert_ptr_equal(*v, (void *)(i + 1));
	}
	/* deleted slots are reused and replace keeps one entry */
	for (int round = 0; round < 3; round++)
		for (intptr_t i = 0; i < 5000; i += 2) {
			snprintf(k, sizeof(k), "ns/svc-%ld", (long)i);
			hmap_put(&m, k, strlen(k), (void *)7);
			hmap_del(&m, k, strlen(k));
		}
	assert_int_equal(m.n, 2500);
	size_t seen = 0;
	struct hmap_ent *ent;
	for (size_t i = 0; hmap_next(&m, &i, &ent);)
		seen++;
	assert_int_equal(seen, 2500);
	hmap_free(&m);
}

static void test_acount(void **state)
{
	(void)state;
	struct acount t = {0};
	uint8_t ip[16] = {0};
	for (uint32_t i = 0; i < 20000; i++) {
		memcpy(ip, &i, 4);
		acount_set(&t, 0, ip, i % 3 + 1);
	}
	uint8_t v6[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
	acount_set(&t, 1, v6, 5);
	for (uint32_t i = 0; i < 20000; i++) {
		memcpy(ip, &i, 4);
		assert_int_equal(acount_get(&t, 0, ip), i % 3 + 1);
	}
	/* the same 4 bytes as an IPv6 address are another key */
	memcpy(ip, v6, 4);
	assert_int_equal(acount_get(&t, 1, v6), 5);
	for (uint32_t i = 0; i < 20000; i += 2) {
		memcpy(ip, &i, 4);
		acount_set(&t, 0, ip, 0);
	}
	for (uint32_t i = 0; i < 20000; i++) {
		memcpy(ip, &i, 4);
		assert_int_equal(acount_get(&t, 0, ip), i % 2 ? i % 3 + 1 : 0);
	}
	assert_int_equal(t.n4, 10000);
	for (uint32_t i = 0; i < 20000; i += 2) {
		memcpy(ip, &i, 4);
		acount_set(&t, 0, ip, 9);
	}
	assert_int_equal(t.n4, 20000);
	memcpy(ip, &(uint32_t){4}, 4);
	assert_int_equal(acount_get(&t, 0, ip), 9);
	acount_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hmap),
		cmocka_unit_test(test_acount),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
