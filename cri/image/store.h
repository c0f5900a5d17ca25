/* The content store: blobs by digest under <root>/blobs/sha256, written through an ingest that
 * verifies size and digest while the bytes stream in (temp file + fsync + rename, so a blob
 * file that exists is always complete and verified), unpacked layers under <root>/layers, and
 * the SQLite metadata (<root>/meta.db). A flock on <root>/lock keeps garbage collection away
 * from pulls and imports in flight, in this process or another (kelpd and the CLI). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sqlite3.h>

#include "digest.h"
#include "error.h"

struct kimg_store {
	char *root;
	int rootfd, blobsfd, ingestfd, layersfd, tmpfd, containersfd;
	sqlite3 *db;
};

int kimg_store_open(const char *root, struct kimg_store **ret, struct kelp_err *err);
void kimg_store_close(struct kimg_store *s);

/* Shared: pulls, imports, container roots. Exclusive: garbage collection. Returns a lock fd
 * (its own open file, so threads of one process exclude each other too); close it to unlock. */
int kimg_store_lock(struct kimg_store *s, bool exclusive, struct kelp_err *err);

bool kimg_blob_exists(struct kimg_store *s, const char *digest);
/* Open a blob read-only. */
int kimg_blob_open(struct kimg_store *s, const char *digest, struct kelp_err *err);
/* Read a small blob (manifests, configs) and check its digest again. */
int kimg_blob_read(struct kimg_store *s, const char *digest, size_t max, char **ret, size_t *ret_len,
		   struct kelp_err *err);

struct kimg_ingest {
	struct kimg_store *s;
	char digest[KIMG_DIGEST_LEN + 1];
	char tmp[96], lockname[96];
	int64_t size; /* expected, -1 when unknown */
	int64_t written;
	int fd, lockfd;
	struct kimg_hash *h;
};

/* Start writing blob `digest` of `size` bytes (-1: unknown). Waits while another writer (thread
 * or process) holds the same blob, so it is fetched once. Returns 1 when the blob is already
 * there (nothing to do), 0 when the ingest is open and must end with commit or abort. */
int kimg_ingest_begin(struct kimg_store *s, const char *digest, int64_t size, struct kimg_ingest *ret,
		      struct kelp_err *err);
int kimg_ingest_write(struct kimg_ingest *in, const void *buf, size_t len, struct kelp_err *err);
/* Start over (a retry from another mirror). */
int kimg_ingest_reset(struct kimg_ingest *in, struct kelp_err *err);
/* Check size and digest, fsync, rename into place. On error the ingest is aborted. */
int kimg_ingest_commit(struct kimg_ingest *in, struct kelp_err *err);
void kimg_ingest_abort(struct kimg_ingest *in);

/* Store a whole buffer; when digest is NULL it is computed (ret_digest may be NULL). */
int kimg_blob_put(struct kimg_store *s, const char *digest, const void *buf, size_t len,
		  char ret_digest[KIMG_DIGEST_LEN + 1], struct kelp_err *err);
/* Copy a file into the store, verifying it against digest (NULL: computed). */
int kimg_blob_put_fd(struct kimg_store *s, const char *digest, int fd, char ret_digest[KIMG_DIGEST_LEN + 1],
		     struct kelp_err *err);

/* Exclusive per-name lock file under <root>/tmp (unpacking one layer once). */
int kimg_store_name_lock(struct kimg_store *s, const char *name, struct kelp_err *err);
