/* The cgroup v2 driver: one hierarchy, controllers enabled top-down through
 * cgroup.subtree_control, device rules as an eBPF program. Its writers also serve the unified
 * half of hybrid. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgroup-internal.h"
#include "cleanup.h"
#include "fs.h"
#include "log.h"

/* ---------------------------------------------------------------- conversions */

uint64_t cg_shares_to_weight(uint64_t shares)
{
	if (shares == 0)
		return 0;
	/* the v1 range [2, 262144] maps linearly onto the v2 range [1, 10000] */
	if (shares < 2)
		shares = 2;
	if (shares > 262144)
		shares = 262144;
	return 1 + ((shares - 2) * 9999) / 262142;
}

int cg_swap_to_v2(int64_t swap, int64_t limit, bool *ret_set, int64_t *ret, struct kelp_err *err)
{
	*ret_set = false;
	*ret = 0;
	/* as v1: unlimited memory with no swap value means unlimited swap too */
	if (limit == -1 && swap == 0)
		swap = -1;
	if (swap == 0)
		return 0;
	if (swap == -1) {
		*ret_set = true;
		*ret = -1;
		return 0;
	}
	if (limit == 0 || limit == -1)
		return kelp_error(err, 0, "memory swap limit %" PRId64 ": a swap limit needs a memory limit", swap);
	if (limit < 0 || swap < 0)
		return kelp_error(err, 0, "memory swap limit %" PRId64 ": invalid with memory limit %" PRId64, swap, limit);
	if (swap < limit)
		return kelp_error(err, 0, "memory swap limit %" PRId64 ": memory+swap must be >= the memory limit %" PRId64,
				  swap, limit);
	/* v1 limits memory+swap, v2 limits swap alone */
	*ret_set = true;
	*ret = swap - limit;
	return 0;
}

void cg_v2_mem_value(int64_t v, char *buf, size_t size)
{
	if (v < 0)
		snprintf(buf, size, "max");
	else
		snprintf(buf, size, "%" PRId64, v);
}

bool cg_cpu_max_value(bool has_quota, int64_t quota, bool has_period, uint64_t period, char *buf, size_t size)
{
	bool q = has_quota && quota != 0, p = has_period && period != 0;
	if (!q && !p)
		return false;
	int n = quota > 0 && q ? snprintf(buf, size, "%" PRId64, quota) : snprintf(buf, size, "max");
	if (p && n > 0 && (size_t)n < size)
		snprintf(buf + n, size - (size_t)n, " %" PRIu64, period);
	return true;
}

bool cg_unified_key_ok(const char *key)
{
	if (!key || !*key || strchr(key, '/') || strstr(key, ".."))
		return false;
	if (strcmp(key, ".") == 0)
		return false;
	for (const unsigned char *c = (const unsigned char *)key; *c; c++)
		if (*c < 0x20 || *c == 0x7f)
			return false;
	return true;
}

/* ---------------------------------------------------------------- controllers */

static bool has_word(const char *list, const char *word)
{
	size_t wl = strlen(word);
	for (const char *p = list; *p;) {
		while (*p == ' ' || *p == '\n')
			p++;
		size_t l = strcspn(p, " \n");
		if (l == wl && strncmp(p, word, l) == 0)
			return true;
		p += l;
	}
	return false;
}

bool cg2_available(const struct cg_hier *h, const char *controller)
{
	cleanup_free char *list = NULL;
	if (cg_read_path(h->mnt, "cgroup.controllers", &list, NULL) < 0)
		return false;
	return has_word(list, controller);
}

static int enable_in(const char *dir, const char *ctrl, struct kelp_err *err)
{
	cleanup_free char *cur = NULL;
	if (cg_read_path(dir, "cgroup.subtree_control", &cur, err) < 0)
		return -1;
	if (has_word(cur, ctrl))
		return 0;
	char v[64];
	snprintf(v, sizeof(v), "+%s", ctrl);
	return cg_write_path(dir, "cgroup.subtree_control", v, err);
}

/* Enable ctrl in the mount root and every ancestor of the container's directory. */
static int enable_path(const struct kelp_cgroup *cg, const struct cg_hier *h, const char *ctrl, struct kelp_err *err)
{
	cleanup_free char *dir = xstrdup(h->mnt);
	const char *p = cg_hpath(cg, h);
	for (;;) {
		const char *next = strchr(p + 1, '/');
		if (enable_in(dir, ctrl, err) < 0)
			return -1;
		if (!next)
			return 0;
		char *d = xasprintf("%s%.*s", dir, (int)(next - p), p);
		free(dir);
		dir = d;
		p = next;
	}
}

