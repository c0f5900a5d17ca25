#include "extract.h"

#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cleanup.h"
#include "fs.h"

#define WH_PREFIX ".wh."
#define WH_OPAQUE ".wh..wh..opq"

/* Strict resolution for extraction: beneath the root, and no symlink anywhere on the way. A
 * layer never needs to write through its own symlinks, and refusing them is what keeps a
 * hostile tarball from reaching outside. */
#define RES_STRICT (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)

/* Clean an entry path into "a/b/c" (no leading "./", no "." components). Refuses absolute paths
 * and "..". An empty result is the root itself. */
static int clean_path(const char *in, char **ret, struct kelp_err *err)
{
	if (!in)
		return kelp_fail(err, EINVAL, "tar entry without a path");
	if (in[0] == '/')
		return kelp_fail(err, EPERM, "tar entry %s: absolute path", in);
	size_t n = strlen(in);
	if (n >= PATH_MAX)
		return kelp_fail(err, ENAMETOOLONG, "tar entry %.64s...: path too long", in);
	char *out = xmalloc(n + 1);
	size_t o = 0;
	for (const char *p = in; *p;) {
		const char *e = strchr(p, '/');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len == 2 && p[0] == '.' && p[1] == '.') {
			free(out);
			return kelp_fail(err, EPERM, "tar entry %s: \"..\" in the path", in);
		}
		if (len > NAME_MAX) {
			free(out);
			return kelp_fail(err, ENAMETOOLONG, "tar entry %s: component too long", in);
		}
		if (len && !(len == 1 && p[0] == '.')) {
			if (o)
				out[o++] = '/';
			memcpy(out + o, p, len);
			o += len;
		}
		p += len + (e ? 1 : 0);
	}
	out[o] = '\0';
	*ret = out;
	return 0;
}

/* Open (creating missing directories) the parent directory of path; *ret_base points into path. */
static int open_parent(int rootfd, char *path, const char **ret_base, const char *entry, struct kelp_err *err)
{
	char *slash = strrchr(path, '/');
	if (!slash) {
		*ret_base = path;
		return fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
	}
	*slash = '\0';
	*ret_base = slash + 1;
	int fd = kelp_openat2(rootfd, path, O_RDONLY | O_DIRECTORY, 0, RES_STRICT, NULL);
	int e = errno;
	if (fd >= 0) {
		*slash = '/';
		return fd;
	}
	if (e == ENOENT) {
		/* missing parents (tarballs need not list directories): create them one by one */
		cleanup_close int cur = fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
		for (char *p = path; p && *p;) {
			char *next = strchr(p, '/');
			if (next)
				*next = '\0';
			if (mkdirat(cur, p, 0755) < 0 && errno != EEXIST) {
				kelp_error(err, errno, "tar entry %s: create parent %s", entry, p);
				goto fail;
			}
			int nfd = kelp_openat2(cur, p, O_RDONLY | O_DIRECTORY, 0, RES_STRICT, NULL);
			if (nfd < 0) {
				e = errno;
				if (next)
					*next = '/';
				goto refused;
			}
			close(cur);
			cur = nfd;
			if (next)
				*next = '/';
			p = next ? next + 1 : NULL;
		}
		*slash = '/';
		return TAKE_FD(cur);
	}
refused:
	*slash = '/';
	if (e == ELOOP || e == EXDEV)
		return kelp_fail(err, EPERM, "tar entry %s: its path goes through a symlink", entry);
	if (e == ENOTDIR)
		return kelp_fail(err, ENOTDIR, "tar entry %s: a parent is not a directory", entry);
	return kelp_error(err, e, "tar entry %s: open parent directory", entry);
fail:
	*slash = '/';
	return -1;
}

