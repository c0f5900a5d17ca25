/* libFuzzer target: layer extraction (cri/image/extract.c, unpack.c) into a temporary root.
 * Byte 0 selects the path, the rest is the layer blob (plain tar, gzip, zstd: whatever
 * libarchive's filters read):
 *   byte0 % 16 != 0  kimg_extract_fd into base/root (the extraction every layer goes through)
 *   byte0 % 16 == 0  the store's own path: kimg_blob_put, then kimg_unpack_layer (outer
 *                    decompression hashed into the diffID, extraction into store/tmp, rename
 *                    to store/layers/<diffID>); the diffID is computed by the harness so valid
 *                    layers land and can be checked (and are unpacked a second time: nothing
 *                    to do), unless byte0 & 0x20: then it is wrong, and the unpack must fail
 *                    and leave nothing behind.
 * Property checked after every input, not only "no crash":
 *   - nothing outside the layer root changed: the base directory (a sibling "outside/" with
 *     files, a "secret" file, the store's own directories) is walked and compared with the
 *     snapshot taken at start (same names, inodes, types, link counts; sizes and mtimes of
 *     non-directories);
 *   - no file inside the root is a hardlink to a file outside it: no inode of the root is one of
 *     the outside inodes, and each inode's link count equals the number of its names in the root.
 *   - what was extracted can be removed again by the store's own kelp_rm_rf_at under the
 *     RLIMIT_NOFILE soft limit a systemd service gets (1024): a layer the garbage collector
 *     cannot remove wedges every later collection.
 * The root is removed and recreated after every input (a small tree: cheap). The base directory
 * is under $TMPDIR, else /dev/shm (tmpfs: kimg_unpack_layer's syncfs costs nothing there, and
 * it takes trusted.* and user.* xattrs), else /tmp. */
#include <archive.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "digest.h"
#include "error.h"
#include "extract.h"
#include "fs.h"
#include "store.h"
#include "unpack.h"

struct node {
	char *path; /* relative to the walk's start */
	dev_t dev;
	ino_t ino;
	mode_t mode;
	nlink_t nlink;
	off_t size;
	struct timespec mtime;
};

struct nodes {
	struct node *v;
	size_t n, cap;
};

static char base[4096];
static int basefd = -1, rootfd = -1, memfd = -1;
static struct kimg_store *store;
static struct nodes snapshot; /* the base directory, without root/ and what is under store/layers */

static void die(const char *what)
{
	fprintf(stderr, "fuzz_image_layer: %s: %s\n", what, strerror(errno));
	abort();
}

static void die_err(const char *what, const struct kelp_err *err)
{
	fprintf(stderr, "fuzz_image_layer: %s: %s\n", what, err->msg);
	abort();
}

static void nodes_free(struct nodes *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].path);
	free(l->v);
	*l = (struct nodes){0};
}

static bool skipped(const char *rel)
{
	/* the direct root, and what the store path unpacks (removed after each input) */
	return !strcmp(rel, "root") || !strncmp(rel, "store/layers/", 13);
}

/* Everything under dfd (not following symlinks), paths prefixed by rel. */
static void walk(int dfd, const char *rel, struct nodes *out, bool skip)
{
	int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		die(rel);
	DIR *d = fdopendir(fd);
	if (!d)
		die(rel);
	struct dirent *de;
	errno = 0;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		char *p = *rel ? xasprintf("%s/%s", rel, de->d_name) : xstrdup(de->d_name);
		if (skip && skipped(p)) {
			free(p);
			continue;
		}
		struct stat st;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			die(p);
		if (out->n == out->cap) {
			out->cap = out->cap ? 2 * out->cap : 64;
			out->v = realloc(out->v, out->cap * sizeof(*out->v));
			if (!out->v)
				abort();
		}
		out->v[out->n++] = (struct node){p, st.st_dev, st.st_ino, st.st_mode, st.st_nlink, st.st_size, st.st_mtim};
		if (S_ISDIR(st.st_mode)) {
			int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0)
				die(p);
			walk(sub, p, out, skip);
			close(sub);
		}
		errno = 0;
	}
	if (errno)
		die(rel);
	closedir(d);
}

static int by_path(const void *a, const void *b)
{
	return strcmp(((const struct node *)a)->path, ((const struct node *)b)->path);
}

static void take(struct nodes *out)
{
	walk(basefd, "", out, true);
	if (out->n > 1)
		qsort(out->v, out->n, sizeof(*out->v), by_path);
}

