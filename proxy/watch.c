/* watch DIR: inotify on the directory; each manifest file written (close_write, moved_to) or
 * removed (delete, moved_from) is applied on its own as one transaction. SIGTERM/SIGINT end
 * the loop; the rules stay. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "proxy.h"
#include "watch.h"

static bool manifest_name(const char *name)
{
	size_t n = strlen(name);
	if (name[0] == '.')
		return false;
	return (n > 5 && !strcmp(name + n - 5, ".yaml")) || (n > 4 && !strcmp(name + n - 4, ".yml")) ||
	       (n > 5 && !strcmp(name + n - 5, ".json"));
}

int kp_watch_open(const char *dir, struct kp_watch *ret, struct kelp_err *err)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return kelp_error(err, errno, "block SIGTERM and SIGINT");
	cleanup_close int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0)
		return kelp_error(err, errno, "signalfd");
	cleanup_close int ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (ifd < 0)
		return kelp_error(err, errno, "inotify_init1");
	if (inotify_add_watch(ifd, dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM | IN_ONLYDIR) < 0)
		return kelp_error(err, errno, "watch %s", dir);
	ret->dir = dir;
	ret->ifd = TAKE_FD(ifd);
	ret->sfd = TAKE_FD(sfd);
	return 0;
}

void kp_watch_close(struct kp_watch *w)
{
	if (w->ifd >= 0)
		close(w->ifd);
	if (w->sfd >= 0)
		close(w->sfd);
	w->ifd = w->sfd = -1;
}

int kp_watch_loop(struct kp_watch *w, struct kp_engine *e, const char *state_dir, struct kelp_err *err)
{
	char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool dirty = false;
	for (;;) {
		/* a burst of changes is applied change by change, each in its own transaction;
		 * the state file (megabytes in a big cluster) is written once the burst is over */
		struct pollfd p[2] = {{.fd = w->ifd, .events = POLLIN}, {.fd = w->sfd, .events = POLLIN}};
		int n_ready = poll(p, 2, dirty ? 0 : -1);
		if (n_ready < 0) {
			if (errno == EINTR)
				continue;
			return kelp_error(err, errno, "poll");
		}
		if (n_ready == 0 && dirty) {
			struct kelp_err serr = {0};
			if (kp_engine_write_state(e, state_dir, &serr) < 0)
				log_error("%s", serr.msg);
			dirty = false;
			continue;
		}
		if (p[1].revents & POLLIN) {
			struct signalfd_siginfo si;
			if (read(w->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
				if (dirty) {
					struct kelp_err serr = {0};
					if (kp_engine_write_state(e, state_dir, &serr) < 0)
						log_error("%s", serr.msg);
				}
				log_info("signal %u: exiting, rules stay in place", si.ssi_signo);
				return 0;
			}
		}
		if (!(p[0].revents & POLLIN))
			continue;
		ssize_t n = read(w->ifd, buf, sizeof(buf));
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			return kelp_error(err, errno, "read inotify events of %s", w->dir);
		}
		for (char *q = buf; q < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)q;
			q += sizeof(*ev) + ev->len;
			if (ev->mask & IN_Q_OVERFLOW) {
				log_warn("%s: inotify queue overflow; some changes may be missed until the file is written again",
					 w->dir);
				continue;
			}
			if (!ev->len || !manifest_name(ev->name))
				continue;
			char path[4096];
			snprintf(path, sizeof(path), "%s/%s", w->dir, ev->name);
			bool removed = (ev->mask & (IN_DELETE | IN_MOVED_FROM)) != 0;
			struct kelp_err cerr = {0};
			int r = kp_engine_file_changed(e, path, removed, &cerr);
			if (r < 0)
				log_error("%s: %s", path, cerr.msg);
			else
				dirty = true;
		}
	}
}
