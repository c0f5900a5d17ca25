#include "init.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "fs.h"
#include "hooks.h"
#include "log.h"
#include "mounts.h"
#include "process.h"
#include "sync.h"
#include "seccomp_notify.h"
#include "sysctl.h"

/* Join the namespaces given by path: the user namespace first, so that the others are joined
 * with the privileges it grants. */
static int join_namespaces(struct init_ctx *c, struct kelp_err *err)
{
	static const int order[] = { NS_USER, NS_IPC, NS_UTS, NS_NET, NS_PID, NS_CGROUP, NS_TIME, NS_MNT };
	for (size_t i = 0; i < ARRAY_SIZE(order); i++) {
		int t = order[i];
		if (c->ns_fds[t] < 0)
			continue;
		if (setns(c->ns_fds[t], ns_clone_flags[t]) < 0)
			return kelp_error(err, errno, "join %s namespace %s", ns_type_names[t], c->spec->linux_.ns[t].path);
		close(c->ns_fds[t]);
		c->ns_fds[t] = -1;
	}
	return 0;
}

static int sync_wait_go(struct init_ctx *c, struct kelp_err *err)
{
	struct sync_msg m;
	return sync_expect(c->sync_fd, SYNC_GO, &m, NULL, err);
}

/* Namespaces not created by clone: a new user namespace first (the runtime then writes its id
 * maps), then the rest. Returns the flags that need a fork to take effect (pid, time). */
static int unshare_rest(struct init_ctx *c, int *ret_fork_flags, struct kelp_err *err)
{
	const struct spec_linux *l = &c->spec->linux_;
	if (l->ns[NS_USER].present && !l->ns[NS_USER].path && !c->cloned[NS_USER]) {
		if (unshare(CLONE_NEWUSER) < 0)
			return kelp_error(err, errno, "unshare user namespace");
		if (sync_send(c->sync_fd, SYNC_MAP_REQUEST, 0, -1) < 0)
			return kelp_error(err, errno, "ask for id maps");
		if (sync_wait_go(c, err) < 0)
			return -1;
	}
	int flags = 0, fork_flags = 0;
	for (int t = 0; t < NS_COUNT; t++) {
		if (t == NS_USER || t == NS_CGROUP || !l->ns[t].present || l->ns[t].path || c->cloned[t])
			continue;
		flags |= ns_clone_flags[t];
		if (t == NS_PID || t == NS_TIME)
			fork_flags |= ns_clone_flags[t];
	}
	if (flags && unshare(flags) < 0)
		return kelp_error(err, errno, "unshare namespaces (flags 0x%x)", flags);
	/* joined pid and time namespaces, too, hold only our children */
	if (l->ns[NS_PID].path)
		fork_flags |= CLONE_NEWPID;
	if (l->ns[NS_TIME].path)
		fork_flags |= CLONE_NEWTIME;
	*ret_fork_flags = fork_flags;
	return 0;
}

/* After unsharing a pid namespace, only a child is inside it: fork, report its pid, and let
 * the intermediate process go. The runtime is a subreaper or the caller's shim is. */
static int fork_into_pidns(struct init_ctx *c, struct kelp_err *err)
{
	pid_t pid = fork();
	if (pid < 0)
		return kelp_error(err, errno, "fork into the new pid namespace");
	if (pid > 0) {
		int r = sync_send(c->sync_fd, SYNC_PID, pid, -1);
		_exit(r < 0 ? 1 : 0);
	}
	return 0;
}

static int set_oom_score_adj(const struct spec_process *p, struct kelp_err *err)
{
	if (!p->has_oom_score_adj)
		return 0;
	char buf[16];
	snprintf(buf, sizeof(buf), "%d", p->oom_score_adj);
	if (kelp_write_file_at(AT_FDCWD, "/proc/self/oom_score_adj", buf, err) == 0)
		return 0;
	if (err->code == EACCES || err->code == EPERM) {
		log_warn("cannot set oomScoreAdj %d (lowering it needs CAP_SYS_RESOURCE): keeping the inherited value",
			 p->oom_score_adj);
		return 0;
	}
	return -1;
}