static void escape(const char *what, const char *path)
{
	fprintf(stderr, "ESCAPE: %s: %s (base %s)\n", what, path, base);
	abort();
}

/* Nothing outside the root was created, removed, replaced, linked to or written. */
static void check_outside(void)
{
	struct nodes now = {0};
	take(&now);
	size_t i = 0, j = 0;
	while (i < snapshot.n || j < now.n) {
		int c = i == snapshot.n ? 1 : j == now.n ? -1 : strcmp(snapshot.v[i].path, now.v[j].path);
		if (c < 0)
			escape("removed outside the root", snapshot.v[i].path);
		if (c > 0)
			escape("created outside the root", now.v[j].path);
		const struct node *a = &snapshot.v[i], *b = &now.v[j];
		if (a->ino != b->ino || a->dev != b->dev || (a->mode & S_IFMT) != (b->mode & S_IFMT))
			escape("replaced outside the root", a->path);
		if (!S_ISDIR(a->mode) && (a->nlink != b->nlink || a->mode != b->mode))
			escape("link count or mode changed outside the root", a->path);
		if (!S_ISDIR(a->mode) && (a->size != b->size || a->mtime.tv_sec != b->mtime.tv_sec ||
					   a->mtime.tv_nsec != b->mtime.tv_nsec))
			escape("written outside the root", a->path);
		i++, j++;
	}
	nodes_free(&now);
}

