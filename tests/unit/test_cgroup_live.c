/* Live cgroup test: run as root, it really creates /kelp-test-cg-<pid>, applies limits, moves a
 * forked child in, checks the files, the freezer, device rules and the container's cgroup
 * mount, and destroys everything. Works in hybrid, pure v1 and pure v2 layouts; where the layout
 * lacks a controller it checks the error says so. Skipped when not root. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "cgroup-internal.h"
#include "cleanup.h"
#include "fs.h"
#include "log.h"

struct live {
	struct kelp_cgroup *cg;
	pid_t child;
	int go[2]; /* parent -> child: "you are in the cgroup" */
};

static char cg_name[64];

static int setup(void **state)
{
	if (geteuid() != 0)
		return 0;
	struct live *l = calloc(1, sizeof(*l));
	struct kelp_err err = {0};
	snprintf(cg_name, sizeof(cg_name), "/kelp-test-cg-%d", (int)getpid());
	if (cgroup_open(cg_name, NULL, &l->cg, &err) < 0 || cgroup_create(l->cg, &err) < 0) {
		fprintf(stderr, "setup: %s\n", err.msg);
		cgroup_free(l->cg);
		free(l);
		return -1;
	}
	l->go[0] = l->go[1] = -1;
	*state = l;
	return 0;
}

static void stop_child(struct live *l)
{
	if (l->child > 0) {
		cgroup_freeze(l->cg, false, NULL);
		kill(l->child, SIGKILL);
		waitpid(l->child, NULL, 0);
		l->child = 0;
	}
	if (l->go[1] >= 0)
		close(l->go[1]);
	if (l->go[0] >= 0)
		close(l->go[0]);
	l->go[0] = l->go[1] = -1;
}

static int teardown(void **state)
{
	struct live *l = *state;
	if (!l)
		return 0;
	stop_child(l);
	struct kelp_err err = {0};
	int rc = 0;
	if (cgroup_destroy(l->cg, &err) < 0) {
		fprintf(stderr, "teardown: %s\n", err.msg);
		rc = -1;
	}
	/* nothing may be left in any hierarchy */
	for (size_t i = 0; i < l->cg->n_hier; i++) {
		cleanup_free char *dir = cg_dir(l->cg, &l->cg->hier[i]);
		struct stat st;
		if (stat(dir, &st) == 0 || errno != ENOENT) {
			fprintf(stderr, "teardown: %s is still there\n", dir);
			rc = -1;
		}
	}
	cgroup_free(l->cg);
	free(l);
	*state = NULL;
	return rc;
}

#define NEED_ROOT()                                                                                \
	do {                                                                                       \
		if (geteuid() != 0) {                                                              \
			print_message("# skip: needs root to create cgroups\n");                   \
			skip();                                                                    \
		}                                                                                  \
	} while (0)

/* Fork a child that waits for the go byte, then runs fn (if any) and exits with its result, or
 * sleeps until killed. The parent moves it into the cgroup and sends go. */
