/* The cgroup v1 driver: one hierarchy per controller (or group of controllers), the container
 * gets the same path in each. Hybrid reuses it and sends what has no v1 hierarchy to the
 * unified one. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "cgroup-internal.h"
#include "cleanup.h"
#include "fs.h"
#include "log.h"

/* A new v1 cpuset cgroup starts with empty cpus and mems, and no task can join it until they
 * are set: copy the parent's down each level, as runc does. */
static int copy_cpuset(const char *parent, const char *dir, struct kelp_err *err)
{
	static const char *const files[] = {"cpuset.cpus", "cpuset.mems"};
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		cleanup_free char *cur = NULL, *up = NULL;
		if (cg_read_path(dir, files[i], &cur, err) < 0)
			return -1;
		if (*cur)
			continue;
		if (cg_read_path(parent, files[i], &up, err) < 0)
			return -1;
		if (*up && cg_write_path(dir, files[i], up, err) < 0)
			return -1;
	}
	return 0;
}

int cg1_create(struct kelp_cgroup *cg, struct kelp_err *err)
{
	for (size_t i = 0; i < cg->n_hier; i++) {
		const struct cg_hier *h = &cg->hier[i];
		if (h->v2)
			continue;
		if (cg_mkdir_p(cg, h, cg_list_has(h->opts, "cpuset") ? copy_cpuset : NULL, err) < 0)
			return -1;
	}
	return 0;
}

int cg1_enter(struct kelp_cgroup *cg, pid_t pid, struct kelp_err *err)
{
	for (size_t i = 0; i < cg->n_hier; i++)
		if (!cg->hier[i].v2 && cg_enter_hier(cg, &cg->hier[i], pid, err) < 0)
			return -1;
	return 0;
}

/* ---------------------------------------------------------------- resources */

static int write_i64(const struct kelp_cgroup *cg, const struct cg_hier *h, const char *file, int64_t v,
		     struct kelp_err *err)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%" PRId64, v);
	return cg_write(cg, h, file, buf, err);
}

/* Kernels since 5.x are always hierarchical, and their memory.use_hierarchy refuses 0. */
static int v1_use_hierarchy(struct kelp_cgroup *cg, const struct cg_hier *h, bool on, struct kelp_err *err)
{
	if (!cg_has_file(cg, h, "memory.use_hierarchy")) {
		log_debug("cgroup: no memory.use_hierarchy, useHierarchy ignored");
		return 0;
	}
	struct kelp_err e = {0};
	if (cg_write(cg, h, "memory.use_hierarchy", on ? "1" : "0", &e) == 0)
		return 0;
	if (!on && e.code == EINVAL) {
		log_warn("useHierarchy=false ignored: this kernel's memory cgroups are always hierarchical");
		return 0;
	}
	if (err)
		*err = e;
	return -1;
}

static int v1_memory(struct kelp_cgroup *cg, const struct cg_hier *h, const struct spec_memory *m,
		     struct kelp_err *err)
{
	int64_t limit = m->has_limit ? m->limit : 0, swap = m->has_swap ? m->swap : 0;
	bool memsw = cg_has_file(cg, h, "memory.memsw.limit_in_bytes");
	/* "unlimited memory" without a swap value means unlimited memory+swap too (runc) */
	if (limit == -1 && swap == 0 && memsw)
		swap = -1;
	if (swap != 0 && !memsw) {
		if (swap != -1)
			return kelp_error(err, 0,
					  "memory swap limit: swap accounting is not enabled (no memory.memsw.limit_in_bytes "
					  "in %s)",
					  h->mnt);
		swap = 0;
	}
	if (limit > 0 && swap > 0 && swap < limit)
		return kelp_error(err, 0, "memory swap limit %" PRId64 ": memory+swap must be >= the memory limit %" PRId64,
				  swap, limit);
	if (limit != 0 && swap != 0) {
		/* memory+swap must stay >= memory at every step: pick the order that keeps it */
		cleanup_free char *cur = NULL;
		if (cg_read(cg, h, "memory.limit_in_bytes", &cur, err) < 0)
			return -1;
		uint64_t curv = strtoull(cur, NULL, 10);
		if (swap == -1 || curv < (uint64_t)swap) {
			if (write_i64(cg, h, "memory.memsw.limit_in_bytes", swap, err) < 0 ||
			    write_i64(cg, h, "memory.limit_in_bytes", limit, err) < 0)
				return -1;
		} else if (write_i64(cg, h, "memory.limit_in_bytes", limit, err) < 0 ||
			   write_i64(cg, h, "memory.memsw.limit_in_bytes", swap, err) < 0) {
			return -1;
		}
	} else {
		if (limit != 0 && write_i64(cg, h, "memory.limit_in_bytes", limit, err) < 0)
			return -1;
		if (swap != 0 && write_i64(cg, h, "memory.memsw.limit_in_bytes", swap, err) < 0)
			return -1;
	}
	if (m->has_reservation && m->reservation != 0 &&
	    write_i64(cg, h, "memory.soft_limit_in_bytes", m->reservation, err) < 0)
		return -1;
	if (m->has_swappiness) {
		if (m->swappiness > 100)
			return kelp_error(err, 0, "memory swappiness %" PRIu64 ": must be 0 to 100", m->swappiness);
		if (write_i64(cg, h, "memory.swappiness", (int64_t)m->swappiness, err) < 0)
			return -1;
	}
	if (m->has_disable_oom_killer && m->disable_oom_killer && cg_write(cg, h, "memory.oom_control", "1", err) < 0)
		return -1;
	if (m->has_use_hierarchy && v1_use_hierarchy(cg, h, m->use_hierarchy, err) < 0)
		return -1;
	return 0;
}

