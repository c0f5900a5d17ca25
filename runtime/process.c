#include "process.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "fs.h"
#include "log.h"

int process_set_rlimits(const struct spec_process *p, struct kelp_err *err)
{
	for (size_t i = 0; i < p->n_rlimits; i++) {
		const struct spec_rlimit *r = &p->rlimits[i];
		struct rlimit rl = { .rlim_cur = r->soft, .rlim_max = r->hard };
		if (setrlimit(r->resource, &rl) == 0)
			continue;
		if (errno != EPERM)
			return kelp_error(err, errno, "setrlimit %s soft %llu hard %llu", r->name,
					  (unsigned long long)r->soft, (unsigned long long)r->hard);
		struct rlimit cur;
		if (getrlimit(r->resource, &cur) < 0)
			return kelp_error(err, errno, "getrlimit %s", r->name);
		rl.rlim_max = cur.rlim_max;
		if (rl.rlim_cur > rl.rlim_max)
			rl.rlim_cur = rl.rlim_max;
		log_warn("cannot raise hard limit %s to %llu without CAP_SYS_RESOURCE: using %llu (soft %llu)", r->name,
			 (unsigned long long)r->hard, (unsigned long long)rl.rlim_max, (unsigned long long)rl.rlim_cur);
		if (setrlimit(r->resource, &rl) < 0)
			return kelp_error(err, errno, "setrlimit %s", r->name);
	}
	return 0;
}

static const char *env_get(char *const *env, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; env && env[i]; i++)
		if (strncmp(env[i], name, n) == 0 && env[i][n] == '=')
			return env[i] + n + 1;
	return NULL;
}

static bool is_executable(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

int process_resolve(struct process_ctx *c, struct kelp_err *err)
{
	const char *arg0 = c->p->args[0];
	free(c->exec_path);
	c->exec_path = NULL;
	if (strchr(arg0, '/')) {
		if (access(arg0, F_OK) < 0)
			return kelp_error(err, errno, "exec: \"%s\"", arg0);
		c->exec_path = xstrdup(arg0);
		return 0;
	}
	const char *path = env_get(c->p->env, "PATH");
	if (!path)
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	cleanup_free char *copy = xstrdup(path);
	char *save = NULL;
	for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		cleanup_free char *cand = xasprintf("%s/%s", *dir ? dir : ".", arg0);
		if (is_executable(cand)) {
			c->exec_path = TAKE_PTR(cand);
			return 0;
		}
	}
	return kelp_fail(err, ENOENT, "exec: \"%s\": executable file not found in $PATH", arg0);
}

/* The absolute form of an exec path: relative ones are taken from the process's cwd, as
 * execve will after the chdir. */
static char *exec_abs(const struct process_ctx *c, const char *path, size_t len)
{
	if (path[0] == '/')
		return xasprintf("%.*s", (int)len, path);
	const char *cwd = c->p->cwd && *c->p->cwd ? c->p->cwd : "/";
	return xasprintf("%s/%.*s", cwd, (int)len, path);
}

static int refuse_chain(const struct process_ctx *c, const char *path, int depth, struct kelp_err *err)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return 0; /* execve reports it */
	if (st.st_dev == c->exe_dev && st.st_ino == c->exe_ino)
		return kelp_fail(err, EPERM,
				 "exec: \"%s\" leads to the runtime's own binary (through %s): refused, since the "
				 "container could reopen it for writing through /proc/PID/exe",
				 c->p->args[0], path);
	/* the kernel follows at most 5 levels of interpreters */
	if (depth >= 5 || !S_ISREG(st.st_mode))
		return 0;
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return 0;
	char buf[256];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	if (n < 3 || buf[0] != '#' || buf[1] != '!')
		return 0;
	buf[n] = '\0';
	char *interp = buf + 2 + strspn(buf + 2, " \t");
	size_t len = strcspn(interp, " \t\n");
	if (len == 0)
		return 0;
	cleanup_free char *next = exec_abs(c, interp, len);
	return refuse_chain(c, next, depth + 1, err);
}