/* Make room for a new entry: a directory over a directory stays, anything else goes. */
static int clear_spot(int dirfd, const char *base, bool new_is_dir, const char *entry, struct kelp_err *err)
{
	struct stat st;
	if (fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : kelp_error(err, errno, "tar entry %s: stat", entry);
	if (S_ISDIR(st.st_mode)) {
		if (new_is_dir)
			return 1;
		return kelp_rm_rf_at(dirfd, base, err) < 0 ? kelp_error_wrap(err, "tar entry %s", entry) : 0;
	}
	if (unlinkat(dirfd, base, 0) < 0)
		return kelp_error(err, errno, "tar entry %s: replace", entry);
	return 0;
}

static int write_data(struct archive *a, int fd, const char *entry, struct kelp_err *err)
{
	const void *buf;
	size_t len;
	la_int64_t off;
	int r;
	la_int64_t end = 0;
	while ((r = archive_read_data_block(a, &buf, &len, &off)) == ARCHIVE_OK) {
		const char *p = buf;
		while (len > 0) {
			ssize_t n = pwrite(fd, p, len, off);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				return kelp_error(err, errno, "tar entry %s: write", entry);
			}
			p += n;
			len -= (size_t)n;
			off += n;
		}
		if (off > end)
			end = off;
	}
	if (r != ARCHIVE_EOF)
		return kelp_fail(err, EIO, "tar entry %s: read: %s", entry, archive_error_string(a));
	/* sparse files end in a hole */
	if (ftruncate(fd, end) < 0)
		return kelp_error(err, errno, "tar entry %s: truncate", entry);
	return 0;
}

static int apply_meta(struct archive_entry *e, int dirfd, const char *base, const char *entry, struct kelp_err *err)
{
	mode_t type = archive_entry_filetype(e);
	if (fchownat(dirfd, base, (uid_t)archive_entry_uid(e), (gid_t)archive_entry_gid(e), AT_SYMLINK_NOFOLLOW) < 0)
		return kelp_error(err, errno, "tar entry %s: chown %lld:%lld", entry, (long long)archive_entry_uid(e),
				  (long long)archive_entry_gid(e));
	/* xattrs after chown (chown drops security.capability), through the parent's fd so the
	 * last component is never followed */
	char path[64 + NAME_MAX];
	snprintf(path, sizeof(path), "/proc/self/fd/%d/%s", dirfd, base);
	const char *name;
	const void *val;
	size_t len;
	archive_entry_xattr_reset(e);
	while (archive_entry_xattr_next(e, &name, &val, &len) == ARCHIVE_OK) {
		/* overlay's own markers come only from whiteouts, never from the tarball */
		if (!strncmp(name, "trusted.overlay.", 16))
			continue;
		if (lsetxattr(path, name, val, len, 0) < 0)
			return kelp_error(err, errno, "tar entry %s: set xattr %s", entry, name);
	}
	if (type != AE_IFLNK && fchmodat(dirfd, base, archive_entry_perm(e), 0) < 0)
		return kelp_error(err, errno, "tar entry %s: chmod", entry);
	struct timespec ts[2] = {
		{.tv_sec = archive_entry_atime(e), .tv_nsec = archive_entry_atime_nsec(e)},
		{.tv_sec = archive_entry_mtime(e), .tv_nsec = archive_entry_mtime_nsec(e)},
	};
	if (!archive_entry_atime_is_set(e))
		ts[0] = ts[1];
	if (utimensat(dirfd, base, ts, AT_SYMLINK_NOFOLLOW) < 0)
		return kelp_error(err, errno, "tar entry %s: set times", entry);
	return 0;
}

