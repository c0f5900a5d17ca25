/* The image store's operations, shared by kelpd's CRI ImageService and `kelpd image`: record an
 * image whose blobs are in the store (unpacking its layers), remove one and free what nothing
 * else uses, and import from OCI layouts, OCI archives and docker-archive tarballs. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "db.h"
#include "error.h"
#include "manifest.h"
#include "store.h"

/* Progress of a pull or import, for the CLI and logs: called as bytes arrive for a blob. */
typedef void (*kimg_progress_fn)(void *data, const char *digest, int64_t done, int64_t total);

/* The manifest `manifest` (and its config and layer blobs) is in the store: unpack the layers,
 * check them against the config's diffIDs and record the image as `name`. repo_digest is what
 * the name resolved to (an index, or the manifest itself); index (may be NULL) is kept alive
 * with the image. */
int kimg_image_commit(struct kimg_store *s, const char *name, const char *repo_digest, const char *manifest,
		      const char *index, struct kimg_image *ret, struct kelp_err *err);
/* Remove the image a key names (name, id, repo digest) and garbage-collect. */
int kimg_image_remove(struct kimg_store *s, const char *key, struct kelp_err *err);
/* Delete blobs, layers and leftovers that no image or container uses. */
int kimg_store_gc(struct kimg_store *s, struct kelp_err *err);
/* The same, but only if nothing holds the store (EWOULDBLOCK otherwise). */
int kimg_store_gc_try(struct kimg_store *s, struct kelp_err *err);

/* Import path (an OCI layout directory, an OCI archive or a docker-archive tarball). base_name
 * names images whose layout only gives a tag. The names imported are returned (NULL-terminated). */
int kimg_import(struct kimg_store *s, const char *path, const char *base_name, const struct kimg_platform *plat,
		char ***ret_names, struct kelp_err *err);
