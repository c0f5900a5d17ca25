/* start, kill and delete. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup.h"
#include "cleanup.h"
#include "fs.h"
#include "internal.h"
#include "log.h"

int kelp_start(const struct kelp_runtime *rt, const char *id, struct kelp_err *err)
{
	cleanup_close int dfd = state_dir_open(rt, id, err);
	if (dfd < 0)
		return -1;
	struct kelp_state *s;
	if (state_read(dfd, id, &s, err) < 0)
		return -1;
	enum kelp_status status = s->status;
	cleanup_close int pidfd = status == KELP_CREATED ? state_pidfd(s, NULL) : -1;
	kelp_state_free(s);
	switch (status) {
	case KELP_CREATED:
		break;
	case KELP_STOPPED:
		return kelp_fail(err, EINVAL, "cannot start a container that has stopped");
	case KELP_CREATING:
		return kelp_fail(err, EINVAL, "cannot start container %s: it is still being created", id);
	default:
		return kelp_fail(err, EINVAL, "cannot start an already running container");
	}
	if (pidfd < 0)
		return kelp_fail(err, ESRCH, "cannot start container %s: its init has exited", id);
	/* Non-blocking open: a reader exists at once, which releases init's blocking open for
	 * writing; its one byte then tells us it was waiting there. */
	cleanup_close int fifo = openat(dfd, EXEC_FIFO, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fifo < 0) {
		if (errno == ENOENT)
			return kelp_fail(err, EINVAL, "cannot start an already running container");
		return kelp_error(err, errno, "open exec fifo of %s", id);
	}
	struct pollfd p[2] = { { .fd = fifo, .events = POLLIN }, { .fd = pidfd, .events = POLLIN } };
	for (;;) {
		int r = poll(p, 2, -1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return kelp_error(err, errno, "wait for container %s to start", id);
		if (p[0].revents & POLLIN) {
			char b;
			if (read(fifo, &b, 1) == 1)
				break;
		}
		if (p[1].revents)
			return kelp_fail(err, ESRCH, "cannot start container %s: its init exited", id);
		if (p[0].revents & (POLLHUP | POLLERR)) {
			/* another `start` took the byte */
			return kelp_fail(err, EINVAL, "cannot start an already running container");
		}
	}
	if (unlinkat(dfd, EXEC_FIFO, 0) < 0 && errno != ENOENT)
		return kelp_error(err, errno, "remove exec fifo of %s", id);
	struct kelp_state *now;
	if (state_read(dfd, id, &now, NULL) == 0) {
		state_run_late_hooks(dfd, now, HOOK_POSTSTART, "running");
		kelp_state_free(now);
	}
	return 0;
}

static int signal_all(struct kelp_state *s, int sig, struct kelp_err *err)
{
	if (!s->cgroup_path || !*s->cgroup_path)
		return kelp_fail(err, EINVAL, "container %s has no cgroup to find its processes", s->id);
	struct kelp_cgroup *cg;
	if (cgroup_reopen(s->cgroup_path, &cg, err) < 0)
		return -1;
	pid_t *pids = NULL;
	size_t n = 0;
	int r = cgroup_pids(cg, &pids, &n, err);
	cgroup_free(cg);
	if (r < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int fd = sys_pidfd_open(pids[i], 0);
		if (fd < 0)
			continue; /* exited meanwhile */
		if (sys_pidfd_send_signal(fd, sig) < 0 && errno != ESRCH)
			r = kelp_error(err, errno, "signal %d to process %d", sig, (int)pids[i]);
		close(fd);
	}
	free(pids);
	return r;
}

int kelp_kill(const struct kelp_runtime *rt, const char *id, int sig, bool all, struct kelp_err *err)
{
	struct kelp_state *s;
	if (kelp_state_load(rt, id, &s, err) < 0)
		return -1;
	int r;
	if (all) {
		r = s->status == KELP_STOPPED && !s->cgroup_path ? kelp_fail(err, ESRCH, "container not running")
								 : signal_all(s, sig, err);
	} else if (s->status == KELP_STOPPED || s->status == KELP_CREATING) {
		r = kelp_fail(err, ESRCH, "container not running");
	} else {
		int fd = state_pidfd(s, err);
		if (fd < 0) {
			r = kelp_fail(err, ESRCH, "container not running");
		} else {
			r = sys_pidfd_send_signal(fd, sig);
			if (r < 0)
				r = kelp_error(err, errno, "signal %d to container %s", sig, id);
			close(fd);
		}
	}
	kelp_state_free(s);
	return r;
}

