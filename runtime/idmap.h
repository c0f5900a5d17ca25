#pragma once
#include <stddef.h>

#include "error.h"
#include "spec.h"

/* An fd of a new user namespace with these uid and gid mappings ("container host size" as in
 * config.json), for MOUNT_ATTR_IDMAP. */
int idmap_userns_fd(const struct spec_idmap *uids, size_t nu, const struct spec_idmap *gids, size_t ng,
		    struct kelp_err *err);
