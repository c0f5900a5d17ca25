/* What the cgroup drivers (cgroup-v1.c, cgroup-v2.c, cgroup-hybrid.c) share, and the pure
 * helpers the unit tests call directly. */
#pragma once
#include <linux/bpf.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cgroup.h"

#define CG_ROOT "/sys/fs/cgroup"

/* One mounted hierarchy. */
struct cg_hier {
	char *mnt;      /* mount point: "/sys/fs/cgroup/cpu,cpuacct" */
	char *name;     /* its directory name under the cgroup root: "cpu,cpuacct", "systemd", "unified" */
	char *opts;     /* v1: controllers and name= for a fresh mount ("cpu,cpuacct", "name=systemd") */
	char *mnt_root; /* the cgroup shown at mnt: "/" unless bind-mounted from a sub-cgroup */
	char *path;     /* the container's cgroup in this hierarchy when it differs from cg->path
			 * (a relative cgroupsPath joins each hierarchy's own cgroup); else NULL */
	bool v2;
};

/* A symlink in the cgroup root ("cpu" -> "cpu,cpuacct"), recreated by cgroup_mount. */
struct cg_link {
	char *name, *target;
};

struct cg_ops {
	int (*create)(struct kelp_cgroup *cg, struct kelp_err *err);
	int (*apply)(struct kelp_cgroup *cg, const struct spec_resources *r, struct kelp_err *err);
	int (*enter)(struct kelp_cgroup *cg, pid_t pid, struct kelp_err *err);
	int (*freeze)(struct kelp_cgroup *cg, bool frozen, struct kelp_err *err);
	int (*mount)(const struct kelp_cgroup *cg, int rootfd, const char *dest, unsigned long flags, bool new_cgroupns,
		     struct kelp_err *err);
};

struct kelp_cgroup {
	enum cg_mode mode;
	char *path; /* "/kelp/abc" */
	/* v1: the v1 hierarchies; hybrid: those, then the unified one; v2: the one hierarchy */
	struct cg_hier *hier;
	size_t n_hier;
	struct cg_link *links;
	size_t n_links;
	const struct cg_ops *ops;
};

extern const struct cg_ops cg_v1_ops, cg_v2_ops, cg_hybrid_ops;

/* ---- shared helpers (cgroup.c) ---- */

/* The container's cgroup path in h. */
const char *cg_hpath(const struct kelp_cgroup *cg, const struct cg_hier *h);
/* The line of /proc/self/cgroup text for hierarchy h: its path, or NULL. */
char *cg_own_in(const char *text, const struct cg_hier *h);

/* The container's directory in h: "<mnt><path>" (caller frees). */
char *cg_dir(const struct kelp_cgroup *cg, const struct cg_hier *h);
/* Write value to <dir>/file; errors read "write VALUE to /sys/fs/cgroup/...: strerror". */
int cg_write(const struct kelp_cgroup *cg, const struct cg_hier *h, const char *file, const char *value,
	     struct kelp_err *err);
/* Same on an arbitrary directory (ancestors). */
int cg_write_path(const char *dir, const char *file, const char *value, struct kelp_err *err);
/* Read <dir>/file, trailing newlines stripped. */
int cg_read(const struct kelp_cgroup *cg, const struct cg_hier *h, const char *file, char **ret, struct kelp_err *err);
int cg_read_path(const char *dir, const char *file, char **ret, struct kelp_err *err);
bool cg_has_file(const struct kelp_cgroup *cg, const struct cg_hier *h, const char *file);
/* mkdir -p of the container's path under h->mnt; every created level is passed to `level` (may
 * be NULL) with its parent, so v1 cpuset can copy values down. */
int cg_mkdir_p(const struct kelp_cgroup *cg, const struct cg_hier *h,
	       int (*level)(const char *parent, const char *dir, struct kelp_err *err), struct kelp_err *err);
