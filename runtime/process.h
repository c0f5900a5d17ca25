/* The last steps before exec, shared by a container's init and by `exec`: rlimits, identity,
 * capabilities, no_new_privs, seccomp, the fds the process keeps, and execve. */
#pragma once
#include <stdbool.h>

#include "error.h"
#include "procattr.h"
#include "security.h"
#include "spec.h"

struct process_ctx {
	const struct spec_process *p;
	struct kelp_caps *caps;       /* NULL: keep all */
	struct kelp_seccomp *seccomp; /* NULL: none */
	int preserve_fds;             /* fds 3 .. 3+n-1 stay open */
	int report_fd;                /* kept open to report a failure (close-on-exec), or -1 */
	const struct procattr *attr;  /* scheduling attributes, or NULL */
	char *exec_path;              /* resolved by process_resolve() */
	/* The runtime's own binary, which the process must not turn out to be (guard_exe). */
	bool guard_exe;
	dev_t exe_dev;
	ino_t exe_ino;
};

/* setrlimit for each entry. A hard limit this process may not raise (no CAP_SYS_RESOURCE) is
 * clamped to the current one with a warning, so the container still starts. */
int process_set_rlimits(const struct spec_process *p, struct kelp_err *err);
/* Find args[0] in the PATH of the process env (as exec*p would), inside the current root. */
int process_resolve(struct process_ctx *c, struct kelp_err *err);
/* With guard_exe: refuse an exec_path that is, or whose "#!" interpreter chain reaches, the
 * runtime's binary ("/proc/self/exe", a link to it, a script naming it): that process would
 * run the host's kelp inside the container, where it can be reopened for writing. */
int process_refuse_runtime(const struct process_ctx *c, struct kelp_err *err);
/* Everything from setgroups to execve; returns only on failure. `pre_exec_fd`, if >= 0, is an
 * fd to close just before execve (the start fifo, already written). */
int process_exec(struct process_ctx *c, struct kelp_err *err);
/* Default dispositions and an empty signal mask, as a fresh process expects. */
void process_reset_signals(void);
