/* A small open-addressing hash map from byte strings to pointers (services by name, element
 * keys by owner, reference counts): the proxy's state must stay small at 10,000 services. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hmap_ent {
	uint64_t hash; /* 0: empty slot */
	void *key;     /* owned copy */
	uint32_t klen;
	void *val;
};

struct hmap {
	struct hmap_ent *e;
	size_t cap, n, tomb;
};

void hmap_init(struct hmap *m);
void hmap_free(struct hmap *m); /* frees keys, not values */
/* The value slot for key, or NULL. */
void **hmap_get(const struct hmap *m, const void *key, size_t klen);
/* Insert or replace; returns the slot. */
void **hmap_put(struct hmap *m, const void *key, size_t klen, void *val);
/* Remove; returns the old value (NULL when absent). */
void *hmap_del(struct hmap *m, const void *key, size_t klen);
/* Iteration: for (size_t i = 0; hmap_next(m, &i, &ent);) */
bool hmap_next(const struct hmap *m, size_t *i, struct hmap_ent **ret);


#include <string.h>
static inline void **hmap_gets(const struct hmap *m, const char *s)
{
	return hmap_get(m, s, strlen(s));
}

/* Reference counts by address, compact: one per endpoint address, so the largest table of a
 * big cluster. IPv4 slots are 8 bytes, IPv6 slots 24. */
struct acount4_ent {
	uint32_t addr;
	uint32_t count; /* 0: empty; UINT32_MAX: deleted */
};

struct acount6_ent {
	uint8_t ip[16];
	uint32_t count;
};

struct acount {
	struct acount4_ent *e4;
	struct acount6_ent *e6;
	size_t cap4, n4, dead4, cap6, n6, dead6;
};

uint32_t acount_get(const struct acount *t, uint8_t fam, const uint8_t *ip);
/* Set the count (0 removes). fam: 0 IPv4 (ip: 4 bytes used), 1 IPv6. */
void acount_set(struct acount *t, uint8_t fam, const uint8_t *ip, uint32_t count);
void acount_free(struct acount *t);