static int v1_cpu(struct kelp_cgroup *cg, const struct cg_hier *h, const struct spec_cpu *c, struct kelp_err *err)
{
	if (c->has_shares && c->shares != 0 && write_i64(cg, h, "cpu.shares", (int64_t)c->shares, err) < 0)
		return -1;
	bool quota = c->has_quota && c->quota != 0;
	if (c->has_period && c->period != 0) {
		struct kelp_err e = {0};
		if (write_i64(cg, h, "cpu.cfs_period_us", (int64_t)c->period, &e) < 0) {
			/* The kernel checks a new period against the current quota; runc's way out is
			 * quota first, then the period again. */
			if (e.code != EINVAL || !quota) {
				if (err)
					*err = e;
				return -1;
			}
			if (write_i64(cg, h, "cpu.cfs_quota_us", c->quota, err) < 0 ||
			    write_i64(cg, h, "cpu.cfs_period_us", (int64_t)c->period, err) < 0)
				return -1;
		}
	}
	if (quota && write_i64(cg, h, "cpu.cfs_quota_us", c->quota, err) < 0)
		return -1;
	if (c->has_burst && write_i64(cg, h, "cpu.cfs_burst_us", (int64_t)c->burst, err) < 0)
		return -1;
	if (c->has_rt_period && c->rt_period != 0 && write_i64(cg, h, "cpu.rt_period_us", (int64_t)c->rt_period, err) < 0)
		return -1;
	if (c->has_rt_runtime && c->rt_runtime != 0 && write_i64(cg, h, "cpu.rt_runtime_us", c->rt_runtime, err) < 0)
		return -1;
	if (c->has_idle && write_i64(cg, h, "cpu.idle", c->idle, err) < 0)
		return -1;
	return 0;
}

static int v1_cpuset(struct kelp_cgroup *cg, const struct cg_hier *h, const struct spec_cpu *c, struct kelp_err *err)
{
	if (c->cpus && *c->cpus && cg_write(cg, h, "cpuset.cpus", c->cpus, err) < 0)
		return -1;
	if (c->mems && *c->mems && cg_write(cg, h, "cpuset.mems", c->mems, err) < 0)
		return -1;
	return 0;
}

static int v1_hugetlb(struct kelp_cgroup *cg, const struct cg_hier *h, const struct spec_hugetlb *l, size_t n,
		      struct kelp_err *err)
{
	for (size_t i = 0; i < n; i++) {
		if (!l[i].page_size || !cg_hugetlb_size_ok(l[i].page_size))
			return kelp_error(err, 0, "hugetlb limit: invalid page size \"%s\"",
					  l[i].page_size ? l[i].page_size : "");
		cleanup_free char *file = xasprintf("hugetlb.%s.limit_in_bytes", l[i].page_size);
		cleanup_free char *rsvd = xasprintf("hugetlb.%s.rsvd.limit_in_bytes", l[i].page_size);
		if (!cg_has_file(cg, h, file))
			return kelp_error(err, 0, "hugetlb limit: page size %s is not supported here (no %s in %s)",
					  l[i].page_size, file, h->mnt);
		if (write_i64(cg, h, file, (int64_t)l[i].limit, err) < 0)
			return -1;
		if (cg_has_file(cg, h, rsvd) && write_i64(cg, h, rsvd, (int64_t)l[i].limit, err) < 0)
			return -1;
	}
	return 0;
}

