#include "spec.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "cleanup.h"
#include "fs.h"
#include "json.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

const char *const ns_type_names[NS_COUNT] = { "pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time" };
const char *const ns_type_names_null[NS_COUNT + 1] = { "pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time", NULL };
const char *const ns_proc_names[NS_COUNT] = { "pid", "net", "mnt", "ipc", "uts", "user", "cgroup", "time" };
const int ns_clone_flags[NS_COUNT] = { CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWIPC,
				       CLONE_NEWUTS, CLONE_NEWUSER, CLONE_NEWCGROUP, CLONE_NEWTIME };

const char *const kelp_hook_names[HOOK_COUNT + 1] = { "prestart",  "createRuntime", "createContainer",
							"startContainer", "poststart", "poststop", NULL };

#define CONFIG_MAX (16 * 1024 * 1024)

static const struct {
	const char *name;
	int resource;
} rlimit_names[] = {
	{ "RLIMIT_AS", RLIMIT_AS },	    { "RLIMIT_CORE", RLIMIT_CORE },
	{ "RLIMIT_CPU", RLIMIT_CPU },	    { "RLIMIT_DATA", RLIMIT_DATA },
	{ "RLIMIT_FSIZE", RLIMIT_FSIZE },   { "RLIMIT_LOCKS", RLIMIT_LOCKS },
	{ "RLIMIT_MEMLOCK", RLIMIT_MEMLOCK }, { "RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE },
	{ "RLIMIT_NICE", RLIMIT_NICE },	    { "RLIMIT_NOFILE", RLIMIT_NOFILE },
	{ "RLIMIT_NPROC", RLIMIT_NPROC },   { "RLIMIT_RSS", RLIMIT_RSS },
	{ "RLIMIT_RTPRIO", RLIMIT_RTPRIO }, { "RLIMIT_RTTIME", RLIMIT_RTTIME },
	{ "RLIMIT_SIGPENDING", RLIMIT_SIGPENDING }, { "RLIMIT_STACK", RLIMIT_STACK },
};

int rlimit_from_name(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(rlimit_names); i++)
		if (strcmp(rlimit_names[i].name, name) == 0)
			return rlimit_names[i].resource;
	return -1;
}

#define KEYS(...) ((const char *const[]){ __VA_ARGS__, NULL })

/* An object whose keys are all known: an unknown one is an error naming it, never ignored. */
static int kj_object(const struct kj *n, const char *const *known, struct kelp_err *err)
{
	if (kj_expect_object(n, err) < 0)
		return -1;
	return kj_only_keys(n, known, err);
}

/* A field kelp knows but cannot honour here: refused with the reason, when present. */
static int unsupported(const struct kj *obj, const char *key, const char *why, struct kelp_err *err)
{
	struct kj f;
	int r = kj_field(obj, key, &f, err);
	if (r < 0)
		return -1;
	if (r == 0)
		return 0;
	/* empty objects and arrays ask for nothing */
	if ((YAJL_IS_OBJECT(f.v) && f.v->u.object.len == 0) || (YAJL_IS_ARRAY(f.v) && f.v->u.array.len == 0) ||
	    (YAJL_IS_STRING(f.v) && !*f.v->u.string))
		return 0;
	return kelp_fail(err, ENOTSUP, "%s: not supported: %s", f.path, why);
}

static int parse_idmaps(const struct kj *obj, const char *key, struct spec_idmap **ret, size_t *ret_n,
			struct kelp_err *err)
{
	struct kj arr;
	int r = kj_field(obj, key, &arr, err);
	if (r <= 0)
		return r;
	if (kj_expect_array(&arr, err) < 0)
		return -1;
	size_t n = kj_len(&arr);
	cleanup_free struct spec_idmap *maps = xcalloc(n, sizeof(*maps));
	for (size_t i = 0; i < n; i++) {
		struct kj e, f;
		kj_index(&arr, i, &e);
		if (kj_object(&e, KEYS("containerID", "hostID", "size"), err) < 0)
			return -1;
		if (kj_required(&e, "containerID", &f, err) < 0 || kj_uint32(&f, &maps[i].container_id, err) < 0)
			return -1;
		if (kj_required(&e, "hostID", &f, err) < 0 || kj_uint32(&f, &maps[i].host_id, err) < 0)
			return -1;
		if (kj_required(&e, "size", &f, err) < 0 || kj_uint32(&f, &maps[i].size, err) < 0)
			return -1;
	}
	*ret = TAKE_PTR(maps);
	*ret_n = n;
	return 0;
}

static int parse_user(const struct kj *obj, struct spec_user *u, struct kelp_err *err)
{
	struct kj f;
	if (kj_opt_uint32(obj, "uid", &u->uid, NULL, err) < 0 || kj_opt_uint32(obj, "gid", &u->gid, NULL, err) < 0)
		return -1;
	if (kj_opt_uint32(obj, "umask", &u->umask, &u->has_umask, err) < 0)
		return -1;
	if (kj_opt_string(obj, "username", &u->username, err) < 0)
		return -1;
	int r = kj_field(obj, "additionalGids", &f, err);
	if (r < 0)
		return -1;
	if (r > 0) {
		if (kj_expect_array(&f, err) < 0)
			return -1;
		size_t n = kj_len(&f);
		u->additional_gids = xcalloc(n, sizeof(uint32_t));
		u->n_additional_gids = n;
		for (size_t i = 0; i < n; i++) {
			struct kj e;
			kj_index(&f, i, &e);
			if (kj_uint32(&e, &u->additional_gids[i], err) < 0)
				return -1;
		}
	}
	return 0;
}

static int parse_caps(const struct kj *obj, struct spec_caps *c, struct kelp_err *err)
{
	if (kj_object(obj, KEYS("bounding", "effective", "inheritable", "permitted", "ambient"), err) < 0)
		return -1;
	if (kj_opt_string_array(obj, "bounding", &c->bounding, NULL, err) < 0 ||
	    kj_opt_string_array(obj, "effective", &c->effective, NULL, err) < 0 ||
	    kj_opt_string_array(obj, "inheritable", &c->inheritable, NULL, err) < 0 ||
	    kj_opt_string_array(obj, "permitted", &c->permitted, NULL, err) < 0 ||
	    kj_opt_string_array(obj, "ambient", &c->ambient, NULL, err) < 0)
		return -1;
	return 0;
}

