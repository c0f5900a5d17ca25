#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "db.h"
#include "fs.h"

static int open_subdir(int dirfd, const char *name, const char *root, struct kelp_err *err)
{
	if (mkdirat(dirfd, name, 0700) < 0 && errno != EEXIST)
		return kelp_error(err, errno, "create %s/%s", root, name);
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return kelp_error(err, errno, "open %s/%s", root, name);
	return fd;
}

static int mkdir_p(const char *path, struct kelp_err *err)
{
	cleanup_free char *p = xstrdup(path);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			return kelp_error(err, errno, "create %s", p);
		*s = '/';
	}
	if (mkdir(p, 0700) < 0 && errno != EEXIST)
		return kelp_error(err, errno, "create %s", p);
	return 0;
}

void kimg_store_close(struct kimg_store *s)
{
	if (!s)
		return;
	int *fds[] = {&s->rootfd, &s->blobsfd, &s->ingestfd, &s->layersfd, &s->tmpfd, &s->containersfd};
	for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
		if (*fds[i] >= 0)
			close(*fds[i]);
	if (s->db)
		sqlite3_close(s->db);
	free(s->root);
	free(s);
}

int kimg_store_open(const char *root, struct kimg_store **ret, struct kelp_err *err)
{
	if (!root || root[0] != '/')
		return kelp_fail(err, EINVAL, "store root %s: must be an absolute path", root ? root : "(none)");
	struct kimg_store *s = xcalloc(1, sizeof(*s));
	s->rootfd = s->blobsfd = s->ingestfd = s->layersfd = s->tmpfd = s->containersfd = -1;
	s->root = xstrdup(root);
	cleanup_close int blobs = -1;
	if (mkdir_p(root, err) < 0)
		goto fail;
	s->rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->rootfd < 0) {
		kelp_error(err, errno, "open store root %s", root);
		goto fail;
	}
	if ((blobs = open_subdir(s->rootfd, "blobs", root, err)) < 0 ||
	    (s->blobsfd = open_subdir(blobs, "sha256", root, err)) < 0 ||
	    (s->ingestfd = open_subdir(s->rootfd, "ingest", root, err)) < 0 ||
	    (s->layersfd = open_subdir(s->rootfd, "layers", root, err)) < 0 ||
	    (s->tmpfd = open_subdir(s->rootfd, "tmp", root, err)) < 0 ||
	    (s->containersfd = open_subdir(s->rootfd, "containers", root, err)) < 0)
		goto fail;
	if (kimg_db_open(s, err) < 0)
		goto fail;
	*ret = s;
	return 0;
fail:
	kimg_store_close(s);
	return -1;
}

