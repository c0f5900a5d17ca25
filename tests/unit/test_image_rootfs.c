/* Unit tests of cri/image/rootfs.c: an overlayfs container root over an image's layers shows the
 * upper layers' files, honours whiteouts and opaque dirs, keeps writes in the container's upper
 * dir, holds its layers while the image is removed, is removed completely, and works for an image
 * deeper than the mount option length allows as one string. Runs in a private mount namespace. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_util.h"

#include "cleanup.h"
#include "db.h"
#include "digest.h"
#include "fs.h"
#include "image.h"
#include "json.h"
#include "rootfs.h"
#include "store.h"

struct fx {
	char dir[64];
	struct kimg_store *s;
};

static int rm_one(const char *p, const struct stat *st, int type, struct FTW *f)
{
	(void)st;
	(void)f;
	return type == FTW_DP ? rmdir(p) : unlink(p);
}

static int setup(void **state)
{
	if (geteuid() != 0)
		return 0;
	struct fx *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/kelp-test-rootfs.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	struct kelp_err err;
	if (kimg_store_open(f->dir, &f->s, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	if (!f)
		return 0;
	kimg_store_close(f->s);
	nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
	free(f);
	return 0;
}

/* A layer from "path=content" entries ("d:path" a dir, "path=" an empty file). */
static void make_layer(struct kimg_store *s, const char *const *entries, char blob[KIMG_DIGEST_LEN + 1])
{
	size_t cap = 1 << 16, used = 0;
	char *buf = malloc(cap);
	struct archive *a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	assert_int_equal(archive_write_open_memory(a, buf, cap, &used), ARCHIVE_OK);
	for (const char *const *e = entries; *e; e++) {
		struct archive_entry *ae = archive_entry_new();
		const char *eq = strchr(*e, '=');
		if (!strncmp(*e, "d:", 2)) {
			archive_entry_set_pathname(ae, *e + 2);
			archive_entry_set_filetype(ae, AE_IFDIR);
			archive_entry_set_perm(ae, 0755);
		} else {
			char path[256];
			snprintf(path, sizeof(path), "%.*s", (int)(eq - *e), *e);
			archive_entry_set_pathname(ae, path);
			archive_entry_set_filetype(ae, AE_IFREG);
			archive_entry_set_perm(ae, 0644);
			archive_entry_set_size(ae, (la_int64_t)strlen(eq + 1));
		}
		assert_int_equal(archive_write_header(a, ae), ARCHIVE_OK);
		if (eq && strlen(eq + 1))
			archive_write_data(a, eq + 1, strlen(eq + 1));
		archive_entry_free(ae);
	}
	archive_write_close(a);
	archive_write_free(a);
	struct kelp_err err;
	assert_int_equal(kimg_blob_put(s, NULL, buf, used, blob, &err), 0);
	free(buf);
}

/* Record an image `name` over the given layer blobs (plain tar, so diffID = blob digest). */
static void make_image(struct kimg_store *s, const char *name, char (*blobs)[KIMG_DIGEST_LEN + 1], size_t n)
{
	yajl_gen g = kg_new(false);
	yajl_gen_map_open(g);
	kg_key_str(g, "architecture", "amd64");
	kg_key_str(g, "os", "linux");
	kg_key(g, "rootfs");
	yajl_gen_map_open(g);
	kg_key_str(g, "type", "layers");
	kg_key(g, "diff_ids");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < n; i++)
		kg_str(g, blobs[i]);
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	size_t clen;
	cleanup_free char *cfg = kg_finish(g, &clen);
	char cd[KIMG_DIGEST_LEN + 1], md[KIMG_DIGEST_LEN + 1];
	struct kelp_err err;
	assert_int_equal(kimg_blob_put(s, NULL, cfg, clen, cd, &err), 0);
	g = kg_new(false);
	yajl_gen_map_open(g);
	kg_key_int(g, "schemaVersion", 2);
	kg_key_str(g, "mediaType", "application/vnd.oci.image.manifest.v1+json");
	kg_key(g, "config");
	yajl_gen_map_open(g);
	kg_key_str(g, "mediaType", "application/vnd.oci.image.config.v1+json");
	kg_key_str(g, "digest", cd);
	kg_key_int(g, "size", (long long)clen);
	yajl_gen_map_close(g);
	kg_key(g, "layers");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		assert_int_equal(fstatat(s->blobsfd, kimg_digest_hex(blobs[i]), &st, 0), 0);
		yajl_gen_map_open(g);
		kg_key_str(g, "mediaType", "application/vnd.oci.image.layer.v1.tar");
		kg_key_str(g, "digest", blobs[i]);
		kg_key_int(g, "size", (long long)st.st_size);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
	size_t mlen;
	cleanup_free char *man = kg_finish(g, &mlen);
	assert_int_equal(kimg_blob_put(s, NULL, man, mlen, md, &err), 0);
	if (kimg_image_commit(s, name, md, md, NULL, NULL, &err) < 0)
		failf("commit %s: %s", name, err.msg);
}

static char *read_at(const char *root, const char *path)
{
	cleanup_free char *p = xasprintf("%s/%s", root, path);
	char *buf = NULL;
	size_t len;
	struct kelp_err err;
	if (kelp_read_file_at(AT_FDCWD, p, 4096, &buf, &len, &err) < 0)
		return NULL;
	return buf;
}