/* The v1 hierarchy holding controller (e.g. "memory"), or NULL. */
const struct cg_hier *cg_v1_find(const struct kelp_cgroup *cg, const char *controller);
/* The cgroup2 hierarchy (v2: the one; hybrid: unified; v1: NULL). */
const struct cg_hier *cg_unified(const struct kelp_cgroup *cg);
/* Write pid to cgroup.procs of h. */
int cg_enter_hier(const struct kelp_cgroup *cg, const struct cg_hier *h, pid_t pid, struct kelp_err *err);
/* sleep about ms milliseconds */
void cg_sleep_ms(long ms);
/* mount(2) onto the directory fd (through /proc/self/fd, so nothing is re-resolved); errors
 * name src and `display`. */
int cg_mount_fd(const char *src, int fd, const char *display, const char *fstype, unsigned long flags,
		const char *data, struct kelp_err *err);
/* Bind-remount the mount now on top of dirfd/path (resolved in dirfd) with flags. */
int cg_remount_in(int dirfd, const char *path, const char *display, unsigned long flags, struct kelp_err *err);
/* Show h's container directory at dirfd/path (resolved in dirfd): a bind mount, or with
 * new_cgroupns a fresh cgroup/cgroup2 mount (the namespace root is the container's cgroup);
 * then remounted with flags. */
int cg_mount_hier(const struct kelp_cgroup *cg, const struct cg_hier *h, int dirfd, const char *path,
		  const char *display, unsigned long flags, bool new_cgroupns, struct kelp_err *err);

/* ---- pure helpers, unit-tested ---- */

/* Normalize a cgroup path into "/a/b": empty and "." components dropped; "..", control
 * characters and an empty result (the root) refused. `what` names it in errors. */
int cg_normalize(const char *path, const char *what, char **ret, struct kelp_err *err);
/* cgroups_path (may be NULL) + id + own cgroup (for relative paths) -> absolute path. */
int cg_resolve_path(const char *cgroups_path, const char *id, const char *own, char **ret, struct kelp_err *err);
/* Strip the mount root from a /proc/self/cgroup path ("/a/b" under "/a" -> "/b"). */
char *cg_strip_root(const char *path, const char *mnt_root);
/* Whether the comma-separated list has the token. */
bool cg_list_has(const char *list, const char *token);

/* cpu.shares -> cpu.weight as runc does; 0 stays 0 ("not set"). */
uint64_t cg_shares_to_weight(uint64_t shares);
/* OCI memory.swap (memory+swap) -> memory.swap.max (-1 = "max"). *ret_set false: leave it
 * alone; swap == limit gives 0: no swap at all. */
int cg_swap_to_v2(int64_t swap, int64_t limit, bool *ret_set, int64_t *ret, struct kelp_err *err);
/* A v2 memory value: -1 (or any negative) -> "max". */
void cg_v2_mem_value(int64_t v, char *buf, size_t size);
/* pids.max for an OCI limit: > 0 the number, < 0 "max"; 0 means "not set" (false), as runc. */
bool cg_pids_value(int64_t limit, char *buf, size_t size);
/* cpu.max "quota period" as runc: quota <= 0 is "max"; false when neither is set. */
bool cg_cpu_max_value(bool has_quota, int64_t quota, bool has_period, uint64_t period, char *buf, size_t size);
/* A hugepage size as file names spell it: digits then KB, MB, GB... ("2MB"). */
bool cg_hugetlb_size_ok(const char *s);
/* A unified key is a file name in the container's directory: no '/', not "." or "..". */
bool cg_unified_key_ok(const char *key);

/* Whether a resource group has anything to write (so its controller is needed). */
bool cg_memory_needed(const struct spec_memory *m);
bool cg_cpu_needed(const struct spec_cpu *c);
bool cg_cpuset_needed(const struct spec_cpu *c);
/* kernel / kernelTCP are not supported by current kernels: warn when they are set. */
void cg_memory_warn_kmem(const struct spec_memory *m);

/* ---- devices (cgroup-devices-bpf.c) ---- */

/* The rules a container always gets after its own: null, zero, full, random, urandom, tty,
 * console, ptmx, pts. */
