/* The container's state directory: state.json (written atomically), a copy of config.json, and
 * the exec fifo whose presence means "created, not yet started". */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "cleanup.h"
#include "fs.h"
#include "hooks.h"
#include "log.h"
#include "internal.h"
#include "json.h"

static const char *const status_names[] = { "creating", "created", "running", "paused", "stopped" };

const char *kelp_status_name(enum kelp_status s)
{
	return status_names[s];
}

bool kelp_id_is_valid(const char *id)
{
	if (!kelp_name_is_safe(id))
		return false;
	for (const char *p = id; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("_+-.", *p))
			return false;
	return true;
}

int sys_pidfd_open(pid_t pid, unsigned flags)
{
	return (int)syscall(SYS_pidfd_open, pid, flags);
}

int sys_pidfd_send_signal(int pidfd, int sig)
{
	return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

int state_root_open(const struct kelp_runtime *rt, bool create, struct kelp_err *err)
{
	const char *root = rt->root ? rt->root : KELP_DEFAULT_ROOT;
	if (create && mkdir(root, 0700) < 0 && errno != EEXIST) {
		/* parents of a custom --root may be missing too */
		cleanup_free char *copy = xstrdup(root);
		for (char *p = copy + 1; *p; p++) {
			if (*p != '/')
				continue;
			*p = '\0';
			if (mkdir(copy, 0755) < 0 && errno != EEXIST)
				return kelp_error(err, errno, "create state root %s", copy);
			*p = '/';
		}
		if (mkdir(root, 0700) < 0 && errno != EEXIST)
			return kelp_error(err, errno, "create state root %s", root);
	}
	int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return kelp_error(err, errno, "open state root %s", root);
	return fd;
}

int state_dir_open(const struct kelp_runtime *rt, const char *id, struct kelp_err *err)
{
	if (!kelp_id_is_valid(id))
		return kelp_fail(err, EINVAL, "invalid container id '%s'", id);
	cleanup_close int rootfd = state_root_open(rt, false, err);
	if (rootfd < 0) {
		if (err && err->code == ENOENT)
			return kelp_fail(err, ENOENT, "container %s does not exist", id);
		return -1;
	}
	int fd = openat(rootfd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return kelp_fail(err, ENOENT, "container %s does not exist", id);
		return kelp_error(err, errno, "open state of container %s", id);
	}
	return fd;
}

char *now_rfc3339(void)
{
	struct timespec ts;
	struct tm tm;
	char buf[64];
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, sizeof(buf) - n, ".%09ldZ", ts.tv_nsec);
	return xstrdup(buf);
}

static void gen_annotations(yajl_gen g, char **keys, char **values)
{
	yajl_gen_map_open(g);
	for (size_t i = 0; keys && keys[i]; i++)
		kg_key_str(g, keys[i], values[i]);
	yajl_gen_map_close(g);
}

static char *state_text(const struct kelp_state *s, size_t *ret_len);

int state_write(int dirfd, const struct kelp_state *s, struct kelp_err *err)
{
	size_t len;
	cleanup_free char *buf = state_text(s, &len);
	return kelp_atomic_write(dirfd, STATE_FILE, buf, len, 0600, err);
}

int state_write_early(int dirfd, const struct kelp_state *s, struct kelp_err *err)
{
	size_t len;
	cleanup_free char *buf = state_text(s, &len);
	return kelp_atomic_replace(dirfd, STATE_FILE, buf, len, 0600, err);
}

static char *state_text(const struct kelp_state *s, size_t *ret_len)
{
	yajl_gen g = kg_new(false);
	yajl_gen_map_open(g);
	kg_key_str(g, "id", s->id);
	kg_key_int(g, "pid", s->pid);
	kg_key_int(g, "pidStart", (long long)s->pid_start);
	kg_key_str(g, "bundle", s->bundle);
	kg_key_str(g, "rootfs", s->rootfs);
	kg_key_str(g, "created", s->created);
	kg_key_str(g, "owner", s->owner ? s->owner : "");
	kg_key_str(g, "cgroupPath", s->cgroup_path ? s->cgroup_path : "");
	kg_key(g, "annotations");
	gen_annotations(g, s->annotation_keys, s->annotation_values);
	yajl_gen_map_close(g);
	return kg_finish(g, ret_len);
}