static int parse_process_obj(const struct kj *obj, struct spec_process *p, bool require_cwd, struct kelp_err *err)
{
	struct kj f;
	if (kj_object(obj,
		      KEYS("terminal", "consoleSize", "user", "args", "commandLine", "env", "cwd", "capabilities", "rlimits",
			   "noNewPrivileges", "apparmorProfile", "selinuxLabel", "oomScoreAdj", "scheduler", "ioPriority",
			   "execCPUAffinity"),
		      err) < 0)
		return -1;
	if (kj_opt_bool(obj, "terminal", &p->terminal, err) < 0)
		return -1;
	if (kj_field(obj, "consoleSize", &f, err) > 0) {
		if (kj_object(&f, KEYS("height", "width"), err) < 0 ||
		    kj_opt_uint32(&f, "height", &p->console_height, NULL, err) < 0 ||
		    kj_opt_uint32(&f, "width", &p->console_width, NULL, err) < 0)
			return -1;
	}
	int r = kj_field(obj, "user", &f, err);
	if (r < 0)
		return -1;
	if (r > 0 && (kj_object(&f, KEYS("uid", "gid", "umask", "additionalGids", "username"), err) < 0 || parse_user(&f, &p->user, err) < 0))
		return -1;
	if (kj_opt_string_array(obj, "args", &p->args, NULL, err) < 0)
		return -1;
	if (kj_field(obj, "commandLine", &f, err) > 0)
		return kelp_fail(err, EINVAL, "%s: only supported on Windows", f.path);
	if (kj_opt_string_array(obj, "env", &p->env, NULL, err) < 0)
		return -1;
	if (require_cwd) {
		if (kj_req_string(obj, "cwd", &p->cwd, err) < 0)
			return -1;
	} else if (kj_opt_string(obj, "cwd", &p->cwd, err) < 0) {
		return -1;
	}
	r = kj_field(obj, "capabilities", &f, err);
	if (r < 0)
		return -1;
	if (r > 0) {
		p->has_caps = true;
		if (parse_caps(&f, &p->caps, err) < 0)
			return -1;
	}
	r = kj_field(obj, "rlimits", &f, err);
	if (r < 0)
		return -1;
	if (r > 0) {
		if (kj_expect_array(&f, err) < 0)
			return -1;
		size_t n = kj_len(&f);
		p->rlimits = xcalloc(n, sizeof(*p->rlimits));
		p->n_rlimits = n;
		for (size_t i = 0; i < n; i++) {
			struct kj e, g;
			kj_index(&f, i, &e);
			struct spec_rlimit *rl = &p->rlimits[i];
			if (kj_object(&e, KEYS("type", "soft", "hard"), err) < 0 || kj_req_string(&e, "type", &rl->name, err) < 0)
				return -1;
			rl->resource = rlimit_from_name(rl->name);
			if (rl->resource < 0)
				return kelp_fail(err, EINVAL, "%s.type: unknown rlimit %s", e.path, rl->name);
			if (kj_required(&e, "soft", &g, err) < 0 || kj_uint64(&g, &rl->soft, err) < 0)
				return -1;
			if (kj_required(&e, "hard", &g, err) < 0 || kj_uint64(&g, &rl->hard, err) < 0)
				return -1;
			for (size_t j = 0; j < i; j++)
				if (p->rlimits[j].resource == rl->resource)
					return kelp_fail(err, EINVAL, "%s.type: duplicate rlimit %s", e.path, rl->name);
		}
	}
	if (kj_opt_bool(obj, "noNewPrivileges", &p->no_new_privileges, err) < 0)
		return -1;
	if (kj_opt_int32(obj, "oomScoreAdj", &p->oom_score_adj, &p->has_oom_score_adj, err) < 0)
		return -1;
	if (p->has_oom_score_adj && (p->oom_score_adj < -1000 || p->oom_score_adj > 1000))
		return kelp_fail(err, EINVAL, "%s.oomScoreAdj: %d is outside -1000..1000", obj->path, p->oom_score_adj);
	if (kj_opt_string(obj, "apparmorProfile", &p->apparmor_profile, err) < 0 ||
	    kj_opt_string(obj, "selinuxLabel", &p->selinux_label, err) < 0)
		return -1;
	if (p->apparmor_profile && *p->apparmor_profile)
		return kelp_fail(err, ENOTSUP, "%s.apparmorProfile: AppArmor is not enabled on this host", obj->path[0] ? obj->path : "process");
	if (p->selinux_label && *p->selinux_label)
		return kelp_fail(err, ENOTSUP, "%s.selinuxLabel: SELinux is not enabled on this host", obj->path[0] ? obj->path : "process");
	r = kj_field(obj, "scheduler", &f, err);
	if (r < 0)
		return -1;
	if (r > 0) {
		struct spec_scheduler *sc = &p->sched;
		sc->present = true;
		if (kj_object(&f, KEYS("policy", "nice", "priority", "flags", "runtime", "deadline", "period"), err) < 0 || kj_req_string(&f, "policy", &sc->policy, err) < 0 ||
		    kj_opt_int32(&f, "nice", &sc->nice, NULL, err) < 0 ||
		    kj_opt_int32(&f, "priority", &sc->priority, NULL, err) < 0 ||
		    kj_opt_string_array(&f, "flags", &sc->flags, NULL, err) < 0 ||
		    kj_opt_uint64(&f, "runtime", &sc->runtime, NULL, err) < 0 ||
		    kj_opt_uint64(&f, "deadline", &sc->deadline, NULL, err) < 0 ||
		    kj_opt_uint64(&f, "period", &sc->period, NULL, err) < 0)
			return -1;
	}
	r = kj_field(obj, "ioPriority", &f, err);
	if (r < 0)
		return -1;
	if (r > 0) {
		p->ioprio.present = true;
		struct kj g;
		if (kj_object(&f, KEYS("class", "priority"), err) < 0 || kj_req_string(&f, "class", &p->ioprio.klass, err) < 0 ||
		    kj_required(&f, "priority", &g, err) < 0 || kj_int32(&g, &p->ioprio.priority, err) < 0)
			return -1;
		if (p->ioprio.priority < 0 || p->ioprio.priority > 7)
			return kelp_fail(err, EINVAL, "%s.priority: %d is outside 0..7", f.path, p->ioprio.priority);
	}
	r = kj_field(obj, "execCPUAffinity", &f, err);
	if (r < 0)
		return -1;
	if (r > 0 && (kj_object(&f, KEYS("initial", "final"), err) < 0 || kj_opt_string(&f, "initial", &p->affinity_initial, err) < 0 ||
		      kj_opt_string(&f, "final", &p->affinity_final, err) < 0))
		return -1;
	return 0;
}

