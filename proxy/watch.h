/* watch: inotify on one directory plus SIGTERM/SIGINT through a signalfd. Opened before the
 * start-up sync so that no change between the sync and the loop is missed. */
#pragma once
#include "error.h"
#include "proxy.h"

struct kp_watch {
	const char *dir;
	int ifd, sfd;
};

int kp_watch_open(const char *dir, struct kp_watch *ret, struct kelp_err *err);
void kp_watch_close(struct kp_watch *w);
/* Until SIGTERM/SIGINT (returns 0) or a failure of the watch itself (-1). */
int kp_watch_loop(struct kp_watch *w, struct kp_engine *e, const char *state_dir, struct kelp_err *err);