int kimg_store_lock(struct kimg_store *s, bool exclusive, struct kelp_err *err)
{
	cleanup_close int fd = openat(s->rootfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return kelp_error(err, errno, "open %s/lock", s->root);
	while (flock(fd, exclusive ? LOCK_EX : LOCK_SH) < 0)
		if (errno != EINTR)
			return kelp_error(err, errno, "lock store %s", s->root);
	return TAKE_FD(fd);
}

bool kimg_blob_exists(struct kimg_store *s, const char *digest)
{
	struct stat st;
	return kimg_digest_valid(digest) && fstatat(s->blobsfd, kimg_digest_hex(digest), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	       S_ISREG(st.st_mode);
}

int kimg_blob_open(struct kimg_store *s, const char *digest, struct kelp_err *err)
{
	if (!kimg_digest_valid(digest))
		return kelp_fail(err, EINVAL, "bad digest %s", digest);
	int fd = openat(s->blobsfd, kimg_digest_hex(digest), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return kelp_error(err, errno, "open blob %s", digest);
	return fd;
}

int kimg_blob_read(struct kimg_store *s, const char *digest, size_t max, char **ret, size_t *ret_len,
		   struct kelp_err *err)
{
	cleanup_close int fd = kimg_blob_open(s, digest, err);
	if (fd < 0)
		return -1;
	cleanup_free char *buf = NULL;
	size_t len;
	if (kelp_read_fd(fd, max, &buf, &len, err) < 0)
		return kelp_error_wrap(err, "blob %s", digest);
	char got[KIMG_DIGEST_LEN + 1];
	kimg_digest_buf(buf, len, got);
	if (strcmp(got, digest))
		return kelp_fail(err, EIO, "blob %s: content has digest %s (store corrupted)", digest, got);
	*ret = TAKE_PTR(buf);
	*ret_len = len;
	return 0;
}

static int lock_file(int dirfd, const char *name, const char *what, struct kelp_err *err)
{
	cleanup_close int fd = openat(dirfd, name, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return kelp_error(err, errno, "open lock of %s", what);
	while (flock(fd, LOCK_EX) < 0)
		if (errno != EINTR)
			return kelp_error(err, errno, "lock %s", what);
	return TAKE_FD(fd);
}

int kimg_store_name_lock(struct kimg_store *s, const char *name, struct kelp_err *err)
{
	cleanup_free char *n = xasprintf("%s.lock", name);
	return lock_file(s->tmpfd, n, name, err);
}

int kimg_ingest_begin(struct kimg_store *s, const char *digest, int64_t size, struct kimg_ingest *ret,
		      struct kelp_err *err)
{
	if (!kimg_digest_valid(digest))
		return kelp_fail(err, EINVAL, "bad digest %s", digest);
	struct kimg_ingest in = {.s = s, .size = size, .fd = -1, .lockfd = -1};
	snprintf(in.digest, sizeof(in.digest), "%s", digest);
	snprintf(in.tmp, sizeof(in.tmp), "%s.partial", kimg_digest_hex(digest));
	snprintf(in.lockname, sizeof(in.lockname), "%s.lock", kimg_digest_hex(digest));
	in.lockfd = lock_file(s->ingestfd, in.lockname, digest, err);
	if (in.lockfd < 0)
		return -1;
	if (kimg_blob_exists(s, digest)) {
		close(in.lockfd);
		return 1;
	}
	/* whatever a killed writer left is not trusted: start from zero */
	in.fd = openat(s->ingestfd, in.tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (in.fd < 0) {
		kelp_error(err, errno, "create ingest file for %s", digest);
		close(in.lockfd);
		return -1;
	}
	in.h = kimg_hash_new();
	*ret = in;
	return 0;
}

int kimg_ingest_write(struct kimg_ingest *in, const void *buf, size_t len, struct kelp_err *err)
{
	if (in->size >= 0 && in->written + (int64_t)len > in->size)
		return kelp_fail(err, EFBIG, "blob %s: more data than the %lld bytes announced", in->digest,
				 (long long)in->size);
	if (kelp_write_all(in->fd, buf, len) < 0)
		return kelp_error(err, errno, "write blob %s", in->digest);
	kimg_hash_update(in->h, buf, len);
	in->written += (int64_t)len;
	return 0;
}

int kimg_ingest_reset(struct kimg_ingest *in, struct kelp_err *err)
{
	if (ftruncate(in->fd, 0) < 0 || lseek(in->fd, 0, SEEK_SET) < 0)
		return kelp_error(err, errno, "reset ingest of %s", in->digest);
	kimg_hash_free(in->h);
	in->h = kimg_hash_new();
	in->written = 0;
	return 0;
}

void kimg_ingest_abort(struct kimg_ingest *in)
{
	if (in->fd >= 0) {
		close(in->fd);
		unlinkat(in->s->ingestfd, in->tmp, 0);
	}
	kimg_hash_free(in->h);
	if (in->lockfd >= 0)
		close(in->lockfd);
	in->fd = in->lockfd = -1;
	in->h = NULL;
}

int kimg_ingest_commit(struct kimg_ingest *in, struct kelp_err *err)
{
	char got[KIMG_DIGEST_LEN + 1];
	int rc = -1;
	if (in->size >= 0 && in->written != in->size) {
		kelp_fail(err, EIO, "blob %s: truncated, got %lld of %lld bytes", in->digest, (long long)in->written,
			  (long long)in->size);
		goto out;
	}
	kimg_hash_final(in->h, got);
	if (strcmp(got, in->digest)) {
		kelp_fail(err, EIO, "blob %s: digest mismatch, the content has %s", in->digest, got);
		goto out;
	}
	if (fsync(in->fd) < 0) {
		kelp_error(err, errno, "fsync blob %s", in->digest);
		goto out;
	}
	if (renameat(in->s->ingestfd, in->tmp, in->s->blobsfd, kimg_digest_hex(in->digest)) < 0) {
		kelp_error(err, errno, "move blob %s into the store", in->digest);
		goto out;
	}
	if (fsync(in->s->blobsfd) < 0) {
		kelp_error(err, errno, "fsync blob directory for %s", in->digest);
		goto out;
	}
	close(in->fd);
	in->fd = -1;
	rc = 0;
out:
	kimg_ingest_abort(in);
	return rc;
}

int kimg_blob_put(struct kimg_store *s, const char *digest, const void *buf, size_t len,
		  char ret_digest[KIMG_DIGEST_LEN + 1], struct kelp_err *err)
{
	char d[KIMG_DIGEST_LEN + 1];
	if (!digest) {
		kimg_digest_buf(buf, len, d);
		digest = d;
	}
	struct kimg_ingest in;
	int r = kimg_ingest_begin(s, digest, (int64_t)len, &in, err);
	if (r < 0)
		return -1;
	if (r == 0 && (kimg_ingest_write(&in, buf, len, err) < 0 || kimg_ingest_commit(&in, err) < 0)) {
		kimg_ingest_abort(&in);
		return -1;
	}
	if (ret_digest)
		snprintf(ret_digest, KIMG_DIGEST_LEN + 1, "%s", digest);
	return 0;
}

int kimg_blob_put_fd(struct kimg_store *s, const char *digest, int fd, char ret_digest[KIMG_DIGEST_LEN + 1],
		     struct kelp_err *err)
{
	char d[KIMG_DIGEST_LEN + 1];
	char *b = xmalloc(1 << 20);
	int rc = -1;
	if (!digest) {
		/* two passes: the digest names the blob, and the ingest checks it again */
		struct kimg_hash *h = kimg_hash_new();
		ssize_t n;
		while ((n = read(fd, b, 1 << 20)) > 0)
			kimg_hash_update(h, b, (size_t)n);
		kimg_hash_final(h, d);
		kimg_hash_free(h);
		if (n < 0 || lseek(fd, 0, SEEK_SET) < 0) {
			kelp_error(err, errno, "read blob");
			goto out;
		}
		digest = d;
	}
	struct kimg_ingest in;
	int r = kimg_ingest_begin(s, digest, -1, &in, err);
	if (r < 0)
		goto out;
	if (r == 0) {
		ssize_t n;
		while ((n = read(fd, b, 1 << 20)) > 0)
			if (kimg_ingest_write(&in, b, (size_t)n, err) < 0) {
				kimg_ingest_abort(&in);
				goto out;
			}
		if (n < 0) {
			kelp_error(err, errno, "read blob %s", digest);
			kimg_ingest_abort(&in);
			goto out;
		}
		if (kimg_ingest_commit(&in, err) < 0)
			goto out;
	}
	if (ret_digest)
		snprintf(ret_digest, KIMG_DIGEST_LEN + 1, "%s", digest);
	rc = 0;
out:
	free(b);
	return rc;
}
