#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "fs.h"

static int mkdir_p(const char *path, bool *ret_created)
{
	*ret_created = false;
	cleanup_free char *p = xstrdup(path);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			return -1;
		*s = '/';
	}
	if (mkdir(p, 0755) == 0)
		*ret_created = true;
	else if (errno != EEXIST)
		return -1;
	return 0;
}

int hl_store_open(const char *dir, bool create, struct hl_store *ret, struct cni_err *err)
{
	bool created = false;
	if (create && mkdir_p(dir, &created) < 0)
		return cni_syserr(err, CNI_ERR_IO, errno, "create %s", dir);
	cleanup_close int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return cni_syserr(err, CNI_ERR_IO, errno, "open %s", dir);
	cleanup_close int lfd = openat(dfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (lfd < 0)
		return cni_syserr(err, CNI_ERR_IO, errno, "open %s/lock", dir);
	while (flock(lfd, LOCK_EX) < 0)
		if (errno != EINTR)
			return cni_syserr(err, CNI_ERR_IO, errno, "lock %s/lock", dir);
	ret->dirfd = TAKE_FD(dfd);
	ret->lockfd = TAKE_FD(lfd);
	ret->created = created;
	ret->path = xstrdup(dir);
	return 0;
}

void hl_store_close(struct hl_store *s)
{
	if (s->lockfd >= 0)
		close(s->lockfd); /* drops the flock */
	if (s->dirfd >= 0)
		close(s->dirfd);
	s->lockfd = s->dirfd = -1;
	free(s->path);
	s->path = NULL;
}

void hl_store_close_undo(struct hl_store *s)
{
	if (s->created && s->dirfd >= 0) {
		/* only the lock file can be in it: the failed ADD released its claims */
		unlinkat(s->dirfd, "lock", 0);
		for (int i = 0; i < 4; i++) {
			char name[32];
			snprintf(name, sizeof(name), "last_reserved_ip.%d", i);
			unlinkat(s->dirfd, name, 0);
		}
		rmdir(s->path);
	}
	hl_store_close(s);
}

int hl_store_reserve(struct hl_store *s, const struct cni_ip *ip, const char *id, const char *ifname,
		     struct cni_err *err)
{
	char name[CNI_IP_STRLEN];
	cni_ip_fmt(ip, false, name);
	if (faccessat(s->dirfd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
		return 1;
	cleanup_close int fd = openat(s->dirfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
	if (fd < 0)
		return cni_syserr(err, CNI_ERR_IO, errno, "create an allocation file for %s", name);
	cleanup_free char *content = xasprintf("%s\r\n%s", id, ifname);
	/* No fsync: an allocation matters only while the node is up (a power loss ends every pod
	 * it describes), and linkat makes the file appear complete or not at all. */
	if (kelp_write_all(fd, content, strlen(content)) < 0)
		return cni_syserr(err, CNI_ERR_IO, errno, "write the allocation of %s", name);
	char proc[64];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (linkat(AT_FDCWD, proc, s->dirfd, name, AT_SYMLINK_FOLLOW) < 0) {
		if (errno == EEXIST)
			return 1;
		return cni_syserr(err, CNI_ERR_IO, errno, "record the allocation of %s", name);
	}
	return 0;
}

int hl_store_release_ip(struct hl_store *s, const struct cni_ip *ip, struct cni_err *err)
{
	char name[CNI_IP_STRLEN];
	cni_ip_fmt(ip, false, name);
	if (unlinkat(s->dirfd, name, 0) < 0 && errno != ENOENT)
		return cni_syserr(err, CNI_ERR_IO, errno, "release %s", name);
	return 0;
}

void hl_allocs_free(struct hl_alloc *a, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(a[i].id);
		free(a[i].ifname);
	}
	free(a);
}

int hl_store_list(struct hl_store *s, struct hl_alloc **ret, size_t *ret_n, struct cni_err *err)
{
	int fd = openat(s->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return cni_syserr(err, CNI_ERR_IO, errno, "open the allocation directory");
	cleanup_closedir DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return cni_syserr(err, CNI_ERR_IO, errno, "read the allocation directory");
	}
	struct hl_alloc *v = NULL;
	size_t n = 0;
	struct dirent *de;
	while ((errno = 0, de = readdir(d))) {
		struct cni_ip ip;
		if (de->d_name[0] == '.' || cni_ip_parse(de->d_name, false, &ip) < 0)
			continue;
		cleanup_free char *content = NULL;
		size_t len;
		struct kelp_err kerr;
		if (kelp_read_file_at(s->dirfd, de->d_name, 4096, &content, &len, &kerr) < 0)
			continue; /* released meanwhile: not ours to list */
		v = xrealloc(v, (n + 1) * sizeof(*v));
		struct hl_alloc *a = &v[n++];
		a->ip = ip;
		char *sep = strstr(content, "\r\n");
		if (sep) {
			*sep = '\0';
			a->ifname = xstrdup(sep + 2);
		} else {
			a->ifname = NULL; /* the reference's older files hold only the id */
		}
		a->id = xstrdup(content);
	}
	if (errno) {
		int e = errno;
		hl_allocs_free(v, n);
		return cni_syserr(err, CNI_ERR_IO, e, "read the allocation directory");
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

int hl_store_last(struct hl_store *s, size_t set, struct cni_ip *ret)
{
	char name[64];
	snprintf(name, sizeof(name), "last_reserved_ip.%zu", set);
	cleanup_free char *content = NULL;
	size_t len;
	struct kelp_err kerr;
	if (kelp_read_file_at(s->dirfd, name, 256, &content, &len, &kerr) < 0)
		return -1;
	content[strcspn(content, "\r\n ")] = '\0';
	return cni_ip_parse(content, false, ret);
}

int hl_store_set_last(struct hl_store *s, size_t set, const struct cni_ip *ip, struct cni_err *err)
{
	/* a hint for round-robin order only: atomic (temp + rename) but not synced */
	char name[64], tmp[80], buf[CNI_IP_STRLEN];
	snprintf(name, sizeof(name), "last_reserved_ip.%zu", set);
	snprintf(tmp, sizeof(tmp), ".%s.tmp", name);
	cni_ip_fmt(ip, false, buf);
	cleanup_close int fd = openat(s->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return cni_syserr(err, CNI_ERR_IO, errno, "write %s", name);
	if (kelp_write_all(fd, buf, strlen(buf)) < 0 || renameat(s->dirfd, tmp, s->dirfd, name) < 0) {
		int e = errno;
		unlinkat(s->dirfd, tmp, 0);
		return cni_syserr(err, CNI_ERR_IO, e, "write %s", name);
	}
	return 0;
}
