/* Unit tests of cri/image/extract.c and unpack.c: a layer with every kind of entry (ownership,
 * modes, xattrs, file capabilities, devices, whiteouts, opaque dirs) and hostile tarballs
 * ("..", absolute paths, writes through symlinks, hardlinks out of the root) that must be refused
 * without touching anything outside; diffID checks of gzip/zstd/plain layers in a store. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_util.h"

#include "cleanup.h"
#include "db.h"
#include "digest.h"
#include "extract.h"
#include "fs.h"
#include "store.h"
#include "unpack.h"

struct fx {
	char dir[64];
	int rootfd; /* dir/root: the layer root */
	char tar[96];
};

static int rm_one(const char *p, const struct stat *st, int type, struct FTW *f)
{
	(void)st;
	(void)f;
	return type == FTW_DP ? rmdir(p) : unlink(p);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/kelp-test-unpack.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	char p[128];
	snprintf(p, sizeof(p), "%s/root", f->dir);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/outside", f->dir);
	mkdir(p, 0755);
	snprintf(f->tar, sizeof(f->tar), "%s/layer.tar", f->dir);
	f->rootfd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r = openat(f->rootfd, "root", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	close(f->rootfd);
	f->rootfd = r;
	*state = f;
	return r < 0 ? -1 : 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	close(f->rootfd);
	nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
	free(f);
	return 0;
}

/* A tiny tar writer: each entry is "type path [target|data]". */
struct ent {
	char type; /* f file, d dir, l symlink, h hardlink, c chardev */
	const char *path, *arg;
	unsigned mode;
	int uid, gid;
	const char *xname, *xval;
};

static void write_tar(const char *path, const struct ent *e, size_t n, int filter)
{
	struct archive *a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	if (filter)
		archive_write_add_filter(a, filter);
	assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *ae = archive_entry_new();
		archive_entry_set_pathname(ae, e[i].path);
		archive_entry_set_uid(ae, e[i].uid);
		archive_entry_set_gid(ae, e[i].gid);
		archive_entry_set_mtime(ae, 1000000000, 0);
		unsigned mode = e[i].mode ? e[i].mode : 0644;
		size_t len = 0;
		switch (e[i].type) {
		case 'f':
			archive_entry_set_filetype(ae, AE_IFREG);
			len = e[i].arg ? strlen(e[i].arg) : 0;
			archive_entry_set_size(ae, (la_int64_t)len);
			break;
		case 'd': archive_entry_set_filetype(ae, AE_IFDIR); mode = e[i].mode ? e[i].mode : 0755; break;
		case 'l': archive_entry_set_filetype(ae, AE_IFLNK); archive_entry_set_symlink(ae, e[i].arg); mode = 0777; break;
		case 'h': archive_entry_set_filetype(ae, AE_IFREG); archive_entry_set_hardlink(ae, e[i].arg); break;
		case 'c': archive_entry_set_filetype(ae, AE_IFCHR); archive_entry_set_rdev(ae, makedev(1, 3)); break;
		}
		archive_entry_set_perm(ae, mode);
		if (e[i].xname)
			archive_entry_xattr_add_entry(ae, e[i].xname, e[i].xval, strlen(e[i].xval));
		assert_int_equal(archive_write_header(a, ae), ARCHIVE_OK);
		if (len)
			assert_int_equal(archive_write_data(a, e[i].arg, len), (la_ssize_t)len);
		archive_entry_free(ae);
	}
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
}

