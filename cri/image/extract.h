/* Extraction of one layer tarball into a directory, every path resolved inside it: "..",
 * absolute paths, writes through symlinks and hardlinks to anything outside are refused.
 * Whiteouts become what overlayfs understands: ".wh.NAME" a 0:0 character device NAME,
 * ".wh..wh..opq" the trusted.overlay.opaque xattr on its directory. Ownership, modes, times,
 * xattrs (file capabilities included) and device nodes are kept. */
#pragma once
#include <archive.h>

#include "error.h"

/* Extract every entry of a (already opened) tar archive into rootfd. */
int kimg_extract(struct archive *a, int rootfd, struct kelp_err *err);
/* Open fd (plain tar, gzip or zstd) and extract it into rootfd; for tests and imports. */
int kimg_extract_fd(int fd, int rootfd, struct kelp_err *err);
/* The compressions a layer may have (OCI: none, gzip, zstd), all in process: libarchive's
 * "all" would also run external programs (lrzip, lzop, grzip) on a hostile blob. */
void kimg_layer_filters(struct archive *a);