static void test_overlay_root(void **state)
{
	struct fx *f = *state;
	if (!f)
		skip_because("needs root (mounts)");
	char blobs[3][KIMG_DIGEST_LEN + 1];
	const char *l0[] = {"d:etc", "etc/base=base", "etc/gone=x", "d:opq", "opq/old=old", "d:keep", "keep/a=a", NULL};
	const char *l1[] = {"etc/top=top1", "etc/base=over", NULL};
	const char *l2[] = {"etc/.wh.gone=", "d:opq", "opq/.wh..wh..opq=", "opq/new=new", NULL};
	make_layer(f->s, l0, blobs[0]);
	make_layer(f->s, l1, blobs[1]);
	make_layer(f->s, l2, blobs[2]);
	make_image(f->s, "example.com/t:1", blobs, 3);
	struct kelp_err err = {0};
	cleanup_free char *root = NULL;
	if (kimg_rootfs_create(f->s, "c1", "example.com/t:1", &root, &err) < 0)
		failf("%s", err.msg);
	cleanup_free char *top = read_at(root, "etc/top"), *base = read_at(root, "etc/base"), *newf = read_at(root, "opq/new"),
			  *keep = read_at(root, "keep/a");
	assert_non_null(top);
	assert_string_equal(top, "top1");
	assert_string_equal(base, "over"); /* the upper layer wins */
	assert_string_equal(newf, "new");
	assert_string_equal(keep, "a");
	cleanup_free char *gone = xasprintf("%s/etc/gone", root), *old = xasprintf("%s/opq/old", root);
	assert_int_equal(access(gone, F_OK), -1); /* whiteout */
	assert_int_equal(access(old, F_OK), -1);  /* opaque dir */
	/* writes land in the container's upper dir, never in a layer */
	cleanup_free char *w = xasprintf("%s/etc/written", root);
	int fd = open(w, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	close(fd);
	cleanup_free char *up = xasprintf("%s/containers/c1/upper/etc/written", f->dir);
	assert_int_equal(access(up, F_OK), 0);
	/* the id is taken */
	char *dup = NULL;
	assert_int_equal(kimg_rootfs_create(f->s, "c1", "example.com/t:1", &dup, &err), -1);
	assert_int_equal(kimg_rootfs_create(f->s, "../x", "example.com/t:1", &dup, &err), -1);
	assert_int_equal(kimg_rootfs_create(f->s, "c2", "example.com/missing:1", &dup, &err), -1);
	assert_int_equal(err.code, ENOENT);
	/* removing the image keeps the layers the container uses */
	if (kimg_image_remove(f->s, "example.com/t:1", &err) < 0)
		failf("%s", err.msg);
	int64_t refs = 0;
	assert_int_equal(kimg_db_layer_refs(f->s, blobs[0], &refs, &err), 0);
	assert_int_equal(refs, 1);
	assert_int_equal(faccessat(f->s->layersfd, kimg_digest_hex(blobs[0]), F_OK, 0), 0);
	cleanup_free char *still = read_at(root, "etc/top");
	assert_non_null(still);
	/* removal: unmounted, the directory gone, the layers freed */
	if (kimg_rootfs_remove(f->s, "c1", &err) < 0)
		failf("%s", err.msg);
	cleanup_free char *cdir = xasprintf("%s/containers/c1", f->dir);
	assert_int_equal(access(cdir, F_OK), -1);
	for (int i = 0; i < 3; i++)
		assert_int_equal(faccessat(f->s->layersfd, kimg_digest_hex(blobs[i]), F_OK, 0), -1);
	FILE *mi = fopen("/proc/self/mountinfo", "re");
	char line[4096];
	while (fgets(line, sizeof(line), mi))
		if (strstr(line, f->dir))
			failf("still mounted: %s", line);
	fclose(mi);
	assert_int_equal(kimg_rootfs_remove(f->s, "c1", &err), 0); /* again: nothing to do */
}

/* 150 layers: a single option string of absolute paths would be far over a page. */
static void test_deep_image(void **state)
{
	struct fx *f = *state;
	if (!f)
		skip_because("needs root (mounts)");
	enum { N = 150 };
	char(*blobs)[KIMG_DIGEST_LEN + 1] = calloc(N, sizeof(*blobs));
	for (int i = 0; i < N; i++) {
		char e[64];
		snprintf(e, sizeof(e), "f%03d=%d", i, i);
		const char *ents[] = {e, "last=", NULL};
		char last[32];
		snprintf(last, sizeof(last), "last=%d", i);
		ents[1] = last;
		make_layer(f->s, ents, blobs[i]);
	}
	make_image(f->s, "example.com/deep:1", blobs, N);
	struct kelp_err err = {0};
	cleanup_free char *root = NULL;
	if (kimg_rootfs_create(f->s, "deep", "example.com/deep:1", &root, &err) < 0)
		failf("%s", err.msg);
	cleanup_free char *first = read_at(root, "f000"), *lastf = read_at(root, "f149"), *top = read_at(root, "last");
	assert_string_equal(first, "0");
	assert_string_equal(lastf, "149");
	assert_string_equal(top, "149");
	assert_int_equal(kimg_rootfs_remove(f->s, "deep", &err), 0);
	free(blobs);
}

int main(void)
{
	/* mounts stay in this process's own namespace */
	if (geteuid() == 0 && (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)) {
		perror("private mount namespace");
		return 1;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_overlay_root, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deep_image, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