static int parse_mounts(const struct kj *root, struct spec *s, struct kelp_err *err)
{
	struct kj arr;
	int r = kj_field(root, "mounts", &arr, err);
	if (r <= 0)
		return r;
	if (kj_expect_array(&arr, err) < 0)
		return -1;
	s->n_mounts = kj_len(&arr);
	s->mounts = xcalloc(s->n_mounts, sizeof(*s->mounts));
	for (size_t i = 0; i < s->n_mounts; i++) {
		struct kj e;
		struct spec_mount *m = &s->mounts[i];
		kj_index(&arr, i, &e);
		if (kj_object(&e, KEYS("destination", "type", "source", "options", "uidMappings", "gidMappings"), err) < 0 || kj_req_string(&e, "destination", &m->destination, err) < 0 ||
		    kj_opt_string(&e, "type", &m->type, err) < 0 || kj_opt_string(&e, "source", &m->source, err) < 0 ||
		    kj_opt_string_array(&e, "options", &m->options, NULL, err) < 0)
			return -1;
		if (m->destination[0] != '/')
			return kelp_fail(err, EINVAL, "%s.destination: %s is not an absolute path", e.path, m->destination);
		if (parse_idmaps(&e, "uidMappings", &m->uid_mappings, &m->n_uid_mappings, err) < 0 ||
		    parse_idmaps(&e, "gidMappings", &m->gid_mappings, &m->n_gid_mappings, err) < 0)
			return -1;
	}
	return 0;
}

static int parse_device_rule(const struct kj *e, struct spec_device_rule *d, struct kelp_err *err)
{
	struct kj f;
	cleanup_free char *type = NULL, *access = NULL;
	if (kj_object(e, KEYS("allow", "type", "major", "minor", "access"), err) < 0)
		return -1;
	if (kj_required(e, "allow", &f, err) < 0 || kj_bool(&f, &d->allow, err) < 0)
		return -1;
	if (kj_opt_string(e, "type", &type, err) < 0 || kj_opt_string(e, "access", &access, err) < 0)
		return -1;
	d->type = 'a';
	if (type) {
		if (strlen(type) != 1 || !strchr("acb", type[0]))
			return kelp_fail(err, EINVAL, "%s.type: expected a, c or b, got '%s'", e->path, type);
		d->type = type[0];
	}
	d->major = d->minor = -1;
	bool has;
	if (kj_opt_int64(e, "major", &d->major, &has, err) < 0 || kj_opt_int64(e, "minor", &d->minor, &has, err) < 0)
		return -1;
	if (access) {
		if (strlen(access) > 3 || strspn(access, "rwm") != strlen(access))
			return kelp_fail(err, EINVAL, "%s.access: expected letters of 'rwm', got '%s'", e->path, access);
		snprintf(d->access, sizeof(d->access), "%s", access);
	} else {
		snprintf(d->access, sizeof(d->access), "rwm");
	}
	return 0;
}

