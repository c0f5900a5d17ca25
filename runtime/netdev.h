/* linux.netDevices: host network interfaces moved into the container's network namespace. */
#pragma once
#include <sys/types.h>

#include "error.h"
#include "spec.h"

/* Move every device of l->netdev_host into the network namespace of pid, renamed as asked,
 * with its permanent global addresses, and up. Checks all devices and names before moving any. */
int netdev_move_all(const struct spec_linux *l, pid_t pid, struct kelp_err *err);
