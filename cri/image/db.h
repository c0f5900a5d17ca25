/* Image metadata in SQLite (WAL): images, the blobs and layers each uses (reference counts are
 * the number of rows naming a blob or layer), and container roots holding layers. Every change
 * is one transaction, so a crash leaves the old or the new state. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct kimg_store;

struct kimg_layer_rec {
	char *blob, *diff_id, *media_type;
	int64_t size;
};

struct kimg_image {
	char *name;        /* normalised reference, the key */
	char *manifest;    /* manifest digest */
	char *config;      /* config digest: the image id */
	char *repo_digest; /* what the reference resolved to (an index or the manifest) */
	int64_t size;      /* manifest + config + compressed layers */
	int64_t created;   /* unix seconds, when stored */
	struct kimg_layer_rec *layers;
	size_t n_layers;
};

void kimg_image_free(struct kimg_image *img);
int kimg_db_open(struct kimg_store *s, struct kelp_err *err);
/* Insert or replace img (and its blob and layer rows); extra is one more blob it holds (the
 * index it was chosen from), may be NULL. */
int kimg_db_put_image(struct kimg_store *s, const struct kimg_image *img, const char *extra, struct kelp_err *err);
/* Find by normalised name, by image id (config digest, or a prefix of its hex of at least 6) or by
 * repo digest. ENOENT when there is none. */
int kimg_db_find_image(struct kimg_store *s, const char *key, struct kimg_image *ret, struct kelp_err *err);
int kimg_db_list_images(struct kimg_store *s, struct kimg_image **ret, size_t *ret_n, struct kelp_err *err);
int kimg_db_delete_image(struct kimg_store *s, const char *name, struct kelp_err *err);
/* How many images use a blob; how many images and containers use a layer. */
int kimg_db_blob_refs(struct kimg_store *s, const char *digest, int64_t *ret, struct kelp_err *err);
int kimg_db_layer_refs(struct kimg_store *s, const char *diff_id, int64_t *ret, struct kelp_err *err);
int kimg_db_put_container(struct kimg_store *s, const char *id, const char *image, char *const *diff_ids,
			  struct kelp_err *err);
int kimg_db_delete_container(struct kimg_store *s, const char *id, struct kelp_err *err);