static int parse_resources(const struct kj *obj, struct spec_resources *r, struct kelp_err *err)
{
	struct kj f, g;
	int k;
	if (kj_object(obj,
		      KEYS("devices", "memory", "cpu", "blockIO", "hugepageLimits", "network", "pids", "rdma", "unified"),
		      err) < 0)
		return -1;
	if (unsupported(obj, "blockIO", "the blkio controller of this kernel has only bfq files", err) < 0 ||
	    unsupported(obj, "network", "no net_cls or net_prio cgroup is mounted", err) < 0 ||
	    unsupported(obj, "rdma", "no rdma cgroup is mounted", err) < 0)
		return -1;
	k = kj_field(obj, "devices", &f, err);
	if (k < 0)
		return -1;
	if (k > 0) {
		if (kj_expect_array(&f, err) < 0)
			return -1;
		r->n_devices = kj_len(&f);
		r->devices = xcalloc(r->n_devices, sizeof(*r->devices));
		for (size_t i = 0; i < r->n_devices; i++) {
			kj_index(&f, i, &g);
			if (parse_device_rule(&g, &r->devices[i], err) < 0)
				return -1;
		}
	}
	k = kj_field(obj, "memory", &f, err);
	if (k < 0)
		return -1;
	if (k > 0) {
		struct spec_memory *m = &r->memory;
		r->has_memory = true;
		if (kj_object(&f, KEYS("limit", "reservation", "swap", "kernel", "kernelTCP", "swappiness", "disableOOMKiller", "useHierarchy", "checkBeforeUpdate"), err) < 0 || kj_opt_int64(&f, "limit", &m->limit, &m->has_limit, err) < 0 ||
		    kj_opt_int64(&f, "reservation", &m->reservation, &m->has_reservation, err) < 0 ||
		    kj_opt_int64(&f, "swap", &m->swap, &m->has_swap, err) < 0 ||
		    kj_opt_int64(&f, "kernel", &m->kernel, &m->has_kernel, err) < 0 ||
		    kj_opt_int64(&f, "kernelTCP", &m->kernel_tcp, &m->has_kernel_tcp, err) < 0 ||
		    kj_opt_uint64(&f, "swappiness", &m->swappiness, &m->has_swappiness, err) < 0)
			return -1;
		if (kj_field(&f, "disableOOMKiller", &g, err) > 0) {
			m->has_disable_oom_killer = true;
			if (kj_bool(&g, &m->disable_oom_killer, err) < 0)
				return -1;
		}
		if (kj_field(&f, "useHierarchy", &g, err) > 0) {
			m->has_use_hierarchy = true;
			if (kj_bool(&g, &m->use_hierarchy, err) < 0)
				return -1;
		}
		if (kj_opt_bool(&f, "checkBeforeUpdate", &m->check_before_update, err) < 0)
			return -1;
		if (m->has_swappiness && m->swappiness > 100)
			return kelp_fail(err, EINVAL, "%s.swappiness: %llu is above 100", f.path,
					  (unsigned long long)m->swappiness);
	}
	k = kj_field(obj, "cpu", &f, err);
	if (k < 0)
		return -1;
	if (k > 0) {
		struct spec_cpu *c = &r->cpu;
		r->has_cpu = true;
		if (kj_object(&f, KEYS("shares", "quota", "burst", "period", "realtimeRuntime", "realtimePeriod", "cpus", "mems", "idle"), err) < 0 || kj_opt_uint64(&f, "shares", &c->shares, &c->has_shares, err) < 0 ||
		    kj_opt_int64(&f, "quota", &c->quota, &c->has_quota, err) < 0 ||
		    kj_opt_uint64(&f, "burst", &c->burst, &c->has_burst, err) < 0 ||
		    kj_opt_uint64(&f, "period", &c->period, &c->has_period, err) < 0 ||
		    kj_opt_int64(&f, "realtimeRuntime", &c->rt_runtime, &c->has_rt_runtime, err) < 0 ||
		    kj_opt_uint64(&f, "realtimePeriod", &c->rt_period, &c->has_rt_period, err) < 0 ||
		    kj_opt_int64(&f, "idle", &c->idle, &c->has_idle, err) < 0 ||
		    kj_opt_string(&f, "cpus", &c->cpus, err) < 0 || kj_opt_string(&f, "mems", &c->mems, err) < 0)
			return -1;
	}
	k = kj_field(obj, "pids", &f, err);
	if (k < 0)
		return -1;
	if (k > 0) {
		r->has_pids = true;
		if (kj_object(&f, KEYS("limit"), err) < 0 ||
		    kj_opt_int64(&f, "limit", &r->pids.limit, &r->pids.has_limit, err) < 0)
			return -1;
	}
	k = kj_field(obj, "hugepageLimits", &f, err);
	if (k < 0)
		return -1;
	if (k > 0) {
		if (kj_expect_array(&f, err) < 0)
			return -1;
		r->n_hugetlb = kj_len(&f);
		r->hugetlb = xcalloc(r->n_hugetlb, sizeof(*r->hugetlb));
		for (size_t i = 0; i < r->n_hugetlb; i++) {
			struct kj e;
			kj_index(&f, i, &e);
			if (kj_object(&e, KEYS("pageSize", "limit"), err) < 0 ||
			    kj_req_string(&e, "pageSize", &r->hugetlb[i].page_size, err) < 0 ||
			    kj_required(&e, "limit", &g, err) < 0 || kj_uint64(&g, &r->hugetlb[i].limit, err) < 0)
				return -1;
			if (!kelp_name_is_safe(r->hugetlb[i].page_size))
				return kelp_fail(err, EINVAL, "%s.pageSize: invalid '%s'", e.path, r->hugetlb[i].page_size);
		}
	}
	k = kj_field(obj, "unified", &f, err);
	if (k < 0)
		return -1;
	if (k > 0 && kj_string_map(&f, &r->unified_keys, &r->unified_values, err) < 0)
		return -1;
	return 0;
}

static int parse_seccomp(const struct kj *obj, struct spec_seccomp *sc, struct kelp_err *err)
{
	struct kj f;
	if (kj_object(obj, KEYS("defaultAction", "defaultErrnoRet", "architectures", "flags", "listenerPath", "listenerMetadata", "syscalls"), err) < 0 || kj_req_string(obj, "defaultAction", &sc->default_action, err) < 0 ||
	    kj_opt_uint32(obj, "defaultErrnoRet", &sc->default_errno_ret, &sc->has_default_errno_ret, err) < 0 ||
	    kj_opt_string_array(obj, "architectures", &sc->architectures, NULL, err) < 0 ||
	    kj_opt_string_array(obj, "flags", &sc->flags, NULL, err) < 0 ||
	    kj_opt_string(obj, "listenerPath", &sc->listener_path, err) < 0 ||
	    kj_opt_string(obj, "listenerMetadata", &sc->listener_metadata, err) < 0)
		return -1;
	int k = kj_field(obj, "syscalls", &f, err);
	if (k < 0)
		return -1;
	if (k == 0)
		return 0;
	if (kj_expect_array(&f, err) < 0)
		return -1;
	sc->n_syscalls = kj_len(&f);
	sc->syscalls = xcalloc(sc->n_syscalls, sizeof(*sc->syscalls));
	for (size_t i = 0; i < sc->n_syscalls; i++) {
		struct kj e, a;
		struct spec_seccomp_syscall *s = &sc->syscalls[i];
		kj_index(&f, i, &e);
		if (kj_object(&e, KEYS("names", "action", "errnoRet", "args"), err) < 0 || kj_required(&e, "names", &a, err) < 0 ||
		    kj_string_array(&a, &s->names, NULL, err) < 0 || kj_req_string(&e, "action", &s->action, err) < 0 ||
		    kj_opt_uint32(&e, "errnoRet", &s->errno_ret, &s->has_errno_ret, err) < 0)
			return -1;
		k = kj_field(&e, "args", &a, err);
		if (k < 0)
			return -1;
		if (k == 0)
			continue;
		if (kj_expect_array(&a, err) < 0)
			return -1;
		s->n_args = kj_len(&a);
		s->args = xcalloc(s->n_args, sizeof(*s->args));
		for (size_t j = 0; j < s->n_args; j++) {
			struct kj ae, v;
			kj_index(&a, j, &ae);
			struct spec_seccomp_arg *sa = &s->args[j];
			if (kj_object(&ae, KEYS("index", "value", "valueTwo", "op"), err) < 0 || kj_required(&ae, "index", &v, err) < 0 ||
			    kj_uint32(&v, &sa->index, err) < 0 || kj_required(&ae, "value", &v, err) < 0 ||
			    kj_uint64(&v, &sa->value, err) < 0 || kj_opt_uint64(&ae, "valueTwo", &sa->value_two, NULL, err) < 0 ||
			    kj_req_string(&ae, "op", &sa->op, err) < 0)
				return -1;
			if (sa->index > 5)
				return kelp_fail(err, EINVAL, "%s.index: %u is above 5", ae.path, sa->index);
		}
	}
	return 0;
}

