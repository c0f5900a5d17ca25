/* probe — a static helper the integration tests run INSIDE containers. Each subcommand prints
 * one line describing what the process sees, so a test compares that line with what
 * config.json asked for. Plain libc only: it is linked statically and copied into a busybox
 * rootfs (KELP_BUNDLE_HOST_TOOLS=1 scripts/make-bundle.sh).
 *
 *   probe syscall NAME [ARG...]  call NAME via syscall(2); print "ok" or the errno number
 *       getcwd                   getcwd(buf, PATH_MAX)
 *       mkdir [PATH]             mkdir(PATH, 0700), rmdir'd again (PATH: /dev/shm/probe-mkdir)
 *       chmod [PATH [MODE]]      chmod(PATH, MODE) (default: /dev/shm 01777, i.e. unchanged)
 *       personality [PERSONA]    personality(PERSONA) (default 0xffffffff: query only)
 *       unshare [FLAGS]          unshare(FLAGS): a number or names joined by ',' (default 0)
 *                                (ns, uts, ipc, user, pid, net, cgroup, time, files, fs, sysvsem)
 *       keyctl                   keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0)
 *   probe fds                    the open fds, ascending, space-separated ("0 1 2")
 *   probe cwd                    the working directory
 *   probe caps [SET]             "CapEff=… CapPrm=… CapBnd=… CapAmb=… CapInh=…" (hex as in
 *                                /proc/self/status); with SET (eff, prm, bnd, amb, inh) only
 *                                that hex value
 *   probe rlimit NAME            "SOFT HARD" of RLIMIT_NAME (NOFILE or RLIMIT_NOFILE; any
 *                                case), "unlimited" for RLIM_INFINITY
 *   probe ids                    "uid=U gid=G euid=U egid=G groups=G1,G2" (groups= may be empty)
 *   probe umask                  the umask in octal ("0022")
 *   probe nnp                    the no_new_privs bit ("0" or "1")
 *   probe write PATH             open PATH for writing (created and removed again if missing):
 *                                "ok" or the errno number
 *   probe mount-opts PATH        "MOUNT-OPTIONS FSTYPE SUPER-OPTIONS" of the topmost mount at
 *                                PATH (from /proc/self/mountinfo), e.g.
 *                                "rw,nosuid,nodev,noexec,relatime tmpfs rw,size=65536k,mode=755";
 *                                "none" and exit 1 when PATH is not a mount point
 *   probe exit N                 exit with status N
 *   probe sleep-sigterm          print "ready", sleep until SIGTERM, then die of it (status
 *                                143 in a shell). As a pid namespace's init, where the kernel
 *                                drops a SIGTERM with the default action, it exits with 143.
 *
 * Exit status: 0 after printing (also when the line reports an errno), 2 for bad usage, 1 when
 * the probe itself could not look (e.g. /proc is not mounted). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#define PROBE_KEYCTL_GET_KEYRING_ID 0
#define PROBE_KEY_SPEC_SESSION_KEYRING (-3)

static int usage(void)
{
	fputs("usage: probe syscall NAME [ARG...] | fds | cwd | caps [SET] | rlimit NAME | ids | umask |\n"
	      "       nnp | write PATH | mount-opts PATH | exit N | sleep-sigterm\n",
	      stderr);
	return 2;
}

static int die(const char *what)
{
	fprintf(stderr, "probe: %s: %s\n", what, strerror(errno));
	return 1;
}

/* Print "ok" when r >= 0, else the errno number. */
static int report(long r)
{
	if (r < 0)
		printf("%d\n", errno);
	else
		puts("ok");
	return 0;
}

static int parse_ulong(const char *s, unsigned long *ret)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 0);
	if (errno || end == s || *end)
		return -1;
	*ret = v;
	return 0;
}

