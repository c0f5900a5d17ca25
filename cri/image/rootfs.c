#include "rootfs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "db.h"
#include "fs.h"
#include "image.h"
#include "unpack.h"

/* The new mount API with one "lowerdir+" per layer. Returns 1 when the kernel lacks it. */
static int mount_layered(struct kimg_store *s, const struct kimg_image *img, int cdirfd, const char *id,
			 struct kelp_err *err)
{
	cleanup_close int fs = fsopen("overlay", FSOPEN_CLOEXEC);
	if (fs < 0)
		return errno == ENOSYS ? 1 : kelp_error(err, errno, "container %s: fsopen overlay", id);
	/* overlay's lower dirs are listed top first */
	for (size_t i = img->n_layers; i-- > 0;) {
		cleanup_free char *p = kimg_layer_path(s, img->layers[i].diff_id);
		if (fsconfig(fs, FSCONFIG_SET_STRING, "lowerdir+", p, 0) < 0)
			return errno == EINVAL && i == img->n_layers - 1 ? 1
									 : kelp_error(err, errno, "container %s: layer %s", id, p);
	}
	cleanup_free char *upper = xasprintf("%s/containers/%s/upper", s->root, id);
	cleanup_free char *work = xasprintf("%s/containers/%s/work", s->root, id);
	if (fsconfig(fs, FSCONFIG_SET_STRING, "upperdir", upper, 0) < 0 ||
	    fsconfig(fs, FSCONFIG_SET_STRING, "workdir", work, 0) < 0 ||
	    fsconfig(fs, FSCONFIG_SET_STRING, "source", "kelp", 0) < 0 || fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		return kelp_error(err, errno, "container %s: configure overlay", id);
	cleanup_close int mnt = fsmount(fs, FSMOUNT_CLOEXEC, 0);
	if (mnt < 0)
		return kelp_error(err, errno, "container %s: fsmount overlay", id);
	if (move_mount(mnt, "", cdirfd, "rootfs", MOVE_MOUNT_F_EMPTY_PATH) < 0)
		return kelp_error(err, errno, "container %s: attach overlay", id);
	return 0;
}

/* Older kernels: one option string. Paths relative to the layers dir keep it short; a child
 * process changes directory so the daemon's threads keep theirs. */
static int mount_classic(struct kimg_store *s, const struct kimg_image *img, const char *id, struct kelp_err *err)
{
	size_t cap = 256 + img->n_layers * 66 + 2 * strlen(s->root) + 2 * strlen(id);
	cleanup_free char *opts = xmalloc(cap);
	size_t o = (size_t)snprintf(opts, cap, "lowerdir=");
	for (size_t i = img->n_layers; i-- > 0;)
		o += (size_t)snprintf(opts + o, cap - o, "%s%s", i == img->n_layers - 1 ? "" : ":",
				      kimg_digest_hex(img->layers[i].diff_id));
	snprintf(opts + o, cap - o, ",upperdir=../containers/%s/upper,workdir=../containers/%s/work", id, id);
	if (strlen(opts) >= (size_t)getpagesize())
		return kelp_fail(err, E2BIG, "container %s: %zu layers are too many for this kernel's overlay options (needs Linux 6.8 for more)", id,
				 img->n_layers);
	cleanup_free char *target = xasprintf("../containers/%s/rootfs", id);
	pid_t pid = fork();
	if (pid < 0)
		return kelp_error(err, errno, "container %s: fork", id);
	if (pid == 0) {
		if (fchdir(s->layersfd) < 0 || mount("kelp", target, "overlay", 0, opts) < 0)
			_exit(errno & 0xff);
		_exit(0);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return kelp_error(err, errno, "container %s: wait for mount", id);
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		return kelp_error(err, WIFEXITED(st) ? WEXITSTATUS(st) : EIO, "container %s: mount overlay", id);
	return 0;
}

int kimg_rootfs_create(struct kimg_store *s, const char *id, const char *image, char **ret_path, struct kelp_err *err)
{
	if (!kelp_name_is_safe(id) || strlen(id) > 128)
		return kelp_fail(err, EINVAL, "container id \"%s\": not a valid name", id);
	cleanup_close int lock = kimg_store_lock(s, false, err);
	if (lock < 0)
		return -1;
	struct kimg_image img;
	if (kimg_db_find_image(s, image, &img, err) < 0)
		return kelp_error_wrap(err, "container %s", id);
	int rc = -1;
	bool claimed = false, made = false;
	cleanup_close int cdirfd = -1;
	char **diffs = xcalloc(img.n_layers + 1, sizeof(char *));
	for (size_t i = 0; i < img.n_layers; i++)
		diffs[i] = img.layers[i].diff_id;
	if (img.n_layers == 0) {
		kelp_fail(err, EINVAL, "container %s: image %s has no layers", id, img.name);
		goto out;
	}
	/* the row claims the id and holds the layers before anything is made on disk */
	if (kimg_db_put_container(s, id, img.name, diffs, err) < 0) {
		kelp_error_wrap(err, "container %s", id);
		goto out;
	}
	claimed = true;
	if (mkdirat(s->containersfd, id, 0700) < 0) {
		kelp_error(err, errno, "container %s: create directory", id);
		goto out;
	}
	made = true;
	cdirfd = openat(s->containersfd, id, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (cdirfd < 0 || mkdirat(cdirfd, "upper", 0755) < 0 || mkdirat(cdirfd, "work", 0700) < 0 ||
	    mkdirat(cdirfd, "rootfs", 0755) < 0) {
		kelp_error(err, errno, "container %s: create directories", id);
		goto out;
	}
	int m = mount_layered(s, &img, cdirfd, id, err);
	if (m == 1)
		m = mount_classic(s, &img, id, err);
	if (m < 0)
		goto out;
	*ret_path = xasprintf("%s/containers/%s/rootfs", s->root, id);
	rc = 0;
out:
	if (rc < 0) {
		struct kelp_err ignored;
		if (made)
			kelp_rm_rf_at(s->containersfd, id, &ignored);
		if (claimed)
			kimg_db_delete_container(s, id, &ignored);
	}
	free(diffs);
	kimg_image_free(&img);
	return rc;
}

int kimg_rootfs_remove(struct kimg_store *s, const char *id, struct kelp_err *err)
{
	if (!kelp_name_is_safe(id))
		return kelp_fail(err, EINVAL, "container id \"%s\": not a valid name", id);
	cleanup_free char *mnt = xasprintf("%s/containers/%s/rootfs", s->root, id);
	if (umount2(mnt, MNT_DETACH | UMOUNT_NOFOLLOW) < 0 && errno != EINVAL && errno != ENOENT)
		return kelp_error(err, errno, "container %s: unmount %s", id, mnt);
	if (kelp_rm_rf_at(s->containersfd, id, err) < 0)
		return kelp_error_wrap(err, "container %s", id);
	if (kimg_db_delete_container(s, id, err) < 0)
		return -1;
	/* layers of an image removed while this container ran are free now */
	struct kelp_err ignored;
	kimg_store_gc_try(s, &ignored);
	return 0;
}