int cg2_need(struct kelp_cgroup *cg, const struct cg_hier *h, const char *controller, const char *what,
	     struct kelp_err *err)
{
	cleanup_free char *leaf = NULL;
	if (cg_read(cg, h, "cgroup.controllers", &leaf, NULL) == 0 && has_word(leaf, controller))
		return 0;
	if (!cg2_available(h, controller))
		return kelp_error(err, 0, "%s: the %s controller is not available in the cgroup v2 hierarchy", what,
				  controller);
	if (enable_path(cg, h, controller, err) < 0)
		return kelp_error_wrap(err, "%s: enable the %s controller", what, controller);
	return 0;
}

int cg2_mkdir(struct kelp_cgroup *cg, const struct cg_hier *h, struct kelp_err *err)
{
	return cg_mkdir_p(cg, h, NULL, err);
}

static int v2_create(struct kelp_cgroup *cg, struct kelp_err *err)
{
	const struct cg_hier *h = cg_unified(cg);
	if (cg2_mkdir(cg, h, err) < 0)
		return -1;
	/* Enable what is available, as runc does, so stats and later updates find their files.
	 * A failure (e.g. an ancestor holding processes) is reported by the resource that needs
	 * the controller. */
	cleanup_free char *list = NULL;
	if (cg_read_path(h->mnt, "cgroup.controllers", &list, err) < 0)
		return -1;
	char *save = NULL;
	for (char *c = strtok_r(list, " \n", &save); c; c = strtok_r(NULL, " \n", &save)) {
		struct kelp_err e = {0};
		if (enable_path(cg, h, c, &e) < 0)
			log_debug("cgroup: enable %s for %s: %s", c, cg->path, e.msg);
	}
	return 0;
}

/* ---------------------------------------------------------------- resources */

int cg2_set_memory(struct kelp_cgroup *cg, const struct cg_hier *h, const struct spec_memory *m,
		   struct kelp_err *err)
{
	char max[32], low[32], swp[32];
	bool wmax = m->has_limit && m->limit != 0, wlow = m->has_reservation && m->reservation != 0;
	if (wmax)
		cg_v2_mem_value(m->limit, max, sizeof(max));
	if (wlow)
		cg_v2_mem_value(m->reservation, low, sizeof(low));
	int64_t sv = 0;
	bool wswap = false;
	if (cg_swap_to_v2(m->has_swap ? m->swap : 0, m->has_limit ? m->limit : 0, &wswap, &sv, err) < 0)
		return -1;
	if (wswap)
		cg_v2_mem_value(sv, swp, sizeof(swp));
	if (m->has_swappiness)
		log_warn("memory swappiness is ignored: cgroup v2 has no per-cgroup swappiness");
	if (m->has_disable_oom_killer && m->disable_oom_killer)
		log_warn("disableOOMKiller is ignored: cgroup v2 cannot disable the OOM killer");
	if (m->has_use_hierarchy && !m->use_hierarchy)
		log_debug("cgroup: useHierarchy=false ignored: cgroup v2 is always hierarchical");
	if (!wmax && !wlow && !wswap)
		return 0;
	if (cg2_need(cg, h, "memory", "memory limit", err) < 0)
		return -1;
	if (m->check_before_update && wmax && m->limit > 0 && cg_has_file(cg, h, "memory.current")) {
		cleanup_free char *cur = NULL;
		if (cg_read(cg, h, "memory.current", &cur, err) < 0)
			return -1;
		uint64_t used = strtoull(cur, NULL, 10);
		if (used > (uint64_t)m->limit)
			return kelp_error(err, 0, "memory limit %" PRId64 " is below the current usage %" PRIu64, m->limit,
					  used);
	}
	if (wswap) {
		if (!cg_has_file(cg, h, "memory.swap.max")) {
			if (sv != -1)
				return kelp_error(err, 0, "memory swap limit: swap is not accounted here (no memory.swap.max)");
		} else if (cg_write(cg, h, "memory.swap.max", swp, err) < 0) {
			return -1;
		}
	}
	if (wmax && cg_write(cg, h, "memory.max", max, err) < 0)
		return -1;
	if (wlow && cg_write(cg, h, "memory.low", low, err) < 0)
		return -1;
	return 0;
}