static int parse_unshare_flags(const char *s, unsigned long *ret)
{
	static const struct {
		const char *name;
		unsigned long flag;
	} names[] = {
		{ "ns", CLONE_NEWNS },       { "mnt", CLONE_NEWNS },       { "uts", CLONE_NEWUTS },
		{ "ipc", CLONE_NEWIPC },     { "user", CLONE_NEWUSER },    { "pid", CLONE_NEWPID },
		{ "net", CLONE_NEWNET },     { "cgroup", CLONE_NEWCGROUP }, { "time", CLONE_NEWTIME },
		{ "files", CLONE_FILES },    { "fs", CLONE_FS },           { "sysvsem", CLONE_SYSVSEM },
	};
	if (parse_ulong(s, ret) == 0)
		return 0;
	unsigned long flags = 0;
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", s);
	for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		const char *n = strncasecmp(tok, "new", 3) == 0 ? tok + 3 : tok;
		size_t i;
		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (strcasecmp(n, names[i].name) == 0)
				break;
		if (i == sizeof(names) / sizeof(names[0]))
			return -1;
		flags |= names[i].flag;
	}
	*ret = flags;
	return 0;
}

static int cmd_syscall(int argc, char **argv)
{
	if (argc < 1)
		return usage();
	const char *name = argv[0];
	if (strcmp(name, "getcwd") == 0) {
		char buf[PATH_MAX];
		return report(syscall(SYS_getcwd, buf, sizeof(buf)));
	}
	if (strcmp(name, "mkdir") == 0) {
		const char *path = argc > 1 ? argv[1] : "/dev/shm/probe-mkdir";
		long r = syscall(SYS_mkdir, path, 0700);
		int saved = errno;
		if (r == 0)
			rmdir(path);
		errno = saved;
		return report(r);
	}
	if (strcmp(name, "chmod") == 0) {
		const char *path = argc > 1 ? argv[1] : "/dev/shm";
		unsigned long mode = 01777;
		if (argc > 2 && parse_ulong(argv[2], &mode) < 0)
			return usage();
		return report(syscall(SYS_chmod, path, (mode_t)mode));
	}
	if (strcmp(name, "personality") == 0) {
		unsigned long persona = 0xffffffffUL;
		if (argc > 1 && parse_ulong(argv[1], &persona) < 0)
			return usage();
		return report(syscall(SYS_personality, persona));
	}
	if (strcmp(name, "unshare") == 0) {
		unsigned long flags = 0;
		if (argc > 1 && parse_unshare_flags(argv[1], &flags) < 0)
			return usage();
		return report(syscall(SYS_unshare, flags));
	}
	if (strcmp(name, "keyctl") == 0)
		return report(syscall(SYS_keyctl, PROBE_KEYCTL_GET_KEYRING_ID, PROBE_KEY_SPEC_SESSION_KEYRING, 0));
	return usage();
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

static int cmd_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return die("open /proc/self/fd");
	int fds[4096];
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)) && n < sizeof(fds) / sizeof(fds[0])) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		int fd = atoi(de->d_name);
		if (fd != dirfd(d))
			fds[n++] = fd;
	}
	closedir(d);
	qsort(fds, n, sizeof(fds[0]), cmp_int);
	for (size_t i = 0; i < n; i++)
		printf("%s%d", i ? " " : "", fds[i]);
	putchar('\n');
	return 0;
}

static int cmd_cwd(void)
{
	char buf[PATH_MAX];
	if (!getcwd(buf, sizeof(buf)))
		return die("getcwd");
	puts(buf);
	return 0;
}

/* The value of "Key:" in /proc/self/status, whitespace-trimmed. */
static int status_field(const char *key, char *out, size_t size)
{
	FILE *f = fopen("/proc/self/status", "re");
	if (!f)
		return -1;
	char line[512];
	size_t klen = strlen(key);
	int found = -1;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, klen) != 0 || line[klen] != ':')
			continue;
		char *v = line + klen + 1;
		v += strspn(v, " \t");
		v[strcspn(v, "\n")] = '\0';
		snprintf(out, size, "%s", v);
		found = 0;
		break;
	}
	fclose(f);
	if (found < 0)
		errno = ENOENT;
	return found;
}

