#include "hmap.h"

#include <stdlib.h>
#include <string.h>

#include "cleanup.h"

#define TOMB ((void *)-1)

static uint64_t hash(const void *key, size_t len)
{
	/* FNV-1a, never 0 (0 marks an empty slot) */
	uint64_t h = 1469598103934665603ULL;
	const uint8_t *p = key;
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 1099511628211ULL;
	}
	return h ? h : 1;
}

void hmap_init(struct hmap *m)
{
	memset(m, 0, sizeof(*m));
}

void hmap_free(struct hmap *m)
{
	for (size_t i = 0; i < m->cap; i++)
		if (m->e[i].hash && m->e[i].key != TOMB)
			free(m->e[i].key);
	free(m->e);
	memset(m, 0, sizeof(*m));
}

static struct hmap_ent *find(const struct hmap *m, const void *key, size_t klen, uint64_t h)
{
	if (!m->cap)
		return NULL;
	for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		struct hmap_ent *e = &m->e[i];
		if (!e->hash)
			return NULL;
		if (e->key != TOMB && e->hash == h && e->klen == klen && !memcmp(e->key, key, klen))
			return e;
	}
}

static void grow(struct hmap *m)
{
	size_t ncap = m->cap ? m->cap * 2 : 64;
	if (m->n * 2 < m->cap)
		ncap = m->cap; /* mostly tombstones: rehash at the same size */
	struct hmap_ent *old = m->e;
	size_t ocap = m->cap;
	m->e = xcalloc(ncap, sizeof(*m->e));
	m->cap = ncap;
	m->tomb = 0;
	for (size_t i = 0; i < ocap; i++) {
		if (!old[i].hash || old[i].key == TOMB)
			continue;
		size_t j = old[i].hash & (ncap - 1);
		while (m->e[j].hash)
			j = (j + 1) & (ncap - 1);
		m->e[j] = old[i];
	}
	free(old);
}

void **hmap_get(const struct hmap *m, const void *key, size_t klen)
{
	struct hmap_ent *e = find(m, key, klen, hash(key, klen));
	return e ? &e->val : NULL;
}

void **hmap_put(struct hmap *m, const void *key, size_t klen, void *val)
{
	uint64_t h = hash(key, klen);
	struct hmap_ent *e = find(m, key, klen, h);
	if (e) {
		e->val = val;
		return &e->val;
	}
	if ((m->n + m->tomb + 1) * 4 >= m->cap * 3)
		grow(m);
	size_t i = h & (m->cap - 1);
	while (m->e[i].hash && m->e[i].key != TOMB)
		i = (i + 1) & (m->cap - 1);
	if (m->e[i].key == TOMB)
		m->tomb--;
	e = &m->e[i];
	e->hash = h;
	e->key = xmalloc(klen ? klen : 1);
	memcpy(e->key, key, klen);
	e->klen = (uint32_t)klen;
	e->val = val;
	m->n++;
	return &e->val;
}

void *hmap_del(struct hmap *m, const void *key, size_t klen)
{
	struct hmap_ent *e = find(m, key, klen, hash(key, klen));
	if (!e)
		return NULL;
	void *v = e->val;
	free(e->key);
	e->key = TOMB;
	e->val = NULL;
	m->n--;
	m->tomb++;
	return v;
}

bool hmap_next(const struct hmap *m, size_t *i, struct hmap_ent **ret)
{
	for (; *i < m->cap; (*i)++) {
		struct hmap_ent *e = &m->e[*i];
		if (e->hash && e->key != TOMB) {
			*ret = e;
			(*i)++;
			return true;
		}
	}
	return false;
}

#define DEAD UINT32_MAX

/* One generic probe over either table: slot size, key offset and length. */
struct atab {
	void **e;
	size_t *cap, *n, *dead;
	size_t esz, klen, coff; /* entry size, key length (at offset 0), count offset */
};

static uint32_t *cnt_at(const struct atab *t, void *e, size_t i)
{
	return (uint32_t *)((char *)e + i * t->esz + t->coff);
}

static size_t slot(const struct atab *t, void *e, size_t cap, const uint8_t *key, bool for_insert)
{
	size_t i = hash(key, t->klen) & (cap - 1), first_dead = SIZE_MAX;
	for (;; i = (i + 1) & (cap - 1)) {
		uint32_t c = *cnt_at(t, e, i);
		if (c == 0)
			return for_insert && first_dead != SIZE_MAX ? first_dead : i;
		if (c == DEAD) {
			if (first_dead == SIZE_MAX)
				first_dead = i;
			continue;
		}
		if (!memcmp((char *)e + i * t->esz, key, t->klen))
			return i;
	}
}

static struct atab tab_of(const struct acount *ct, uint8_t fam)
{
	struct acount *c = (struct acount *)ct;
	if (fam == 0)
		return (struct atab){(void **)&c->e4, &c->cap4, &c->n4, &c->dead4, sizeof(struct acount4_ent), 4,
				     offsetof(struct acount4_ent, count)};
	return (struct atab){(void **)&c->e6, &c->cap6, &c->n6, &c->dead6, sizeof(struct acount6_ent), 16,
			     offsetof(struct acount6_ent, count)};
}

uint32_t acount_get(const struct acount *ct, uint8_t fam, const uint8_t *ip)
{
	struct atab t = tab_of(ct, fam);
	if (!*t.cap)
		return 0;
	size_t i = slot(&t, *t.e, *t.cap, ip, false);
	uint32_t c = *cnt_at(&t, *t.e, i);
	return c == DEAD ? 0 : c;
}

static void grow_tab(struct atab *t)
{
	size_t cap = *t->cap, ncap = cap ? (*t->n * 2 >= cap ? cap * 2 : cap) : 1024;
	void *ne = xcalloc(ncap, t->esz);
	for (size_t i = 0; i < cap; i++) {
		uint32_t c = *cnt_at(t, *t->e, i);
		if (c == 0 || c == DEAD)
			continue;
		const uint8_t *k = (const uint8_t *)*t->e + i * t->esz;
		memcpy((char *)ne + slot(t, ne, ncap, k, true) * t->esz, k, t->esz);
	}
	free(*t->e);
	*t->e = ne;
	*t->cap = ncap;
	*t->dead = 0;
}

void acount_set(struct acount *ct, uint8_t fam, const uint8_t *ip, uint32_t count)
{
	struct atab t = tab_of(ct, fam);
	if (count == DEAD)
		count--; /* never reached: a count is a number of service ports */
	if (!count) {
		if (!*t.cap)
			return;
		size_t i = slot(&t, *t.e, *t.cap, ip, false);
		uint32_t *c = cnt_at(&t, *t.e, i);
		if (*c != 0 && *c != DEAD) {
			*c = DEAD;
			(*t.n)--;
			(*t.dead)++;
		}
		return;
	}
	/* up to 7/8 full: this is the largest table (one slot per endpoint address), and its keys
	 * are few bytes, so probes stay cheap; 100,000 IPv4 endpoints fit in 1 MiB, not 2 */
	if ((*t.n + *t.dead + 1) * 8 >= *t.cap * 7)
		grow_tab(&t);
	size_t i = slot(&t, *t.e, *t.cap, ip, true);
	uint32_t *c = cnt_at(&t, *t.e, i);
	if (*c == 0 || *c == DEAD) {
		if (*c == DEAD)
			(*t.dead)--;
		(*t.n)++;
		memcpy((char *)*t.e + i * t.esz, ip, t.klen);
	}
	*c = count;
}

void acount_free(struct acount *t)
{
	free(t->e4);
	free(t->e6);
	memset(t, 0, sizeof(*t));
}