static void start_child(struct live *l, int (*fn)(struct live *))
{
	assert_int_equal(pipe2(l->go, O_CLOEXEC), 0);
	l->child = fork();
	assert_true(l->child >= 0);
	if (l->child == 0) {
		char c;
		close(l->go[1]);
		if (read(l->go[0], &c, 1) != 1)
			_exit(90);
		if (fn)
			_exit(fn(l));
		for (;;)
			pause();
	}
	close(l->go[0]);
	l->go[0] = -1;
	struct kelp_err err = {0};
	if (cgroup_enter(l->cg, l->child, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(write(l->go[1], "x", 1), 1);
}

static int wait_child(struct live *l)
{
	int st = 0;
	assert_int_equal(waitpid(l->child, &st, 0), l->child);
	l->child = 0;
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

static char *read_cg(struct live *l, const struct cg_hier *h, const char *file)
{
	char *v = NULL;
	struct kelp_err err = {0};
	if (cg_read(l->cg, h, file, &v, &err) < 0)
		fail_msg("%s", err.msg);
	return v;
}

static void assert_file(struct live *l, const struct cg_hier *h, const char *file, const char *want)
{
	cleanup_free char *v = read_cg(l, h, file);
	if (strcmp(v, want) != 0)
		fail_msg("%s%s/%s: \"%s\", expected \"%s\"", h->mnt, l->cg->path, file, v, want);
}

/* Where a controller is in this layout: its v1 hierarchy, or the cgroup2 one when bound there;
 * NULL when absent. */
static const struct cg_hier *where(struct live *l, const char *ctrl)
{
	const struct cg_hier *h = l->cg->mode == CG_V2 ? NULL : cg_v1_find(l->cg, ctrl);
	const struct cg_hier *u = cg_unified(l->cg);
	if (!h && u && cg2_available(u, ctrl))
		h = u;
	return h;
}

static void assert_unavailable(struct live *l, const struct spec_resources *r, const char *what, const char *ctrl)
{
	struct kelp_err err = {0};
	assert_int_equal(cgroup_apply(l->cg, r, &err), -1);
	char want[256];
	if (l->cg->mode == CG_V2)
		snprintf(want, sizeof(want), "%s: the %s controller is not available in the cgroup v2 hierarchy", what, ctrl);
	else if (l->cg->mode == CG_HYBRID)
		snprintf(want, sizeof(want), "%s: the %s controller is neither mounted", what, ctrl);
	else
		snprintf(want, sizeof(want), "%s: no cgroup v1 hierarchy of the %s controller is mounted", what, ctrl);
	if (!strstr(err.msg, want))
		fail_msg("error \"%s\" does not say \"%s\"", err.msg, want);
}

/* ---------------------------------------------------------------- limits, enter, pids, freeze */

/* The path of the /proc/PID/cgroup line of controller ctrl, or of "0::" when ctrl is NULL. */
static char *line_path(const char *text, const char *ctrl)
{
	for (const char *ln = text; ln && *ln;) {
		const char *nl = strchr(ln, '\n');
		const char *c1 = strchr(ln, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2 || (nl && c2 > nl))
			return NULL;
		cleanup_free char *ctrls = strndup(c1 + 1, (size_t)(c2 - c1 - 1));
		bool match = ctrl ? cg_list_has(ctrls, ctrl) : (ln[0] == '0' && c1 == ln + 1 && !*ctrls);
		if (match)
			return strndup(c2 + 1, nl ? (size_t)(nl - c2 - 1) : strlen(c2 + 1));
		ln = nl ? nl + 1 : NULL;
	}
	return NULL;
}

static void test_limits(void **state)
{
	NEED_ROOT();
	struct live *l = *state;
	struct kelp_err err = {0};

	struct spec_resources mem = {.has_memory = true, .memory = {.has_limit = true, .limit = 64 << 20}};
	struct spec_resources pids = {.has_pids = true, .pids = {.has_limit = true, .limit = 32}};
	struct spec_resources cpu = {.has_cpu = true,
				     .cpu = {.has_quota = true, .quota = 50000, .has_period = true, .period = 100000,
					     .has_shares = true, .shares = 512}};
	const struct cg_hier *h;
	if ((h = where(l, "memory"))) {
		if (cgroup_apply(l->cg, &mem, &err) < 0)
			fail_msg("%s", err.msg);
		assert_file(l, h, h->v2 ? "memory.max" : "memory.limit_in_bytes", "67108864");
	} else {
		assert_unavailable(l, &mem, "memory limit", "memory");
	}
	if ((h = where(l, "pids"))) {
		if (cgroup_apply(l->cg, &pids, &err) < 0)
			fail_msg("%s", err.msg);
		assert_file(l, h, "pids.max", "32");
	} else {
		assert_unavailable(l, &pids, "pids limit", "pids");
	}
	if ((h = where(l, "cpu"))) {
		if (cgroup_apply(l->cg, &cpu, &err) < 0)
			fail_msg("%s", err.msg);
		if (h->v2) {
			assert_file(l, h, "cpu.max", "50000 100000");
			assert_file(l, h, "cpu.weight", "20");
		} else {
			assert_file(l, h, "cpu.cfs_quota_us", "50000");
			assert_file(l, h, "cpu.cfs_period_us", "100000");
			assert_file(l, h, "cpu.shares", "512");
		}
	} else {
		assert_unavailable(l, &cpu, "cpu limit", "cpu");
	}

	start_child(l, NULL);
	pid_t *pv = NULL;
	size_t n = 0;
	if (cgroup_pids(l->cg, &pv, &n, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(n, 1);
	assert_int_equal(pv[0], l->child);
	free(pv);

	/* the child is in our cgroup in every hierarchy we manage */
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)l->child);
	cleanup_free char *text = NULL;
	assert_int_equal(kelp_read_file_at(AT_FDCWD, path, 1 << 20, &text, NULL, &err), 0);
	for (size_t i = 0; i < l->cg->n_hier; i++) {
		const struct cg_hier *hh = &l->cg->hier[i];
		cleanup_free char *first = xstrdup(hh->opts);
		char *comma = strchr(first, ',');
		if (comma)
			*comma = '\0';
		cleanup_free char *at = line_path(text, hh->v2 ? NULL : first);
		if (!at || strcmp(at, cg_name) != 0)
			fail_msg("%s: not in %s in hierarchy %s:\n%s", path, cg_name, hh->mnt, text);
	}

	/* freeze and thaw */
	if (cgroup_freeze(l->cg, true, &err) < 0)
		fail_msg("%s", err.msg);
	if ((h = cg_v1_find(l->cg, "freezer")) && l->cg->mode != CG_V2)
		assert_file(l, h, "freezer.state", "FROZEN");
	else {
		cleanup_free char *ev = read_cg(l, cg_unified(l->cg), "cgroup.events");
		assert_non_null(strstr(ev, "frozen 1"));
	}
	if (cgroup_freeze(l->cg, false, &err) < 0)
		fail_msg("%s", err.msg);
	if ((h = cg_v1_find(l->cg, "freezer")) && l->cg->mode != CG_V2)
		assert_file(l, h, "freezer.state", "THAWED");

	/* a child cgroup below ours goes too (children first) */
	for (size_t i = 0; i < l->cg->n_hier; i++) {
		cleanup_free char *sub = xasprintf("%s%s/sub", l->cg->hier[i].mnt, l->cg->path);
		assert_int_equal(mkdir(sub, 0755), 0);
	}
	stop_child(l);
}

/* ---------------------------------------------------------------- memory details, update order, cpuset */

static void apply_ok(struct live *l, const struct spec_resources *r)
{
	struct kelp_err err = {0};
	if (cgroup_apply(l->cg, r, &err) < 0)
		fail_msg("%s", err.msg);
}

static void test_update(void **state)
{
	NEED_ROOT();
	struct live *l = *state;
	const struct cg_hier *h = where(l, "memory");
	if (h && !h->v2) {
		struct spec_resources r = {.has_memory = true,
					   .memory = {.has_limit = true, .limit = 64 << 20, .has_swap = true, .swap = 128 << 20,
						      .has_reservation = true, .reservation = 32 << 20, .has_swappiness = true,
						      .swappiness = 10, .has_disable_oom_killer = true, .disable_oom_killer = true,
						      .has_use_hierarchy = true, .use_hierarchy = false}};
		apply_ok(l, &r);
		assert_file(l, h, "memory.memsw.limit_in_bytes", "134217728");
		assert_file(l, h, "memory.soft_limit_in_bytes", "33554432");
		assert_file(l, h, "memory.swappiness", "10");
		cleanup_free char *oom = read_cg(l, h, "memory.oom_control");
		assert_non_null(strstr(oom, "oom_kill_disable 1"));
		/* shrinking needs memory first, growing memory+swap first: both must work */
		struct spec_resources down = {.has_memory = true,
					      .memory = {.has_limit = true, .limit = 32 << 20, .has_swap = true, .swap = 32 << 20}};
		apply_ok(l, &down);
		assert_file(l, h, "memory.limit_in_bytes", "33554432");
		assert_file(l, h, "memory.memsw.limit_in_bytes", "33554432");
		struct spec_resources up = {.has_memory = true,
					    .memory = {.has_limit = true, .limit = 256 << 20, .has_swap = true, .swap = 512 << 20}};
		apply_ok(l, &up);
		assert_file(l, h, "memory.limit_in_bytes", "268435456");
		assert_file(l, h, "memory.memsw.limit_in_bytes", "536870912");
	} else if (h) {
		struct spec_resources r = {.has_memory = true,
					   .memory = {.has_limit = true, .limit = 64 << 20, .has_swap = true, .swap = 128 << 20,
						      .has_reservation = true, .reservation = 32 << 20}};
		apply_ok(l, &r);
		assert_file(l, h, "memory.max", "67108864");
		assert_file(l, h, "memory.low", "33554432");
		if (cg_has_file(l->cg, h, "memory.swap.max"))
			assert_file(l, h, "memory.swap.max", "67108864");
	}
	if ((h = where(l, "cpuset"))) {
		struct spec_resources r = {.has_cpu = true, .cpu = {.cpus = (char *)"0", .mems = (char *)"0"}};
		apply_ok(l, &r);
		assert_file(l, h, "cpuset.cpus", "0");
		assert_file(l, h, "cpuset.mems", "0");
	}
	/* a child can join after all that */
	start_child(l, NULL);
	stop_child(l);
}

/* ---------------------------------------------------------------- hugetlb */

/* "hugepages-2048kB" -> "2MB"; NULL when the machine has no huge page sizes. */
static char *huge_size(uint64_t *ret_bytes)
{
	cleanup_closedir DIR *d = opendir("/sys/kernel/mm/hugepages");
	struct dirent *de;
	while (d && (de = readdir(d))) {
		unsigned long long kb;
		if (sscanf(de->d_name, "hugepages-%llukB", &kb) != 1)
			continue;
		*ret_bytes = kb * 1024;
		if (kb % (1024 * 1024) == 0)
			return xasprintf("%lluGB", kb / (1024 * 1024));
		if (kb % 1024 == 0)
			return xasprintf("%lluMB", kb / 1024);
		return xasprintf("%lluKB", kb);
	}
	return NULL;
}

static void test_hugetlb(void **state)
{
	NEED_ROOT();
	struct live *l = *state;
	uint64_t bytes = 0;
	cleanup_free char *size = huge_size(&bytes);
	if (!size) {
		print_message("# skip: no huge page size on this machine\n");
		skip();
	}
	struct spec_hugetlb lim = {.page_size = size, .limit = 4 * bytes};
	struct spec_resources r = {.hugetlb = &lim, .n_hugetlb = 1};
	struct kelp_err err = {0};
	const struct cg_hier *h = where(l, "hugetlb");
	if (!h) {
		assert_unavailable(l, &r, "hugetlb limit", "hugetlb");
		return;
	}
	if (cgroup_apply(l->cg, &r, &err) < 0)
		fail_msg("%s", err.msg);
	cleanup_free char *file = xasprintf(h->v2 ? "hugetlb.%s.max" : "hugetlb.%s.limit_in_bytes", size);
	char want[32];
	snprintf(want, sizeof(want), "%llu", (unsigned long long)(4 * bytes));
	assert_file(l, h, file, want);
	/* a page size that does not exist is named */
	struct spec_hugetlb bad = {.page_size = (char *)"3MB", .limit = 1};
	struct spec_resources rb = {.hugetlb = &bad, .n_hugetlb = 1};
	assert_int_equal(cgroup_apply(l->cg, &rb, &err), -1);
	assert_non_null(strstr(err.msg, "page size 3MB is not supported"));
}

/* ---------------------------------------------------------------- unified */

static void test_unified(void **state)
{
	NEED_ROOT();
	struct live *l = *state;
	struct kelp_err err = {0};
	char *k1[] = {(char *)"memory.high", NULL}, *v1[] = {(char *)"1G", NULL};
	struct spec_resources r = {.unified_keys = k1, .unified_values = v1};
	if (l->cg->mode == CG_V1) {
		assert_int_equal(cgroup_apply(l->cg, &r, &err), -1);
		assert_non_null(strstr(err.msg, "this host uses cgroup v1"));
		return;
	}
	const struct cg_hier *u = cg_unified(l->cg);
	if (!cg2_available(u, "memory")) {
		assert_int_equal(cgroup_apply(l->cg, &r, &err), -1);
		assert_non_null(
			strstr(err.msg, "unified memory.high: the memory controller is not available in the cgroup v2 hierarchy"));
	}
	char *k2[] = {(char *)"../cgroup.procs", NULL}, *v2[] = {(char *)"1", NULL};
	struct spec_resources bad = {.unified_keys = k2, .unified_values = v2};
	assert_int_equal(cgroup_apply(l->cg, &bad, &err), -1);
	assert_non_null(strstr(err.msg, "not a file name"));
	/* a controller-less file works everywhere */
	char *k3[] = {(char *)"cgroup.max.descendants", NULL}, *v3[] = {(char *)"5", NULL};
	struct spec_resources ok = {.unified_keys = k3, .unified_values = v3};
	if (cgroup_apply(l->cg, &ok, &err) < 0)
		fail_msg("%s", err.msg);
	assert_file(l, u, "cgroup.max.descendants", "5");
}

/* ---------------------------------------------------------------- devices */

static int try_devices(struct live *l)
{
	(void)l;
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return 10;
	close(fd);
	fd = open("/dev/kmsg", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		close(fd);
		return 11;
	}
	return errno == EPERM ? 0 : 12;
}

static uint32_t bpf_prog_count(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	uint32_t ids[16];
	union bpf_attr q;
	memset(&q, 0, sizeof(q));
	q.query.target_fd = (uint32_t)fd;
	q.query.attach_type = BPF_CGROUP_DEVICE;
	q.query.prog_ids = (uint64_t)(uintptr_t)ids;
	q.query.prog_cnt = 16;
	assert_int_equal(syscall(SYS_bpf, BPF_PROG_QUERY, &q, sizeof(q)), 0);
	close(fd);
	return q.query.prog_cnt;
}

static void test_devices(void **state)
{
	NEED_ROOT();
	struct live *l = *state;
	struct kelp_err err = {0};
	struct spec_device_rule rules[] = {{false, 'a', -1, -1, "rwm"}, {true, 'c', 1, 11, "rwm"}, {false, 'c', 1, 11, "r"}};
	struct spec_resources r = {.devices = rules, .n_devices = ARRAY_SIZE(rules)};
	if (cgroup_apply(l->cg, &r, &err) < 0)
		fail_msg("%s", err.msg);
	const struct cg_hier *h = cg_v1_find(l->cg, "devices");
	if (h && l->cg->mode != CG_V2) {
		cleanup_free char *list = read_cg(l, h, "devices.list");
		assert_non_null(strstr(list, "c 1:3 rwm"));
		assert_non_null(strstr(list, "c 136:* rwm"));
		assert_non_null(strstr(list, "c 1:11 wm"));
		assert_null(strstr(list, "a *:* rwm"));
	} else {
		/* applying twice replaces the program rather than stacking a second one */
		cleanup_free char *dir = cg_dir(l->cg, cg_unified(l->cg));
		assert_int_equal(bpf_prog_count(dir), 1);
		if (cgroup_apply(l->cg, &r, &err) < 0)
			fail_msg("%s", err.msg);
		assert_int_equal(bpf_prog_count(dir), 1);
	}
	if (access("/dev/kmsg", F_OK) != 0)
		return;
	start_child(l, try_devices);
	assert_int_equal(wait_child(l), 0);
}

/* ---------------------------------------------------------------- mount */

static char rootdir[] = "/tmp/kelp-test-cg-root-XXXXXX";

static int check_mount(struct live *l, bool new_ns)
{
	struct kelp_err err = {0};
	if (new_ns && unshare(CLONE_NEWCGROUP) < 0)
		return 20;
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return 21;
	int rootfd = open(rootdir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return 22;
	if (cgroup_mount(l->cg, rootfd, "/sys/fs/cgroup", MS_RDONLY, new_ns, &err) < 0) {
		fprintf(stderr, "cgroup_mount: %s\n", err.msg);
		return 23;
	}
	cleanup_free char *base = xasprintf("%s/sys/fs/cgroup", rootdir);
	for (size_t i = 0; i < l->cg->n_hier; i++) {
		const struct cg_hier *h = &l->cg->hier[i];
		cleanup_free char *dir = h->name[0] ? xasprintf("%s/%s", base, h->name) : xstrdup(base);
		cleanup_free char *procs = NULL;
		/* the container's own cgroup is the one shown: it holds just us */
		if (cg_read_path(dir, "cgroup.procs", &procs, &err) < 0) {
			fprintf(stderr, "%s\n", err.msg);
			return 24;
		}
		char me[32];
		snprintf(me, sizeof(me), "%d", (int)getpid());
		if (strcmp(procs, me) != 0) {
			fprintf(stderr, "%s/cgroup.procs: \"%s\", expected \"%s\"\n", dir, procs, me);
			return 25;
		}
		cleanup_free char *probe = xasprintf("%s/kelp-probe", dir);
		if (mkdir(probe, 0755) == 0 || errno != EROFS) {
			fprintf(stderr, "mkdir %s: not refused with EROFS\n", probe);
			return 26;
		}
	}
	for (size_t i = 0; i < l->cg->n_links; i++) {
		cleanup_free char *link = xasprintf("%s/%s", base, l->cg->links[i].name);
		char t[256];
		ssize_t n = readlink(link, t, sizeof(t) - 1);
		if (n < 0 || (t[n] = '\0', strcmp(t, l->cg->links[i].target) != 0))
			return 27;
	}
	cleanup_free char *top = xasprintf("%s/kelp-probe", base);
	if (l->cg->mode != CG_V2 && (mkdir(top, 0755) == 0 || errno != EROFS))
		return 28;
	return 0;
}

static int mount_bind(struct live *l) { return check_mount(l, false); }
static int mount_cgroupns(struct live *l) { return check_mount(l, true); }

static void test_mount(void **state)
{
	NEED_ROOT();
	struct live *l = *state;
	assert_non_null(mkdtemp(rootdir));
	start_child(l, mount_bind);
	int rc = wait_child(l);
	start_child(l, mount_cgroupns);
	int rc2 = wait_child(l);
	struct kelp_err err = {0};
	kelp_rm_rf_at(AT_FDCWD, rootdir, &err);
	assert_int_equal(rc, 0);
	assert_int_equal(rc2, 0);
}

/* Controllers enabled in the cgroup2 root before the tests: the tests turn off what they
 * turned on (hugetlb for the hybrid hugetlb limit) when no other cgroup exists there, to leave
 * the machine as it was. */
static char *root_subtree_before;

static void restore_root_subtree(void)
{
	enum cg_mode m;
	if (geteuid() != 0 || cgroup_detect(CG_ROOT, &m, NULL) < 0 || m == CG_V1)
		return;
	const char *root = m == CG_V2 ? CG_ROOT : CG_ROOT "/unified";
	if (!root_subtree_before) {
		cg_read_path(root, "cgroup.subtree_control", &root_subtree_before, NULL);
		return;
	}
	cleanup_free char *before = TAKE_PTR(root_subtree_before);
	cleanup_free char *now = NULL;
	if (cg_read_path(root, "cgroup.subtree_control", &now, NULL) < 0)
		return;
	/* other cgroups may have come to rely on it meanwhile: then leave it on */
	cleanup_closedir DIR *d = opendir(root);
	struct dirent *de;
	while (d && (de = readdir(d)))
		if (de->d_type == DT_DIR && strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			return;
	cleanup_free char *spaced = xasprintf(" %s ", before);
	char *save = NULL;
	for (char *c = strtok_r(now, " ", &save); c; c = strtok_r(NULL, " ", &save)) {
		cleanup_free char *tok = xasprintf(" %s ", c);
		if (strstr(spaced, tok))
			continue;
		cleanup_free char *off = xasprintf("-%s", c);
		struct kelp_err err = {0};
		if (cg_write_path(root, "cgroup.subtree_control", off, &err) < 0)
			fprintf(stderr, "restore: %s\n", err.msg);
	}
}

int main(void)
{
	/* KELP_TEST_DEBUG=1 shows every cgroup file written */
	kelp_log_init(NULL, KELP_LOG_TEXT, getenv("KELP_TEST_DEBUG") != NULL, NULL);
	restore_root_subtree();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_update, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hugetlb, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unified, setup, teardown),
		cmocka_unit_test_setup_teardown(test_devices, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mount, setup, teardown),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	restore_root_subtree();
	return rc;
}
