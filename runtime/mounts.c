#include "mounts.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cleanup.h"
#include "devices.h"
#include "fs.h"
#include "log.h"

#ifndef MS_NOSYMFOLLOW
#define MS_NOSYMFOLLOW 256
#endif

static const struct {
	const char *name;
	bool clear;
	unsigned long flag;
} flag_opts[] = {
	{ "ro", false, MS_RDONLY },	    { "rw", true, MS_RDONLY },
	{ "nosuid", false, MS_NOSUID },	    { "suid", true, MS_NOSUID },
	{ "nodev", false, MS_NODEV },	    { "dev", true, MS_NODEV },
	{ "noexec", false, MS_NOEXEC },	    { "exec", true, MS_NOEXEC },
	{ "sync", false, MS_SYNCHRONOUS },  { "async", true, MS_SYNCHRONOUS },
	{ "dirsync", false, MS_DIRSYNC },   { "remount", false, MS_REMOUNT },
	{ "mand", false, MS_MANDLOCK },	    { "nomand", true, MS_MANDLOCK },
	{ "noatime", false, MS_NOATIME },   { "atime", true, MS_NOATIME },
	{ "nodiratime", false, MS_NODIRATIME }, { "diratime", true, MS_NODIRATIME },
	{ "relatime", false, MS_RELATIME }, { "norelatime", true, MS_RELATIME },
	{ "strictatime", false, MS_STRICTATIME }, { "nostrictatime", true, MS_STRICTATIME },
	{ "lazytime", false, MS_LAZYTIME }, { "nolazytime", true, MS_LAZYTIME },
	{ "silent", false, MS_SILENT },	    { "loud", true, MS_SILENT },
	{ "iversion", false, MS_I_VERSION }, { "noiversion", true, MS_I_VERSION },
	{ "nosymfollow", false, MS_NOSYMFOLLOW },
};

static const struct {
	const char *name;
	unsigned long flags;
} prop_opts[] = {
	{ "private", MS_PRIVATE },	       { "rprivate", MS_PRIVATE | MS_REC },
	{ "shared", MS_SHARED },	       { "rshared", MS_SHARED | MS_REC },
	{ "slave", MS_SLAVE },		       { "rslave", MS_SLAVE | MS_REC },
	{ "unbindable", MS_UNBINDABLE },       { "runbindable", MS_UNBINDABLE | MS_REC },
};

unsigned long propagation_flags(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(prop_opts); i++)
		if (strcmp(prop_opts[i].name, name) == 0)
			return prop_opts[i].flags;
	return 0;
}

char **mount_option_names(void)
{
	size_t n = ARRAY_SIZE(flag_opts) + ARRAY_SIZE(prop_opts) + 4;
	char **out = xcalloc(n + 1, sizeof(char *));
	size_t o = 0;
	for (size_t i = 0; i < ARRAY_SIZE(flag_opts); i++)
		out[o++] = xstrdup(flag_opts[i].name);
	for (size_t i = 0; i < ARRAY_SIZE(prop_opts); i++)
		out[o++] = xstrdup(prop_opts[i].name);
	out[o++] = xstrdup("bind");
	out[o++] = xstrdup("rbind");
	out[o++] = xstrdup("idmap");
	out[o++] = xstrdup("ridmap");
	return out;
}

