/* pause, resume, update and stats of a running container: all through its cgroup. */
#include <errno.h>

#include "cgroup.h"
#include "cleanup.h"
#include "internal.h"

/* The container's state and cgroup, if its status is one of `want` (a bit mask). */
static int open_live(const struct kelp_runtime *rt, const char *id, unsigned want, struct kelp_state **ret_state,
		     struct kelp_cgroup **ret_cg, struct kelp_err *err)
{
	struct kelp_state *s;
	if (kelp_state_load(rt, id, &s, err) < 0)
		return -1;
	if (!(want & (1u << s->status))) {
		enum kelp_status st = s->status;
		kelp_state_free(s);
		if (st == KELP_PAUSED)
			return kelp_fail(err, EINVAL, "container %s is paused", id);
		if (want == 1u << KELP_PAUSED)
			return kelp_fail(err, EINVAL, "container %s is not paused", id);
		return kelp_fail(err, EINVAL, "container %s is not running", id);
	}
	if (!s->cgroup_path || cgroup_reopen(s->cgroup_path, ret_cg, err) < 0) {
		if (!s->cgroup_path)
			kelp_fail(err, EINVAL, "container %s has no cgroup", id);
		kelp_state_free(s);
		return -1;
	}
	*ret_state = s;
	return 0;
}

static int freeze(const struct kelp_runtime *rt, const char *id, bool frozen, struct kelp_err *err)
{
	struct kelp_state *s;
	struct kelp_cgroup *cg;
	unsigned want = frozen ? (1u << KELP_RUNNING | 1u << KELP_CREATED) : 1u << KELP_PAUSED;
	if (open_live(rt, id, want, &s, &cg, err) < 0)
		return -1;
	int r = cgroup_freeze(cg, frozen, err);
	cgroup_free(cg);
	kelp_state_free(s);
	return r;
}

int kelp_pause(const struct kelp_runtime *rt, const char *id, struct kelp_err *err)
{
	return freeze(rt, id, true, err);
}

int kelp_resume(const struct kelp_runtime *rt, const char *id, struct kelp_err *err)
{
	return freeze(rt, id, false, err);
}

int kelp_update(const struct kelp_runtime *rt, const char *id, struct spec_resources *r, struct kelp_err *err)
{
	struct kelp_state *s;
	struct kelp_cgroup *cg;
	unsigned want = 1u << KELP_RUNNING | 1u << KELP_CREATED | 1u << KELP_PAUSED;
	if (open_live(rt, id, want, &s, &cg, err) < 0)
		return -1;
	/* device rules are the container's for life, as with runc */
	r->keep_devices = r->n_devices == 0;
	int ret = cgroup_apply(cg, r, err);
	cgroup_free(cg);
	kelp_state_free(s);
	return ret;
}

int kelp_stats(const struct kelp_runtime *rt, const char *id, struct cg_stats *ret, struct kelp_err *err)
{
	struct kelp_state *s;
	struct kelp_cgroup *cg;
	unsigned want = 1u << KELP_RUNNING | 1u << KELP_CREATED | 1u << KELP_PAUSED;
	if (open_live(rt, id, want, &s, &cg, err) < 0)
		return -1;
	int r = cgroup_stats(cg, ret, err);
	cgroup_free(cg);
	kelp_state_free(s);
	return r;
}
