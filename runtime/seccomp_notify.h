/* Handing a seccomp notify fd to the agent at linux.seccomp.listenerPath. */
#pragma once
#include <sys/types.h>

#include "error.h"
#include "security.h"
#include "spec.h"

/* Container side: when *f uses SCMP_ACT_NOTIFY, load it now, send its fd to the runtime over
 * sync_fd and wait for GO; *f becomes NULL (loaded). Nothing happens for other filters. */
int seccomp_notify_load_early(struct kelp_seccomp **f, int sync_fd, struct kelp_err *err);
/* Runtime side: the ContainerProcessState JSON and the fd, in one message to the agent. */
int seccomp_notify_send(const struct spec_seccomp *sc, int notify_fd, pid_t pid, const char *state_json,
			struct kelp_err *err);
