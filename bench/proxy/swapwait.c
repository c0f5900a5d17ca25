/* bench/proxy/swapwait.c — one timed change for bench/proxy.sh's watch measurement:
 *
 *   swapwait SRC DST WATCHED TIMEOUT_MS
 *
 * renames SRC over DST (a complete file appears at once: the watcher sees one moved_to) and
 * waits until WATCHED (kelp-proxy's state.json, replaced by rename after every commit) is
 * written again; prints the microseconds from just before the rename to that moment. Watching
 * with inotify instead of polling `kelp-proxy show` keeps the waiting off the CPU that the
 * watcher being measured needs. Status 1 on a failed call or when TIMEOUT_MS passes first. */
#include <errno.h>
#include <libgen.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

static long long now_us(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0) {
		perror("swapwait: clock_gettime");
		exit(1);
	}
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: swapwait SRC DST WATCHED TIMEOUT_MS\n");
		return 2;
	}
	char *end;
	long timeout = strtol(argv[4], &end, 10);
	if (end == argv[4] || *end != '\0' || timeout < 1) {
		fprintf(stderr, "swapwait: bad timeout '%s'\n", argv[4]);
		return 2;
	}
	char dirbuf[4096], basebuf[4096];
	if (snprintf(dirbuf, sizeof(dirbuf), "%s", argv[3]) >= (int)sizeof(dirbuf) ||
	    snprintf(basebuf, sizeof(basebuf), "%s", argv[3]) >= (int)sizeof(basebuf)) {
		fprintf(stderr, "swapwait: path too long: %s\n", argv[3]);
		return 2;
	}
	const char *dir = dirname(dirbuf), *base = basename(basebuf);

	int in = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (in < 0) {
		perror("swapwait: inotify_init1");
		return 1;
	}
	if (inotify_add_watch(in, dir, IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
		fprintf(stderr, "swapwait: watch %s: %s\n", dir, strerror(errno));
		return 1;
	}
	long long t0 = now_us();
	if (rename(argv[1], argv[2]) < 0) {
		fprintf(stderr, "swapwait: rename %s -> %s: %s\n", argv[1], argv[2], strerror(errno));
		return 1;
	}
	for (;;) {
		long long left = timeout - (now_us() - t0) / 1000;
		if (left <= 0) {
			fprintf(stderr, "swapwait: %s not written within %ld ms of the change\n", argv[3], timeout);
			return 1;
		}
		struct pollfd p = { .fd = in, .events = POLLIN };
		int r = poll(&p, 1, (int)left);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			perror("swapwait: poll");
			return 1;
		}
		if (r == 0)
			continue;
		char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
		ssize_t len = read(in, buf, sizeof(buf));
		if (len < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			perror("swapwait: read inotify");
			return 1;
		}
		long long t1 = now_us();
		for (char *q = buf; q < buf + len;) {
			const struct inotify_event *ev = (const struct inotify_event *)q;
			if (ev->len > 0 && strcmp(ev->name, base) == 0) {
				if (printf("%lld\n", t1 - t0) < 0 || fflush(stdout) != 0) {
					perror("swapwait: stdout");
					return 1;
				}
				return 0;
			}
			q += sizeof(*ev) + ev->len;
		}
	}
}
