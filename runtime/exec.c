/* `exec`: a new process in a running container's namespaces and cgroup, with the container's
 * seccomp profile and the process settings of --process or of the container's config. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup.h"
#include "cleanup.h"
#include "fs.h"
#include "init.h"
#include "internal.h"
#include "log.h"
#include "hooks.h"
#include "process.h"
#include "seccomp_notify.h"
#include "sync.h"

static char **strv_copy_append(char **a, char **b)
{
	size_t na = strv_len(a), nb = strv_len(b);
	char **out = xcalloc(na + nb + 1, sizeof(char *));
	for (size_t i = 0; i < na; i++)
		out[i] = xstrdup(a[i]);
	for (size_t i = 0; i < nb; i++)
		out[na + i] = xstrdup(b[i]);
	return out;
}

static char **strv_copy(char **a)
{
	return strv_copy_append(a, NULL);
}

/* Build the exec'd process from the container's own process and the command line. */
static int build_process(const struct kelp_exec_opts *o, const struct spec *s, struct spec_process *p,
			 struct kelp_err *err)
{
	if (o->process_file) {
		cleanup_free char *buf = NULL;
		size_t len;
		if (kelp_read_file_at(AT_FDCWD, o->process_file, 4 << 20, &buf, &len, err) < 0)
			return kelp_error_wrap(err, "--process");
		return spec_parse_process(buf, len, o->process_file, p, err);
	}
	const struct spec_process *c = &s->process;
	memset(p, 0, sizeof(*p));
	if (!o->args || !o->args[0])
		return kelp_fail(err, EINVAL, "exec: no command given (args or --process)");
	p->args = strv_copy(o->args);
	p->env = strv_copy_append(c->env, o->env);
	p->cwd = xstrdup(o->cwd ? o->cwd : c->cwd ? c->cwd : "/");
	p->terminal = o->has_tty ? o->tty : false;
	p->user = c->user;
	p->user.username = NULL;
	p->user.additional_gids = NULL;
	p->user.n_additional_gids = 0;
	if (c->user.n_additional_gids) {
		p->user.additional_gids = xcalloc(c->user.n_additional_gids, sizeof(uint32_t));
		memcpy(p->user.additional_gids, c->user.additional_gids, c->user.n_additional_gids * sizeof(uint32_t));
		p->user.n_additional_gids = c->user.n_additional_gids;
	}
	if (o->user) {
		char *end;
		unsigned long uid = strtoul(o->user, &end, 10);
		unsigned long gid = p->user.gid;
		if (end == o->user || (*end && *end != ':') || uid > UINT32_MAX)
			return kelp_fail(err, EINVAL, "--user %s: expected uid[:gid]", o->user);
		if (*end == ':') {
			const char *g = end + 1;
			gid = strtoul(g, &end, 10);
			if (end == g || *end || gid > UINT32_MAX)
				return kelp_fail(err, EINVAL, "--user %s: expected uid[:gid]", o->user);
		}
		p->user.uid = (uint32_t)uid;
		p->user.gid = (uint32_t)gid;
	}
	p->has_caps = c->has_caps || (o->caps && o->caps[0]);
	p->caps.bounding = strv_copy_append(c->caps.bounding, o->caps);
	p->caps.effective = strv_copy_append(c->caps.effective, o->caps);
	p->caps.permitted = strv_copy_append(c->caps.permitted, o->caps);
	p->caps.inheritable = strv_copy(c->caps.inheritable);
	p->caps.ambient = strv_copy(c->caps.ambient);
	p->no_new_privileges = c->no_new_privileges || o->no_new_privs;
	if (c->n_rlimits) {
		p->rlimits = xcalloc(c->n_rlimits, sizeof(*p->rlimits));
		for (size_t i = 0; i < c->n_rlimits; i++) {
			p->rlimits[i] = c->rlimits[i];
			p->rlimits[i].name = xstrdup(c->rlimits[i].name);
		}
		p->n_rlimits = c->n_rlimits;
	}
	return 0;
}

static bool same_ns(pid_t pid, const char *name)
{
	char a[64], b[64];
	struct stat sa, sb;
	snprintf(a, sizeof(a), "/proc/%d/ns/%s", (int)pid, name);
	snprintf(b, sizeof(b), "/proc/self/ns/%s", name);
	if (stat(a, &sa) < 0 || stat(b, &sb) < 0)
		return true;
	return sa.st_ino == sb.st_ino && sa.st_dev == sb.st_dev;
}

struct exec_job {
	struct spec *spec;
	struct procattr attr;
	struct spec_process proc;
	struct kelp_caps *caps;
	struct kelp_seccomp *seccomp;
	struct kelp_cgroup *cg;
	int ns_fds[NS_COUNT];
	int console;
	int sync[2];
};