static int set_names(const struct spec *s, struct kelp_err *err)
{
	if (s->hostname && sethostname(s->hostname, strlen(s->hostname)) < 0)
		return kelp_error(err, errno, "sethostname %s", s->hostname);
	if (s->domainname && setdomainname(s->domainname, strlen(s->domainname)) < 0)
		return kelp_error(err, errno, "setdomainname %s", s->domainname);
	return 0;
}

static bool uid0_mapped(const struct spec_linux *l)
{
	for (size_t i = 0; i < l->n_uid_mappings; i++)
		if (l->uid_mappings[i].container_id == 0 && l->uid_mappings[i].size > 0)
			return true;
	return false;
}

/* Block until `start` opens the fifo for reading, then tell it we are released. The fifo is
 * reached through our own fd table in the host's /proc, opened before pivot_root. */
static int wait_for_start(int procfd_dir, int fifo_fd, struct kelp_err *err)
{
	char name[16];
	snprintf(name, sizeof(name), "%d", fifo_fd);
	int fd;
	do
		fd = openat(procfd_dir, name, O_WRONLY | O_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return kelp_error(err, errno, "open exec fifo");
	ssize_t n = write(fd, "0", 1);
	int e = errno;
	close(fd);
	if (n != 1)
		return kelp_error(err, n < 0 ? e : EIO, "write exec fifo");
	return 0;
}

static bool has_hooks(const struct spec *s, int from, int to)
{
	for (int k = from; k <= to; k++)
		if (s->n_hooks[k])
			return true;
	return false;
}

/* pid of init in the runtime's pid namespace, learned from the runtime for hooks' state */
static pid_t host_pid;

/* After the mounts, before pivot_root: the runtime moves netDevices in and runs prestart and
 * createRuntime hooks in its own namespaces, then createContainer hooks run here, in the
 * container's. */
static int run_create_hooks(struct init_ctx *c, struct kelp_err *err)
{
	if (!has_hooks(c->spec, HOOK_PRESTART, HOOK_START_CONTAINER) && c->spec->linux_.n_netdevs == 0)
		return 0;
	struct sync_msg m;
	if (sync_send(c->sync_fd, SYNC_HOOKS, 0, -1) < 0)
		return kelp_error(err, errno, "ask the runtime to run createRuntime hooks");
	if (sync_expect(c->sync_fd, SYNC_GO, &m, NULL, err) < 0)
		return -1;
	host_pid = m.value;
	if (!c->spec->n_hooks[HOOK_CREATE_CONTAINER])
		return 0;
	cleanup_free char *state = hooks_state_json(c->id, "creating", host_pid, c->bundle, c->spec->annotation_keys,
						    c->spec->annotation_values);
	return hooks_run(c->spec, HOOK_CREATE_CONTAINER, state, err);
}

static int init_steps(struct init_ctx *c, int *procfd_dir, struct process_ctx *pc, struct kelp_err *err)
{
	const struct spec *s = c->spec;
	const struct spec_linux *l = &s->linux_;
	int fork_flags = 0;

	if (join_namespaces(c, err) < 0)
		return -1;
	if (sync_wait_go(c, err) < 0)
		return -1;
	if (unshare_rest(c, &fork_flags, err) < 0)
		return -1;
	if (l->ns[NS_USER].present) {
		if (uid0_mapped(l) && setresuid(0, 0, 0) < 0)
			return kelp_error(err, errno, "become root in the user namespace");
		if (setresgid(0, 0, 0) < 0 && errno != EINVAL)
			return kelp_error(err, errno, "become group root in the user namespace");
	}
	/* After the runtime placed us in the container's cgroup, so that it is the root we see. */
	if (l->ns[NS_CGROUP].present && !l->ns[NS_CGROUP].path && unshare(CLONE_NEWCGROUP) < 0)
		return kelp_error(err, errno, "unshare cgroup namespace");
	/* offsets are taken only before the first process enters the time namespace */
	if (time_offsets_apply(l, err) < 0)
		return -1;
	if (fork_flags && fork_into_pidns(c, err) < 0)
		return -1;
	if (set_oom_score_adj(&s->process, err) < 0 || sysctl_apply(s, err) < 0)
		return -1;
	*procfd_dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*procfd_dir < 0)
		return kelp_error(err, errno, "open /proc/self/fd");

	if (l->ns[NS_MNT].present && !l->ns[NS_MNT].path) {
		struct mount_ctx m = {
			.spec = s,
			.rootfs = c->rootfs,
			.cg = c->cg,
			.new_cgroupns = l->ns[NS_CGROUP].present,
			.in_userns = l->ns[NS_USER].present,
			.no_pivot = c->no_pivot,
			.idmap_fds = c->idmap_fds,
		};
		if (rootfs_prepare(&m, err) < 0 || run_create_hooks(c, err) < 0 || rootfs_pivot(&m, err) < 0 ||
		    rootfs_finalize(&m, err) < 0)
			return -1;
	} else if (!l->ns[NS_MNT].present) {
		return kelp_fail(err, EINVAL, "linux.namespaces: kelp needs a mount namespace for the rootfs");
	}
	if (set_names(s, err) < 0)
		return -1;
	if (s->process.terminal) {
		int sock = c->console_via_sync ? c->sync_fd : c->console_sock;
		if (console_setup(sock, c->console_via_sync, &s->process, l->ns[NS_MNT].present && !l->ns[NS_MNT].path, err) < 0)
			return -1;
		if (c->console_sock >= 0) {
			close(c->console_sock);
			c->console_sock = -1;
		}
	}
	if (process_set_rlimits(&s->process, err) < 0)
		return -1;
	pc->p = &s->process;
	pc->caps = c->caps;
	pc->seccomp = c->seccomp;
	/* a notify filter goes in now, while the runtime can still pass its fd on */
	if (seccomp_notify_load_early(&pc->seccomp, c->sync_fd, err) < 0)
		return -1;
	pc->preserve_fds = c->preserve_fds;
	pc->report_fd = -1;
	pc->attr = c->attr;
	/* resolve now so that a missing binary fails `create`, as runc users expect */
	if (process_resolve(pc, err) < 0)
		return -1;
	return process_refuse_runtime(pc, err);
}

