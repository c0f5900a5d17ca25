/* Reading usage back from the container's cgroup: v1 files where a v1 hierarchy has the
 * controller, else the unified hierarchy's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgroup-internal.h"
#include "cleanup.h"

static unsigned long long read_u64(const struct kelp_cgroup *cg, const struct cg_hier *h, const char *file)
{
	cleanup_free char *v = NULL;
	struct kelp_err ignored;
	if (!h || cg_read(cg, h, file, &v, &ignored) < 0)
		return 0;
	if (strncmp(v, "max", 3) == 0)
		return 0;
	return strtoull(v, NULL, 10);
}

/* The value of `key` in a "key value" per line file (memory.stat, cpu.stat, memory.events). */
static unsigned long long read_key(const struct kelp_cgroup *cg, const struct cg_hier *h, const char *file,
				   const char *key)
{
	cleanup_free char *v = NULL;
	struct kelp_err ignored;
	if (!h || cg_read(cg, h, file, &v, &ignored) < 0)
		return 0;
	size_t kl = strlen(key);
	for (char *l = v; l && *l;) {
		if (strncmp(l, key, kl) == 0 && l[kl] == ' ')
			return strtoull(l + kl + 1, NULL, 10);
		l = strchr(l, '\n');
		if (l)
			l++;
	}
	return 0;
}

static const struct cg_hier *find(const struct kelp_cgroup *cg, const char *ctrl)
{
	const struct cg_hier *h = cg_v1_find(cg, ctrl);
	return h ? h : cg_unified(cg);
}

int cgroup_stats(struct kelp_cgroup *cg, struct cg_stats *s, struct kelp_err *err)
{
	(void)err;
	memset(s, 0, sizeof(*s));
	const struct cg_hier *h = find(cg, "cpuacct");
	if (h && !h->v2) {
		s->cpu_total_ns = read_u64(cg, h, "cpuacct.usage");
		s->cpu_user_ns = read_u64(cg, h, "cpuacct.usage_user");
		s->cpu_kernel_ns = read_u64(cg, h, "cpuacct.usage_sys");
	} else if (h) {
		s->cpu_total_ns = read_key(cg, h, "cpu.stat", "usage_usec") * 1000;
		s->cpu_user_ns = read_key(cg, h, "cpu.stat", "user_usec") * 1000;
		s->cpu_kernel_ns = read_key(cg, h, "cpu.stat", "system_usec") * 1000;
	}
	h = find(cg, "cpu");
	if (h) {
		s->cpu_periods = read_key(cg, h, "cpu.stat", "nr_periods");
		s->cpu_throttled_periods = read_key(cg, h, "cpu.stat", "nr_throttled");
		s->cpu_throttled_ns = h->v2 ? read_key(cg, h, "cpu.stat", "throttled_usec") * 1000
					    : read_key(cg, h, "cpu.stat", "throttled_time");
	}
	h = find(cg, "memory");
	if (h && !h->v2) {
		s->mem_usage = read_u64(cg, h, "memory.usage_in_bytes");
		s->mem_max_usage = read_u64(cg, h, "memory.max_usage_in_bytes");
		s->mem_limit = read_u64(cg, h, "memory.limit_in_bytes");
		s->mem_failcnt = read_u64(cg, h, "memory.failcnt");
		s->swap_usage = read_u64(cg, h, "memory.memsw.usage_in_bytes");
		s->swap_limit = read_u64(cg, h, "memory.memsw.limit_in_bytes");
		s->oom_kills = read_key(cg, h, "memory.oom_control", "oom_kill");
	} else if (h) {
		s->mem_usage = read_u64(cg, h, "memory.current");
		s->mem_max_usage = read_u64(cg, h, "memory.peak");
		s->mem_limit = read_u64(cg, h, "memory.max");
		s->swap_usage = read_u64(cg, h, "memory.swap.current");
		s->swap_limit = read_u64(cg, h, "memory.swap.max");
		s->oom_kills = read_key(cg, h, "memory.events", "oom_kill");
	}
	h = find(cg, "pids");
	if (h) {
		s->pids_current = read_u64(cg, h, "pids.current");
		s->pids_limit = read_u64(cg, h, "pids.max");
	}
	return 0;
}