static void exec_job_free(struct exec_job *j)
{
	spec_free(j->spec);
	spec_process_free(&j->proc);
	caps_free(j->caps);
	seccomp_free(j->seccomp);
	cgroup_free(j->cg);
	for (int t = 0; t < NS_COUNT; t++)
		if (j->ns_fds[t] >= 0)
			close(j->ns_fds[t]);
	if (j->console >= 0)
		close(j->console);
	for (int i = 0; i < 2; i++)
		if (j->sync[i] >= 0)
			close(j->sync[i]);
}

__attribute__((noreturn)) static void exec_child(struct exec_job *j, const struct kelp_exec_opts *o)
{
	struct kelp_err err = { 0 };
	struct process_ctx pc = { .p = &j->proc,
				  .caps = j->caps,
				  .seccomp = j->seccomp,
				  .preserve_fds = o->preserve_fds,
				  .report_fd = j->sync[1],
				  .attr = &j->attr };
	struct sync_msg m;
	static const int order[] = { NS_USER, NS_IPC, NS_UTS, NS_NET, NS_CGROUP, NS_MNT };
	int sync = j->sync[1];

	process_reset_signals();
	/* not reachable through /proc/PID by the container's processes until it execs */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
		kelp_error(&err, errno, "prctl PR_SET_DUMPABLE");
		goto fail;
	}

	for (size_t i = 0; i < ARRAY_SIZE(order); i++) {
		int t = order[i];
		if (j->ns_fds[t] >= 0 && setns(j->ns_fds[t], ns_clone_flags[t]) < 0) {
			kelp_error(&err, errno, "join the container's %s namespace", ns_type_names[t]);
			goto fail;
		}
	}
	if (j->attr.has_affinity_initial && sched_setaffinity(0, sizeof(cpu_set_t), &j->attr.affinity_initial) < 0) {
		kelp_error(&err, errno, "execCPUAffinity.initial");
		goto fail;
	}
	if (sync_expect(sync, SYNC_GO, &m, NULL, &err) < 0)
		goto fail;
	/* now in the container's cgroup */
	if (j->attr.has_affinity_final && sched_setaffinity(0, sizeof(cpu_set_t), &j->attr.affinity_final) < 0) {
		kelp_error(&err, errno, "execCPUAffinity.final");
		goto fail;
	}
	if (j->proc.terminal) {
		int sock = j->console >= 0 ? j->console : sync;
		if (console_setup(sock, j->console < 0, &j->proc, false, &err) < 0)
			goto fail;
	}
	if (process_set_rlimits(&j->proc, &err) < 0 || process_resolve(&pc, &err) < 0 ||
	    seccomp_notify_load_early(&pc.seccomp, sync, &err) < 0)
		goto fail;
	process_exec(&pc, &err);
fail:
	sync_send_error(sync, &err);
	_exit(1);
}