int state_read(int dirfd, const char *id, struct kelp_state **ret, struct kelp_err *err)
{
	cleanup_free char *buf = NULL;
	size_t len;
	struct kelp_state *s = xcalloc(1, sizeof(*s));
	if (kelp_read_file_at(dirfd, STATE_FILE, 1 << 20, &buf, &len, err) < 0) {
		if (err && err->code == ENOENT) {
			/* created by a `create` that has not finished, or died before it did */
			s->id = xstrdup(id);
			s->status = KELP_CREATING;
			*ret = s;
			return 0;
		}
		kelp_state_free(s);
		return kelp_error_wrap(err, "state of container %s", id);
	}
	struct kj root, f;
	if (kj_parse(buf, len, STATE_FILE, &root, err) < 0) {
		kelp_state_free(s);
		return kelp_error_wrap(err, "state of container %s", id);
	}
	int64_t pid = 0;
	uint64_t start = 0;
	int r = 0;
	if (kj_req_string(&root, "id", &s->id, err) < 0 || kj_opt_int64(&root, "pid", &pid, NULL, err) < 0 ||
	    kj_opt_uint64(&root, "pidStart", &start, NULL, err) < 0 ||
	    kj_opt_string(&root, "bundle", &s->bundle, err) < 0 || kj_opt_string(&root, "rootfs", &s->rootfs, err) < 0 ||
	    kj_opt_string(&root, "created", &s->created, err) < 0 || kj_opt_string(&root, "owner", &s->owner, err) < 0 ||
	    kj_opt_string(&root, "cgroupPath", &s->cgroup_path, err) < 0)
		r = -1;
	if (r == 0 && kj_field(&root, "annotations", &f, err) > 0 &&
	    kj_string_map(&f, &s->annotation_keys, &s->annotation_values, err) < 0)
		r = -1;
	yajl_tree_free(root.v);
	if (r < 0) {
		kelp_state_free(s);
		return kelp_error_wrap(err, "state of container %s", id);
	}
	s->pid = (pid_t)pid;
	s->pid_start = start;
	state_refresh(dirfd, s);
	*ret = s;
	return 0;
}

unsigned long long proc_start_time(pid_t pid, bool *ret_zombie)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return 0;
	p += 2; /* field 3: state */
	if (ret_zombie)
		*ret_zombie = *p == 'Z' || *p == 'X';
	/* starttime is field 22; we are at field 3 */
	for (int field = 3; field < 22; field++) {
		p = strchr(p, ' ');
		if (!p)
			return 0;
		p++;
	}
	return strtoull(p, NULL, 10);
}

static bool freezer_frozen(const struct kelp_state *s)
{
	if (!s->cgroup_path || !*s->cgroup_path)
		return false;
	struct kelp_cgroup *cg;
	struct kelp_err ignored;
	if (cgroup_reopen(s->cgroup_path, &cg, &ignored) < 0)
		return false;
	bool frozen = cgroup_is_frozen(cg);
	cgroup_free(cg);
	return frozen;
}

void state_refresh(int dirfd, struct kelp_state *s)
{
	/* pid 0: written early by a create that has not finished (or died): its cgroup is known */
	if (s->pid == 0) {
		s->status = KELP_CREATING;
		return;
	}
	bool zombie = false;
	unsigned long long start = s->pid > 0 ? proc_start_time(s->pid, &zombie) : 0;
	if (start == 0 || start != s->pid_start || zombie) {
		s->status = KELP_STOPPED;
		return;
	}
	struct stat st;
	if (fstatat(dirfd, EXEC_FIFO, &st, AT_SYMLINK_NOFOLLOW) == 0)
		s->status = KELP_CREATED;
	else if (freezer_frozen(s))
		s->status = KELP_PAUSED;
	else
		s->status = KELP_RUNNING;
}