void container_init(struct init_ctx *c)
{
	struct kelp_err err = { 0 };
	struct process_ctx pc = { 0 };
	int procfd_dir = -1;

	process_reset_signals();
	/* Until it execs, this clone of the runtime must not be reachable by the container's
	 * processes through /proc/PID (exe, fd, mem): CVE-2019-5736. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
		kelp_error(&err, errno, "prctl PR_SET_DUMPABLE");
		goto fail;
	}
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) {
		kelp_error(&err, errno, "prctl PR_SET_PDEATHSIG");
		goto fail;
	}
	/* the host's /proc still: which binary the process must not turn out to be */
	struct stat exe;
	if (stat("/proc/self/exe", &exe) < 0) {
		kelp_error(&err, errno, "stat /proc/self/exe");
		goto fail;
	}
	pc.guard_exe = true;
	pc.exe_dev = exe.st_dev;
	pc.exe_ino = exe.st_ino;
	if (init_steps(c, &procfd_dir, &pc, &err) < 0)
		goto fail;
	/* From here the runtime may exit: do not die with it. */
	prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
	if (sync_send(c->sync_fd, SYNC_READY, 0, -1) < 0)
		_exit(1);
	close(c->sync_fd);
	if (wait_for_start(procfd_dir, c->fifo_fd, &err) < 0) {
		log_error("%s", err.msg);
		_exit(1);
	}
	close(procfd_dir);
	close(c->fifo_fd);
	if (c->spec->n_hooks[HOOK_START_CONTAINER]) {
		cleanup_free char *state = hooks_state_json(c->id, "running", host_pid, c->bundle,
							    c->spec->annotation_keys, c->spec->annotation_values);
		if (hooks_run(c->spec, HOOK_START_CONTAINER, state, &err) < 0) {
			log_error("%s", err.msg);
			_exit(1);
		}
	}
	process_exec(&pc, &err);
	/* the runtime is gone by now; stderr is the container's */
	log_error("%s", err.msg);
	_exit(127);
fail:
	sync_send_error(c->sync_fd, &err);
	_exit(1);
}