int kelp_exec(const struct kelp_runtime *rt, const struct kelp_exec_opts *o, pid_t *ret_pid, int *ret_console_fd,
	      struct kelp_err *err)
{
	struct exec_job j = { .console = -1, .sync = { -1, -1 } };
	for (int t = 0; t < NS_COUNT; t++)
		j.ns_fds[t] = -1;
	if (ret_console_fd)
		*ret_console_fd = -1;
	int r = -1;
	cleanup_close int dfd = state_dir_open(rt, o->id, err);
	if (dfd < 0)
		return -1;
	struct kelp_state *s;
	if (state_read(dfd, o->id, &s, err) < 0)
		return -1;
	cleanup_close int pidfd = -1;
	cleanup_close int own_pidns = -1;
	cleanup_free char *config = NULL;
	pid_t child = -1;
	if (s->status == KELP_STOPPED || s->status == KELP_CREATING) {
		kelp_fail(err, EINVAL, "cannot exec in a stopped container");
		goto out;
	}
	if (s->status == KELP_PAUSED) {
		kelp_fail(err, EINVAL, "cannot exec in a paused container");
		goto out;
	}
	/* Until `start`, the init of a new pid namespace is a clone of the host's kelp binary
	 * (runtime/sealed.c): no process of the container may run beside it. */
	if (s->status == KELP_CREATED && !kelp_pid_runs_sealed(s->pid)) {
		kelp_fail(err, EBUSY, "container %s is created but not started: exec waits for start, as its init "
				      "still runs kelp's own binary", o->id);
		goto out;
	}
	size_t config_len;
	if (kelp_read_file_at(dfd, CONFIG_COPY, 16 << 20, &config, &config_len, err) < 0 ||
	    spec_parse(config, config_len, "config.json of the container", &j.spec, err) < 0)
		goto out;
	if (build_process(o, j.spec, &j.proc, err) < 0)
		goto out;
	if (j.proc.terminal && !o->console_socket && o->detach) {
		kelp_fail(err, EINVAL, "exec --tty --detach needs a --console-socket to hand over the pty");
		goto out;
	}
	if (j.proc.has_caps && caps_prepare(&j.proc.caps, &j.caps, err) < 0)
		goto out;
	if (procattr_prepare(&j.proc, NULL, &j.attr, err) < 0)
		goto out;
	if (j.spec->linux_.seccomp && seccomp_prepare(j.spec->linux_.seccomp, &j.seccomp, err) < 0)
		goto out;
	if (s->cgroup_path && *s->cgroup_path && cgroup_reopen(s->cgroup_path, &j.cg, err) < 0)
		goto out;
	pidfd = state_pidfd(s, err);
	if (pidfd < 0)
		goto out;
	for (int t = 0; t < NS_COUNT; t++) {
		if (t == NS_TIME || same_ns(s->pid, ns_proc_names[t]))
			continue;
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)s->pid, ns_proc_names[t]);
		j.ns_fds[t] = open(path, O_RDONLY | O_CLOEXEC);
		if (j.ns_fds[t] < 0) {
			kelp_error(err, errno, "open %s", path);
			goto out;
		}
	}
	/* the pids are checked again now that the namespace fds pin them */
	if (proc_start_time(s->pid, NULL) != s->pid_start) {
		kelp_fail(err, ESRCH, "cannot exec in a stopped container");
		goto out;
	}
	if (o->console_socket) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", o->console_socket);
		j.console = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (j.console < 0 || connect(j.console, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			kelp_error(err, errno, "connect to console socket %s", o->console_socket);
			goto out;
		}
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, j.sync) < 0) {
		kelp_error(err, errno, "socketpair");
		goto out;
	}
	/* A pid namespace is entered by children only: switch ours for the next fork, then back. */
	if (j.ns_fds[NS_PID] >= 0) {
		own_pidns = open("/proc/self/ns/pid_for_children", O_RDONLY | O_CLOEXEC);
		if (own_pidns < 0 || setns(j.ns_fds[NS_PID], CLONE_NEWPID) < 0) {
			kelp_error(err, errno, "join the container's pid namespace");
			goto out;
		}
	}
	fflush(NULL);
	child = fork();
	if (child == 0) {
		close(j.sync[0]);
		exec_child(&j, o);
	}
	int fork_errno = errno;
	if (own_pidns >= 0 && setns(own_pidns, CLONE_NEWPID) < 0)
		log_debug("restore pid namespace for children: %s", strerror(errno));
	if (child < 0) {
		kelp_error(err, fork_errno, "fork exec process");
		goto out;
	}
	close(j.sync[1]);
	j.sync[1] = -1;
	if (j.cg && cgroup_enter(j.cg, child, err) < 0)
		goto out;
	if (sync_send(j.sync[0], SYNC_GO, 0, -1) < 0) {
		kelp_error(err, errno, "release exec process");
		goto out;
	}
	/* The socket closes on a successful execve; before that come a pty or an error. */
	for (;;) {
		struct sync_msg m;
		int fd = -1;
		if (sync_recv(j.sync[0], &m, &fd) < 0) {
			if (errno == ECONNRESET)
				break;
			kelp_error(err, errno, "read from exec process");
			goto out;
		}
		if (m.type == SYNC_ERROR) {
			err->code = m.err_code;
			memcpy(err->msg, m.msg, sizeof(err->msg));
			goto out;
		}
		if (m.type == SYNC_SECCOMP) {
			cleanup_close int nfd = fd;
			cleanup_free char *state = hooks_state_json(o->id, "running", s->pid, s->bundle, s->annotation_keys,
								    s->annotation_values);
			if (seccomp_notify_send(j.spec->linux_.seccomp, nfd, child, state, err) < 0)
				goto out;
			if (sync_send(j.sync[0], SYNC_GO, 0, -1) < 0) {
				kelp_error(err, errno, "release exec process after seccomp");
				goto out;
			}
			continue;
		}
		if (m.type == SYNC_CONSOLE) {
			if (ret_console_fd && *ret_console_fd < 0)
				*ret_console_fd = fd;
			else if (fd >= 0)
				close(fd);
		}
	}
	if (o->pid_file && write_pid_file(o->pid_file, child, err) < 0)
		goto out;
	if (ret_pid)
		*ret_pid = child;
	child = -1;
	r = 0;
out:
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
		if (ret_console_fd && *ret_console_fd >= 0) {
			close(*ret_console_fd);
			*ret_console_fd = -1;
		}
	}
	kelp_state_free(s);
	exec_job_free(&j);
	return r;
}
