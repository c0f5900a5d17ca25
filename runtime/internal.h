/* Shared between the runtime's own files; not part of the library interface. */
#pragma once
#include <stdbool.h>
#include <sys/types.h>

#include "container.h"
#include "error.h"

#define STATE_FILE "state.json"
#define CONFIG_COPY "config.json"
#define EXEC_FIFO "exec.fifo"

/* Open (and with create, make) the runtime root; returns an O_DIRECTORY fd. */
int state_root_open(const struct kelp_runtime *rt, bool create, struct kelp_err *err);
/* Open the container's state directory; ENOENT → "container X does not exist". */
int state_dir_open(const struct kelp_runtime *rt, const char *id, struct kelp_err *err);
int state_write(int dirfd, const struct kelp_state *s, struct kelp_err *err);
/* The first state.json of a create (pid 0), so that a create killed half way leaves a state
 * that `delete --force` can clean up (its cgroup); not fsynced: it matters only while the
 * machine is up. */
int state_write_early(int dirfd, const struct kelp_state *s, struct kelp_err *err);
int state_read(int dirfd, const char *id, struct kelp_state **ret, struct kelp_err *err);
/* The config.json the container was created from (its copy in the state dir). */
int state_load_spec(int dirfd, struct spec **ret, struct kelp_err *err);
/* Run the container's hooks of `kind` that run after create (poststart, poststop): a failure
 * is logged as a warning, as the spec asks, and the rest still run. */
void state_run_late_hooks(int dirfd, const struct kelp_state *s, enum hook_kind kind, const char *status);

/* Recompute s->status from the process and the exec fifo. */
void state_refresh(int dirfd, struct kelp_state *s);

/* Start time of pid (field 22 of /proc/PID/stat); 0 and ret_zombie unset when it is gone. */
unsigned long long proc_start_time(pid_t pid, bool *ret_zombie);
/* A pidfd for the container's init, only if it is still the same process. -1 with ESRCH. */
int state_pidfd(const struct kelp_state *s, struct kelp_err *err);

/* Write "PID" atomically to path (the --pid-file). */
int write_pid_file(const char *path, pid_t pid, struct kelp_err *err);

/* Current time as RFC 3339 with nanoseconds, UTC. */
char *now_rfc3339(void);

/* Signal name or number ("KILL", "SIGKILL", "9") to number. */
int signal_parse(const char *s);

/* Wait until the process behind pidfd has exited, up to timeout_ms (-1: forever). 0 when it
 * has exited, -1 with ETIMEDOUT otherwise. */
int pidfd_wait_exit(int pidfd, int timeout_ms);

int sys_pidfd_open(pid_t pid, unsigned flags);
int sys_pidfd_send_signal(int pidfd, int sig);
