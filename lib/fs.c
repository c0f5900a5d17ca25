#include "fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "cleanup.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

int kelp_openat2(int dirfd, const char *path, int flags, mode_t mode, uint64_t resolve, struct kelp_err *err)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC),
		.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0,
		.resolve = resolve,
	};
	int fd;
	do
		fd = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
	while (fd < 0 && (errno == EINTR || errno == EAGAIN));
	if (fd < 0)
		return kelp_error(err, errno, "open %s", path);
	return fd;
}

int kelp_open_in_root(int rootfd, const char *path, int flags, mode_t mode, struct kelp_err *err)
{
	return kelp_openat2(rootfd, path, flags, mode, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS, err);
}

/* Create path one component at a time. Every prefix is resolved from the root with
 * RESOLVE_IN_ROOT, so a symlink in the tree (even one swapped in during the walk) is followed
 * but clamped to the root and can never lead outside it. */
/* comp (in dirfd) is a symlink whose target is missing: the path to create instead, with the
 * link replaced by its target and `rest` appended; NULL if comp is no symlink. */
static char *through_link(int dirfd, const char *comp, const char *parent, const char *rest)
{
	char target[PATH_MAX];
	ssize_t n = readlinkat(dirfd, comp, target, sizeof(target) - 1);
	if (n <= 0)
		return NULL;
	target[n] = '\0';
	/* an absolute target is taken from the root, a relative one from the link's directory;
	 * either way the walk resolves it inside the root */
	if (target[0] == '/')
		return xasprintf("%s/%s", target, rest);
	return xasprintf("%s/%s/%s", parent, target, rest);
}

#define WALK_MAX_LINKS 40

static int walk_mkdir_depth(int rootfd, const char *path, mode_t mode, bool last_is_file, int links,
			    struct kelp_err *err)
{
	const uint64_t res = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
	size_t len = strlen(path);
	cleanup_free char *prefix = xmalloc(len + 2);
	cleanup_close int cur = kelp_openat2(rootfd, "/", O_PATH | O_DIRECTORY, 0, res, err);
	if (cur < 0)
		return -1;
	size_t i = 0, plen = 0;
	prefix[0] = '\0';
	while (i < len) {
		while (i < len && path[i] == '/')
			i++;
		if (i >= len)
			break;
		size_t s = i;
		while (i < len && path[i] != '/')
			i++;
		size_t clen = i - s;
		char comp[NAME_MAX + 1];
		if (clen > NAME_MAX)
			return kelp_fail(err, ENAMETOOLONG, "path %s: component too long", path);
		memcpy(comp, path + s, clen);
		comp[clen] = '\0';
		size_t parent_len = plen;
		prefix[plen++] = '/';
		memcpy(prefix + plen, comp, clen);
		plen += clen;
		prefix[plen] = '\0';
		bool last = true;
		for (size_t j = i; j < len; j++)
			if (path[j] != '/') {
				last = false;
				break;
			}

		int fd;
		if (last && last_is_file) {
			int c = kelp_openat2(rootfd, prefix, O_CREAT | O_RDONLY, mode, res, NULL);
			if (c < 0 && errno != EISDIR)
				goto missing_target;
			if (c >= 0)
				close(c);
			fd = kelp_openat2(rootfd, prefix, O_PATH, 0, res, err);
		} else {
			fd = kelp_openat2(rootfd, prefix, O_PATH | O_DIRECTORY, 0, res, NULL);
			if (fd < 0 && errno == ENOENT) {
				if (mkdirat(cur, comp, last_is_file ? 0755 : mode) < 0 && errno != EEXIST)
					return kelp_error(err, errno, "mkdir %s", prefix);
				fd = kelp_openat2(rootfd, prefix, O_PATH | O_DIRECTORY, 0, res, NULL);
				if (fd < 0 && errno == ENOENT)
					goto missing_target;
			}
			if (fd < 0)
				return kelp_error(err, errno, "open directory %s", prefix);
		}
		if (fd < 0)
			return -1;
		close(cur);
		cur = fd;
		continue;
	missing_target: {
		/* a symlink to something missing: create its target (inside the root) instead */
		int e = errno;
		prefix[parent_len] = '\0';
		cleanup_free char *redo = through_link(cur, comp, prefix, path + i);
		if (!redo)
			return kelp_error(err, e, "create %s", path);
		if (links >= WALK_MAX_LINKS)
			return kelp_error(err, ELOOP, "create %s", path);
		return walk_mkdir_depth(rootfd, redo, mode, last_is_file, links + 1, err);
	}
	}
	return TAKE_FD(cur);
}

