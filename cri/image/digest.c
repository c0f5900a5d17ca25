#include "digest.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool kimg_digest_valid(const char *d)
{
	if (!d || strncmp(d, "sha256:", 7) || strlen(d) != KIMG_DIGEST_LEN)
		return false;
	for (const char *p = d + 7; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

const char *kimg_digest_hex(const char *d)
{
	return d + 7;
}

struct kimg_hash {
	EVP_MD_CTX *ctx;
};

struct kimg_hash *kimg_hash_new(void)
{
	struct kimg_hash *h = malloc(sizeof(*h));
	if (!h || !(h->ctx = EVP_MD_CTX_new()) || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1)
		abort(); /* only allocation can fail here */
	return h;
}

void kimg_hash_update(struct kimg_hash *h, const void *buf, size_t len)
{
	if (len && EVP_DigestUpdate(h->ctx, buf, len) != 1)
		abort();
}

void kimg_hash_final(struct kimg_hash *h, char out[KIMG_DIGEST_LEN + 1])
{
	unsigned char md[32];
	unsigned int n = 0;
	if (EVP_DigestFinal_ex(h->ctx, md, &n) != 1 || n != 32)
		abort();
	memcpy(out, "sha256:", 7);
	for (int i = 0; i < 32; i++)
		snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
}

void kimg_hash_free(struct kimg_hash *h)
{
	if (!h)
		return;
	EVP_MD_CTX_free(h->ctx);
	free(h);
}

void kimg_digest_buf(const void *buf, size_t len, char out[KIMG_DIGEST_LEN + 1])
{
	struct kimg_hash *h = kimg_hash_new();
	kimg_hash_update(h, buf, len);
	kimg_hash_final(h, out);
	kimg_hash_free(h);
}