int state_pidfd(const struct kelp_state *s, struct kelp_err *err)
{
	if (s->pid <= 0)
		return kelp_fail(err, ESRCH, "container %s has no process", s->id);
	int fd = sys_pidfd_open(s->pid, 0);
	if (fd < 0)
		return kelp_error(err, errno, "open process %d of container %s", (int)s->pid, s->id);
	/* Checked after opening: from here on the pidfd pins this exact process. */
	bool zombie = false;
	if (proc_start_time(s->pid, &zombie) != s->pid_start || zombie) {
		close(fd);
		return kelp_fail(err, ESRCH, "container %s: process %d has exited", s->id, (int)s->pid);
	}
	return fd;
}

void kelp_state_free(struct kelp_state *s)
{
	if (!s)
		return;
	free(s->id);
	free(s->bundle);
	free(s->rootfs);
	free(s->created);
	free(s->owner);
	free(s->cgroup_path);
	strv_free(s->annotation_keys);
	strv_free(s->annotation_values);
	free(s);
}

int kelp_state_load(const struct kelp_runtime *rt, const char *id, struct kelp_state **ret, struct kelp_err *err)
{
	cleanup_close int dfd = state_dir_open(rt, id, err);
	if (dfd < 0)
		return -1;
	return state_read(dfd, id, ret, err);
}

char *kelp_state_json(const struct kelp_state *s, bool beautify)
{
	yajl_gen g = kg_new(beautify);
	yajl_gen_map_open(g);
	kg_key_str(g, "ociVersion", KELP_OCI_VERSION);
	kg_key_str(g, "id", s->id);
	kg_key_int(g, "pid", s->status == KELP_STOPPED ? 0 : s->pid);
	kg_key_str(g, "status", kelp_status_name(s->status));
	kg_key_str(g, "bundle", s->bundle ? s->bundle : "");
	kg_key_str(g, "rootfs", s->rootfs ? s->rootfs : "");
	kg_key_str(g, "created", s->created ? s->created : "");
	if (s->annotation_keys && s->annotation_keys[0]) {
		kg_key(g, "annotations");
		gen_annotations(g, s->annotation_keys, s->annotation_values);
	}
	kg_key_str(g, "owner", s->owner ? s->owner : "");
	yajl_gen_map_close(g);
	return kg_finish(g, NULL);
}

static int cmp_state(const void *a, const void *b)
{
	const struct kelp_state *const *x = a, *const *y = b;
	return strcmp((*x)->id, (*y)->id);
}

int kelp_list(const struct kelp_runtime *rt, struct kelp_state ***ret, size_t *ret_n, struct kelp_err *err)
{
	*ret = NULL;
	*ret_n = 0;
	int rootfd = state_root_open(rt, false, err);
	if (rootfd < 0)
		return err && err->code == ENOENT ? 0 : -1;
	DIR *d = fdopendir(rootfd);
	if (!d) {
		close(rootfd);
		return kelp_error(err, errno, "read state root");
	}
	cleanup_closedir DIR *dir = d;
	struct kelp_state **out = NULL;
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.' || !kelp_id_is_valid(de->d_name))
			continue;
		int dfd = openat(dirfd(dir), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (dfd < 0)
			continue; /* deleted meanwhile */
		struct kelp_state *s;
		struct kelp_err e2;
		int r = state_read(dfd, de->d_name, &s, &e2);
		close(dfd);
		if (r < 0)
			continue;
		out = xrealloc(out, (n + 1) * sizeof(*out));
		out[n++] = s;
	}
	if (n)
		qsort(out, n, sizeof(*out), cmp_state);
	*ret = out;
	*ret_n = n;
	return 0;
}

int write_pid_file(const char *path, pid_t pid, struct kelp_err *err)
{
	cleanup_free char *copy = xstrdup(path);
	char *slash = strrchr(copy, '/');
	const char *dir = ".", *name = copy;
	if (slash == copy) {
		dir = "/";
		name = copy + 1;
	} else if (slash) {
		*slash = '\0';
		dir = copy;
		name = slash + 1;
	}
	cleanup_close int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return kelp_error(err, errno, "open directory of pid file %s", path);
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%d", (int)pid);
	if (kelp_atomic_replace(dfd, name, buf, (size_t)n, 0644, err) < 0)
		return kelp_error_wrap(err, "pid file %s", path);
	return 0;
}