static int parse_namespaces(const struct kj *obj, struct spec_linux *l, struct kelp_err *err)
{
	struct kj arr;
	int k = kj_field(obj, "namespaces", &arr, err);
	if (k <= 0)
		return k;
	if (kj_expect_array(&arr, err) < 0)
		return -1;
	for (size_t i = 0; i < kj_len(&arr); i++) {
		struct kj e;
		cleanup_free char *type = NULL;
		kj_index(&arr, i, &e);
		if (kj_object(&e, KEYS("type", "path"), err) < 0 || kj_req_string(&e, "type", &type, err) < 0)
			return -1;
		int t = -1;
		for (int j = 0; j < NS_COUNT; j++)
			if (strcmp(ns_type_names[j], type) == 0)
				t = j;
		if (t < 0)
			return kelp_fail(err, EINVAL, "%s.type: unknown namespace type '%s'", e.path, type);
		if (l->ns[t].present)
			return kelp_fail(err, EINVAL, "%s.type: namespace '%s' listed twice", e.path, type);
		l->ns[t].present = true;
		if (kj_opt_string(&e, "path", &l->ns[t].path, err) < 0)
			return -1;
		if (l->ns[t].path && l->ns[t].path[0] != '/')
			return kelp_fail(err, EINVAL, "%s.path: '%s' is not an absolute path", e.path, l->ns[t].path);
	}
	return 0;
}

static int parse_devices(const struct kj *obj, struct spec_linux *l, struct kelp_err *err)
{
	struct kj arr;
	int k = kj_field(obj, "devices", &arr, err);
	if (k <= 0)
		return k;
	if (kj_expect_array(&arr, err) < 0)
		return -1;
	l->n_devices = kj_len(&arr);
	l->devices = xcalloc(l->n_devices, sizeof(*l->devices));
	for (size_t i = 0; i < l->n_devices; i++) {
		struct kj e, f;
		struct spec_device *d = &l->devices[i];
		cleanup_free char *type = NULL;
		kj_index(&arr, i, &e);
		if (kj_object(&e, KEYS("type", "path", "major", "minor", "fileMode", "uid", "gid"), err) < 0 || kj_req_string(&e, "type", &type, err) < 0 ||
		    kj_req_string(&e, "path", &d->path, err) < 0)
			return -1;
		if (strlen(type) != 1 || !strchr("cbup", type[0]))
			return kelp_fail(err, EINVAL, "%s.type: expected c, b, u or p, got '%s'", e.path, type);
		d->type = type[0];
		if (d->path[0] != '/')
			return kelp_fail(err, EINVAL, "%s.path: '%s' is not an absolute path", e.path, d->path);
		if (d->type != 'p') {
			if (kj_required(&e, "major", &f, err) < 0 || kj_int64(&f, &d->major, err) < 0 ||
			    kj_required(&e, "minor", &f, err) < 0 || kj_int64(&f, &d->minor, err) < 0)
				return -1;
		}
		if (kj_opt_uint32(&e, "fileMode", &d->file_mode, &d->has_mode, err) < 0 ||
		    kj_opt_uint32(&e, "uid", &d->uid, &d->has_uid, err) < 0 ||
		    kj_opt_uint32(&e, "gid", &d->gid, &d->has_gid, err) < 0)
			return -1;
	}
	return 0;
}

/* An interface name the kernel accepts: 1 to 15 bytes, no '/', ':' or whitespace, not "." or
 * "..". A container-side name may be a template with one "%d". */
