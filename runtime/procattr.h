/* Per-process scheduling attributes from config.json: personality, scheduler, ioPriority,
 * memoryPolicy, execCPUAffinity; and the time namespace's offsets. Names are checked when
 * prepared (in the runtime, before anything exists) and applied in the container's process. */
#pragma once
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "spec.h"

struct procattr {
	bool has_personality;
	unsigned long personality;
	bool has_sched;
	uint32_t sched_policy;
	uint64_t sched_flags;
	bool has_ioprio;
	int ioprio;
	bool has_mempolicy;
	int mempolicy_mode;
	unsigned long mempolicy_nodes[16]; /* up to 1024 nodes */
	bool has_affinity_initial, has_affinity_final;
	cpu_set_t affinity_initial, affinity_final;
};

/* The names `features` reports for memoryPolicy (NULL-terminated). */
extern const char *const mempolicy_mode_names[], *const mempolicy_flag_names[];

/* Check and convert; `l` may be NULL (exec: only the process's own attributes). */
int procattr_prepare(const struct spec_process *p, const struct spec_linux *l, struct procattr *ret, struct kelp_err *err);
/* In the process that will exec: personality, memory policy, scheduler, I/O priority. */
int procattr_apply(const struct procattr *a, const struct spec_process *p, struct kelp_err *err);
/* Write the time namespace offsets; call after unshare(CLONE_NEWTIME), before the fork. */
int time_offsets_apply(const struct spec_linux *l, struct kelp_err *err);
/* "0-3,7" into a set; false for a malformed list or a cpu over CPU_SETSIZE. */
bool cpu_list_parse(const char *list, cpu_set_t *ret);
/* linux.intelRdt: a clear error where no resctrl filesystem is mounted. */
int intel_rdt_check(const struct spec_linux *l, struct kelp_err *err);