int process_refuse_runtime(const struct process_ctx *c, struct kelp_err *err)
{
	if (!c->guard_exe || !c->exec_path)
		return 0;
	cleanup_free char *path = exec_abs(c, c->exec_path, strlen(c->exec_path));
	return refuse_chain(c, path, 0, err);
}

static int set_identity(const struct spec_process *p, struct kelp_err *err)
{
	const struct spec_user *u = &p->user;
	gid_t groups[u->n_additional_gids + 1];
	for (size_t i = 0; i < u->n_additional_gids; i++)
		groups[i] = u->additional_gids[i];
	/* setgroups is refused in a user namespace whose setgroups file says deny; only then is
	 * an empty list acceptable to skip */
	if (setgroups(u->n_additional_gids, groups) < 0 && !(errno == EPERM && u->n_additional_gids == 0))
		return kelp_error(err, errno, "setgroups");
	if (setresgid(u->gid, u->gid, u->gid) < 0)
		return kelp_error(err, errno, "setgid %u", u->gid);
	if (setresuid(u->uid, u->uid, u->uid) < 0)
		return kelp_error(err, errno, "setuid %u", u->uid);
	return 0;
}

int process_exec(struct process_ctx *c, struct kelp_err *err)
{
	const struct spec_process *p = c->p;
	/* again at the last moment: the rootfs may have changed since create */
	if (process_refuse_runtime(c, err) < 0)
		return -1;
	/* while still privileged: SCHED_FIFO and friends need CAP_SYS_NICE */
	if (c->attr && procattr_apply(c->attr, p, err) < 0)
		return -1;
	if (p->user.has_umask)
		umask(p->user.umask & 0777);
	else
		umask(0022);
	/* Without no_new_privs a seccomp filter can only be loaded while still privileged. */
	if (c->seccomp && !p->no_new_privileges && seccomp_filter_load(c->seccomp, NULL, err) < 0)
		return -1;
	if (c->caps && caps_apply_bounding(c->caps, err) < 0)
		return -1;
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		return kelp_error(err, errno, "prctl PR_SET_KEEPCAPS");
	if (set_identity(p, err) < 0)
		return -1;
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		return kelp_error(err, errno, "prctl PR_SET_KEEPCAPS");
	if (c->caps && caps_apply(c->caps, err) < 0)
		return -1;
	/* CVE-2024-21626: no fd of the runtime may be reachable from here on, not even through
	 * a cwd of /proc/self/fd/N; only stdio, the preserved fds and our report channel stay. */
	int keep[] = { c->report_fd, kelp_log_fd() };
	if (kelp_close_fds_except(3 + c->preserve_fds, keep, ARRAY_SIZE(keep)) < 0)
		return kelp_error(err, errno, "close the runtime's fds");
	const char *cwd = p->cwd && *p->cwd ? p->cwd : "/";
	if (cwd[0] != '/')
		return kelp_fail(err, EINVAL, "cwd \"%s\" is not an absolute path", cwd);
	if (chdir(cwd) < 0)
		return kelp_error(err, errno, "chdir to cwd \"%s\" set in config.json", cwd);
	char here[PATH_MAX];
	if (!getcwd(here, sizeof(here)) || here[0] != '/')
		return kelp_fail(err, EPERM, "cwd \"%s\" is outside the container's root", cwd);
	if (p->no_new_privileges && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return kelp_error(err, errno, "prctl PR_SET_NO_NEW_PRIVS");
	/* Every fd but stdio and the preserved ones is closed by execve. */
	if (kelp_cloexec_from(3 + c->preserve_fds) < 0)
		return kelp_error(err, errno, "mark fds close-on-exec");
	if (c->seccomp && p->no_new_privileges && seccomp_filter_load(c->seccomp, NULL, err) < 0)
		return -1;
	char *const empty[] = { NULL };
	execve(c->exec_path, p->args, p->env ? p->env : empty);
	return kelp_error(err, errno, "exec %s", c->exec_path);
}

void process_reset_signals(void)
{
	sigset_t none;
	sigemptyset(&none);
	/* a caller that blocks or ignores signals (run's signal forwarding) must not pass that
	 * on: both survive execve */
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);
	sigprocmask(SIG_SETMASK, &none, NULL);
}