static bool ifname_valid(const char *n, bool template_ok)
{
	size_t len = strlen(n);
	if (len == 0 || len > 15 || strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
		return false;
	for (const char *p = n; *p; p++)
		if (*p == '/' || *p == ':' || isspace((unsigned char)*p) || (*p == '%' && (!template_ok || p[1] != 'd')))
			return false;
	const char *pct = strchr(n, '%');
	return !pct || !strchr(pct + 1, '%');
}

static int parse_netdevs(const struct kj *obj, struct spec_linux *l, struct kelp_err *err)
{
	struct kj map;
	int k = kj_field(obj, "netDevices", &map, err);
	if (k <= 0)
		return k;
	if (kj_expect_object(&map, err) < 0)
		return -1;
	size_t n = kj_obj_len(&map);
	l->netdev_host = xcalloc(n + 1, sizeof(char *));
	l->netdev_name = xcalloc(n + 1, sizeof(char *));
	l->n_netdevs = n; /* for spec_free, also when parsing stops half-way */
	for (size_t i = 0; i < n; i++) {
		struct kj dev;
		const char *host = kj_key_at(&map, i, &dev);
		if (!ifname_valid(host, false))
			return kelp_fail(err, EINVAL, "%s: \"%s\" is not a network interface name", dev.path, host);
		if (kj_expect_object(&dev, err) < 0 || kj_object(&dev, KEYS("name"), err) < 0 ||
		    kj_opt_string(&dev, "name", &l->netdev_name[i], err) < 0)
			return -1;
		if (l->netdev_name[i] && !ifname_valid(l->netdev_name[i], true))
			return kelp_fail(err, EINVAL, "%s.name: \"%s\" is not a network interface name", dev.path,
					 l->netdev_name[i]);
		l->netdev_host[i] = xstrdup(host);
	}
	return 0;
}

static int parse_linux(const struct kj *obj, struct spec_linux *l, struct kelp_err *err)
{
	struct kj f;
	int k;
	if (kj_object(obj,
		      KEYS("namespaces", "uidMappings", "gidMappings", "timeOffsets", "devices", "netDevices", "cgroupsPath",
			   "resources", "intelRdt", "sysctl", "seccomp", "rootfsPropagation", "maskedPaths",
			   "readonlyPaths", "mountLabel", "personality", "memoryPolicy"),
		      err) < 0)
		return -1;
	if (unsupported(obj, "mountLabel", "SELinux is not enabled on this host", err) < 0 || parse_netdevs(obj, l, err) < 0)
		return -1;
	if (parse_namespaces(obj, l, err) < 0)
		return -1;
	if (parse_idmaps(obj, "uidMappings", &l->uid_mappings, &l->n_uid_mappings, err) < 0 ||
	    parse_idmaps(obj, "gidMappings", &l->gid_mappings, &l->n_gid_mappings, err) < 0)
		return -1;
	if (parse_devices(obj, l, err) < 0)
		return -1;
	if (kj_opt_string(obj, "cgroupsPath", &l->cgroups_path, err) < 0)
		return -1;
	k = kj_field(obj, "resources", &f, err);
	if (k < 0)
		return -1;
	if (k > 0) {
		l->has_resources = true;
		if (parse_resources(&f, &l->resources, err) < 0)
			return -1;
	}
	if (kj_opt_string(obj, "rootfsPropagation", &l->rootfs_propagation, err) < 0 ||
	    kj_opt_string_array(obj, "maskedPaths", &l->masked_paths, NULL, err) < 0 ||
	    kj_opt_string_array(obj, "readonlyPaths", &l->readonly_paths, NULL, err) < 0 ||
	    kj_opt_string(obj, "mountLabel", &l->mount_label, err) < 0)
		return -1;
	if (l->rootfs_propagation) {
		static const char *const ok[] = { "shared", "slave", "private", "unbindable", "rshared",
						  "rslave", "rprivate", "runbindable", NULL };
		bool found = false;
		for (const char *const *p = ok; *p; p++)
			found |= strcmp(*p, l->rootfs_propagation) == 0;
		if (!found)
			return kelp_fail(err, EINVAL, "%s.rootfsPropagation: unknown propagation '%s'", obj->path,
					  l->rootfs_propagation);
	}
	k = kj_field(obj, "sysctl", &f, err);
	if (k < 0 || (k > 0 && kj_string_map(&f, &l->sysctl_keys, &l->sysctl_values, err) < 0))
		return -1;
	k = kj_field(obj, "seccomp", &f, err);
	if (k < 0)
		return -1;
	if (k > 0) {
		l->seccomp = xcalloc(1, sizeof(*l->seccomp));
		if (parse_seccomp(&f, l->seccomp, err) < 0)
			return -1;
	}
	k = kj_field(obj, "personality", &f, err);
	if (k < 0)
		return -1;
	if (k > 0) {
		l->has_personality = true;
		if (kj_object(&f, KEYS("domain", "flags"), err) < 0 || kj_req_string(&f, "domain", &l->personality_domain, err) < 0 ||
		    kj_opt_string_array(&f, "flags", &l->personality_flags, NULL, err) < 0)
			return -1;
	}
	k = kj_field(obj, "memoryPolicy", &f, err);
	if (k < 0)
		return -1;
	if (k > 0) {
		l->has_mempolicy = true;
		if (kj_object(&f, KEYS("mode", "nodes", "flags"), err) < 0 || kj_req_string(&f, "mode", &l->mempolicy_mode, err) < 0 ||
		    kj_opt_string(&f, "nodes", &l->mempolicy_nodes, err) < 0 ||
		    kj_opt_string_array(&f, "flags", &l->mempolicy_flags, NULL, err) < 0)
			return -1;
	}
	k = kj_field(obj, "timeOffsets", &f, err);
	if (k < 0)
		return -1;
	if (k > 0) {
		if (kj_expect_object(&f, err) < 0)
			return -1;
		l->n_time_offsets = kj_obj_len(&f);
		l->time_offsets = xcalloc(l->n_time_offsets, sizeof(*l->time_offsets));
		for (size_t i = 0; i < l->n_time_offsets; i++) {
			struct kj e;
			const char *clock = kj_key_at(&f, i, &e);
			struct spec_time_offset *t = &l->time_offsets[i];
			t->clock = xstrdup(clock);
			if (strcmp(clock, "monotonic") != 0 && strcmp(clock, "boottime") != 0)
				return kelp_fail(err, EINVAL, "%s: unknown clock (monotonic or boottime)", e.path);
			if (kj_object(&e, KEYS("secs", "nanosecs"), err) < 0 || kj_opt_int64(&e, "secs", &t->secs, NULL, err) < 0 ||
			    kj_opt_uint32(&e, "nanosecs", &t->nanosecs, NULL, err) < 0)
				return -1;
			if (t->nanosecs >= 1000000000u)
				return kelp_fail(err, EINVAL, "%s.nanosecs: %u is not below one second", e.path, t->nanosecs);
		}
	}
	k = kj_field(obj, "intelRdt", &f, err);
	if (k < 0)
		return -1;
	l->has_intel_rdt = k > 0;
	return 0;
}

static int parse_hooks(const struct kj *root, struct spec *s, struct kelp_err *err)
{
	struct kj hooks;
	int k = kj_field(root, "hooks", &hooks, err);
	if (k <= 0)
		return k;
	if (kj_only_keys(&hooks, kelp_hook_names, err) < 0)
		return -1;
	for (int t = 0; t < HOOK_COUNT; t++) {
		struct kj arr;
		k = kj_field(&hooks, kelp_hook_names[t], &arr, err);
		if (k < 0)
			return -1;
		if (k == 0)
			continue;
		if (kj_expect_array(&arr, err) < 0)
			return -1;
		s->n_hooks[t] = kj_len(&arr);
		s->hooks[t] = xcalloc(s->n_hooks[t], sizeof(struct spec_hook));
		for (size_t i = 0; i < s->n_hooks[t]; i++) {
			struct kj e;
			struct spec_hook *h = &s->hooks[t][i];
			kj_index(&arr, i, &e);
			if (kj_object(&e, KEYS("path", "args", "env", "timeout"), err) < 0 || kj_req_string(&e, "path", &h->path, err) < 0 ||
			    kj_opt_string_array(&e, "args", &h->args, NULL, err) < 0 ||
			    kj_opt_string_array(&e, "env", &h->env, NULL, err) < 0 ||
			    kj_opt_int32(&e, "timeout", &h->timeout, &h->has_timeout, err) < 0)
				return -1;
			if (h->path[0] != '/')
				return kelp_fail(err, EINVAL, "%s.path: '%s' is not an absolute path", e.path, h->path);
			if (h->has_timeout && h->timeout <= 0)
				return kelp_fail(err, EINVAL, "%s.timeout: must be greater than zero", e.path);
		}
	}
	return 0;
}

static int parse_root(const struct kj *root, struct spec *s, struct kelp_err *err)
{
	struct kj f;
	if (kj_object(root,
		      KEYS("ociVersion", "root", "process", "hostname", "domainname", "mounts", "hooks", "annotations",
			   "linux", "solaris", "windows", "vm", "zos", "freebsd"),
		      err) < 0)
		return -1;
	static const char *const other[] = { "solaris", "windows", "vm", "zos", "freebsd" };
	for (size_t i = 0; i < ARRAY_SIZE(other); i++)
		if (unsupported(root, other[i], "a section for another platform (kelp runs Linux containers)", err) < 0)
			return -1;
	if (kj_req_string(root, "ociVersion", &s->oci_version, err) < 0)
		return -1;
	if (kj_required(root, "root", &f, err) < 0 || kj_object(&f, KEYS("path", "readonly"), err) < 0 ||
	    kj_req_string(&f, "path", &s->root_path, err) < 0 || kj_opt_bool(&f, "readonly", &s->root_readonly, err) < 0)
		return -1;
	int k = kj_field(root, "process", &f, err);
	if (k < 0)
		return -1;
	if (k > 0) {
		s->has_process = true;
		if (parse_process_obj(&f, &s->process, true, err) < 0)
			return -1;
		if (!s->process.args || !s->process.args[0])
			return kelp_fail(err, EINVAL, "process.args: must hold at least one entry");
	}
	if (kj_opt_string(root, "hostname", &s->hostname, err) < 0 ||
	    kj_opt_string(root, "domainname", &s->domainname, err) < 0)
		return -1;
	if (parse_mounts(root, s, err) < 0)
		return -1;
	k = kj_field(root, "annotations", &f, err);
	if (k < 0 || (k > 0 && kj_string_map(&f, &s->annotation_keys, &s->annotation_values, err) < 0))
		return -1;
	k = kj_field(root, "linux", &f, err);
	if (k < 0)
		return -1;
	if (k > 0) {
		s->has_linux = true;
		if (parse_linux(&f, &s->linux_, err) < 0)
			return -1;
	}
	return parse_hooks(root, s, err);
}

int spec_parse(const char *buf, size_t len, const char *what, struct spec **ret, struct kelp_err *err)
{
	struct kj root;
	if (kj_parse(buf, len, what, &root, err) < 0)
		return -1;
	struct spec *s = xcalloc(1, sizeof(*s));
	int r = parse_root(&root, s, err);
	yajl_tree_free(root.v);
	if (r < 0) {
		kelp_error_wrap(err, "%s", what);
		spec_free(s);
		return -1;
	}
	*ret = s;
	return 0;
}

int spec_read(const char *bundle, char **ret_buf, size_t *ret_len, struct kelp_err *err)
{
	cleanup_close int dfd = open(bundle, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return kelp_error(err, errno, "open bundle %s", bundle);
	if (kelp_read_file_at(dfd, "config.json", CONFIG_MAX, ret_buf, ret_len, err) < 0)
		return kelp_error_wrap(err, "bundle %s", bundle);
	return 0;
}

int spec_load(const char *bundle, struct spec **ret, struct kelp_err *err)
{
	cleanup_free char *buf = NULL;
	size_t len;
	if (spec_read(bundle, &buf, &len, err) < 0)
		return -1;
	return spec_parse(buf, len, "config.json", ret, err);
}

int spec_parse_process(const char *buf, size_t len, const char *what, struct spec_process *ret, struct kelp_err *err)
{
	struct kj root;
	if (kj_parse(buf, len, what, &root, err) < 0)
		return -1;
	memset(ret, 0, sizeof(*ret));
	int r = parse_process_obj(&root, ret, false, err);
	yajl_tree_free(root.v);
	if (r == 0 && (!ret->args || !ret->args[0]))
		r = kelp_fail(err, EINVAL, "args: must hold at least one entry");
	if (r < 0) {
		kelp_error_wrap(err, "%s", what);
		spec_process_free(ret);
		return -1;
	}
	return 0;
}

int spec_parse_resources(const char *buf, size_t len, const char *what, struct spec_resources *ret, struct kelp_err *err)
{
	struct kj root;
	if (kj_parse(buf, len, what, &root, err) < 0)
		return -1;
	memset(ret, 0, sizeof(*ret));
	int r = parse_resources(&root, ret, err);
	yajl_tree_free(root.v);
	if (r < 0) {
		kelp_error_wrap(err, "%s", what);
		spec_resources_free(ret);
		return -1;
	}
	return 0;
}

static void caps_free_fields(struct spec_caps *c)
{
	strv_free(c->bounding);
	strv_free(c->effective);
	strv_free(c->inheritable);
	strv_free(c->permitted);
	strv_free(c->ambient);
}

void spec_process_free(struct spec_process *p)
{
	free(p->user.additional_gids);
	free(p->user.username);
	strv_free(p->args);
	strv_free(p->env);
	free(p->cwd);
	caps_free_fields(&p->caps);
	for (size_t i = 0; i < p->n_rlimits; i++)
		free(p->rlimits[i].name);
	free(p->rlimits);
	free(p->apparmor_profile);
	free(p->selinux_label);
	free(p->sched.policy);
	strv_free(p->sched.flags);
	free(p->ioprio.klass);
	free(p->affinity_initial);
	free(p->affinity_final);
	memset(p, 0, sizeof(*p));
}

void spec_resources_free(struct spec_resources *r)
{
	free(r->devices);
	free(r->cpu.cpus);
	free(r->cpu.mems);
	for (size_t i = 0; i < r->n_hugetlb; i++)
		free(r->hugetlb[i].page_size);
	free(r->hugetlb);
	strv_free(r->unified_keys);
	strv_free(r->unified_values);
}

static void seccomp_spec_free(struct spec_seccomp *sc)
{
	if (!sc)
		return;
	free(sc->default_action);
	strv_free(sc->architectures);
	strv_free(sc->flags);
	free(sc->listener_path);
	free(sc->listener_metadata);
	for (size_t i = 0; i < sc->n_syscalls; i++) {
		strv_free(sc->syscalls[i].names);
		free(sc->syscalls[i].action);
		for (size_t j = 0; j < sc->syscalls[i].n_args; j++)
			free(sc->syscalls[i].args[j].op);
		free(sc->syscalls[i].args);
	}
	free(sc->syscalls);
	free(sc);
}

void spec_free(struct spec *s)
{
	if (!s)
		return;
	free(s->oci_version);
	free(s->root_path);
	spec_process_free(&s->process);
	free(s->hostname);
	free(s->domainname);
	for (size_t i = 0; i < s->n_mounts; i++) {
		free(s->mounts[i].destination);
		free(s->mounts[i].type);
		free(s->mounts[i].source);
		strv_free(s->mounts[i].options);
		free(s->mounts[i].uid_mappings);
		free(s->mounts[i].gid_mappings);
	}
	free(s->mounts);
	strv_free(s->annotation_keys);
	strv_free(s->annotation_values);
	struct spec_linux *l = &s->linux_;
	for (int i = 0; i < NS_COUNT; i++)
		free(l->ns[i].path);
	free(l->uid_mappings);
	free(l->gid_mappings);
	for (size_t i = 0; i < l->n_devices; i++)
		free(l->devices[i].path);
	free(l->devices);
	free(l->cgroups_path);
	spec_resources_free(&l->resources);
	free(l->rootfs_propagation);
	strv_free(l->masked_paths);
	strv_free(l->readonly_paths);
	free(l->mount_label);
	strv_free(l->sysctl_keys);
	strv_free(l->sysctl_values);
	for (size_t i = 0; i < l->n_netdevs; i++)
		free(l->netdev_name[i]);
	free(l->netdev_name);
	strv_free(l->netdev_host);
	seccomp_spec_free(l->seccomp);
	free(l->personality_domain);
	strv_free(l->personality_flags);
	free(l->mempolicy_mode);
	free(l->mempolicy_nodes);
	strv_free(l->mempolicy_flags);
	for (size_t i = 0; i < l->n_time_offsets; i++)
		free(l->time_offsets[i].clock);
	free(l->time_offsets);
	for (int t = 0; t < HOOK_COUNT; t++) {
		for (size_t i = 0; i < s->n_hooks[t]; i++) {
			free(s->hooks[t][i].path);
			strv_free(s->hooks[t][i].args);
			strv_free(s->hooks[t][i].env);
		}
		free(s->hooks[t]);
	}
	free(s);
}

int spec_validate(const struct spec *s, struct kelp_err *err)
{
	const struct spec_linux *l = &s->linux_;
	bool userns = l->ns[NS_USER].present;
	if (!userns && (l->n_uid_mappings || l->n_gid_mappings))
		return kelp_fail(err, EINVAL, "linux.uidMappings: id mappings need a user namespace");
	if (userns && !l->ns[NS_USER].path && (!l->n_uid_mappings || !l->n_gid_mappings))
		return kelp_fail(err, EINVAL, "linux.uidMappings: a new user namespace needs uidMappings and gidMappings");
	if ((s->hostname || s->domainname) && !l->ns[NS_UTS].present)
		return kelp_fail(err, EINVAL, "hostname: setting a hostname needs a uts namespace");
	if (s->hostname && l->ns[NS_UTS].path)
		return kelp_fail(err, EINVAL, "hostname: cannot set a hostname in a joined uts namespace");
	for (size_t i = 0; i < s->process.n_rlimits; i++)
		if (s->process.rlimits[i].soft > s->process.rlimits[i].hard)
			return kelp_fail(err, EINVAL, "process.rlimits[%zu]: soft limit above hard limit", i);
	if (s->process.cwd && s->process.cwd[0] != '/')
		return kelp_fail(err, EINVAL, "process.cwd: '%s' is not an absolute path", s->process.cwd);
	if (l->ns[NS_MNT].path == NULL && !l->ns[NS_MNT].present && s->n_mounts > 0)
		return kelp_fail(err, EINVAL, "mounts: mounts need a mount namespace");
	if (l->seccomp && l->seccomp->listener_path && l->seccomp->listener_path[0] != '/')
		return kelp_fail(err, EINVAL, "linux.seccomp.listenerPath: '%s' is not an absolute path",
				 l->seccomp->listener_path);
	for (size_t i = 0; i < s->n_mounts; i++) {
		const struct spec_mount *m = &s->mounts[i];
		if ((m->n_uid_mappings == 0) != (m->n_gid_mappings == 0))
			return kelp_fail(err, EINVAL, "mounts[%zu]: an idmapped mount needs both uidMappings and gidMappings", i);
	}
	return 0;
}
