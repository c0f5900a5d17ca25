/* sha256 digests ("sha256:<64 lowercase hex>"), computed while data streams through. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "error.h"

#define KIMG_DIGEST_LEN 71 /* "sha256:" + 64 */

struct kimg_hash;

bool kimg_digest_valid(const char *d);
/* The 64 hex digits of a valid digest. */
const char *kimg_digest_hex(const char *d);

struct kimg_hash *kimg_hash_new(void);
void kimg_hash_update(struct kimg_hash *h, const void *buf, size_t len);
/* Finish into out ("sha256:..."); the hash can then only be freed. */
void kimg_hash_final(struct kimg_hash *h, char out[KIMG_DIGEST_LEN + 1]);
void kimg_hash_free(struct kimg_hash *h);
void kimg_digest_buf(const void *buf, size_t len, char out[KIMG_DIGEST_LEN + 1]);