int cg2_set_cpu(struct kelp_cgroup *cg, const struct cg_hier *h, const struct spec_cpu *c, struct kelp_err *err)
{
	if ((c->has_rt_runtime && c->rt_runtime != 0) || (c->has_rt_period && c->rt_period != 0))
		return kelp_error(err, 0, "cpu realtimeRuntime/realtimePeriod: cgroup v2 has no realtime scheduler limits");
	char weight[32], max[64], v[32];
	bool ww = c->has_shares && c->shares != 0;
	if (ww)
		snprintf(weight, sizeof(weight), "%" PRIu64, cg_shares_to_weight(c->shares));
	bool wmax = cg_cpu_max_value(c->has_quota, c->quota, c->has_period, c->period, max, sizeof(max));
	if (!ww && !wmax && !c->has_burst && !c->has_idle)
		return 0;
	if (cg2_need(cg, h, "cpu", "cpu limit", err) < 0)
		return -1;
	if (ww && cg_write(cg, h, "cpu.weight", weight, err) < 0)
		return -1;
	if (wmax && cg_write(cg, h, "cpu.max", max, err) < 0)
		return -1;
	if (c->has_burst) {
		snprintf(v, sizeof(v), "%" PRIu64, c->burst);
		if (cg_write(cg, h, "cpu.max.burst", v, err) < 0)
			return -1;
	}
	if (c->has_idle) {
		snprintf(v, sizeof(v), "%" PRId64, c->idle);
		if (cg_write(cg, h, "cpu.idle", v, err) < 0)
			return -1;
	}
	return 0;
}

int cg2_set_cpuset(struct kelp_cgroup *cg, const struct cg_hier *h, const struct spec_cpu *c, struct kelp_err *err)
{
	if (!cg_cpuset_needed(c))
		return 0;
	if (cg2_need(cg, h, "cpuset", "cpuset", err) < 0)
		return -1;
	if (c->cpus && *c->cpus && cg_write(cg, h, "cpuset.cpus", c->cpus, err) < 0)
		return -1;
	if (c->mems && *c->mems && cg_write(cg, h, "cpuset.mems", c->mems, err) < 0)
		return -1;
	return 0;
}

int cg2_set_pids(struct kelp_cgroup *cg, const struct cg_hier *h, const struct spec_pids *p, struct kelp_err *err)
{
	char v[32];
	if (!p->has_limit || !cg_pids_value(p->limit, v, sizeof(v)))
		return 0;
	if (cg2_need(cg, h, "pids", "pids limit", err) < 0)
		return -1;
	return cg_write(cg, h, "pids.max", v, err);
}

