#include "procattr.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cleanup.h"
#include "fs.h"

/* sched_setattr(2)'s argument; glibc has no wrapper and its header clashes with <sched.h> */
struct kelp_sched_attr {
	uint32_t size, sched_policy;
	uint64_t sched_flags;
	int32_t sched_nice;
	uint32_t sched_priority;
	uint64_t sched_runtime, sched_deadline, sched_period;
};

struct name_value {
	const char *name;
	unsigned long value;
};

static bool lookup(const struct name_value *t, size_t n, const char *name, unsigned long *ret)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(t[i].name, name) == 0) {
			*ret = t[i].value;
			return true;
		}
	return false;
}

static const struct name_value sched_policies[] = {
	{ "SCHED_OTHER", 0 }, { "SCHED_FIFO", 1 }, { "SCHED_RR", 2 },	    { "SCHED_BATCH", 3 },
	{ "SCHED_ISO", 4 },   { "SCHED_IDLE", 5 }, { "SCHED_DEADLINE", 6 },
};
static const struct name_value sched_flags[] = {
	{ "SCHED_FLAG_RESET_ON_FORK", 0x01 }, { "SCHED_FLAG_RECLAIM", 0x02 },	     { "SCHED_FLAG_DL_OVERRUN", 0x04 },
	{ "SCHED_FLAG_KEEP_POLICY", 0x08 },   { "SCHED_FLAG_KEEP_PARAMS", 0x10 },    { "SCHED_FLAG_UTIL_CLAMP_MIN", 0x20 },
	{ "SCHED_FLAG_UTIL_CLAMP_MAX", 0x40 },
};
static const struct name_value io_classes[] = {
	{ "IOPRIO_CLASS_RT", 1 }, { "IOPRIO_CLASS_BE", 2 }, { "IOPRIO_CLASS_IDLE", 3 },
};
static const struct name_value mpol_modes[] = {
	{ "MPOL_DEFAULT", 0 },	      { "MPOL_PREFERRED", 1 },	   { "MPOL_BIND", 2 },
	{ "MPOL_INTERLEAVE", 3 },     { "MPOL_LOCAL", 4 },	   { "MPOL_PREFERRED_MANY", 5 },
	{ "MPOL_WEIGHTED_INTERLEAVE", 6 },
};
static const struct name_value mpol_flags[] = {
	{ "MPOL_F_NUMA_BALANCING", 1 << 13 }, { "MPOL_F_RELATIVE_NODES", 1 << 14 }, { "MPOL_F_STATIC_NODES", 1 << 15 },
};

const char *const mempolicy_mode_names[] = { "MPOL_DEFAULT",	  "MPOL_PREFERRED", "MPOL_BIND", "MPOL_INTERLEAVE",
					     "MPOL_LOCAL", "MPOL_PREFERRED_MANY", "MPOL_WEIGHTED_INTERLEAVE", NULL };
const char *const mempolicy_flag_names[] = { "MPOL_F_NUMA_BALANCING", "MPOL_F_RELATIVE_NODES", "MPOL_F_STATIC_NODES", NULL };

/* A list of numbers and ranges ("0-3,7"), each passed to add(); false if malformed. */
static bool parse_list(const char *list, unsigned max, void (*add)(unsigned, void *), void *data)
{
	const char *p = list;
	if (!*p)
		return false;
	while (*p) {
		char *end;
		unsigned long a = strtoul(p, &end, 10), b = a;
		if (end == p)
			return false;
		if (*end == '-') {
			const char *q = end + 1;
			b = strtoul(q, &end, 10);
			if (end == q || b < a)
				return false;
		}
		if (b >= max)
			return false;
		for (unsigned long i = a; i <= b; i++)
			add((unsigned)i, data);
		if (*end == ',')
			end++;
		else if (*end)
			return false;
		p = end;
	}
	return true;
}

static void add_cpu(unsigned c, void *set)
{
	CPU_SET(c, (cpu_set_t *)set);
}

static void add_node(unsigned n, void *mask)
{
	((unsigned long *)mask)[n / (8 * sizeof(unsigned long))] |= 1UL << (n % (8 * sizeof(unsigned long)));
}

bool cpu_list_parse(const char *list, cpu_set_t *ret)
{
	CPU_ZERO(ret);
	return parse_list(list, CPU_SETSIZE, add_cpu, ret);
}