const struct spec_device_rule *cg_default_device_rules(size_t *ret_n);
/* r->devices followed by the defaults (caller frees). */
struct spec_device_rule *cg_device_rules(const struct spec_resources *r, size_t *ret_n);
/* Refuse a rule that is not type a/c/b, access of "rwm" letters, major/minor -1 or 0..INT32_MAX. */
int cg_device_rules_check(const struct spec_device_rule *rules, size_t n, struct kelp_err *err);
/* The v1 line for a rule ("c 1:3 rwm"). */
void cg_device_rule_line(const struct spec_device_rule *d, char *buf, size_t size);
/* Build the BPF_PROG_TYPE_CGROUP_DEVICE program for rules (last match wins, default deny). */
int cg_devices_bpf_build(const struct spec_device_rule *rules, size_t n, struct bpf_insn **ret, size_t *ret_n,
			 struct kelp_err *err);
/* Load it and attach it to the cgroup directory `dir` (BPF_F_ALLOW_MULTI), replacing the device
 * programs kelp attached there before. */
int cg_devices_bpf_apply(const char *dir, const struct spec_device_rule *rules, size_t n, struct kelp_err *err);

/* ---- v1 pieces used by hybrid (cgroup-v1.c) ---- */

int cg1_create(struct kelp_cgroup *cg, struct kelp_err *err);
/* Apply r using v1 hierarchies; with `unified`, a controller that has no v1 hierarchy but is
 * bound to the unified one is written there (hybrid). unified resources are not handled. */
int cg1_apply(struct kelp_cgroup *cg, const struct spec_resources *r, const struct cg_hier *unified,
	      struct kelp_err *err);
int cg1_enter(struct kelp_cgroup *cg, pid_t pid, struct kelp_err *err);
int cg1_freeze(struct kelp_cgroup *cg, bool frozen, struct kelp_err *err);
/* v1/hybrid layout: tmpfs with one directory per hierarchy (cgroup2 ones included). */
int cg1_mount(const struct kelp_cgroup *cg, int rootfd, const char *dest, unsigned long flags, bool new_cgroupns,
	      struct kelp_err *err);

/* ---- v2 pieces used by hybrid (cgroup-v2.c) ---- */

/* mkdir the container's directory in h (no controller enabling). */
int cg2_mkdir(struct kelp_cgroup *cg, const struct cg_hier *h, struct kelp_err *err);
/* Whether controller is listed in h's root cgroup.controllers. */
bool cg2_available(const struct cg_hier *h, const char *controller);
/* Make controller usable in the container's directory (enable it in cgroup.subtree_control of
 * every ancestor). `what` names the resource: "memory limit: the memory controller is not
 * available in the cgroup v2 hierarchy". */
int cg2_need(struct kelp_cgroup *cg, const struct cg_hier *h, const char *controller, const char *what,
	     struct kelp_err *err);
int cg2_set_memory(struct kelp_cgroup *cg, const struct cg_hier *h, const struct spec_memory *m,
		   struct kelp_err *err);
int cg2_set_cpu(struct kelp_cgroup *cg, const struct cg_hier *h, const struct spec_cpu *c, struct kelp_err *err);
int cg2_set_cpuset(struct kelp_cgroup *cg, const struct cg_hier *h, const struct spec_cpu *c, struct kelp_err *err);
int cg2_set_pids(struct kelp_cgroup *cg, const struct cg_hier *h, const struct spec_pids *p, struct kelp_err *err);
int cg2_set_hugetlb(struct kelp_cgroup *cg, const struct cg_hier *h, const struct spec_hugetlb *l, size_t n,
		    struct kelp_err *err);
int cg2_set_devices(struct kelp_cgroup *cg, const struct cg_hier *h, const struct spec_resources *r,
		    struct kelp_err *err);
int cg2_set_unified(struct kelp_cgroup *cg, const struct cg_hier *h, char *const *keys, char *const *values,
		    struct kelp_err *err);
int cg2_freeze(struct kelp_cgroup *cg, const struct cg_hier *h, bool frozen, struct kelp_err *err);