int mount_opts_parse(char *const *options, struct mount_opts *ret, struct kelp_err *err)
{
	memset(ret, 0, sizeof(*ret));
	size_t dlen = 0;
	for (size_t i = 0; options && options[i]; i++) {
		const char *o = options[i];
		bool done = false;
		for (size_t j = 0; j < ARRAY_SIZE(flag_opts) && !done; j++) {
			if (strcmp(o, flag_opts[j].name) != 0)
				continue;
			if (flag_opts[j].clear) {
				ret->flags &= ~flag_opts[j].flag;
				ret->clear |= flag_opts[j].flag;
			} else {
				ret->flags |= flag_opts[j].flag;
				ret->clear &= ~flag_opts[j].flag;
			}
			done = true;
		}
		unsigned long p = propagation_flags(o);
		if (!done && p) {
			ret->propagation = p;
			done = true;
		}
		if (!done && strcmp(o, "bind") == 0) {
			ret->bind = true;
			done = true;
		}
		if (!done && strcmp(o, "rbind") == 0) {
			ret->bind = ret->rbind = true;
			done = true;
		}
		if (!done && (strcmp(o, "idmap") == 0 || strcmp(o, "ridmap") == 0)) {
			ret->idmap = true;
			ret->ridmap = o[0] == 'r';
			done = true;
		}
		if (!done && strcmp(o, "tmpcopyup") == 0) {
			mount_opts_free(ret);
			return kelp_fail(err, EINVAL, "mount option 'tmpcopyup' is not supported by this kelp version");
		}
		if (!done) {
			if (strchr(o, ',')) {
				mount_opts_free(ret);
				return kelp_fail(err, EINVAL, "mount option '%s' holds a comma", o);
			}
			size_t l = strlen(o);
			ret->data = xrealloc(ret->data, dlen + l + 2);
			if (dlen)
				ret->data[dlen++] = ',';
			memcpy(ret->data + dlen, o, l + 1);
			dlen += l;
		}
	}
	return 0;
}

void mount_opts_free(struct mount_opts *o)
{
	free(o->data);
	o->data = NULL;
}

/* Flags a less privileged mount namespace may not clear on a bind remount ("locked"); keep
 * them, as the kernel refuses a remount that drops them. */
static unsigned long locked_flags(const char *path)
{
	struct statvfs sv;
	unsigned long f = 0;
	if (statvfs(path, &sv) < 0)
		return 0;
	if (sv.f_flag & ST_NOSUID)
		f |= MS_NOSUID;
	if (sv.f_flag & ST_NODEV)
		f |= MS_NODEV;
	if (sv.f_flag & ST_NOEXEC)
		f |= MS_NOEXEC;
	if (sv.f_flag & ST_RDONLY)
		f |= MS_RDONLY;
	if (sv.f_flag & ST_NOATIME)
		f |= MS_NOATIME;
	if (sv.f_flag & ST_NODIRATIME)
		f |= MS_NODIRATIME;
	if (sv.f_flag & ST_RELATIME)
		f |= MS_RELATIME;
	return f;
}

static int do_mount(const char *src, const char *target, const char *shown, const char *type, unsigned long flags,
		    const char *data, struct kelp_err *err)
{
	if (mount(src, target, type, flags, data) < 0)
		return kelp_error(err, errno, "mount %s on %s (type %s)", src ? src : "none", shown, type ? type : "none");
	return 0;
}

/* After a mount, the old fd still names the directory underneath: open the destination again,
 * inside the rootfs, to reach the new mount for remounts and propagation changes. */
static int reopen_target(int rootfd, const char *dest, int *fd, char *tpath, size_t tpath_size, struct kelp_err *err)
{
	int nfd = kelp_open_in_root(rootfd, dest, O_PATH, 0, err);
	if (nfd < 0)
		return kelp_error_wrap(err, "reopen mount destination %s", dest);
	close(*fd);
	*fd = nfd;
	snprintf(tpath, tpath_size, "/proc/self/fd/%d", nfd);
	return 0;
}

static bool is_bind(const struct spec_mount *sm, const struct mount_opts *o)
{
	return o->bind || (sm->type && strcmp(sm->type, "bind") == 0);
}

