#include "devices.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "cleanup.h"
#include "fs.h"

static const struct spec_device default_devices[] = {
	{ 'c', "/dev/null", 1, 3, true, false, false, 0666, 0, 0 },
	{ 'c', "/dev/zero", 1, 5, true, false, false, 0666, 0, 0 },
	{ 'c', "/dev/full", 1, 7, true, false, false, 0666, 0, 0 },
	{ 'c', "/dev/random", 1, 8, true, false, false, 0666, 0, 0 },
	{ 'c', "/dev/urandom", 1, 9, true, false, false, 0666, 0, 0 },
	{ 'c', "/dev/tty", 5, 0, true, false, false, 0666, 0, 0 },
};

/* Split "/dev/a/b" into the parent's O_PATH fd (created inside the root) and the last name. */
static int open_parent(int rootfd, const char *path, char *name, size_t name_size, struct kelp_err *err)
{
	cleanup_free char *dir = xstrdup(path);
	char *slash = strrchr(dir, '/');
	if (!slash || !slash[1])
		return kelp_fail(err, EINVAL, "device path %s", path);
	snprintf(name, name_size, "%s", slash + 1);
	if (!kelp_name_is_safe(name))
		return kelp_fail(err, EINVAL, "device path %s", path);
	*slash = '\0';
	return kelp_mkdir_in_root(rootfd, *dir ? dir : "/", 0755, err);
}

static int create_device(int rootfd, const struct spec_device *d, bool in_userns, struct kelp_err *err)
{
	char name[256];
	cleanup_close int parent = open_parent(rootfd, d->path, name, sizeof(name), err);
	if (parent < 0)
		return -1;
	/* an O_PATH fd cannot be a mknodat base on every kernel: reopen as a directory */
	char ppath[64];
	snprintf(ppath, sizeof(ppath), "/proc/self/fd/%d", parent);
	cleanup_close int dfd = open(ppath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return kelp_error(err, errno, "open parent of device %s", d->path);

	mode_t mode = d->has_mode ? d->file_mode & 07777 : 0666;
	if (!in_userns) {
		mode_t type = d->type == 'b' ? S_IFBLK : d->type == 'p' ? S_IFIFO : S_IFCHR;
		unlinkat(dfd, name, 0);
		if (mknodat(dfd, name, type | mode, d->type == 'p' ? 0 : makedev(d->major, d->minor)) < 0)
			return kelp_error(err, errno, "mknod device %s", d->path);
		/* mknod honours the umask; set the mode exactly */
		if (fchmodat(dfd, name, mode, 0) < 0)
			return kelp_error(err, errno, "chmod device %s", d->path);
		if ((d->has_uid || d->has_gid) &&
		    fchownat(dfd, name, d->has_uid ? d->uid : (uid_t)-1, d->has_gid ? d->gid : (gid_t)-1, AT_SYMLINK_NOFOLLOW) < 0)
			return kelp_error(err, errno, "chown device %s", d->path);
		return 0;
	}
	/* No mknod in a user namespace: cover an empty file with the host's node. */
	int fd = openat(dfd, name, O_CREAT | O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return kelp_error(err, errno, "create %s", d->path);
	close(fd);
	cleanup_close int target = openat(dfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (target < 0)
		return kelp_error(err, errno, "open %s", d->path);
	char tpath[64];
	snprintf(tpath, sizeof(tpath), "/proc/self/fd/%d", target);
	if (mount(d->path, tpath, NULL, MS_BIND, NULL) < 0)
		return kelp_error(err, errno, "bind host device %s", d->path);
	return 0;
}

static int make_symlink(int rootfd, const char *target, const char *path, struct kelp_err *err)
{
	char name[256];
	cleanup_close int parent = open_parent(rootfd, path, name, sizeof(name), err);
	if (parent < 0)
		return -1;
	char ppath[64];
	snprintf(ppath, sizeof(ppath), "/proc/self/fd/%d", parent);
	cleanup_close int dfd = open(ppath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return kelp_error(err, errno, "open parent of %s", path);
	if (symlinkat(target, dfd, name) < 0 && errno != EEXIST)
		return kelp_error(err, errno, "symlink %s -> %s", path, target);
	return 0;
}

int devices_setup(int rootfd, const struct spec *s, bool in_userns, struct kelp_err *err)
{
	const struct spec_linux *l = &s->linux_;
	for (size_t i = 0; i < ARRAY_SIZE(default_devices); i++) {
		bool overridden = false;
		for (size_t j = 0; j < l->n_devices; j++)
			overridden |= strcmp(l->devices[j].path, default_devices[i].path) == 0;
		if (!overridden && create_device(rootfd, &default_devices[i], in_userns, err) < 0)
			return -1;
	}
	for (size_t j = 0; j < l->n_devices; j++)
		if (create_device(rootfd, &l->devices[j], in_userns, err) < 0)
			return kelp_error_wrap(err, "linux.devices[%zu]", j);
	static const char *const links[][2] = {
		{ "/proc/self/fd", "/dev/fd" },
		{ "/proc/self/fd/0", "/dev/stdin" },
		{ "/proc/self/fd/1", "/dev/stdout" },
		{ "/proc/self/fd/2", "/dev/stderr" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(links); i++)
		if (make_symlink(rootfd, links[i][0], links[i][1], err) < 0)
			return -1;
	/* /dev/ptmx must be the container's own devpts instance */
	cleanup_close int pts = kelp_open_in_root(rootfd, "/dev/pts/ptmx", O_PATH, 0, NULL);
	if (pts >= 0) {
		cleanup_close int dev = kelp_open_in_root(rootfd, "/dev", O_RDONLY | O_DIRECTORY, 0, err);
		if (dev < 0)
			return -1;
		if (unlinkat(dev, "ptmx", 0) < 0 && errno != ENOENT)
			return kelp_error(err, errno, "remove /dev/ptmx");
		if (symlinkat("pts/ptmx", dev, "ptmx") < 0)
			return kelp_error(err, errno, "symlink /dev/ptmx");
	}
	return 0;
}