int cg2_set_hugetlb(struct kelp_cgroup *cg, const struct cg_hier *h, const struct spec_hugetlb *l, size_t n,
		    struct kelp_err *err)
{
	if (n && cg2_need(cg, h, "hugetlb", "hugetlb limit", err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (!l[i].page_size || !cg_hugetlb_size_ok(l[i].page_size))
			return kelp_error(err, 0, "hugetlb limit: invalid page size \"%s\"",
					  l[i].page_size ? l[i].page_size : "");
		cleanup_free char *file = xasprintf("hugetlb.%s.max", l[i].page_size);
		cleanup_free char *rsvd = xasprintf("hugetlb.%s.rsvd.max", l[i].page_size);
		char v[32];
		snprintf(v, sizeof(v), "%" PRIu64, l[i].limit);
		if (!cg_has_file(cg, h, file))
			return kelp_error(err, 0, "hugetlb limit: page size %s is not supported here (no %s in %s)",
					  l[i].page_size, file, h->mnt);
		if (cg_write(cg, h, file, v, err) < 0)
			return -1;
		if (cg_has_file(cg, h, rsvd) && cg_write(cg, h, rsvd, v, err) < 0)
			return -1;
	}
	return 0;
}

int cg2_set_devices(struct kelp_cgroup *cg, const struct cg_hier *h, const struct spec_resources *r,
		    struct kelp_err *err)
{
	size_t n = 0;
	cleanup_free struct spec_device_rule *rules = cg_device_rules(r, &n);
	cleanup_free char *dir = cg_dir(cg, h);
	return cg_devices_bpf_apply(dir, rules, n, err);
}

int cg2_set_unified(struct kelp_cgroup *cg, const struct cg_hier *h, char *const *keys, char *const *values,
		    struct kelp_err *err)
{
	for (size_t i = 0; keys && keys[i]; i++) {
		const char *k = keys[i];
		if (!cg_unified_key_ok(k))
			return kelp_error(err, 0, "unified key \"%s\": not a file name in the container's cgroup", k);
		const char *dot = strchr(k, '.');
		if (!dot || dot == k)
			return kelp_error(err, 0, "unified key \"%s\": expected <controller>.<file>", k);
		cleanup_free char *ctrl = strndup(k, (size_t)(dot - k));
		cleanup_free char *what = xasprintf("unified %s", k);
		if (!ctrl)
			return kelp_error(err, ENOMEM, "unified key %s", k);
		if (strcmp(ctrl, "cgroup") != 0 && cg2_need(cg, h, ctrl, what, err) < 0)
			return -1;
		if (cg_write(cg, h, k, values && values[i] ? values[i] : "", err) < 0)
			return -1;
	}
	return 0;
}

static int v2_apply(struct kelp_cgroup *cg, const struct spec_resources *r, struct kelp_err *err)
{
	const struct cg_hier *h = cg_unified(cg);
	if (r->has_memory) {
		cg_memory_warn_kmem(&r->memory);
		if (cg2_set_memory(cg, h, &r->memory, err) < 0)
			return -1;
	}
	if (r->has_cpu && (cg2_set_cpu(cg, h, &r->cpu, err) < 0 || cg2_set_cpuset(cg, h, &r->cpu, err) < 0))
		return -1;
	if (r->has_pids && cg2_set_pids(cg, h, &r->pids, err) < 0)
		return -1;
	if (cg2_set_hugetlb(cg, h, r->hugetlb, r->n_hugetlb, err) < 0)
		return -1;
	if (!r->keep_devices && cg2_set_devices(cg, h, r, err) < 0)
		return -1;
	return cg2_set_unified(cg, h, r->unified_keys, r->unified_values, err);
}

/* ---------------------------------------------------------------- freeze, enter, mount */

int cg2_freeze(struct kelp_cgroup *cg, const struct cg_hier *h, bool frozen, struct kelp_err *err)
{
	if (cg_write(cg, h, "cgroup.freeze", frozen ? "1" : "0", err) < 0)
		return -1;
	const char *want = frozen ? "frozen 1" : "frozen 0";
	for (int i = 0; i < 500; i++) {
		cleanup_free char *ev = NULL;
		if (cg_read(cg, h, "cgroup.events", &ev, err) < 0)
			return -1;
		for (char *l = ev; l && *l;) {
			if (strncmp(l, want, strlen(want)) == 0 && (l[strlen(want)] == '\n' || l[strlen(want)] == '\0'))
				return 0;
			l = strchr(l, '\n');
			if (l)
				l++;
		}
		cg_sleep_ms(10);
	}
	if (frozen)
		cg_write(cg, h, "cgroup.freeze", "0", NULL);
	return kelp_error(err, ETIMEDOUT, "cgroup.events of %s%s does not say \"%s\" after 5s", h->mnt, cg_hpath(cg, h), want);
}

static int v2_freeze(struct kelp_cgroup *cg, bool frozen, struct kelp_err *err)
{
	return cg2_freeze(cg, cg_unified(cg), frozen, err);
}

static int v2_enter(struct kelp_cgroup *cg, pid_t pid, struct kelp_err *err)
{
	return cg_enter_hier(cg, cg_unified(cg), pid, err);
}

static int v2_mount(const struct kelp_cgroup *cg, int rootfd, const char *dest, unsigned long flags, bool new_cgroupns,
		    struct kelp_err *err)
{
	cleanup_close int destfd = kelp_mkdir_in_root(rootfd, dest, 0755, err);
	if (destfd < 0)
		return -1;
	return cg_mount_hier(cg, cg_unified(cg), rootfd, dest, dest, flags, new_cgroupns, err);
}

const struct cg_ops cg_v2_ops = {
	.create = v2_create,
	.apply = v2_apply,
	.enter = v2_enter,
	.freeze = v2_freeze,
	.mount = v2_mount,
};
