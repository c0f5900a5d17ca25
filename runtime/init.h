/* The container's init before it execs the user's process: runs in the child the runtime
 * cloned, sets the container up, reports to the runtime, and waits on the exec fifo. */
#pragma once
#include <stdbool.h>

#include "cgroup.h"
#include "procattr.h"
#include "security.h"
#include "spec.h"

struct init_ctx {
	const struct spec *spec;
	const char *id;
	const char *bundle;
	const char *rootfs;
	int sync_fd;              /* child's end of the sync socketpair */
	int fifo_fd;              /* O_PATH fd of the exec fifo */
	int ns_fds[NS_COUNT];     /* namespaces to join, -1 where none */
	bool cloned[NS_COUNT];    /* namespaces already created by clone() */
	int console_sock;         /* --console-socket, or -1 */
	bool console_via_sync;    /* foreground run: send the pty master over sync_fd */
	bool no_pivot;
	int preserve_fds;
	struct kelp_caps *caps;
	struct kelp_seccomp *seccomp;
	struct kelp_cgroup *cg;
	const struct procattr *attr;
	const int *idmap_fds; /* per mount, -1 where not idmapped */
};

/* Never returns: execs the user's process or exits non-zero after reporting an error. */
__attribute__((noreturn)) void container_init(struct init_ctx *c);

/* Allocate a pty inside the current root, make its slave our controlling terminal and stdio,
 * and hand the master to `sock` (console socket or sync socket). */
int console_setup(int sock, bool via_sync, const struct spec_process *p, bool bind_dev_console, struct kelp_err *err);