/* SIGKILL every process of the container and wait for init to be gone. */
static int kill_and_wait(struct kelp_state *s, struct kelp_err *err)
{
	cleanup_close int pidfd = state_pidfd(s, NULL);
	if (pidfd >= 0 && sys_pidfd_send_signal(pidfd, SIGKILL) < 0 && errno != ESRCH)
		return kelp_error(err, errno, "kill container %s", s->id);
	if (s->cgroup_path && *s->cgroup_path) {
		struct kelp_err ignored;
		signal_all(s, SIGKILL, &ignored);
	}
	if (pidfd >= 0 && pidfd_wait_exit(pidfd, 10000) < 0)
		return kelp_error(err, errno, "wait for container %s to exit", s->id);
	return 0;
}

int kelp_delete(const struct kelp_runtime *rt, const char *id, bool force, struct kelp_err *err)
{
	cleanup_close int rootfd = state_root_open(rt, false, NULL);
	cleanup_close int dfd = state_dir_open(rt, id, err);
	if (dfd < 0)
		return -1;
	struct kelp_state *s;
	if (state_read(dfd, id, &s, err) < 0)
		return -1;
	int r = 0;
	switch (s->status) {
	case KELP_RUNNING:
	case KELP_PAUSED:
		if (!force) {
			r = kelp_fail(err, EBUSY, "cannot delete container %s that is not stopped: %s", id,
				       kelp_status_name(s->status));
			goto out;
		}
		if (s->status == KELP_PAUSED && s->cgroup_path) {
			struct kelp_cgroup *cg;
			struct kelp_err ignored;
			if (cgroup_reopen(s->cgroup_path, &cg, &ignored) == 0) {
				cgroup_freeze(cg, false, &ignored);
				cgroup_free(cg);
			}
		}
		/* fall through */
	case KELP_CREATED:
		/* a created container was never started: deleting it is how it is abandoned */
		if (kill_and_wait(s, err) < 0) {
			r = -1;
			goto out;
		}
		break;
	case KELP_CREATING:
		if (!force) {
			r = kelp_fail(err, EBUSY, "cannot delete container %s that is still being created", id);
			goto out;
		}
		break;
	case KELP_STOPPED:
		break;
	}
	if (s->cgroup_path && *s->cgroup_path) {
		/* other processes of a container without its own pid namespace may still be there */
		if (force) {
			struct kelp_err ignored;
			signal_all(s, SIGKILL, &ignored);
		}
		struct kelp_cgroup *cg;
		if (cgroup_reopen(s->cgroup_path, &cg, err) < 0) {
			r = -1;
			goto out;
		}
		r = cgroup_destroy(cg, err);
		cgroup_free(cg);
		if (r < 0) {
			kelp_error_wrap(err, "delete container %s", id);
			goto out;
		}
	}
	if (s->status != KELP_CREATING) {
		s->status = KELP_STOPPED;
		state_run_late_hooks(dfd, s, HOOK_POSTSTOP, "stopped");
	}
	if (rootfd < 0 || kelp_rm_rf_at(rootfd, id, err) < 0)
		r = rootfd < 0 ? kelp_error(err, errno, "open state root") : kelp_error_wrap(err, "delete container %s", id);
out:
	kelp_state_free(s);
	return r;
}

int kelp_pids(const struct kelp_runtime *rt, const char *id, pid_t **ret, size_t *ret_n, struct kelp_err *err)
{
	struct kelp_state *s;
	if (kelp_state_load(rt, id, &s, err) < 0)
		return -1;
	int r;
	if (!s->cgroup_path || !*s->cgroup_path) {
		*ret = NULL;
		*ret_n = 0;
		r = 0;
	} else {
		struct kelp_cgroup *cg;
		r = cgroup_reopen(s->cgroup_path, &cg, err);
		if (r == 0) {
			r = cgroup_pids(cg, ret, ret_n, err);
			cgroup_free(cg);
		}
	}
	kelp_state_free(s);
	return r;
}