static int v1_devices(struct kelp_cgroup *cg, const struct cg_hier *h, const struct spec_resources *r,
		      struct kelp_err *err)
{
	size_t n = 0;
	cleanup_free struct spec_device_rule *rules = cg_device_rules(r, &n);
	if (cg_device_rules_check(rules, n, err) < 0)
		return -1;
	if (cg_write(cg, h, "devices.deny", "a", err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		char line[96];
		cg_device_rule_line(&rules[i], line, sizeof(line));
		if (cg_write(cg, h, rules[i].allow ? "devices.allow" : "devices.deny", line, err) < 0)
			return -1;
	}
	return 0;
}

/* Where a controller's files go: its v1 hierarchy or, in hybrid, the unified one. */
static int locate(const struct kelp_cgroup *cg, const char *ctrl, const char *what, const struct cg_hier *unified,
		  const struct cg_hier **ret, struct kelp_err *err)
{
	const struct cg_hier *h = cg_v1_find(cg, ctrl);
	if (!h && unified && cg2_available(unified, ctrl))
		h = unified;
	if (h) {
		*ret = h;
		return 0;
	}
	if (unified)
		return kelp_error(err, 0,
				  "%s: the %s controller is neither mounted as a cgroup v1 hierarchy nor available in the "
				  "cgroup v2 hierarchy",
				  what, ctrl);
	return kelp_error(err, 0, "%s: no cgroup v1 hierarchy of the %s controller is mounted under " CG_ROOT, what, ctrl);
}

int cg1_apply(struct kelp_cgroup *cg, const struct spec_resources *r, const struct cg_hier *unified,
	      struct kelp_err *err)
{
	const struct cg_hier *h;
	if (r->has_memory) {
		cg_memory_warn_kmem(&r->memory);
		if (cg_memory_needed(&r->memory)) {
			if (locate(cg, "memory", "memory limit", unified, &h, err) < 0)
				return -1;
			if ((h->v2 ? cg2_set_memory(cg, h, &r->memory, err) : v1_memory(cg, h, &r->memory, err)) < 0)
				return -1;
		}
	}
	if (r->has_cpu && cg_cpu_needed(&r->cpu)) {
		if (locate(cg, "cpu", "cpu limit", unified, &h, err) < 0)
			return -1;
		if ((h->v2 ? cg2_set_cpu(cg, h, &r->cpu, err) : v1_cpu(cg, h, &r->cpu, err)) < 0)
			return -1;
	}
	if (r->has_cpu && cg_cpuset_needed(&r->cpu)) {
		if (locate(cg, "cpuset", "cpuset", unified, &h, err) < 0)
			return -1;
		if ((h->v2 ? cg2_set_cpuset(cg, h, &r->cpu, err) : v1_cpuset(cg, h, &r->cpu, err)) < 0)
			return -1;
	}
	char pids[32];
	if (r->has_pids && r->pids.has_limit && cg_pids_value(r->pids.limit, pids, sizeof(pids))) {
		if (locate(cg, "pids", "pids limit", unified, &h, err) < 0)
			return -1;
		if ((h->v2 ? cg2_set_pids(cg, h, &r->pids, err) : cg_write(cg, h, "pids.max", pids, err)) < 0)
			return -1;
	}
	if (r->n_hugetlb) {
		if (locate(cg, "hugetlb", "hugetlb limit", unified, &h, err) < 0)
			return -1;
		if ((h->v2 ? cg2_set_hugetlb(cg, h, r->hugetlb, r->n_hugetlb, err)
			   : v1_hugetlb(cg, h, r->hugetlb, r->n_hugetlb, err)) < 0)
			return -1;
	}
	/* Devices always: the default rules apply even when the spec lists none. Without a v1
	 * devices hierarchy, a cgroup2 eBPF program does the same job. */
	if (r->keep_devices)
		return 0;
	if ((h = cg_v1_find(cg, "devices")))
		return v1_devices(cg, h, r, err);
	if (unified)
		return cg2_set_devices(cg, unified, r, err);
	if (r->n_devices)
		return kelp_error(err, 0, "device rules: no cgroup v1 hierarchy of the devices controller is mounted");
	log_warn("no devices cgroup: device access of the container is not restricted");
	return 0;
}

static int v1_apply(struct kelp_cgroup *cg, const struct spec_resources *r, struct kelp_err *err)
{
	if (r->unified_keys && r->unified_keys[0])
		return kelp_error(err, 0, "unified resource %s: this host uses cgroup v1, unified needs cgroup v2",
				  r->unified_keys[0]);
	return cg1_apply(cg, r, NULL, err);
}

/* ---------------------------------------------------------------- freezer */

int cg1_freeze(struct kelp_cgroup *cg, bool frozen, struct kelp_err *err)
{
	const struct cg_hier *h = cg_v1_find(cg, "freezer");
	if (!h) {
		const struct cg_hier *u = cg_unified(cg);
		if (u)
			return cg2_freeze(cg, u, frozen, err);
		return kelp_error(err, 0, "no cgroup v1 hierarchy of the freezer controller is mounted");
	}
	const char *want = frozen ? "FROZEN" : "THAWED";
	cleanup_free char *state = NULL;
	for (int i = 0; i < 500; i++) {
		/* A freeze can stall in FREEZING while a task is in an uninterruptible sleep;
		 * writing FROZEN again retries it. */
		if (i % 10 == 0 && cg_write(cg, h, "freezer.state", want, err) < 0)
			return -1;
		free(state);
		state = NULL;
		if (cg_read(cg, h, "freezer.state", &state, err) < 0)
			return -1;
		if (strcmp(state, want) == 0)
			return 0;
		cg_sleep_ms(10);
	}
	if (frozen)
		cg_write(cg, h, "freezer.state", "THAWED", NULL);
	return kelp_error(err, ETIMEDOUT, "freezer.state of %s%s is %s, not %s after 5s", h->mnt, cg_hpath(cg, h),
			  state ? state : "?", want);
}

static int v1_freeze(struct kelp_cgroup *cg, bool frozen, struct kelp_err *err)
{
	return cg1_freeze(cg, frozen, err);
}

/* ---------------------------------------------------------------- mount */

int cg1_mount(const struct kelp_cgroup *cg, int rootfd, const char *dest, unsigned long flags, bool new_cgroupns,
	      struct kelp_err *err)
{
	const unsigned long base = MS_NOSUID | MS_NODEV | MS_NOEXEC;
	cleanup_close int destfd = kelp_mkdir_in_root(rootfd, dest, 0755, err);
	if (destfd < 0)
		return -1;
	if (cg_mount_fd("tmpfs", destfd, dest, "tmpfs", base, "mode=755", err) < 0)
		return -1;
	cleanup_close int tfd = kelp_open_in_root(rootfd, dest, O_PATH | O_DIRECTORY, 0, err);
	if (tfd < 0)
		return -1;
	struct statfs sf;
	if (fstatfs(tfd, &sf) < 0)
		return kelp_error(err, errno, "statfs %s", dest);
	if (sf.f_type != TMPFS_MAGIC)
		return kelp_error(err, EXDEV, "%s: not the tmpfs just mounted there", dest);
	for (size_t i = 0; i < cg->n_hier; i++) {
		const struct cg_hier *h = &cg->hier[i];
		cleanup_free char *display = xasprintf("%s/%s", dest, h->name);
		if (mkdirat(tfd, h->name, 0755) < 0 && errno != EEXIST)
			return kelp_error(err, errno, "mkdir %s", display);
		if (cg_mount_hier(cg, h, tfd, h->name, display, flags, new_cgroupns, err) < 0)
			return -1;
	}
	for (size_t i = 0; i < cg->n_links; i++)
		if (symlinkat(cg->links[i].target, tfd, cg->links[i].name) < 0 && errno != EEXIST)
			return kelp_error(err, errno, "symlink %s/%s -> %s", dest, cg->links[i].name, cg->links[i].target);
	return cg_remount_in(rootfd, dest, dest, base | flags, err);
}

const struct cg_ops cg_v1_ops = {
	.create = cg1_create,
	.apply = v1_apply,
	.enter = cg1_enter,
	.freeze = v1_freeze,
	.mount = cg1_mount,
};
