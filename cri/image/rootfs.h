/* Container roots: an overlayfs mount of an image's layers (read-only lower dirs, shared by every
 * container of the image) with a per-container upper and work dir, under
 * <root>/containers/<id>/{rootfs,upper,work}. The container holds its layers in the metadata, so
 * removing the image keeps them until the container goes. Layers are passed one by one
 * ("lowerdir+", Linux 6.8), so deep images never hit the mount option length limit; older
 * kernels get one option string of short relative paths. */
#pragma once
#include "error.h"
#include "store.h"

/* Mount a root for container id from image key; *ret_path (caller frees) is the mount point. */
int kimg_rootfs_create(struct kimg_store *s, const char *id, const char *image, char **ret_path, struct kelp_err *err);
/* Unmount and delete it, and release its layers. A missing container is not an error. */
int kimg_rootfs_remove(struct kimg_store *s, const char *id, struct kelp_err *err);