static int cmd_caps(int argc, char **argv)
{
	static const char *const keys[] = { "CapEff", "CapPrm", "CapBnd", "CapAmb", "CapInh" };
	char vals[5][64];
	for (size_t i = 0; i < 5; i++)
		if (status_field(keys[i], vals[i], sizeof(vals[i])) < 0)
			return die(keys[i]);
	if (argc > 0) {
		for (size_t i = 0; i < 5; i++)
			if (strcasecmp(argv[0], keys[i] + 3) == 0 || strcasecmp(argv[0], keys[i]) == 0) {
				puts(vals[i]);
				return 0;
			}
		return usage();
	}
	printf("CapEff=%s CapPrm=%s CapBnd=%s CapAmb=%s CapInh=%s\n", vals[0], vals[1], vals[2], vals[3],
	       vals[4]);
	return 0;
}

static int cmd_rlimit(int argc, char **argv)
{
	static const struct {
		const char *name;
		int res;
	} names[] = {
		{ "CPU", RLIMIT_CPU },         { "FSIZE", RLIMIT_FSIZE },     { "DATA", RLIMIT_DATA },
		{ "STACK", RLIMIT_STACK },     { "CORE", RLIMIT_CORE },       { "RSS", RLIMIT_RSS },
		{ "NPROC", RLIMIT_NPROC },     { "NOFILE", RLIMIT_NOFILE },   { "MEMLOCK", RLIMIT_MEMLOCK },
		{ "AS", RLIMIT_AS },           { "LOCKS", RLIMIT_LOCKS },     { "SIGPENDING", RLIMIT_SIGPENDING },
		{ "MSGQUEUE", RLIMIT_MSGQUEUE }, { "NICE", RLIMIT_NICE },     { "RTPRIO", RLIMIT_RTPRIO },
		{ "RTTIME", RLIMIT_RTTIME },
	};
	if (argc < 1)
		return usage();
	const char *n = strncasecmp(argv[0], "RLIMIT_", 7) == 0 ? argv[0] + 7 : argv[0];
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcasecmp(n, names[i].name) != 0)
			continue;
		struct rlimit rl;
		if (getrlimit(names[i].res, &rl) < 0)
			return die("getrlimit");
		char s[32], h[32];
		if (rl.rlim_cur == RLIM_INFINITY)
			snprintf(s, sizeof(s), "unlimited");
		else
			snprintf(s, sizeof(s), "%llu", (unsigned long long)rl.rlim_cur);
		if (rl.rlim_max == RLIM_INFINITY)
			snprintf(h, sizeof(h), "unlimited");
		else
			snprintf(h, sizeof(h), "%llu", (unsigned long long)rl.rlim_max);
		printf("%s %s\n", s, h);
		return 0;
	}
	return usage();
}

static int cmd_ids(void)
{
	gid_t groups[NGROUPS_MAX];
	int n = getgroups(NGROUPS_MAX, groups);
	if (n < 0)
		return die("getgroups");
	printf("uid=%u gid=%u euid=%u egid=%u groups=", (unsigned)getuid(), (unsigned)getgid(),
	       (unsigned)geteuid(), (unsigned)getegid());
	for (int i = 0; i < n; i++)
		printf("%s%u", i ? "," : "", (unsigned)groups[i]);
	putchar('\n');
	return 0;
}

static int cmd_umask(void)
{
	mode_t m = umask(0);
	umask(m);
	printf("%04o\n", (unsigned)m);
	return 0;
}

static int cmd_nnp(void)
{
	int r = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
	if (r < 0)
		return die("prctl PR_GET_NO_NEW_PRIVS");
	printf("%d\n", r);
	return 0;
}

static int cmd_write(int argc, char **argv)
{
	if (argc < 1)
		return usage();
	int fd = open(argv[0], O_WRONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0 && errno == ENOENT) {
		fd = open(argv[0], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd >= 0)
			unlink(argv[0]);
	}
	if (fd < 0)
		return report(-1);
	close(fd);
	return report(0);
}