int mount_idmap_tree(const struct spec_mount *sm, int userns_fd, struct kelp_err *err)
{
	struct mount_opts o;
	if (mount_opts_parse(sm->options, &o, err) < 0)
		return -1;
	mount_opts_free(&o);
	bool rec = o.rbind || o.ridmap;
	int tree = open_tree(AT_FDCWD, sm->source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (rec ? AT_RECURSIVE : 0));
	if (tree < 0)
		return kelp_error(err, errno, "open_tree %s for %s", sm->source, sm->destination);
	struct mount_attr attr = { .attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (uint64_t)userns_fd };
	if (mount_setattr(tree, "", AT_EMPTY_PATH | (o.ridmap ? AT_RECURSIVE : 0), &attr, sizeof(attr)) < 0) {
		kelp_error(err, errno, "idmap mount %s for %s", sm->source, sm->destination);
		close(tree);
		return -1;
	}
	return tree;
}

/* Attach the idmapped tree the runtime prepared at target. */
static int mount_idmap(const struct spec_mount *sm, int tree, int target, struct kelp_err *err)
{
	if (move_mount(tree, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
		return kelp_error(err, errno, "attach idmapped mount %s on %s", sm->source, sm->destination);
	return 0;
}

bool mount_idmapped(const struct spec *s, size_t i, const struct spec_idmap **uids, size_t *nu,
		    const struct spec_idmap **gids, size_t *ng)
{
	const struct spec_mount *sm = &s->mounts[i];
	struct mount_opts o;
	if (mount_opts_parse(sm->options, &o, NULL) < 0)
		return false;
	mount_opts_free(&o);
	if (sm->n_uid_mappings || sm->n_gid_mappings) {
		*uids = sm->uid_mappings;
		*nu = sm->n_uid_mappings;
		*gids = sm->gid_mappings;
		*ng = sm->n_gid_mappings;
		return true;
	}
	if (!o.idmap)
		return false;
	*uids = s->linux_.uid_mappings;
	*nu = s->linux_.n_uid_mappings;
	*gids = s->linux_.gid_mappings;
	*ng = s->linux_.n_gid_mappings;
	return true;
}

static int mount_one(const struct mount_ctx *m, int rootfd, const struct spec_mount *sm, size_t index,
		     struct kelp_err *err)
{
	struct mount_opts o;
	if (mount_opts_parse(sm->options, &o, err) < 0)
		return kelp_error_wrap(err, "mount %s", sm->destination);
	int r = -1;
	const char *type = sm->type && *sm->type ? sm->type : NULL;
	bool bind = is_bind(sm, &o);
	cleanup_close int target = -1;
	char tpath[64];

	if (type && strcmp(type, "cgroup") == 0 && !bind) {
		r = cgroup_mount(m->cg, rootfd, sm->destination, o.flags, m->new_cgroupns, err);
		goto out;
	}
	if (bind) {
		struct stat st;
		if (!sm->source || stat(sm->source, &st) < 0) {
			kelp_error(err, sm->source ? errno : EINVAL, "bind mount source %s for %s",
				   sm->source ? sm->source : "(none)", sm->destination);
			goto out;
		}
		target = S_ISDIR(st.st_mode) ? kelp_mkdir_in_root(rootfd, sm->destination, 0755, err)
					     : kelp_mkfile_in_root(rootfd, sm->destination, 0644, err);
	} else {
		target = kelp_mkdir_in_root(rootfd, sm->destination, 0755, err);
	}
	if (target < 0) {
		kelp_error_wrap(err, "mount destination %s in %s", sm->destination, m->rootfs);
		goto out;
	}
	/* Mount on the fd, not on a path: what we resolved inside the rootfs is what gets covered,
	 * even if the path is swapped for a symlink meanwhile. */
	snprintf(tpath, sizeof(tpath), "/proc/self/fd/%d", target);

	if (bind && m->idmap_fds && m->idmap_fds[index] >= 0) {
		if (mount_idmap(sm, m->idmap_fds[index], target, err) < 0)
			goto out;
	} else if (bind) {
		if (do_mount(sm->source, tpath, sm->destination, NULL, MS_BIND | (o.rbind ? MS_REC : 0), NULL, err) < 0)
			goto out;
	}
	if (bind) {
		unsigned long extra = o.flags & ~(MS_REMOUNT);
		if ((extra || o.clear) && reopen_target(rootfd, sm->destination, &target, tpath, sizeof(tpath), err) < 0)
			goto out;
		if (extra || o.clear) {
			unsigned long f = (locked_flags(tpath) & ~o.clear) | extra;
			if (do_mount(NULL, tpath, sm->destination, NULL, MS_BIND | MS_REMOUNT | f, NULL, err) < 0)
				goto out;
		}
	} else {
		const char *src = sm->source && *sm->source ? sm->source : type;
		if (!type) {
			kelp_fail(err, EINVAL, "mount %s: no type and not a bind mount", sm->destination);
			goto out;
		}
		unsigned long f = o.flags;
		if (do_mount(src, tpath, sm->destination, type, f, o.data, err) < 0) {
			/* sysfs in a user namespace that does not own the network namespace: bind the
			 * host's /sys instead, read-only, as runc does */
			if (strcmp(type, "sysfs") == 0 && err->code == EPERM && m->in_userns) {
				if (do_mount("/sys", tpath, sm->destination, NULL, MS_BIND | MS_REC, NULL, err) < 0)
					goto out;
				do_mount(NULL, tpath, sm->destination, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | locked_flags(tpath), NULL, NULL);
			} else {
				goto out;
			}
		}
	}
	if (o.propagation && (reopen_target(rootfd, sm->destination, &target, tpath, sizeof(tpath), err) < 0 ||
			      do_mount(NULL, tpath, sm->destination, NULL, o.propagation, NULL, err) < 0))
		goto out;
	r = 0;
out:
	mount_opts_free(&o);
	return r;
}

/* Whether /dev gets runtime-made device nodes: yes, unless /dev is a bind of the host's. */
static bool needs_dev_setup(const struct spec *s)
{
	for (size_t i = 0; i < s->n_mounts; i++) {
		const struct spec_mount *sm = &s->mounts[i];
		if (strcmp(sm->destination, "/dev") != 0)
			continue;
		struct mount_opts o;
		if (mount_opts_parse(sm->options, &o, NULL) < 0)
			return true;
		bool b = is_bind(sm, &o);
		mount_opts_free(&o);
		return !b;
	}
	return true;
}

static int pivot(const char *rootfs, struct kelp_err *err)
{
	cleanup_close int oldroot = open("/", O_DIRECTORY | O_PATH | O_CLOEXEC);
	if (oldroot < 0)
		return kelp_error(err, errno, "open /");
	cleanup_close int newroot = open(rootfs, O_DIRECTORY | O_PATH | O_CLOEXEC);
	if (newroot < 0)
		return kelp_error(err, errno, "open rootfs %s", rootfs);
	if (fchdir(newroot) < 0)
		return kelp_error(err, errno, "chdir to rootfs %s", rootfs);
	/* pivot_root(".", ".") stacks the old root on top of the new one; unmounting "." then
	 * drops it without needing a directory for it inside the rootfs. */
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return kelp_error(err, errno, "pivot_root to %s", rootfs);
	if (fchdir(oldroot) < 0)
		return kelp_error(err, errno, "chdir to old root");
	/* never let the unmount below propagate back to the host */
	if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
		return kelp_error(err, errno, "make old root rslave");
	if (umount2(".", MNT_DETACH) < 0)
		return kelp_error(err, errno, "unmount old root");
	if (chdir("/") < 0)
		return kelp_error(err, errno, "chdir to /");
	return 0;
}

static int move_root(const char *rootfs, struct kelp_err *err)
{
	if (chdir(rootfs) < 0)
		return kelp_error(err, errno, "chdir to rootfs %s", rootfs);
	if (mount(rootfs, "/", NULL, MS_MOVE, NULL) < 0)
		return kelp_error(err, errno, "move rootfs %s to /", rootfs);
	if (chroot(".") < 0)
		return kelp_error(err, errno, "chroot to %s", rootfs);
	if (chdir("/") < 0)
		return kelp_error(err, errno, "chdir to /");
	return 0;
}

int rootfs_prepare(const struct mount_ctx *m, struct kelp_err *err)
{
	const struct spec *s = m->spec;
	const char *prop = s->linux_.rootfs_propagation;
	/* Until the container's own mounts are done, no event may reach the host: slave (or
	 * private if asked), never shared. */
	unsigned long initial = MS_SLAVE | MS_REC;
	if (prop && (propagation_flags(prop) & MS_PRIVATE))
		initial = MS_PRIVATE | MS_REC;
	if (mount(NULL, "/", NULL, initial, NULL) < 0)
		return kelp_error(err, errno, "set propagation of / in the container's mount namespace");
	/* the rootfs must be a mount point for pivot_root */
	if (do_mount(m->rootfs, m->rootfs, m->rootfs, NULL, MS_BIND | MS_REC, NULL, err) < 0)
		return -1;
	cleanup_close int rootfd = open(m->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return kelp_error(err, errno, "open rootfs %s", m->rootfs);
	for (size_t i = 0; i < s->n_mounts; i++)
		if (mount_one(m, rootfd, &s->mounts[i], i, err) < 0)
			return -1;
	if (needs_dev_setup(s) && devices_setup(rootfd, s, m->in_userns, err) < 0)
		return -1;
	return 0;
}

int rootfs_pivot(const struct mount_ctx *m, struct kelp_err *err)
{
	return m->no_pivot ? move_root(m->rootfs, err) : pivot(m->rootfs, err);
}

static int mask_path(const char *path, struct kelp_err *err)
{
	struct stat st;
	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		return kelp_error(err, errno, "masked path %s", path);
	}
	if (S_ISDIR(st.st_mode))
		return do_mount("tmpfs", path, path, "tmpfs", MS_RDONLY, NULL, err);
	if (mount("/dev/null", path, NULL, MS_BIND, NULL) < 0) {
		if (errno == ENOENT)
			return 0;
		return kelp_error(err, errno, "mask %s with /dev/null", path);
	}
	return 0;
}

static int readonly_path(const char *path, struct kelp_err *err)
{
	if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) < 0) {
		if (errno == ENOENT)
			return 0;
		return kelp_error(err, errno, "bind read-only path %s", path);
	}
	unsigned long f = locked_flags(path) | MS_RDONLY;
	return do_mount(NULL, path, path, NULL, MS_BIND | MS_REMOUNT | MS_REC | f, NULL, err);
}