int pidfd_wait_exit(int pidfd, int timeout_ms)
{
	struct pollfd p = { .fd = pidfd, .events = POLLIN };
	for (;;) {
		int r = poll(&p, 1, timeout_ms);
		if (r > 0)
			return 0;
		if (r == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		if (errno != EINTR)
			return -1;
	}
}

static const struct {
	const char *name;
	int sig;
} signals[] = {
	{ "HUP", SIGHUP },   { "INT", SIGINT },	    { "QUIT", SIGQUIT },   { "ILL", SIGILL },	  { "TRAP", SIGTRAP },
	{ "ABRT", SIGABRT }, { "IOT", SIGIOT },	    { "BUS", SIGBUS },	   { "FPE", SIGFPE },	  { "KILL", SIGKILL },
	{ "USR1", SIGUSR1 }, { "SEGV", SIGSEGV },   { "USR2", SIGUSR2 },   { "PIPE", SIGPIPE },	  { "ALRM", SIGALRM },
	{ "TERM", SIGTERM }, { "STKFLT", SIGSTKFLT }, { "CHLD", SIGCHLD }, { "CONT", SIGCONT },	  { "STOP", SIGSTOP },
	{ "TSTP", SIGTSTP }, { "TTIN", SIGTTIN },   { "TTOU", SIGTTOU },   { "URG", SIGURG },	  { "XCPU", SIGXCPU },
	{ "XFSZ", SIGXFSZ }, { "VTALRM", SIGVTALRM }, { "PROF", SIGPROF }, { "WINCH", SIGWINCH }, { "IO", SIGIO },
	{ "POLL", SIGPOLL }, { "PWR", SIGPWR },	    { "SYS", SIGSYS },
};

int signal_parse(const char *s)
{
	if (!s || !*s)
		return -1;
	if (isdigit((unsigned char)s[0])) {
		char *end;
		long v = strtol(s, &end, 10);
		if (*end || v <= 0 || v > SIGRTMAX)
			return -1;
		return (int)v;
	}
	const char *n = s;
	if (strncasecmp(n, "SIG", 3) == 0)
		n += 3;
	for (size_t i = 0; i < ARRAY_SIZE(signals); i++)
		if (strcasecmp(signals[i].name, n) == 0)
			return signals[i].sig;
	if (strncasecmp(n, "RTMIN", 5) == 0 || strncasecmp(n, "RTMAX", 5) == 0) {
		int base = strncasecmp(n, "RTMIN", 5) == 0 ? SIGRTMIN : SIGRTMAX;
		const char *off = n + 5;
		if (!*off)
			return base;
		char *end;
		long v = strtol(off, &end, 10);
		if (*end)
			return -1;
		int sig = base + (int)v;
		return sig >= SIGRTMIN && sig <= SIGRTMAX ? sig : -1;
	}
	return -1;
}

int state_load_spec(int dirfd, struct spec **ret, struct kelp_err *err)
{
	cleanup_free char *buf = NULL;
	size_t len;
	if (kelp_read_file_at(dirfd, CONFIG_COPY, 16 << 20, &buf, &len, err) < 0)
		return -1;
	return spec_parse(buf, len, "config.json of the container", ret, err);
}

void state_run_late_hooks(int dirfd, const struct kelp_state *s, enum hook_kind kind, const char *status)
{
	struct spec *sp = NULL;
	struct kelp_err err = { 0 };
	if (state_load_spec(dirfd, &sp, &err) < 0) {
		log_warn("%s hooks of %s not run: %s", kelp_hook_names[kind], s->id, err.msg);
		return;
	}
	for (size_t i = 0; i < sp->n_hooks[kind]; i++) {
		cleanup_free char *state = hooks_state_json(s->id, status, s->pid, s->bundle, s->annotation_keys,
							    s->annotation_values);
		/* one at a time, so one failing hook does not stop the others */
		struct spec one = { 0 };
		one.hooks[kind] = &sp->hooks[kind][i];
		one.n_hooks[kind] = 1;
		if (hooks_run(&one, kind, state, &err) < 0)
			log_warn("container %s: %s", s->id, err.msg);
	}
	spec_free(sp);
}
