/* Cgroups behind one interface, with three drivers: v2 (unified), v1 (legacy, one hierarchy per
 * controller) and hybrid (v1 controllers plus a cgroup2 mount at /sys/fs/cgroup/unified, which
 * holds whatever controllers are bound there — hugetlb on this machine). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "error.h"
#include "spec.h"

enum cg_mode { CG_V1, CG_V2, CG_HYBRID };

struct kelp_cgroup; /* opaque; one per container */

/* Which layout this mount namespace sees at /sys/fs/cgroup (statfs + the unified mount).
 * `root` is normally "/sys/fs/cgroup"; tests may point it elsewhere. */
int cgroup_detect(const char *root, enum cg_mode *ret, struct kelp_err *err);
const char *cgroup_mode_name(enum cg_mode m);

/* Resolve the container's cgroup: cgroups_path absolute ("/a/b") is taken from the hierarchy
 * root; relative ("a/b") is joined under the cgroup of the calling process; NULL or "" means
 * "/kelp/<id>". A path with ".." components is refused. Creates nothing. */
int cgroup_open(const char *cgroups_path, const char *id, struct kelp_cgroup **ret, struct kelp_err *err);
/* What the state file keeps to find the cgroup again (allocated), and reopening from it. */
char *cgroup_saved_path(const struct kelp_cgroup *cg);
int cgroup_reopen(const char *saved, struct kelp_cgroup **ret, struct kelp_err *err);
/* Whether the freezer holds the cgroup frozen. */
bool cgroup_is_frozen(struct kelp_cgroup *cg);
void cgroup_free(struct kelp_cgroup *cg);

enum cg_mode cgroup_mode(const struct kelp_cgroup *cg);
/* The absolute cgroup path ("/kelp/abc"); with a relative cgroupsPath, the memory
 * hierarchy's (other hierarchies may differ: see cgroup_saved_path). */
const char *cgroup_path(const struct kelp_cgroup *cg);

/* mkdir in every hierarchy the driver uses (v1: each mounted controller, plus name=systemd;
 * hybrid: those plus unified; v2: enable needed controllers in cgroup.subtree_control of the
 * ancestors). Existing directories are fine (a joined cgroup). */
int cgroup_create(struct kelp_cgroup *cg, struct kelp_err *err);
/* Write linux.resources. A value the kernel refuses fails with the file and value named; a
 * resource the layout cannot express at all (e.g. hugetlb with no hugetlb controller) fails
 * with a message saying so. The default device rules a container needs (null, zero, full,
 * random, urandom, tty, console, ptmx, every pts) are allowed after r->devices, as runc does. */
int cgroup_apply(struct kelp_cgroup *cg, const struct spec_resources *r, struct kelp_err *err);
/* Move pid into the cgroup in every hierarchy. */
int cgroup_enter(struct kelp_cgroup *cg, pid_t pid, struct kelp_err *err);
/* Every pid in the cgroup (cgroup.procs of the pids or first hierarchy). */
int cgroup_pids(struct kelp_cgroup *cg, pid_t **ret, size_t *ret_n, struct kelp_err *err);
/* Freeze or thaw (v1 freezer.state, v2 cgroup.freeze); waits until the state is reached. */
int cgroup_freeze(struct kelp_cgroup *cg, bool frozen, struct kelp_err *err);
/* rmdir in every hierarchy (children first); retries briefly while the last tasks exit.
 * Missing directories are fine. */
int cgroup_destroy(struct kelp_cgroup *cg, struct kelp_err *err);

/* Inside the container's new mount namespace, before pivot_root: mount the cgroup filesystem at
 * `dest` (a path inside the rootfs opened as rootfd) as a `type: cgroup` mount asks. v1/hybrid:
 * a tmpfs with one directory per hierarchy, each showing the container's own cgroup; v2: the
 * container's cgroup. With a new cgroup namespace, fresh cgroup mounts are used; without one,
 * bind mounts of the container's cgroup directories. `flags` are MS_* flags (MS_RDONLY...). */
int cgroup_mount(const struct kelp_cgroup *cg, int rootfd, const char *dest, unsigned long flags, bool new_cgroupns,
		 struct kelp_err *err);

/* Resource usage, as `events --stats` reports it (runc's field names); 0 where unknown. */
struct cg_stats {
	unsigned long long cpu_total_ns, cpu_user_ns, cpu_kernel_ns;
	unsigned long long cpu_periods, cpu_throttled_periods, cpu_throttled_ns;
	unsigned long long mem_usage, mem_max_usage, mem_limit, mem_failcnt;
	unsigned long long swap_usage, swap_limit;
	unsigned long long pids_current, pids_limit;
	unsigned long long oom_kills;
};
int cgroup_stats(struct kelp_cgroup *cg, struct cg_stats *ret, struct kelp_err *err);