static int extract_entry(struct archive *a, struct archive_entry *e, int rootfd, struct kelp_err *err)
{
	const char *entry = archive_entry_pathname(e);
	cleanup_free char *path = NULL;
	if (clean_path(entry, &path, err) < 0)
		return -1;
	if (!*path)
		return 0; /* "./": the layer root itself */
	const char *base;
	cleanup_close int dirfd = open_parent(rootfd, path, &base, entry, err);
	if (dirfd < 0)
		return -1;
	if (!strcmp(base, WH_OPAQUE)) {
		if (fsetxattr(dirfd, "trusted.overlay.opaque", "y", 1, 0) < 0)
			return kelp_error(err, errno, "tar entry %s: mark directory opaque", entry);
		return 0;
	}
	if (!strncmp(base, WH_PREFIX WH_PREFIX, 8))
		return 0; /* aufs metadata (.wh..wh.plnk and the like) has no meaning here */
	if (!strncmp(base, WH_PREFIX, 4)) {
		const char *victim = base + 4;
		if (!*victim || !strcmp(victim, ".") || !strcmp(victim, ".."))
			return kelp_fail(err, EINVAL, "tar entry %s: bad whiteout", entry);
		if (clear_spot(dirfd, victim, false, entry, err) < 0)
			return -1;
		if (mknodat(dirfd, victim, S_IFCHR | 0, makedev(0, 0)) < 0)
			return kelp_error(err, errno, "tar entry %s: create whiteout", entry);
		return 0;
	}
	mode_t type = archive_entry_filetype(e);
	const char *hardlink = archive_entry_hardlink(e);
	if (hardlink) {
		cleanup_free char *target = NULL;
		if (clean_path(hardlink, &target, err) < 0)
			return kelp_error_wrap(err, "tar entry %s: hardlink target", entry);
		const char *tbase;
		cleanup_close int tdir = -1;
		char *tslash = strrchr(target, '/');
		if (tslash) {
			*tslash = '\0';
			tbase = tslash + 1;
			tdir = kelp_openat2(rootfd, target, O_PATH | O_DIRECTORY, 0, RES_STRICT, NULL);
			if (tdir < 0)
				return kelp_fail(err, EPERM, "tar entry %s: hardlink target %s is not inside the layer", entry, hardlink);
		} else {
			tbase = target;
			tdir = fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
		}
		struct stat st;
		if (!*tbase || fstatat(tdir, tbase, &st, AT_SYMLINK_NOFOLLOW) < 0 || S_ISDIR(st.st_mode))
			return kelp_fail(err, EPERM, "tar entry %s: hardlink target %s is not a file of the layer", entry, hardlink);
		if (clear_spot(dirfd, base, false, entry, err) < 0)
			return -1;
		if (linkat(tdir, tbase, dirfd, base, 0) < 0)
			return kelp_error(err, errno, "tar entry %s: hardlink to %s", entry, hardlink);
		return 0;
	}
	int r = clear_spot(dirfd, base, type == AE_IFDIR, entry, err);
	if (r < 0)
		return -1;
	switch (type) {
	case AE_IFREG: {
		cleanup_close int fd = openat(dirfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0)
			return kelp_error(err, errno, "tar entry %s: create", entry);
		if (write_data(a, fd, entry, err) < 0)
			return -1;
		break;
	}
	case AE_IFDIR:
		if (r == 0 && mkdirat(dirfd, base, 0700) < 0)
			return kelp_error(err, errno, "tar entry %s: mkdir", entry);
		break;
	case AE_IFLNK: {
		const char *target = archive_entry_symlink(e);
		/* a symlink may point anywhere: it is never followed while extracting, and in the
		 * container it resolves inside the container's root */
		if (!target || symlinkat(target, dirfd, base) < 0)
			return kelp_error(err, target ? errno : EINVAL, "tar entry %s: symlink", entry);
		break;
	}
	case AE_IFCHR:
	case AE_IFBLK:
	case AE_IFIFO:
		if (mknodat(dirfd, base, type | 0600, type == AE_IFIFO ? 0 : archive_entry_rdev(e)) < 0)
			return kelp_error(err, errno, "tar entry %s: mknod", entry);
		break;
	case AE_IFSOCK:
		return 0; /* sockets are made by programs, not by images */
	default:
		return kelp_fail(err, EINVAL, "tar entry %s: unknown file type 0%o", entry, (unsigned)type);
	}
	return apply_meta(e, dirfd, base, entry, err);
}

int kimg_extract(struct archive *a, int rootfd, struct kelp_err *err)
{
	struct archive_entry *e;
	int r;
	while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN)
		if (extract_entry(a, e, rootfd, err) < 0)
			return -1;
	if (r != ARCHIVE_EOF)
		return kelp_fail(err, EIO, "read tar: %s", archive_error_string(a));
	return 0;
}

void kimg_layer_filters(struct archive *a)
{
	archive_read_support_filter_none(a);
	archive_read_support_filter_gzip(a);
	archive_read_support_filter_zstd(a);
}

int kimg_extract_fd(int fd, int rootfd, struct kelp_err *err)
{
	struct archive *a = archive_read_new();
	if (!a)
		abort();
	kimg_layer_filters(a);
	archive_read_support_format_tar(a);
	int rc = -1;
	if (archive_read_open_fd(a, fd, 1 << 20) != ARCHIVE_OK)
		kelp_fail(err, EIO, "open tar: %s", archive_error_string(a));
	else
		rc = kimg_extract(a, rootfd, err);
	archive_read_free(a);
	return rc;
}