static int walk_mkdir(int rootfd, const char *path, mode_t mode, bool last_is_file, struct kelp_err *err)
{
	return walk_mkdir_depth(rootfd, path, mode, last_is_file, 0, err);
}

int kelp_mkdir_in_root(int rootfd, const char *path, mode_t mode, struct kelp_err *err)
{
	return walk_mkdir(rootfd, path, mode, false, err);
}

int kelp_mkfile_in_root(int rootfd, const char *path, mode_t mode, struct kelp_err *err)
{
	return walk_mkdir(rootfd, path, mode, true, err);
}

int kelp_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int atomic_write_sync(int dirfd, const char *name, const void *buf, size_t len, mode_t mode, bool filesync,
			     bool dirsync, struct kelp_err *err);

static int atomic_write(int dirfd, const char *name, const void *buf, size_t len, mode_t mode, bool dirsync,
			struct kelp_err *err)
{
	return atomic_write_sync(dirfd, name, buf, len, mode, true, dirsync, err);
}

static int atomic_write_sync(int dirfd, const char *name, const void *buf, size_t len, mode_t mode, bool filesync,
			     bool dirsync, struct kelp_err *err)
{
	char tmp[NAME_MAX + 1];
	int n = snprintf(tmp, sizeof(tmp), ".%s.tmp%d", name, (int)getpid());
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return kelp_error(err, ENAMETOOLONG, "write %s", name);
	unlinkat(dirfd, tmp, 0); /* a stale temp file from a crashed writer with the same pid */
	cleanup_close int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return kelp_error(err, errno, "create %s", tmp);
	if (kelp_write_all(fd, buf, len) < 0 || (filesync && fsync(fd) < 0)) {
		kelp_error(err, errno, "write %s", tmp);
		unlinkat(dirfd, tmp, 0);
		return -1;
	}
	if (renameat(dirfd, tmp, dirfd, name) < 0) {
		kelp_error(err, errno, "rename %s to %s", tmp, name);
		unlinkat(dirfd, tmp, 0);
		return -1;
	}
	if (dirsync && fsync(dirfd) < 0 && errno != EBADF && errno != EINVAL)
		return kelp_error(err, errno, "fsync directory of %s", name);
	return 0;
}

int kelp_atomic_write(int dirfd, const char *name, const void *buf, size_t len, mode_t mode, struct kelp_err *err)
{
	return atomic_write(dirfd, name, buf, len, mode, true, err);
}

int kelp_atomic_replace(int dirfd, const char *name, const void *buf, size_t len, mode_t mode, struct kelp_err *err)
{
	return atomic_write_sync(dirfd, name, buf, len, mode, false, false, err);
}

int kelp_atomic_write_nodirsync(int dirfd, const char *name, const void *buf, size_t len, mode_t mode,
				struct kelp_err *err)
{
	return atomic_write(dirfd, name, buf, len, mode, false, err);
}

int kelp_read_fd(int fd, size_t max, char **ret, size_t *ret_len, struct kelp_err *err)
{
	size_t cap = 4096, len = 0;
	/* a regular file's size (+1 to see the EOF) saves the growing: one read, no realloc; and
	 * a short read of a regular file is its end, which saves the read that returns 0 */
	struct stat st;
	bool sized = false;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
		cap = (size_t)st.st_size + 1;
		sized = true;
	}
	if (cap > max)
		cap = max;
	cleanup_free char *buf = xmalloc(cap + 1);
	for (;;) {
		if (len == cap) {
			if (cap >= max) {
				/* full: only an EOF now keeps us within max */
				char probe;
				ssize_t n;
				do
					n = read(fd, &probe, 1);
				while (n < 0 && errno == EINTR);
				if (n < 0)
					return kelp_error(err, errno, "read");
				if (n == 0)
					break;
				return kelp_fail(err, EFBIG, "file larger than %zu bytes", max);
			}
			cap = cap * 2 > max ? max : cap * 2;
			buf = xrealloc(buf, cap + 1);
		}
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return kelp_error(err, errno, "read");
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (sized && len < cap)
			break;
	}
	buf[len] = '\0';
	*ret = TAKE_PTR(buf);
	if (ret_len)
		*ret_len = len;
	return 0;
}

