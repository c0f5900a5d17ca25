/* The hybrid driver: the v1 driver for the v1 hierarchies, plus the cgroup2 hierarchy mounted at
 * /sys/fs/cgroup/unified for the controllers bound there (hugetlb on a machine whose v1 mounts
 * leave it out) and the unified resources. The container is placed in both. */
#include "cgroup-internal.h"

static int hybrid_create(struct kelp_cgroup *cg, struct kelp_err *err)
{
	if (cg1_create(cg, err) < 0)
		return -1;
	/* Controllers are enabled in the unified hierarchy only when a resource needs one. */
	return cg2_mkdir(cg, cg_unified(cg), err);
}

static int hybrid_apply(struct kelp_cgroup *cg, const struct spec_resources *r, struct kelp_err *err)
{
	const struct cg_hier *u = cg_unified(cg);
	if (cg1_apply(cg, r, u, err) < 0)
		return -1;
	return cg2_set_unified(cg, u, r->unified_keys, r->unified_values, err);
}

static int hybrid_enter(struct kelp_cgroup *cg, pid_t pid, struct kelp_err *err)
{
	if (cg1_enter(cg, pid, err) < 0)
		return -1;
	return cg_enter_hier(cg, cg_unified(cg), pid, err);
}

static int hybrid_freeze(struct kelp_cgroup *cg, bool frozen, struct kelp_err *err)
{
	return cg1_freeze(cg, frozen, err);
}

const struct cg_ops cg_hybrid_ops = {
	.create = hybrid_create,
	.apply = hybrid_apply,
	.enter = hybrid_enter,
	.freeze = hybrid_freeze,
	.mount = cg1_mount,
};