static int extract(struct fx *f, struct kelp_err *err)
{
	cleanup_close int fd = open(f->tar, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	return kimg_extract_fd(fd, f->rootfd, err);
}

static void test_full_layer(void **state)
{
	struct fx *f = *state;
	if (geteuid() != 0)
		skip_because("needs root (chown, mknod, trusted xattrs)");
	/* a file capability: cap_net_raw+ep, version 2 */
	static const char cap[] = "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00";
	struct ent e[] = {
		{'d', "./etc/", NULL, 0750, 0, 0, NULL, NULL},
		{'f', "./etc/motd", "hello\n", 0640, 1000, 1001, "user.kelp", "v"},
		{'f', "bin/tool", "#!", 04755, 0, 0, NULL, NULL},
		{'l', "bin/sh", "/bin/busybox", 0, 0, 0, NULL, NULL},
		{'h', "etc/motd2", "etc/motd", 0, 0, 0, NULL, NULL},
		{'c', "dev/null", NULL, 0666, 0, 0, NULL, NULL},
		{'f', "etc/.wh.gone", "", 0, 0, 0, NULL, NULL},
		{'d', "opq", NULL, 0755, 0, 0, NULL, NULL},
		{'f', "opq/.wh..wh..opq", "", 0, 0, 0, NULL, NULL},
		{'f', "opq/kept", "k", 0, 0, 0, "trusted.overlay.opaque", "y"},
	};
	write_tar(f->tar, e, ARRAY_SIZE(e), ARCHIVE_FILTER_GZIP);
	struct kelp_err err = {0};
	if (extract(f, &err) < 0)
		failf("extract: %s", err.msg);
	/* security.capability goes through an xattr entry of its own */
	struct stat st;
	assert_int_equal(fstatat(f->rootfd, "etc/motd", &st, 0), 0);
	assert_int_equal(st.st_uid, 1000);
	assert_int_equal(st.st_gid, 1001);
	assert_int_equal(st.st_mode & 07777, 0640);
	assert_int_equal(st.st_mtime, 1000000000);
	assert_int_equal(st.st_nlink, 2);
	assert_int_equal(fstatat(f->rootfd, "etc", &st, 0), 0);
	assert_int_equal(st.st_mode & 07777, 0750);
	assert_int_equal(fstatat(f->rootfd, "bin/tool", &st, 0), 0);
	assert_int_equal(st.st_mode & 07777, 04755);
	char buf[64];
	ssize_t n = readlinkat(f->rootfd, "bin/sh", buf, sizeof(buf));
	assert_int_equal(n, 12);
	assert_memory_equal(buf, "/bin/busybox", 12);
	assert_int_equal(fstatat(f->rootfd, "dev/null", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(S_ISCHR(st.st_mode));
	assert_int_equal(st.st_rdev, makedev(1, 3));
	assert_int_equal(fstatat(f->rootfd, "etc/gone", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(S_ISCHR(st.st_mode));
	assert_int_equal(st.st_rdev, makedev(0, 0));
	assert_int_equal(faccessat(f->rootfd, "etc/.wh.gone", F_OK, AT_SYMLINK_NOFOLLOW), -1);
	char path[160];
	snprintf(path, sizeof(path), "%s/root/etc/motd", f->dir);
	assert_int_equal(lgetxattr(path, "user.kelp", buf, sizeof(buf)), 1);
	snprintf(path, sizeof(path), "%s/root/opq", f->dir);
	assert_int_equal(lgetxattr(path, "trusted.overlay.opaque", buf, sizeof(buf)), 1);
	assert_int_equal(buf[0], 'y');
	assert_int_equal(faccessat(f->rootfd, "opq/.wh..wh..opq", F_OK, AT_SYMLINK_NOFOLLOW), -1);
	/* an opaque marker smuggled in as an xattr is dropped */
	snprintf(path, sizeof(path), "%s/root/opq/kept", f->dir);
	assert_int_equal(lgetxattr(path, "trusted.overlay.opaque", buf, sizeof(buf)), -1);

	/* file capabilities survive (set after chown, which would drop them) */
	struct archive *a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	assert_int_equal(archive_write_open_filename(a, f->tar), ARCHIVE_OK);
	struct archive_entry *ae = archive_entry_new();
	archive_entry_set_pathname(ae, "bin/ping");
	archive_entry_set_filetype(ae, AE_IFREG);
	archive_entry_set_perm(ae, 0755);
	archive_entry_set_uid(ae, 7);
	archive_entry_set_size(ae, 0);
	archive_entry_xattr_add_entry(ae, "security.capability", cap, sizeof(cap) - 1);
	assert_int_equal(archive_write_header(a, ae), ARCHIVE_OK);
	archive_entry_free(ae);
	archive_write_close(a);
	archive_write_free(a);
	if (extract(f, &err) < 0)
		failf("extract: %s", err.msg);
	snprintf(path, sizeof(path), "%s/root/bin/ping", f->dir);
	assert_int_equal(lgetxattr(path, "security.capability", buf, sizeof(buf)), 20);
}

static void expect_refused(struct fx *f, const struct ent *e, size_t n, const char *msg_part)
{
	write_tar(f->tar, e, n, 0);
	struct kelp_err err = {0};
	if (extract(f, &err) == 0)
		failf("hostile tarball (%s) was extracted", e[n - 1].path);
	if (!strstr(err.msg, msg_part))
		failf("error \"%s\" lacks \"%s\"", err.msg, msg_part);
	/* nothing outside the root was touched */
	char p[128];
	snprintf(p, sizeof(p), "%s/outside", f->dir);
	cleanup_closedir DIR *d = opendir(p);
	assert_non_null(d);
	struct dirent *de;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			failf("%s appeared outside the root", de->d_name);
	snprintf(p, sizeof(p), "%s/pwned", f->dir);
	assert_int_equal(access(p, F_OK), -1);
}

static void test_dotdot(void **state)
{
	struct ent e[] = {{'f', "a/../../pwned", "x", 0, 0, 0, NULL, NULL}};
	expect_refused(*state, e, 1, "\"..\" in the path");
	struct ent e2[] = {{'f', "../outside/x", "x", 0, 0, 0, NULL, NULL}};
	expect_refused(*state, e2, 1, "\"..\" in the path");
}

static void test_absolute(void **state)
{
	struct fx *f = *state;
	char p[128];
	snprintf(p, sizeof(p), "%s/pwned", f->dir);
	struct ent e[] = {{'f', p, "x", 0, 0, 0, NULL, NULL}};
	expect_refused(f, e, 1, "absolute path");
}

static void test_symlink_write(void **state)
{
	struct fx *f = *state;
	char p[128];
	snprintf(p, sizeof(p), "%s/outside", f->dir);
	struct ent e[] = {{'l', "evil", p, 0, 0, 0, NULL, NULL}, {'f', "evil/x", "x", 0, 0, 0, NULL, NULL}};
	expect_refused(f, e, 2, "goes through a symlink");
	struct ent e2[] = {{'l', "rel", "../outside", 0, 0, 0, NULL, NULL}, {'d', "rel/sub", NULL, 0, 0, 0, NULL, NULL}};
	expect_refused(f, e2, 2, "goes through a symlink");
	/* a symlink to a file outside, then a file of that name: the link is replaced, not followed */
	snprintf(p, sizeof(p), "%s/outside/target", f->dir);
	struct ent e3[] = {{'l', "lnk", p, 0, 0, 0, NULL, NULL}, {'f', "lnk", "x", 0, 0, 0, NULL, NULL}};
	write_tar(f->tar, e3, 2, 0);
	struct kelp_err err = {0};
	if (extract(f, &err) < 0)
		failf("%s", err.msg);
	assert_int_equal(access(p, F_OK), -1);
	struct stat st;
	assert_int_equal(fstatat(f->rootfd, "lnk", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(S_ISREG(st.st_mode));
}

static void test_hardlink_out(void **state)
{
	struct fx *f = *state;
	char p[128];
	snprintf(p, sizeof(p), "%s/secret", f->dir);
	int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	struct ent e[] = {{'h', "h", "../secret", 0, 0, 0, NULL, NULL}};
	expect_refused(f, e, 1, "\"..\" in the path");
	struct ent e2[] = {{'h', "h", p, 0, 0, 0, NULL, NULL}};
	expect_refused(f, e2, 1, "absolute path");
	char o[128];
	snprintf(o, sizeof(o), "%s", f->dir);
	struct ent e3[] = {{'l', "up", o, 0, 0, 0, NULL, NULL}, {'h', "h", "up/secret", 0, 0, 0, NULL, NULL}};
	expect_refused(f, e3, 2, "not inside the layer");
	struct ent e4[] = {{'h', "h", "missing", 0, 0, 0, NULL, NULL}};
	expect_refused(f, e4, 1, "not a file of the layer");
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_nlink, 1);
}

/* tests/fuzz/crashes/fuzz_image_layer-1, found by fuzz_image_layer: 1100 nested directories
 * extract fine, and the store's GC (kelp_rm_rf_at) must remove them again within the fd limit a
 * service gets (1024), or that layer stays forever and every later GC fails on it. */
static void test_deep_layer_removable(void **state)
{
	struct fx *f = *state;
	if (geteuid() != 0)
		skip_because("needs root (chown of extracted files)");
	cleanup_close int fd = open("tests/fuzz/crashes/fuzz_image_layer-1", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(lseek(fd, 1, SEEK_SET), 1); /* byte 0 selects the harness's path */
	struct kelp_err err = {0};
	if (kimg_extract_fd(fd, f->rootfd, &err) < 0)
		failf("extract: %s", err.msg);
	assert_int_equal(faccessat(f->rootfd, "a/a/a/a", F_OK, AT_SYMLINK_NOFOLLOW), 0);
	struct rlimit rl, low;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	low = rl;
	if (low.rlim_cur > 1024)
		low.rlim_cur = 1024;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	int r = kelp_rm_rf_at(f->rootfd, "a", &err);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	if (r < 0)
		failf("remove the extracted layer within 1024 fds: %.200s", err.msg);
	assert_int_equal(faccessat(f->rootfd, "a", F_OK, AT_SYMLINK_NOFOLLOW), -1);
}

/* Layers in a store: diffIDs of plain, gzip and zstd layers checked; a wrong one leaves nothing. */
static void test_store_layers(void **state)
{
	struct fx *f = *state;
	if (geteuid() != 0)
		skip_because("needs root (chown of extracted files)");
	char sroot[128];
	snprintf(sroot, sizeof(sroot), "%s/store", f->dir);
	struct kimg_store *s;
	struct kelp_err err = {0};
	if (kimg_store_open(sroot, &s, &err) < 0)
		failf("%s", err.msg);
	struct ent e[] = {{'f', "hello", "world", 0, 0, 0, NULL, NULL}};
	write_tar(f->tar, e, 1, 0);
	cleanup_free char *plain = NULL;
	size_t plen;
	assert_int_equal(kelp_read_file_at(AT_FDCWD, f->tar, 1 << 20, &plain, &plen, &err), 0);
	char diff[KIMG_DIGEST_LEN + 1];
	kimg_digest_buf(plain, plen, diff);
	int filters[] = {0, ARCHIVE_FILTER_GZIP, ARCHIVE_FILTER_ZSTD};
	for (size_t i = 0; i < ARRAY_SIZE(filters); i++) {
		write_tar(f->tar, e, 1, filters[i]);
		cleanup_close int fd = open(f->tar, O_RDONLY | O_CLOEXEC);
		char blob[KIMG_DIGEST_LEN + 1];
		if (kimg_blob_put_fd(s, NULL, fd, blob, &err) < 0)
			failf("%s", err.msg);
		/* wrong diffID: refused, nothing left behind */
		static const char wrong[] = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
		assert_int_equal(kimg_unpack_layer(s, blob, wrong, &err), -1);
		if (!strstr(err.msg, "image config says"))
			failf("%s", err.msg);
		assert_int_equal(faccessat(s->layersfd, kimg_digest_hex(wrong), F_OK, 0), -1);
		if (kimg_unpack_layer(s, blob, diff, &err) < 0)
			failf("filter %d: %s", filters[i], err.msg);
		cleanup_free char *got = NULL;
		size_t glen;
		cleanup_free char *hp = xasprintf("%s/hello", kimg_digest_hex(diff));
		assert_int_equal(kelp_read_file_at(s->layersfd, hp, 100, &got, &glen, &err), 0);
		assert_string_equal(got, "world");
	}
	/* the temp area is empty again */
	cleanup_closedir DIR *d = fdopendir(dup(s->tmpfd));
	struct dirent *de;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.' && !strstr(de->d_name, ".lock"))
			failf("left in tmp: %s", de->d_name);
	kimg_store_close(s);
}

/* Blobs: the digest is checked while streaming; short and wrong content never lands. */
static void test_ingest(void **state)
{
	struct fx *f = *state;
	char sroot[128];
	snprintf(sroot, sizeof(sroot), "%s/store2", f->dir);
	struct kimg_store *s;
	struct kelp_err err = {0};
	if (kimg_store_open(sroot, &s, &err) < 0)
		failf("%s", err.msg);
	char d[KIMG_DIGEST_LEN + 1];
	kimg_digest_buf("hello", 5, d);
	struct kimg_ingest in;
	assert_int_equal(kimg_ingest_begin(s, d, 5, &in, &err), 0);
	assert_int_equal(kimg_ingest_write(&in, "hel", 3, &err), 0);
	assert_int_equal(kimg_ingest_commit(&in, &err), -1);
	assert_non_null(strstr(err.msg, "truncated, got 3 of 5 bytes"));
	assert_false(kimg_blob_exists(s, d));
	assert_int_equal(kimg_ingest_begin(s, d, 5, &in, &err), 0);
	assert_int_equal(kimg_ingest_write(&in, "hellx", 5, &err), 0);
	assert_int_equal(kimg_ingest_commit(&in, &err), -1);
	assert_non_null(strstr(err.msg, "digest mismatch"));
	assert_false(kimg_blob_exists(s, d));
	assert_int_equal(kimg_ingest_begin(s, d, 5, &in, &err), 0);
	assert_int_equal(kimg_ingest_write(&in, "hello!", 6, &err), -1);
	assert_non_null(strstr(err.msg, "more data than the 5 bytes"));
	kimg_ingest_abort(&in);
	assert_int_equal(kimg_blob_put(s, d, "hello", 5, NULL, &err), 0);
	assert_true(kimg_blob_exists(s, d));
	/* present: nothing to write */
	assert_int_equal(kimg_ingest_begin(s, d, 5, &in, &err), 1);
	/* no partial file is left by the failed attempts */
	char partial[96];
	snprintf(partial, sizeof(partial), "%s.partial", kimg_digest_hex(d));
	assert_int_equal(faccessat(s->ingestfd, partial, F_OK, 0), -1);
	kimg_store_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_full_layer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dotdot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_absolute, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlink_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hardlink_out, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deep_layer_removable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_layers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ingest, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
