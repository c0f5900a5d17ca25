/* The container's filesystem, built inside its new mount namespace: the rootfs bound onto
 * itself, the config's mounts (every destination resolved inside the rootfs), /dev, pivot_root,
 * then masked and read-only paths. */
#pragma once
#include <stdbool.h>

#include "cgroup.h"
#include "error.h"
#include "spec.h"

struct mount_ctx {
	const struct spec *spec;
	const char *rootfs;         /* absolute host path */
	struct kelp_cgroup *cg;     /* for `type: cgroup` mounts */
	bool new_cgroupns;
	bool in_userns;             /* mknod is impossible: bind host devices instead */
	bool no_pivot;
	const int *idmap_fds;       /* per mount: a detached idmapped tree to attach, or -1 */
};

/* Mount flags and data of a mount's options (exposed for unit tests). */
struct mount_opts {
	unsigned long flags;        /* MS_* applied at mount time */
	unsigned long clear;        /* MS_* the options turned off ("rw", "suid", ...) */
	unsigned long propagation;  /* MS_SHARED/MS_SLAVE/MS_PRIVATE/MS_UNBINDABLE [| MS_REC] */
	bool bind, rbind;
	bool idmap, ridmap;         /* "idmap": map with the mount's (or the container's) mappings */
	char *data;                 /* the rest, comma-separated ("mode=755,size=64k") */
};
/* Every option name mount_opts_parse knows (for `features`); NULL-terminated, caller frees. */
char **mount_option_names(void);
int mount_opts_parse(char *const *options, struct mount_opts *ret, struct kelp_err *err);
void mount_opts_free(struct mount_opts *o);
/* "rslave" → MS_SLAVE|MS_REC, ...; 0 for an unknown name. */
unsigned long propagation_flags(const char *name);

/* Whether mount i of s is idmapped, and with which mappings (its own or the container's). */
bool mount_idmapped(const struct spec *s, size_t i, const struct spec_idmap **uids, size_t *nu,
		    const struct spec_idmap **gids, size_t *ng);

/* In the runtime, which may idmap the source's filesystem: a detached clone of the source,
 * idmapped through userns_fd; init attaches it. Returns the tree's fd. */
int mount_idmap_tree(const struct spec_mount *sm, int userns_fd, struct kelp_err *err);

/* Everything before pivot_root: the rootfs bound onto itself, the mounts, /dev. */
int rootfs_prepare(const struct mount_ctx *m, struct kelp_err *err);
/* pivot_root into the rootfs (or the move and chroot for no_pivot). */
int rootfs_pivot(const struct mount_ctx *m, struct kelp_err *err);
/* Inside the new root: masked paths, read-only paths, read-only root, root propagation. */
int rootfs_finalize(const struct mount_ctx *m, struct kelp_err *err);
/* Bind the pty slave at /dev/console (called with the new root in place). */
int rootfs_bind_console(const char *slave_path, struct kelp_err *err);