int rootfs_finalize(const struct mount_ctx *m, struct kelp_err *err)
{
	const struct spec *s = m->spec;
	for (size_t i = 0; s->linux_.masked_paths && s->linux_.masked_paths[i]; i++)
		if (mask_path(s->linux_.masked_paths[i], err) < 0)
			return -1;
	for (size_t i = 0; s->linux_.readonly_paths && s->linux_.readonly_paths[i]; i++)
		if (readonly_path(s->linux_.readonly_paths[i], err) < 0)
			return -1;
	if (s->root_readonly) {
		unsigned long f = locked_flags("/") | MS_RDONLY;
		if (do_mount(NULL, "/", "/ (read-only root)", NULL, MS_BIND | MS_REMOUNT | f, NULL, err) < 0)
			return -1;
	}
	const char *prop = s->linux_.rootfs_propagation;
	if (prop && do_mount(NULL, "/", "/ (rootfsPropagation)", NULL, propagation_flags(prop), NULL, err) < 0)
		return -1;
	return 0;
}

int rootfs_bind_console(const char *slave_path, struct kelp_err *err)
{
	int fd = open("/dev/console", O_CREAT | O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return kelp_error(err, errno, "create /dev/console");
	close(fd);
	return do_mount(slave_path, "/dev/console", "/dev/console", NULL, MS_BIND, NULL, err);
}
