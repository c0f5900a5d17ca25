/* The runtime as a library: create, start, state, kill, delete, exec, list. The `kelp` CLI is a
 * thin layer over these calls, and kelpd links them directly. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"
#include "spec.h"

#define KELP_DEFAULT_ROOT "/run/kelp"
#define KELP_OCI_VERSION "1.3.0"

struct kelp_runtime {
	const char *root; /* state directory, one subdirectory per container */
	bool systemd_cgroup;
};

enum kelp_status { KELP_CREATING, KELP_CREATED, KELP_RUNNING, KELP_PAUSED, KELP_STOPPED };
const char *kelp_status_name(enum kelp_status s);

struct kelp_state {
	char *id;
	pid_t pid;                  /* init's pid in the runtime's pid namespace, 0 once stopped */
	unsigned long long pid_start; /* its start time (clock ticks since boot), against pid reuse */
	enum kelp_status status;
	char *bundle;
	char *rootfs;
	char *created; /* RFC 3339 */
	char *owner;
	char *cgroup_path;
	char **annotation_keys, **annotation_values;
};
void kelp_state_free(struct kelp_state *s);

struct kelp_create_opts {
	const char *id;
	const char *bundle;
	const char *pid_file;
	const char *console_socket;
	int preserve_fds;
	int listen_fds; /* socket activation: fds 3..3+n-1 (before the preserved ones) */
	bool no_pivot;
	/* For `run`: the caller (our process) stays the parent and becomes a subreaper, and a pty
	 * master is handed back in *ret_console_fd instead of being sent over a socket. */
	bool foreground;
	/* When set, a container whose init other processes could see (a joined or the host pid
	 * namespace) is created from a sealed copy of kelp: the process re-execs with these. */
	char **reexec_argv, **reexec_envp;
};

/* Create the container: namespaces, mounts, cgroups, init waiting on the exec fifo. On error
 * nothing is left behind (state directory, cgroups, processes). */
int kelp_create(const struct kelp_runtime *rt, const struct kelp_create_opts *o, pid_t *ret_pid, int *ret_console_fd,
		struct kelp_err *err);
/* Release init to exec the user process. */
int kelp_start(const struct kelp_runtime *rt, const char *id, struct kelp_err *err);
/* Load the state with a fresh status. ENOENT means no such container. */
int kelp_state_load(const struct kelp_runtime *rt, const char *id, struct kelp_state **ret, struct kelp_err *err);
/* The OCI state JSON (runc's fields: ociVersion id pid status bundle rootfs created owner annotations). */
char *kelp_state_json(const struct kelp_state *s, bool beautify);
int kelp_kill(const struct kelp_runtime *rt, const char *id, int sig, bool all, struct kelp_err *err);
int kelp_delete(const struct kelp_runtime *rt, const char *id, bool force, struct kelp_err *err);
/* Every container under the root, sorted by id. */
int kelp_list(const struct kelp_runtime *rt, struct kelp_state ***ret, size_t *ret_n, struct kelp_err *err);
/* Pids of every process in the container. */
int kelp_pids(const struct kelp_runtime *rt, const char *id, pid_t **ret, size_t *ret_n, struct kelp_err *err);

struct kelp_exec_opts {
	const char *id;
	const char *process_file; /* a process JSON, or NULL to use args and the overrides below */
	char **args;
	char **env;     /* appended to the container's env */
	const char *cwd;
	const char *user; /* "uid[:gid]" */
	char **caps;    /* added capabilities (--cap) */
	bool tty, has_tty;
	bool no_new_privs;
	const char *console_socket;
	const char *pid_file;
	int preserve_fds;
	bool detach;
};

/* Start a process in a running container. Detached: returns once it has exec'd, with its pid.
 * Foreground: *ret_console_fd gets the pty master when a tty was asked without a socket. */
int kelp_exec(const struct kelp_runtime *rt, const struct kelp_exec_opts *o, pid_t *ret_pid, int *ret_console_fd,
	      struct kelp_err *err);

/* Freeze and thaw every process of the container (v1 freezer, v2 cgroup.freeze). */
int kelp_pause(const struct kelp_runtime *rt, const char *id, struct kelp_err *err);
int kelp_resume(const struct kelp_runtime *rt, const char *id, struct kelp_err *err);
/* Apply new limits to a live container; device rules stay unless r lists some. */
int kelp_update(const struct kelp_runtime *rt, const char *id, struct spec_resources *r, struct kelp_err *err);
struct cg_stats;
int kelp_stats(const struct kelp_runtime *rt, const char *id, struct cg_stats *ret, struct kelp_err *err);

/* Re-exec the calling program from a sealed memfd copy of itself unless it already runs from
 * one; returns only on failure, or with 0 when already sealed (CVE-2019-5736). */
int kelp_reexec_sealed(char **argv, char **envp, struct kelp_err *err);
/* Whether pid runs from a sealed copy of kelp (or anything sealed): false when unknown. */
bool kelp_pid_runs_sealed(pid_t pid);

/* The OCI features document of this build (features.md). */
char *kelp_features_json(void);

/* Container ids: letters, digits, '_', '+', '-', '.', at most 1024 bytes, not "." or "..". */
bool kelp_id_is_valid(const char *id);