static int by_inode(const void *a, const void *b)
{
	const struct node *x = a, *y = b;
	if (x->dev != y->dev)
		return x->dev < y->dev ? -1 : 1;
	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

/* No non-directory of the root shares its inode with anything outside the root. */
static void check_links(int dfd)
{
	struct nodes in = {0};
	walk(dfd, "", &in, false);
	if (in.n > 1)
		qsort(in.v, in.n, sizeof(*in.v), by_inode);
	for (size_t i = 0; i < in.n;) {
		size_t j = i;
		while (j < in.n && !by_inode(&in.v[i], &in.v[j]))
			j++;
		const struct node *a = &in.v[i];
		if (!S_ISDIR(a->mode)) {
			for (size_t k = 0; k < snapshot.n; k++)
				if (snapshot.v[k].ino == a->ino && snapshot.v[k].dev == a->dev)
					escape("hardlink to a file outside the root", a->path);
			if (a->nlink != j - i)
				escape("a file of the root has links outside it", a->path);
		}
		i = j;
	}
	nodes_free(&in);
}

static void xmkdirat(int dfd, const char *name)
{
	if (mkdirat(dfd, name, 0755) < 0)
		die(name);
}

static void xfileat(int dfd, const char *name, const char *data)
{
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	size_t len = strlen(data);
	if (fd < 0 || write(fd, data, len) != (ssize_t)len || close(fd) < 0)
		die(name);
}

/* kelp_rm_rf_at as the store's garbage collector runs it, in a service's default fd limit. */
#define SERVICE_NOFILE 1024
static void remove_as_gc(int dfd, const char *name, const char *what)
{
	struct rlimit rl, low;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		die("getrlimit");
	low = rl;
	if (low.rlim_cur > SERVICE_NOFILE)
		low.rlim_cur = SERVICE_NOFILE;
	if (setrlimit(RLIMIT_NOFILE, &low) < 0)
		die("setrlimit");
	struct kelp_err err = {0};
	int r = kelp_rm_rf_at(dfd, name, &err);
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		die("setrlimit");
	if (r < 0) {
		/* in a deep tree the message is one "dir: " per level, cut at its size: errno says why */
		fprintf(stderr, "UNREMOVABLE: %s: kelp_rm_rf_at under RLIMIT_NOFILE %d: %s: %.200s\n", what,
			SERVICE_NOFILE, strerror(err.code), err.msg);
		abort();
	}
}

static void reset_root(void)
{
	if (rootfd >= 0)
		close(rootfd);
	remove_as_gc(basefd, "root", "the extracted root");
	xmkdirat(basefd, "root");
	rootfd = openat(basefd, "root", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (rootfd < 0)
		die("root");
}

static void cleanup_all(void)
{
	struct kelp_err err = {0};
	if (store)
		kimg_store_close(store);
	if (base[0] && kelp_rm_rf_at(AT_FDCWD, base, &err) < 0)
		fprintf(stderr, "fuzz_image_layer: remove %s: %s\n", base, err.msg);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* the harness's own walks hold one fd per directory level */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	const char *tmp = getenv("TMPDIR");
	if (!tmp || !*tmp)
		tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	char t[4096];
	snprintf(t, sizeof(t), "%s/kelp-fuzz-layer-XXXXXX", tmp);
	if (!mkdtemp(t) || !realpath(t, base))
		die(t);
	basefd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (basefd < 0)
		die(base);
	atexit(cleanup_all);
	/* what a hostile layer aims at: a sibling directory and a file next to the root */
	xmkdirat(basefd, "outside");
	xfileat(basefd, "outside/file", "outside\n");
	xmkdirat(basefd, "outside/dir");
	xfileat(basefd, "secret", "secret\n");
	char sroot[4200];
	snprintf(sroot, sizeof(sroot), "%s/store", base);
	struct kelp_err err = {0};
	if (kimg_store_open(sroot, &store, &err) < 0)
		die_err("open store", &err);
	memfd = memfd_create("layer", MFD_CLOEXEC);
	if (memfd < 0)
		die("memfd_create");
	reset_root();
	take(&snapshot);
	return 0;
}

/* The diffID the image config would give: sha256 of the decompressed blob. */
static void diff_id(const uint8_t *data, size_t size, char out[KIMG_DIGEST_LEN + 1])
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	if (!a)
		abort();
	archive_read_support_filter_all(a);
	archive_read_support_format_raw(a);
	struct kimg_hash *h = kimg_hash_new();
	bool ok = archive_read_open_memory(a, data, size) == ARCHIVE_OK && archive_read_next_header(a, &e) == ARCHIVE_OK;
	char buf[65536];
	la_ssize_t n = 0;
	while (ok && (n = archive_read_data(a, buf, sizeof(buf))) > 0)
		kimg_hash_update(h, buf, (size_t)n);
	kimg_hash_final(h, out);
	kimg_hash_free(h);
	archive_read_free(a);
	if (!ok || n < 0) /* undecompressable: any valid digest; the unpack fails anyway */
		snprintf(out, KIMG_DIGEST_LEN + 1, "sha256:%064d", 0);
}

static void unlink_if(int dfd, const char *name)
{
	if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
		die(name);
}

static void through_store(const uint8_t *data, size_t size, bool wrong_diff_id)
{
	struct kelp_err err = {0};
	char blob[KIMG_DIGEST_LEN + 1], diff[KIMG_DIGEST_LEN + 1];
	diff_id(data, size, diff);
	if (wrong_diff_id)
		diff[7] = diff[7] == '0' ? '1' : '0';
	if (kimg_blob_put(store, NULL, data, size, blob, &err) < 0)
		die_err("put blob", &err);
	const char *dhex = kimg_digest_hex(diff);
	if (kimg_unpack_layer(store, blob, diff, &err) == 0) {
		if (wrong_diff_id) {
			fprintf(stderr, "fuzz_image_layer: a layer unpacked under a wrong diffID\n");
			abort();
		}
		cleanup_close int lfd = openat(store->layersfd, dhex, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (lfd < 0)
			die("unpacked layer");
		check_links(lfd);
		if (kimg_unpack_layer(store, blob, diff, &err) < 0)
			die_err("unpack a layer that is there", &err);
	}
	remove_as_gc(store->layersfd, dhex, "the unpacked layer");
	/* what the store keeps per blob and layer: the blob, its ingest lock, the unpack lock */
	char name[128];
	unlink_if(store->blobsfd, kimg_digest_hex(blob));
	snprintf(name, sizeof(name), "%s.lock", kimg_digest_hex(blob));
	unlink_if(store->ingestfd, name);
	snprintf(name, sizeof(name), "layer-%s.lock", dhex);
	unlink_if(store->tmpfd, name);
	/* the direct root stays empty while the store path runs */
	struct nodes in = {0};
	walk(rootfd, "", &in, false);
	if (in.n)
		escape("created in the direct root by the store path", in.v[0].path);
	nodes_free(&in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t sel = data[0];
	data++, size--;
	if (sel % 16 == 0) {
		through_store(data, size, sel & 0x20);
	} else {
		if (ftruncate(memfd, 0) < 0 || pwrite(memfd, data, size, 0) != (ssize_t)size || lseek(memfd, 0, SEEK_SET) < 0)
			die("memfd");
		struct kelp_err err = {0};
		(void)kimg_extract_fd(memfd, rootfd, &err);
		check_links(rootfd);
		reset_root();
	}
	check_outside();
	return 0;
}
