/* /dev inside the container: the default device nodes every container gets, linux.devices,
 * and the usual symlinks (fd, stdin, stdout, stderr, ptmx). */
#pragma once
#include <stdbool.h>

#include "error.h"
#include "spec.h"

int devices_setup(int rootfd, const struct spec *s, bool in_userns, struct kelp_err *err);