int procattr_prepare(const struct spec_process *p, const struct spec_linux *l, struct procattr *a, struct kelp_err *err)
{
	memset(a, 0, sizeof(*a));
	unsigned long v;
	if (p->sched.present) {
		if (!lookup(sched_policies, ARRAY_SIZE(sched_policies), p->sched.policy, &v))
			return kelp_fail(err, EINVAL, "process.scheduler.policy: unknown policy %s", p->sched.policy);
		if (v == 4)
			return kelp_fail(err, EINVAL, "process.scheduler.policy: SCHED_ISO is not implemented by Linux");
		a->has_sched = true;
		a->sched_policy = (uint32_t)v;
		for (size_t i = 0; p->sched.flags && p->sched.flags[i]; i++) {
			if (!lookup(sched_flags, ARRAY_SIZE(sched_flags), p->sched.flags[i], &v))
				return kelp_fail(err, EINVAL, "process.scheduler.flags[%zu]: unknown flag %s", i,
						 p->sched.flags[i]);
			a->sched_flags |= v;
		}
		if (p->sched.nice < -20 || p->sched.nice > 19)
			return kelp_fail(err, EINVAL, "process.scheduler.nice: %d is outside -20..19", p->sched.nice);
	}
	if (p->ioprio.present) {
		if (!lookup(io_classes, ARRAY_SIZE(io_classes), p->ioprio.klass, &v))
			return kelp_fail(err, EINVAL, "process.ioPriority.class: unknown class %s", p->ioprio.klass);
		a->has_ioprio = true;
		a->ioprio = (int)(v << 13) | p->ioprio.priority;
	}
	if (p->affinity_initial) {
		if (!cpu_list_parse(p->affinity_initial, &a->affinity_initial))
			return kelp_fail(err, EINVAL, "process.execCPUAffinity.initial: invalid cpu list '%s'",
					 p->affinity_initial);
		a->has_affinity_initial = true;
	}
	if (p->affinity_final) {
		if (!cpu_list_parse(p->affinity_final, &a->affinity_final))
			return kelp_fail(err, EINVAL, "process.execCPUAffinity.final: invalid cpu list '%s'", p->affinity_final);
		a->has_affinity_final = true;
	}
	if (!l)
		return 0;
	if (l->has_personality) {
		if (strcmp(l->personality_domain, "LINUX") == 0)
			a->personality = PER_LINUX;
		else if (strcmp(l->personality_domain, "LINUX32") == 0)
			a->personality = PER_LINUX32;
		else
			return kelp_fail(err, EINVAL, "linux.personality.domain: unknown domain %s (LINUX or LINUX32)",
					 l->personality_domain);
		if (l->personality_flags && l->personality_flags[0])
			return kelp_fail(err, EINVAL, "linux.personality.flags[0]: unknown flag %s (the spec defines none)",
					 l->personality_flags[0]);
		a->has_personality = true;
	}
	if (l->has_mempolicy) {
		if (!lookup(mpol_modes, ARRAY_SIZE(mpol_modes), l->mempolicy_mode, &v))
			return kelp_fail(err, EINVAL, "linux.memoryPolicy.mode: unknown mode %s", l->mempolicy_mode);
		a->mempolicy_mode = (int)v;
		for (size_t i = 0; l->mempolicy_flags && l->mempolicy_flags[i]; i++) {
			if (!lookup(mpol_flags, ARRAY_SIZE(mpol_flags), l->mempolicy_flags[i], &v))
				return kelp_fail(err, EINVAL, "linux.memoryPolicy.flags[%zu]: unknown flag %s", i,
						 l->mempolicy_flags[i]);
			a->mempolicy_mode |= (int)v;
		}
		if (l->mempolicy_nodes && *l->mempolicy_nodes &&
		    !parse_list(l->mempolicy_nodes, 8 * sizeof(a->mempolicy_nodes), add_node, a->mempolicy_nodes))
			return kelp_fail(err, EINVAL, "linux.memoryPolicy.nodes: invalid node list '%s'", l->mempolicy_nodes);
		a->has_mempolicy = true;
	}
	if (l->n_time_offsets && !(l->ns[NS_TIME].present && !l->ns[NS_TIME].path))
		return kelp_fail(err, EINVAL, "linux.timeOffsets: needs a new time namespace");
	return 0;
}

int procattr_apply(const struct procattr *a, const struct spec_process *p, struct kelp_err *err)
{
	if (a->has_personality && personality(a->personality) < 0)
		return kelp_error(err, errno, "personality 0x%lx", a->personality);
	if (a->has_mempolicy &&
	    syscall(SYS_set_mempolicy, a->mempolicy_mode, a->mempolicy_nodes, 8 * sizeof(a->mempolicy_nodes)) < 0)
		return kelp_error(err, errno, "set_mempolicy mode 0x%x", a->mempolicy_mode);
	if (a->has_sched) {
		struct kelp_sched_attr at = {
			.size = sizeof(at),
			.sched_policy = a->sched_policy,
			.sched_flags = a->sched_flags,
			.sched_nice = p->sched.nice,
			.sched_priority = (uint32_t)p->sched.priority,
			.sched_runtime = p->sched.runtime,
			.sched_deadline = p->sched.deadline,
			.sched_period = p->sched.period,
		};
		if (syscall(SYS_sched_setattr, 0, &at, 0) < 0)
			return kelp_error(err, errno, "sched_setattr policy %s", p->sched.policy);
	}
	/* IOPRIO_WHO_PROCESS: the process, and what it forks */
	if (a->has_ioprio && syscall(SYS_ioprio_set, 1, 0, a->ioprio) < 0)
		return kelp_error(err, errno, "ioprio_set %s %d", p->ioprio.klass, p->ioprio.priority);
	return 0;
}

int time_offsets_apply(const struct spec_linux *l, struct kelp_err *err)
{
	if (!l->n_time_offsets)
		return 0;
	char buf[256];
	size_t o = 0;
	for (size_t i = 0; i < l->n_time_offsets; i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s %lld %u\n", l->time_offsets[i].clock,
				      (long long)l->time_offsets[i].secs, l->time_offsets[i].nanosecs);
	cleanup_close int fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return kelp_error(err, errno, "open /proc/self/timens_offsets");
	/* one write: the kernel takes all offsets at once */
	if (write(fd, buf, o) != (ssize_t)o)
		return kelp_error(err, errno, "write time namespace offsets");
	return 0;
}

int intel_rdt_check(const struct spec_linux *l, struct kelp_err *err)
{
	if (!l->has_intel_rdt)
		return 0;
	cleanup_free char *mi = NULL;
	if (kelp_read_file_at(AT_FDCWD, "/proc/self/mountinfo", 4 << 20, &mi, NULL, err) < 0)
		return -1;
	if (!strstr(mi, " - resctrl "))
		return kelp_fail(err, ENOTSUP,
				 "linux.intelRdt: no resctrl filesystem is mounted (this machine has no Intel RDT support)");
	return kelp_fail(err, ENOTSUP, "linux.intelRdt: resctrl is mounted, but kelp does not manage it yet");
}
