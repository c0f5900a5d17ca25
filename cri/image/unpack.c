#include "unpack.h"

#include <archive.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "digest.h"
#include "extract.h"
#include "fs.h"

char *kimg_layer_path(struct kimg_store *s, const char *diff_id)
{
	return xasprintf("%s/layers/%s", s->root, kimg_digest_hex(diff_id));
}

static bool layer_exists(struct kimg_store *s, const char *hex)
{
	struct stat st;
	return fstatat(s->layersfd, hex, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

/* The outer archive only decompresses (format "raw"); the tar reader pulls the uncompressed
 * bytes through this callback, which hashes them on the way: one pass gives diffID and files. */
struct tee {
	struct archive *outer;
	struct kimg_hash *h;
	char *buf;
	const char *err;
};

static la_ssize_t tee_read(struct archive *a, void *data, const void **ret)
{
	(void)a;
	struct tee *t = data;
	la_ssize_t n = archive_read_data(t->outer, t->buf, 1 << 20);
	if (n < 0) {
		t->err = archive_error_string(t->outer);
		return -1;
	}
	kimg_hash_update(t->h, t->buf, (size_t)n);
	*ret = t->buf;
	return n;
}

static int extract_hashed(int blobfd, int dirfd, const char *blob, char out[KIMG_DIGEST_LEN + 1], struct kelp_err *err)
{
	struct archive *outer = archive_read_new(), *tar = archive_read_new();
	if (!outer || !tar)
		abort();
	struct tee t = {.outer = outer, .h = kimg_hash_new(), .buf = xmalloc(1 << 20)};
	struct archive_entry *raw;
	int rc = -1;
	kimg_layer_filters(outer);
	archive_read_support_format_raw(outer);
	archive_read_support_format_tar(tar);
	if (archive_read_open_fd(outer, blobfd, 1 << 20) != ARCHIVE_OK || archive_read_next_header(outer, &raw) != ARCHIVE_OK) {
		kelp_fail(err, EIO, "layer %s: open: %s", blob, archive_error_string(outer));
		goto out;
	}
	if (archive_read_open(tar, &t, NULL, tee_read, NULL) != ARCHIVE_OK) {
		kelp_fail(err, EIO, "layer %s: not a tar archive: %s", blob, t.err ? t.err : archive_error_string(tar));
		goto out;
	}
	if (kimg_extract(tar, dirfd, err) < 0) {
		kelp_error_wrap(err, "layer %s", blob);
		goto out;
	}
	/* the tar reader stops at the end marker: the padding after it is part of the diffID */
	la_ssize_t n;
	while ((n = archive_read_data(outer, t.buf, 1 << 20)) > 0)
		kimg_hash_update(t.h, t.buf, (size_t)n);
	if (n < 0) {
		kelp_fail(err, EIO, "layer %s: decompress: %s", blob, archive_error_string(outer));
		goto out;
	}
	kimg_hash_final(t.h, out);
	rc = 0;
out:
	archive_read_free(tar);
	archive_read_free(outer);
	kimg_hash_free(t.h);
	free(t.buf);
	return rc;
}

int kimg_unpack_layer(struct kimg_store *s, const char *blob, const char *diff_id, struct kelp_err *err)
{
	if (!kimg_digest_valid(diff_id))
		return kelp_fail(err, EINVAL, "layer %s: bad diffID %s", blob, diff_id);
	const char *hex = kimg_digest_hex(diff_id);
	if (layer_exists(s, hex))
		return 0;
	char lockname[96], tmp[96];
	snprintf(lockname, sizeof(lockname), "layer-%s", hex);
	snprintf(tmp, sizeof(tmp), "layer-%s", hex);
	cleanup_close int lock = kimg_store_name_lock(s, lockname, err);
	if (lock < 0)
		return -1;
	if (layer_exists(s, hex))
		return 0; /* another unpacker finished while we waited */
	/* a directory left by a killed unpacker is never used: start again */
	if (kelp_rm_rf_at(s->tmpfd, tmp, err) < 0)
		return kelp_error_wrap(err, "layer %s: remove stale unpack", blob);
	if (mkdirat(s->tmpfd, tmp, 0755) < 0)
		return kelp_error(err, errno, "layer %s: create unpack directory", blob);
	int rc = -1;
	cleanup_close int dirfd = openat(s->tmpfd, tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	cleanup_close int blobfd = kimg_blob_open(s, blob, err);
	char got[KIMG_DIGEST_LEN + 1];
	if (dirfd < 0) {
		kelp_error(err, errno, "layer %s: open unpack directory", blob);
		goto out;
	}
	if (blobfd < 0 || extract_hashed(blobfd, dirfd, blob, got, err) < 0)
		goto out;
	if (strcmp(got, diff_id)) {
		kelp_fail(err, EIO, "layer %s: uncompressed content has digest %s, the image config says %s", blob, got, diff_id);
		goto out;
	}
	if (syncfs(dirfd) < 0) {
		kelp_error(err, errno, "layer %s: sync", blob);
		goto out;
	}
	if (renameat(s->tmpfd, tmp, s->layersfd, hex) < 0) {
		kelp_error(err, errno, "layer %s: move into place", blob);
		goto out;
	}
	if (fsync(s->layersfd) < 0) {
		kelp_error(err, errno, "layer %s: sync layer directory", blob);
		goto out;
	}
	rc = 0;
out:
	if (rc < 0) {
		struct kelp_err ignored;
		kelp_rm_rf_at(s->tmpfd, tmp, &ignored);
	}
	return rc;
}