int kelp_read_file_at(int dirfd, const char *path, size_t max, char **ret, size_t *ret_len, struct kelp_err *err)
{
	cleanup_close int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return kelp_error(err, errno, "open %s", path);
	if (kelp_read_fd(fd, max, ret, ret_len, err) < 0)
		return kelp_error_wrap(err, "%s", path);
	return 0;
}

int kelp_write_file_at(int dirfd, const char *path, const char *value, struct kelp_err *err)
{
	cleanup_close int fd = openat(dirfd, path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return kelp_error(err, errno, "open %s", path);
	size_t len = strlen(value);
	ssize_t n;
	do
		n = write(fd, value, len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return kelp_error(err, errno, "write '%s' to %s", value, path);
	if ((size_t)n != len)
		return kelp_error(err, EIO, "short write of '%s' to %s", value, path);
	return 0;
}

/* One directory on the way down: its name in its parent, and the parent's inode. */
struct rm_level {
	char *name;
	dev_t parent_dev;
	ino_t parent_ino;
};

/* *dir becomes the directory fd (consumed); the one before is closed. */
static int move_to_dir(DIR **dir, int fd, struct kelp_err *err)
{
	closedir(*dir);
	*dir = fdopendir(fd);
	if (!*dir) {
		int e = errno;
		close(fd);
		return kelp_error(err, e, "fdopendir");
	}
	return 0;
}

/* Empty the directory dfd (on device dev; dfd is consumed). Iterative, with one directory open
 * at a time: a tree of any depth goes within any fd limit (a hostile image layer can nest
 * thousands of directories; one fd per level failed with EMFILE and wedged the store's GC).
 * Back up through "..", checked against the inode seen on the way down: a directory moved
 * meanwhile stops the removal instead of deleting somewhere else. */
static int rm_rf_fd(int dfd, dev_t dev, struct kelp_err *err)
{
	struct rm_level *up = NULL;
	size_t depth = 0, cap = 0;
	int rc = -1;
	DIR *dir = fdopendir(dfd);
	if (!dir) {
		close(dfd);
		return kelp_error(err, errno, "fdopendir");
	}
	for (;;) {
		struct dirent *de;
		struct stat st;
		int sub = -1;
		errno = 0;
		while ((de = readdir(dir))) {
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			if (fstatat(dirfd(dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
				if (errno == ENOENT) { /* gone meanwhile; errno must not look like readdir's */
					errno = 0;
					continue;
				}
				kelp_error(err, errno, "stat %s (%zu levels down)", de->d_name, depth);
				goto out;
			}
			if (!S_ISDIR(st.st_mode)) {
				if (unlinkat(dirfd(dir), de->d_name, 0) < 0 && errno != ENOENT) {
					kelp_error(err, errno, "unlink %s (%zu levels down)", de->d_name, depth);
					goto out;
				}
				errno = 0;
				continue;
			}
			if (st.st_dev != dev) {
				kelp_fail(err, EBUSY, "remove %s (%zu levels down): a mount point", de->d_name, depth);
				goto out;
			}
			/* RESOLVE_NO_XDEV also catches a bind mount from the same filesystem */
			sub = kelp_openat2(dirfd(dir), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0,
					   RESOLVE_NO_XDEV | RESOLVE_NO_SYMLINKS, NULL);
			if (sub < 0) {
				if (errno == EXDEV)
					kelp_fail(err, EBUSY, "remove %s (%zu levels down): a mount point", de->d_name, depth);
				else
					kelp_error(err, errno, "open %s (%zu levels down)", de->d_name, depth);
				goto out;
			}
			break;
		}
		if (!de && errno) {
			kelp_error(err, errno, "read directory (%zu levels down)", depth);
			goto out;
		}
		if (sub >= 0) {
			/* down: the directory just read is read again from its start on the way back */
			struct stat self;
			if (fstat(dirfd(dir), &self) < 0) {
				kelp_error(err, errno, "stat directory (%zu levels down)", depth);
				close(sub);
				goto out;
			}
			if (depth == cap) {
				cap = cap ? 2 * cap : 16;
				up = xrealloc(up, cap * sizeof(*up));
			}
			up[depth++] = (struct rm_level){xstrdup(de->d_name), self.st_dev, self.st_ino};
			if (move_to_dir(&dir, sub, err) < 0)
				goto out;
			continue;
		}
		if (depth == 0)
			break; /* the directory given is empty */
		/* up: this directory is empty, remove it from its parent */
		int parent = openat(dirfd(dir), "..", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		struct rm_level *l = &up[depth - 1];
		if (parent < 0) {
			kelp_error(err, errno, "open the parent of %s (%zu levels down)", l->name, depth);
			goto out;
		}
		if (fstat(parent, &st) < 0 || st.st_dev != l->parent_dev || st.st_ino != l->parent_ino) {
			close(parent);
			kelp_fail(err, EBUSY, "remove %s (%zu levels down): moved while being removed", l->name, depth);
			goto out;
		}
		if (move_to_dir(&dir, parent, err) < 0)
			goto out;
		if (unlinkat(dirfd(dir), l->name, AT_REMOVEDIR) < 0 && errno != ENOENT) {
			kelp_error(err, errno, "rmdir %s (%zu levels down)", l->name, depth);
			goto out;
		}
		free(l->name);
		depth--;
	}
	rc = 0;
out:
	if (dir)
		closedir(dir);
	while (depth > 0)
		free(up[--depth].name);
	free(up);
	return rc;
}

int kelp_rm_rf_at(int dirfd, const char *name, struct kelp_err *err)
{
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return 0;
		return kelp_error(err, errno, "stat %s", name);
	}
	if (!S_ISDIR(st.st_mode)) {
		if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
			return kelp_error(err, errno, "unlink %s", name);
		return 0;
	}
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return kelp_error(err, errno, "open %s", name);
	if (rm_rf_fd(fd, st.st_dev, err) < 0)
		return kelp_error_wrap(err, "remove %s", name);
	if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return kelp_error(err, errno, "rmdir %s", name);
	return 0;
}

int kelp_cloexec_from(int from)
{
	if (syscall(SYS_close_range, (unsigned)from, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
		return 0;
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return -1;
	struct dirent *de;
	while ((de = readdir(d))) {
		int fd = atoi(de->d_name);
		if (de->d_name[0] < '0' || de->d_name[0] > '9' || fd < from || fd == dirfd(d))
			continue;
		int fl = fcntl(fd, F_GETFD);
		if (fl >= 0)
			fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
	}
	closedir(d);
	return 0;
}

int kelp_close_fds_from(int from)
{
	if (syscall(SYS_close_range, (unsigned)from, ~0U, 0) == 0)
		return 0;
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return -1;
	struct dirent *de;
	while ((de = readdir(d))) {
		int fd = atoi(de->d_name);
		if (de->d_name[0] < '0' || de->d_name[0] > '9' || fd < from || fd == dirfd(d))
			continue;
		close(fd);
	}
	closedir(d);
	return 0;
}

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

int kelp_close_fds_except(int from, const int *keep, size_t n)
{
	int k[16];
	size_t m = 0;
	for (size_t i = 0; i < n && m < ARRAY_SIZE(k); i++)
		if (keep[i] >= from)
			k[m++] = keep[i];
	qsort(k, m, sizeof(int), cmp_int);
	int lo = from;
	for (size_t i = 0; i <= m; i++) {
		int hi = i < m ? k[i] - 1 : -1; /* -1: to the end */
		if (hi == -1 || hi >= lo)
			if (syscall(SYS_close_range, (unsigned)lo, hi == -1 ? ~0U : (unsigned)hi, 0) < 0)
				return -1;
		if (i < m)
			lo = k[i] + 1;
	}
	return 0;
}

bool kelp_name_is_safe(const char *name)
{
	if (!name || !*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return false;
	for (const char *p = name; *p; p++)
		if (*p == '/' || (unsigned char)*p < 0x20 || *p == 0x7f)
			return false;
	return strlen(name) <= 1024;
}