/* Undo mountinfo's octal escapes (\040 for a space) in place. */
static void unescape(char *s)
{
	char *o = s;
	for (char *p = s; *p; p++) {
		if (p[0] == '\\' && p[1] >= '0' && p[1] <= '7' && p[2] >= '0' && p[2] <= '7' && p[3] >= '0' &&
		    p[3] <= '7') {
			*o++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
			p += 3;
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
}

static int cmd_mount_opts(int argc, char **argv)
{
	if (argc < 1)
		return usage();
	char want[PATH_MAX];
	if (!realpath(argv[0], want))
		snprintf(want, sizeof(want), "%s", argv[0]);
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return die("open /proc/self/mountinfo");
	char *line = NULL, found[3][PATH_MAX];
	size_t cap = 0;
	int hit = 0;
	while (getline(&line, &cap, f) > 0) {
		/* id parent major:minor root mountpoint options [optional...] - fstype source superopts */
		char *fields[64];
		int n = 0;
		for (char *save = NULL, *t = strtok_r(line, " \n", &save); t && n < 64; t = strtok_r(NULL, " \n", &save))
			fields[n++] = t;
		if (n < 10)
			continue;
		int sep = 6;
		while (sep < n && strcmp(fields[sep], "-") != 0)
			sep++;
		if (sep + 3 >= n)
			continue;
		unescape(fields[4]);
		if (strcmp(fields[4], want) != 0)
			continue;
		/* Later lines are mounted on top of earlier ones: keep the last. */
		snprintf(found[0], PATH_MAX, "%s", fields[5]);
		snprintf(found[1], PATH_MAX, "%s", fields[sep + 1]);
		snprintf(found[2], PATH_MAX, "%s", fields[sep + 3]);
		hit = 1;
	}
	free(line);
	fclose(f);
	if (!hit) {
		puts("none");
		return 1;
	}
	printf("%s %s %s\n", found[0], found[1], found[2]);
	return 0;
}

static int cmd_sleep_sigterm(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	/* Block first, then announce: a SIGTERM sent after "ready" is never lost. */
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return die("sigprocmask");
	puts("ready");
	fflush(stdout);
	for (;;) {
		int sig = sigwaitinfo(&set, NULL);
		if (sig == SIGTERM)
			break;
		if (sig < 0 && errno != EINTR)
			return die("sigwaitinfo");
	}
	signal(SIGTERM, SIG_DFL);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	raise(SIGTERM);
	/* Still here: we are a pid namespace's init and the kernel ignored the default action. */
	_exit(128 + SIGTERM);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	const char *cmd = argv[1];
	int rest = argc - 2;
	char **args = argv + 2;
	int r;
	if (strcmp(cmd, "syscall") == 0)
		r = cmd_syscall(rest, args);
	else if (strcmp(cmd, "fds") == 0)
		r = cmd_fds();
	else if (strcmp(cmd, "cwd") == 0)
		r = cmd_cwd();
	else if (strcmp(cmd, "caps") == 0)
		r = cmd_caps(rest, args);
	else if (strcmp(cmd, "rlimit") == 0)
		r = cmd_rlimit(rest, args);
	else if (strcmp(cmd, "ids") == 0)
		r = cmd_ids();
	else if (strcmp(cmd, "umask") == 0)
		r = cmd_umask();
	else if (strcmp(cmd, "nnp") == 0)
		r = cmd_nnp();
	else if (strcmp(cmd, "write") == 0)
		r = cmd_write(rest, args);
	else if (strcmp(cmd, "mount-opts") == 0)
		r = cmd_mount_opts(rest, args);
	else if (strcmp(cmd, "exit") == 0) {
		unsigned long n;
		if (rest < 1 || parse_ulong(args[0], &n) < 0 || n > 255)
			return usage();
		fflush(stdout);
		_exit((int)n);
	} else if (strcmp(cmd, "sleep-sigterm") == 0)
		r = cmd_sleep_sigterm();
	else
		return usage();
	if (fflush(stdout) != 0)
		return die("write stdout");
	return r;
}
