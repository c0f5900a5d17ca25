/* Cgroup layout detection, path resolution and dispatch to the v1, v2 or hybrid driver, plus the
 * small file and mount helpers the drivers share. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "cgroup-internal.h"
#include "cleanup.h"
#include "fs.h"
#include "log.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

const char *cgroup_mode_name(enum cg_mode m)
{
	switch (m) {
	case CG_V1:
		return "v1";
	case CG_V2:
		return "v2";
	case CG_HYBRID:
		return "hybrid";
	}
	return "unknown";
}

int cgroup_detect(const char *root, enum cg_mode *ret, struct kelp_err *err)
{
	struct statfs st;
	if (statfs(root, &st) < 0)
		return kelp_error(err, errno, "statfs %s", root);
	if (st.f_type == CGROUP2_SUPER_MAGIC) {
		*ret = CG_V2;
		return 0;
	}
	/* A tmpfs of v1 hierarchies; a cgroup2 at <root>/unified makes it hybrid. When unified is
	 * not mounted, statfs sees the tmpfs directory under it. */
	cleanup_free char *unified = xasprintf("%s/unified", root);
	struct statfs ust;
	if (st.f_type == TMPFS_MAGIC && statfs(unified, &ust) == 0 && ust.f_type == CGROUP2_SUPER_MAGIC)
		*ret = CG_HYBRID;
	else
		*ret = CG_V1;
	return 0;
}

/* ---------------------------------------------------------------- pure path helpers */

bool cg_list_has(const char *list, const char *token)
{
	size_t tl = strlen(token);
	for (const char *p = list; p && *p;) {
		const char *e = strchr(p, ',');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		if (l == tl && strncmp(p, token, l) == 0)
			return true;
		p = e ? e + 1 : NULL;
	}
	return false;
}

int cg_normalize(const char *path, const char *what, char **ret, struct kelp_err *err)
{
	size_t len = strlen(path);
	cleanup_free char *out = xmalloc(len + 2);
	size_t o = 0;
	for (const unsigned char *c = (const unsigned char *)path; *c; c++)
		if (*c < 0x20 || *c == 0x7f)
			return kelp_error(err, EINVAL, "%s %s: control characters are not allowed", what, path);
	for (size_t i = 0; i < len;) {
		while (i < len && path[i] == '/')
			i++;
		size_t s = i;
		while (i < len && path[i] != '/')
			i++;
		size_t cl = i - s;
		if (cl == 0 || (cl == 1 && path[s] == '.'))
			continue;
		if (cl == 2 && path[s] == '.' && path[s + 1] == '.')
			return kelp_error(err, EINVAL, "%s %s: \"..\" is not allowed", what, path);
		if (cl > NAME_MAX)
			return kelp_error(err, ENAMETOOLONG, "%s %s", what, path);
		out[o++] = '/';
		memcpy(out + o, path + s, cl);
		o += cl;
	}
	out[o] = '\0';
	if (o == 0)
		return kelp_error(err, EINVAL, "%s %s: the root cgroup cannot hold a container", what, path);
	*ret = TAKE_PTR(out);
	return 0;
}

int cg_resolve_path(const char *cgroups_path, const char *id, const char *own, char **ret, struct kelp_err *err)
{
	if (!cgroups_path || !*cgroups_path) {
		if (!kelp_name_is_safe(id))
			return kelp_error(err, EINVAL, "container id %s: not usable as a cgroup name", id ? id : "(null)");
		cleanup_free char *p = xasprintf("/kelp/%s", id);
		return cg_normalize(p, "cgroupsPath", ret, err);
	}
	if (cgroups_path[0] == '/')
		return cg_normalize(cgroups_path, "cgroupsPath", ret, err);
	/* Check the relative part alone first, so "a/../.." can't climb out of our cgroup. */
	cleanup_free char *rel = NULL;
	if (cg_normalize(cgroups_path, "cgroupsPath", &rel, err) < 0)
		return -1;
	cleanup_free char *joined = xasprintf("%s%s", own && strcmp(own, "/") != 0 ? own : "", rel);
	return cg_normalize(joined, "cgroupsPath", ret, err);
}

char *cg_strip_root(const char *path, const char *mnt_root)
{
	size_t rl = mnt_root ? strlen(mnt_root) : 0;
	if (rl <= 1 || strncmp(path, mnt_root, rl) != 0 || (path[rl] != '/' && path[rl] != '\0'))
		return xstrdup(path);
	return xstrdup(path[rl] ? path + rl : "/");
}

/* ---------------------------------------------------------------- hierarchy discovery */

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape(char *s)
{
	char *o = s;
	for (char *p = s; *p; p++) {
		if (p[0] == '\\' && p[1] >= '0' && p[1] <= '7' && p[2] >= '0' && p[2] <= '7' && p[3] >= '0' && p[3] <= '7') {
			*o++ = (char)(((p[1] - '0') << 6) | ((p[2] - '0') << 3) | (p[3] - '0'));
			p += 3;
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
}

struct mi_entry {
	int id, parent;
	char *root, *mnt, *fstype, *super;
};

static void mi_free(struct mi_entry *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].root);
		free(v[i].mnt);
		free(v[i].fstype);
		free(v[i].super);
	}
	free(v);
}

static int read_mountinfo(struct mi_entry **ret, size_t *ret_n, struct kelp_err *err)
{
	cleanup_free char *text = NULL;
	if (kelp_read_file_at(AT_FDCWD, "/proc/self/mountinfo", 64 << 20, &text, NULL, err) < 0)
		return -1;
	struct mi_entry *v = NULL;
	size_t n = 0;
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *f[64];
		size_t nf = 0;
		char *s2 = NULL;
		for (char *t = strtok_r(line, " ", &s2); t && nf < ARRAY_SIZE(f); t = strtok_r(NULL, " ", &s2))
			f[nf++] = t;
		size_t dash = 0;
		for (size_t i = 6; i < nf; i++)
			if (strcmp(f[i], "-") == 0) {
				dash = i;
				break;
			}
		if (dash == 0 || dash + 3 >= nf)
			continue;
		v = xrealloc(v, (n + 1) * sizeof(*v));
		struct mi_entry *e = &v[n++];
		e->id = atoi(f[0]);
		e->parent = atoi(f[1]);
		e->root = xstrdup(f[3]);
		e->mnt = xstrdup(f[4]);
		e->fstype = xstrdup(f[dash + 1]);
		e->super = xstrdup(f[dash + 3]);
		unescape(e->root);
		unescape(e->mnt);
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

/* The controllers (and name=) of a v1 superblock's options: "rw,cpu,cpuacct" -> "cpu,cpuacct". */
static char *v1_controllers(const char *super)
{
	static const char *const not_ctrl[] = {"rw", "ro", "noprefix", "clone_children", "xattr", "cpuset_v2_mode",
					       "favordynmods", "none"};
	size_t len = strlen(super);
	char *out = xmalloc(len + 1);
	size_t o = 0;
	cleanup_free char *copy = xstrdup(super);
	char *save = NULL;
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		bool skip = strchr(t, '=') && strncmp(t, "name=", 5) != 0;
		for (size_t i = 0; i < ARRAY_SIZE(not_ctrl) && !skip; i++)
			skip = strcmp(t, not_ctrl[i]) == 0;
		if (skip)
			continue;
		if (o)
			out[o++] = ',';
		memcpy(out + o, t, strlen(t));
		o += strlen(t);
	}
	out[o] = '\0';
	return out;
}

static void hier_free(struct cg_hier *h)
{
	free(h->path);
	free(h->mnt);
	free(h->name);
	free(h->opts);
	free(h->mnt_root);
}

static void add_hier(struct kelp_cgroup *cg, const struct mi_entry *e, bool v2, const char *root)
{
	const char *base = strrchr(e->mnt, '/');
	/* a later mount on the same point hides the earlier one */
	for (size_t i = 0; i < cg->n_hier; i++)
		if (strcmp(cg->hier[i].mnt, e->mnt) == 0) {
			hier_free(&cg->hier[i]);
			memmove(&cg->hier[i], &cg->hier[i + 1], (cg->n_hier - i - 1) * sizeof(cg->hier[0]));
			cg->n_hier--;
			break;
		}
	cg->hier = xrealloc(cg->hier, (cg->n_hier + 1) * sizeof(cg->hier[0]));
	struct cg_hier *h = &cg->hier[cg->n_hier++];
	memset(h, 0, sizeof(*h));
	h->mnt = xstrdup(e->mnt);
	h->name = xstrdup(strcmp(e->mnt, root) == 0 ? "" : base + 1);
	h->opts = v2 ? xstrdup("") : v1_controllers(e->super);
	h->mnt_root = xstrdup(e->root);
	h->v2 = v2;
}

static int discover(struct kelp_cgroup *cg, const char *root, struct kelp_err *err)
{
	struct mi_entry *mi = NULL;
	size_t n = 0;
	if (read_mountinfo(&mi, &n, err) < 0)
		return -1;
	size_t rl = strlen(root);
	int top = -1;
	const struct mi_entry *top_e = NULL;
	for (size_t i = 0; i < n; i++)
		if (strcmp(mi[i].mnt, root) == 0) {
			top = mi[i].id;
			top_e = &mi[i];
		}
	if (cg->mode == CG_V2) {
		struct mi_entry fake = {.mnt = (char *)root, .root = (char *)"/", .super = (char *)""};
		add_hier(cg, top_e && strcmp(top_e->fstype, "cgroup2") == 0 ? top_e : &fake, true, root);
	} else {
		cleanup_free char *unified = xasprintf("%s/unified", root);
		for (size_t i = 0; i < n; i++) {
			const struct mi_entry *e = &mi[i];
			bool v1 = strcmp(e->fstype, "cgroup") == 0;
			bool v2 = strcmp(e->fstype, "cgroup2") == 0;
			if (!v1 && !v2)
				continue;
			if (strncmp(e->mnt, root, rl) != 0 || e->mnt[rl] != '/' || strchr(e->mnt + rl + 1, '/'))
				continue;
			/* Only mounts visible in the top mount at root (or stacked on one of them). */
			bool visible = e->parent == top;
			for (size_t j = 0; j < n && !visible; j++)
				visible = mi[j].id == e->parent && strcmp(mi[j].mnt, e->mnt) == 0;
			if (!visible)
				continue;
			if (v2 && (cg->mode != CG_HYBRID || strcmp(e->mnt, unified) != 0))
				continue;
			add_hier(cg, e, v2, root);
		}
		/* v1 hierarchies first, unified last: drivers rely on it */
		for (size_t i = 0; i + 1 < cg->n_hier; i++)
			if (cg->hier[i].v2) {
				struct cg_hier t = cg->hier[i];
				memmove(&cg->hier[i], &cg->hier[i + 1], (cg->n_hier - i - 1) * sizeof(t));
				cg->hier[cg->n_hier - 1] = t;
				break;
			}
	}
	mi_free(mi, n);
	if (cg->n_hier == 0)
		return kelp_error(err, ENOENT, "no cgroup hierarchy is mounted under %s", root);
	if (cg->mode == CG_HYBRID && !cg_unified(cg))
		return kelp_error(err, ENOENT, "%s/unified: cgroup2 mount not found in /proc/self/mountinfo", root);

	/* The host's symlinks between hierarchies ("cpu" -> "cpu,cpuacct"), to recreate them. */
	if (cg->mode != CG_V2) {
		cleanup_closedir DIR *d = opendir(root);
		struct dirent *de;
		while (d && (de = readdir(d))) {
			if (de->d_type != DT_LNK)
				continue;
			char target[PATH_MAX];
			ssize_t l = readlinkat(dirfd(d), de->d_name, target, sizeof(target) - 1);
			if (l <= 0)
				continue;
			target[l] = '\0';
			for (size_t i = 0; i < cg->n_hier; i++)
				if (strcmp(cg->hier[i].name, target) == 0) {
					cg->links = xrealloc(cg->links, (cg->n_links + 1) * sizeof(cg->links[0]));
					cg->links[cg->n_links].name = xstrdup(de->d_name);
					cg->links[cg->n_links].target = xstrdup(target);
					cg->n_links++;
					break;
				}
		}
	}
	return 0;
}

static const struct cg_ops *ops_for(enum cg_mode m)
{
	switch (m) {
	case CG_V1:
		return &cg_v1_ops;
	case CG_V2:
		return &cg_v2_ops;
	case CG_HYBRID:
		return &cg_hybrid_ops;
	}
	return &cg_v1_ops;
}

static struct kelp_cgroup *cg_new(struct kelp_err *err)
{
	struct kelp_cgroup *cg = xcalloc(1, sizeof(*cg));
	if (cgroup_detect(CG_ROOT, &cg->mode, err) < 0 || discover(cg, CG_ROOT, err) < 0) {
		cgroup_free(cg);
		return NULL;
	}
	cg->ops = ops_for(cg->mode);
	return cg;
}

const char *cg_hpath(const struct kelp_cgroup *cg, const struct cg_hier *h)
{
	return h->path ? h->path : cg->path;
}

/* Whether the comma lists a and b hold the same names. */
static bool same_list(const char *a, const char *b)
{
	cleanup_free char *ca = xstrdup(a), *cb = xstrdup(b);
	char *s = NULL;
	for (char *t = strtok_r(ca, ",", &s); t; t = strtok_r(NULL, ",", &s))
		if (!cg_list_has(b, t))
			return false;
	for (char *t = strtok_r(cb, ",", &s); t; t = strtok_r(NULL, ",", &s))
		if (!cg_list_has(a, t))
			return false;
	return true;
}

char *cg_own_in(const char *text, const struct cg_hier *h)
{
	for (const char *l = text; l && *l;) {
		const char *nl = strchr(l, '\n');
		const char *c1 = strchr(l, ':');
		const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (c2 && (!nl || c2 < nl)) {
			bool unified = c1 == l + 1 && l[0] == '0' && c2 == c1 + 1;
			cleanup_free char *ctrls = strndup(c1 + 1, (size_t)(c2 - c1 - 1));
			if ((h->v2 && unified) || (!h->v2 && !unified && ctrls && h->opts && same_list(ctrls, h->opts))) {
				size_t plen = nl ? (size_t)(nl - c2 - 1) : strlen(c2 + 1);
				cleanup_free char *p = strndup(c2 + 1, plen);
				return p ? cg_strip_root(p, h->mnt_root ? h->mnt_root : "/") : NULL;
			}
		}
		l = nl ? nl + 1 : NULL;
	}
	return NULL;
}

/* A relative cgroupsPath joins the calling process's own cgroup, which may differ in each
 * hierarchy (here the caller is somewhere below / only in memory): resolve it per hierarchy. */
static int resolve_relative(struct kelp_cgroup *cg, const char *cgroups_path, const char *id, struct kelp_err *err)
{
	cleanup_free char *text = NULL;
	if (kelp_read_file_at(AT_FDCWD, "/proc/self/cgroup", 1 << 20, &text, NULL, err) < 0)
		return -1;
	for (size_t i = 0; i < cg->n_hier; i++) {
		struct cg_hier *h = &cg->hier[i];
		cleanup_free char *own = cg_own_in(text, h);
		if (!own)
			return kelp_error(err, ENOENT, "/proc/self/cgroup: no line for the %s hierarchy", h->name);
		if (cg_resolve_path(cgroups_path, id, own, &h->path, err) < 0)
			return -1;
	}
	return 0;
}

/* cg->path names the container everywhere; per-hierarchy paths only where they differ. */
static void settle_paths(struct kelp_cgroup *cg)
{
	for (size_t i = 0; i < cg->n_hier; i++)
		if (cg->hier[i].path && !cg->path)
			cg->path = xstrdup(cg->hier[i].path);
	for (size_t i = 0; i < cg->n_hier; i++)
		if (cg->hier[i].path && strcmp(cg->hier[i].path, cg->path) == 0) {
			free(cg->hier[i].path);
			cg->hier[i].path = NULL;
		}
}

int cgroup_open(const char *cgroups_path, const char *id, struct kelp_cgroup **ret, struct kelp_err *err)
{
	struct kelp_cgroup *cg = cg_new(err);
	if (!cg)
		return -1;
	int r;
	if (cgroups_path && *cgroups_path && cgroups_path[0] != '/') {
		r = resolve_relative(cg, cgroups_path, id, err);
		if (r == 0) {
			/* the primary path: the memory hierarchy's (or the unified one's) */
			const struct cg_hier *h = cg->mode == CG_V2 ? cg_unified(cg) : cg_v1_find(cg, "memory");
			if (!h && cg->n_hier)
				h = &cg->hier[0];
			if (h && h->path)
				cg->path = xstrdup(h->path);
			settle_paths(cg);
		}
	} else {
		r = cg_resolve_path(cgroups_path, id, NULL, &cg->path, err);
	}
	if (r < 0 || !cg->path) {
		if (r == 0)
			kelp_error(err, ENOENT, "cgroupsPath %s: no cgroup hierarchy", cgroups_path);
		cgroup_free(cg);
		return -1;
	}
	log_debug("cgroup %s (%s)", cg->path, cgroup_mode_name(cg->mode));
	*ret = cg;
	return 0;
}

/* Saved form: the path, then "\nNAME=PATH" for each hierarchy whose path differs. */
int cgroup_reopen(const char *saved, struct kelp_cgroup **ret, struct kelp_err *err)
{
	if (!saved || saved[0] != '/')
		return kelp_fail(err, EINVAL, "cgroup path %s: not absolute", saved ? saved : "(null)");
	struct kelp_cgroup *cg = cg_new(err);
	if (!cg)
		return -1;
	cleanup_free char *copy = xstrdup(saved);
	char *save = NULL;
	char *line = strtok_r(copy, "\n", &save);
	if (cg_normalize(line, "cgroup path", &cg->path, err) < 0) {
		cgroup_free(cg);
		return -1;
	}
	while ((line = strtok_r(NULL, "\n", &save))) {
		char *eq = strchr(line, '=');
		if (!eq)
			continue;
		*eq = '\0';
		for (size_t i = 0; i < cg->n_hier; i++)
			if (strcmp(cg->hier[i].name, line) == 0 && !cg->hier[i].path &&
			    cg_normalize(eq + 1, "cgroup path", &cg->hier[i].path, err) < 0) {
				cgroup_free(cg);
				return -1;
			}
	}
	*ret = cg;
	return 0;
}

bool cgroup_is_frozen(struct kelp_cgroup *cg)
{
	const struct cg_hier *h = cg->mode == CG_V2 ? cg_unified(cg) : cg_v1_find(cg, "freezer");
	if (!h)
		return false;
	cleanup_free char *v = NULL;
	struct kelp_err ignored;
	if (cg_read(cg, h, h->v2 ? "cgroup.freeze" : "freezer.state", &v, &ignored) < 0)
		return false;
	return h->v2 ? v[0] == '1' : strncmp(v, "FROZEN", 6) == 0;
}

char *cgroup_saved_path(const struct kelp_cgroup *cg)
{
	size_t len = strlen(cg->path) + 1;
	for (size_t i = 0; i < cg->n_hier; i++)
		if (cg->hier[i].path)
			len += strlen(cg->hier[i].name) + strlen(cg->hier[i].path) + 2;
	char *out = xmalloc(len);
	size_t o = (size_t)snprintf(out, len, "%s", cg->path);
	for (size_t i = 0; i < cg->n_hier; i++)
		if (cg->hier[i].path)
			o += (size_t)snprintf(out + o, len - o, "\n%s=%s", cg->hier[i].name, cg->hier[i].path);
	return out;
}

void cgroup_free(struct kelp_cgroup *cg)
{
	if (!cg)
		return;
	for (size_t i = 0; i < cg->n_hier; i++)
		hier_free(&cg->hier[i]);
	for (size_t i = 0; i < cg->n_links; i++) {
		free(cg->links[i].name);
		free(cg->links[i].target);
	}
	free(cg->hier);
	free(cg->links);
	free(cg->path);
	free(cg);
}

enum cg_mode cgroup_mode(const struct kelp_cgroup *cg) { return cg->mode; }
const char *cgroup_path(const struct kelp_cgroup *cg) { return cg->path; }

/* ---------------------------------------------------------------- dispatch */

int cgroup_create(struct kelp_cgroup *cg, struct kelp_err *err)
{
	if (cg->ops->create(cg, err) < 0)
		return kelp_error_wrap(err, "create cgroup %s", cg->path);
	return 0;
}

int cgroup_apply(struct kelp_cgroup *cg, const struct spec_resources *r, struct kelp_err *err)
{
	static const struct spec_resources none;
	if (cg->ops->apply(cg, r ? r : &none, err) < 0)
		return kelp_error_wrap(err, "cgroup %s", cg->path);
	return 0;
}

int cgroup_enter(struct kelp_cgroup *cg, pid_t pid, struct kelp_err *err)
{
	if (cg->ops->enter(cg, pid, err) < 0)
		return kelp_error_wrap(err, "move pid %d into cgroup %s", (int)pid, cg->path);
	return 0;
}

int cgroup_freeze(struct kelp_cgroup *cg, bool frozen, struct kelp_err *err)
{
	if (cg->ops->freeze(cg, frozen, err) < 0)
		return kelp_error_wrap(err, "%s cgroup %s", frozen ? "freeze" : "thaw", cg->path);
	return 0;
}

int cgroup_mount(const struct kelp_cgroup *cg, int rootfd, const char *dest, unsigned long flags, bool new_cgroupns,
		 struct kelp_err *err)
{
	if (cg->ops->mount(cg, rootfd, dest, flags, new_cgroupns, err) < 0)
		return kelp_error_wrap(err, "mount cgroup filesystem at %s", dest);
	return 0;
}

int cgroup_pids(struct kelp_cgroup *cg, pid_t **ret, size_t *ret_n, struct kelp_err *err)
{
	const struct cg_hier *h = cg->mode == CG_V2 ? cg_unified(cg) : cg_v1_find(cg, "pids");
	if (!h)
		h = &cg->hier[0];
	cleanup_free char *text = NULL;
	if (cg_read(cg, h, "cgroup.procs", &text, err) < 0)
		return -1;
	pid_t *v = NULL;
	size_t n = 0;
	for (char *p = text; *p;) {
		char *end;
		long pid = strtol(p, &end, 10);
		if (end == p)
			break;
		v = xrealloc(v, (n + 1) * sizeof(*v));
		v[n++] = (pid_t)pid;
		p = end;
		while (*p == '\n')
			p++;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

/* rmdir dir after its child cgroups; EBUSY is retried until deadline (tasks still exiting). */
static int rmdir_tree(const char *dir, const struct timespec *deadline, struct kelp_err *err)
{
	{
		cleanup_closedir DIR *d = opendir(dir);
		if (!d) {
			if (errno == ENOENT)
				return 0;
			return kelp_error(err, errno, "open %s", dir);
		}
		struct dirent *de;
		while ((de = readdir(d))) {
			if (de->d_type != DT_DIR || strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			cleanup_free char *sub = xasprintf("%s/%s", dir, de->d_name);
			if (rmdir_tree(sub, deadline, err) < 0)
				return -1;
		}
	}
	for (;;) {
		if (rmdir(dir) == 0 || errno == ENOENT)
			return 0;
		if (errno != EBUSY)
			return kelp_error(err, errno, "rmdir %s", dir);
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec > deadline->tv_sec || (now.tv_sec == deadline->tv_sec && now.tv_nsec >= deadline->tv_nsec))
			return kelp_error(err, EBUSY, "rmdir %s", dir);
		cg_sleep_ms(10);
	}
}

int cgroup_destroy(struct kelp_cgroup *cg, struct kelp_err *err)
{
	struct timespec deadline;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += 1;
	int rc = 0;
	for (size_t i = 0; i < cg->n_hier; i++) {
		cleanup_free char *dir = cg_dir(cg, &cg->hier[i]);
		struct kelp_err e = {0};
		/* keep going so one busy hierarchy doesn't leak the others; report the first */
		if (rmdir_tree(dir, &deadline, &e) < 0 && rc == 0) {
			rc = -1;
			if (err)
				*err = e;
		}
	}
	if (rc < 0)
		return kelp_error_wrap(err, "destroy cgroup %s", cg->path);
	/* The default parent (/kelp) is kelp's own: remove it once the last container is gone.
	 * A busy or non-empty parent simply stays. */
	if (strncmp(cg->path, "/kelp/", 6) == 0 && !strchr(cg->path + 6, '/') && cg->n_hier && !cg->hier[0].path)
		for (size_t i = 0; i < cg->n_hier; i++) {
			cleanup_free char *parent = xasprintf("%s/kelp", cg->hier[i].mnt);
			rmdir(parent);
		}
	return 0;
}

/* ---------------------------------------------------------------- shared helpers */

char *cg_dir(const struct kelp_cgroup *cg, const struct cg_hier *h) { return xasprintf("%s%s", h->mnt, cg_hpath(cg, h)); }

const struct cg_hier *cg_v1_find(const struct kelp_cgroup *cg, const char *controller)
{
	for (size_t i = 0; i < cg->n_hier; i++)
		if (!cg->hier[i].v2 && cg_list_has(cg->hier[i].opts, controller))
			return &cg->hier[i];
	return NULL;
}

const struct cg_hier *cg_unified(const struct kelp_cgroup *cg)
{
	for (size_t i = 0; i < cg->n_hier; i++)
		if (cg->hier[i].v2)
			return &cg->hier[i];
	return NULL;
}

int cg_write_path(const char *dir, const char *file, const char *value, struct kelp_err *err)
{
	cleanup_free char *path = xasprintf("%s/%s", dir, file);
	cleanup_close int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return kelp_error(err, errno, "write %s to %s", value, path);
	size_t len = strlen(value);
	ssize_t n;
	/* one write: the kernel parses each write as one value */
	do
		n = write(fd, value, len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return kelp_error(err, errno, "write %s to %s", value, path);
	if ((size_t)n != len)
		return kelp_error(err, EIO, "write %s to %s: short write", value, path);
	log_debug("cgroup: %s = %s", path, value);
	return 0;
}

int cg_write(const struct kelp_cgroup *cg, const struct cg_hier *h, const char *file, const char *value,
	     struct kelp_err *err)
{
	cleanup_free char *dir = cg_dir(cg, h);
	return cg_write_path(dir, file, value, err);
}

int cg_read_path(const char *dir, const char *file, char **ret, struct kelp_err *err)
{
	cleanup_free char *path = xasprintf("%s/%s", dir, file);
	char *text = NULL;
	size_t len = 0;
	if (kelp_read_file_at(AT_FDCWD, path, 16 << 20, &text, &len, err) < 0)
		return -1;
	while (len > 0 && text[len - 1] == '\n')
		text[--len] = '\0';
	*ret = text;
	return 0;
}

int cg_read(const struct kelp_cgroup *cg, const struct cg_hier *h, const char *file, char **ret, struct kelp_err *err)
{
	cleanup_free char *dir = cg_dir(cg, h);
	return cg_read_path(dir, file, ret, err);
}

bool cg_has_file(const struct kelp_cgroup *cg, const struct cg_hier *h, const char *file)
{
	cleanup_free char *path = xasprintf("%s%s/%s", h->mnt, cg_hpath(cg, h), file);
	return access(path, F_OK) == 0;
}

int cg_mkdir_p(const struct kelp_cgroup *cg, const struct cg_hier *h,
	       int (*level)(const char *parent, const char *dir, struct kelp_err *err), struct kelp_err *err)
{
	cleanup_free char *parent = xstrdup(h->mnt);
	for (const char *p = cg_hpath(cg, h); *p;) {
		const char *e = strchr(p + 1, '/');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		cleanup_free char *dir = xasprintf("%s%.*s", parent, (int)l, p);
		int r = mkdir(dir, 0755);
		/* a delete may remove the empty shared parent between our two mkdirs: redo it once */
		if (r < 0 && errno == ENOENT && mkdir(parent, 0755) == 0)
			r = mkdir(dir, 0755);
		if (r < 0 && errno != EEXIST)
			return kelp_error(err, errno, "mkdir %s", dir);
		if (level && level(parent, dir, err) < 0)
			return -1;
		free(parent);
		parent = TAKE_PTR(dir);
		p += l;
	}
	return 0;
}

int cg_enter_hier(const struct kelp_cgroup *cg, const struct cg_hier *h, pid_t pid, struct kelp_err *err)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%d", (int)pid);
	return cg_write(cg, h, "cgroup.procs", buf, err);
}

void cg_sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int cg_mount_fd(const char *src, int fd, const char *display, const char *fstype, unsigned long flags,
		const char *data, struct kelp_err *err)
{
	char target[64];
	snprintf(target, sizeof(target), "/proc/self/fd/%d", fd);
	if (mount(src, target, fstype, flags, data) < 0)
		return kelp_error(err, errno, "mount %s on %s", src ? src : "(none)", display);
	return 0;
}

#define CG_MNT_FLAGS                                                                                         \
	(MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME | MS_STRICTATIME)

int cg_remount_in(int dirfd, const char *path, const char *display, unsigned long flags, struct kelp_err *err)
{
	/* Reopen by name: the old fd still points at the directory under the new mount. */
	cleanup_close int fd = kelp_open_in_root(dirfd, path, O_PATH | O_DIRECTORY, 0, err);
	if (fd < 0)
		return kelp_error_wrap(err, "remount %s", display);
	char target[64];
	snprintf(target, sizeof(target), "/proc/self/fd/%d", fd);
	if (mount(NULL, target, NULL, MS_REMOUNT | MS_BIND | (flags & CG_MNT_FLAGS), NULL) < 0)
		return kelp_error(err, errno, "remount %s with flags 0x%lx", display, flags & CG_MNT_FLAGS);
	return 0;
}

/* A fresh cgroup2 mount in the host's cgroup namespace resets the hierarchy's global mount
 * options (nsdelegate...), so refuse one there. */
static int check_own_cgroupns(const char *display, struct kelp_err *err)
{
	struct stat self, init;
	if (stat("/proc/self/ns/cgroup", &self) < 0 || stat("/proc/1/ns/cgroup", &init) < 0)
		return 0;
	if (self.st_ino == init.st_ino && self.st_dev == init.st_dev)
		return kelp_error(err, EPERM,
				  "mount cgroup2 on %s: not in a new cgroup namespace (a fresh cgroup2 mount here would "
				  "reset the host's cgroup2 mount options)",
				  display);
	return 0;
}

int cg_mount_hier(const struct kelp_cgroup *cg, const struct cg_hier *h, int dirfd, const char *path,
		  const char *display, unsigned long flags, bool new_cgroupns, struct kelp_err *err)
{
	const unsigned long base = MS_NOSUID | MS_NODEV | MS_NOEXEC;
	cleanup_close int fd = kelp_open_in_root(dirfd, path, O_PATH | O_DIRECTORY, 0, err);
	if (fd < 0)
		return kelp_error_wrap(err, "mount on %s", display);
	if (new_cgroupns && h->v2) {
		if (check_own_cgroupns(display, err) < 0 || cg_mount_fd("cgroup2", fd, display, "cgroup2", base, NULL, err) < 0)
			return -1;
	} else if (new_cgroupns) {
		if (cg_mount_fd("cgroup", fd, display, "cgroup", base, h->opts, err) < 0)
			return -1;
	} else {
		cleanup_free char *src = cg_dir(cg, h);
		if (cg_mount_fd(src, fd, display, NULL, MS_BIND | MS_REC, NULL, err) < 0)
			return -1;
	}
	return cg_remount_in(dirfd, path, display, base | flags, err);
}

/* ---------------------------------------------------------------- resource helpers */

bool cg_memory_needed(const struct spec_memory *m)
{
	return (m->has_limit && m->limit != 0) || (m->has_swap && m->swap != 0) ||
	       (m->has_reservation && m->reservation != 0) || m->has_swappiness ||
	       (m->has_disable_oom_killer && m->disable_oom_killer) || m->has_use_hierarchy;
}

bool cg_cpu_needed(const struct spec_cpu *c)
{
	return (c->has_shares && c->shares != 0) || (c->has_quota && c->quota != 0) || (c->has_period && c->period != 0) ||
	       c->has_burst || (c->has_rt_runtime && c->rt_runtime != 0) || (c->has_rt_period && c->rt_period != 0) ||
	       c->has_idle;
}

bool cg_cpuset_needed(const struct spec_cpu *c) { return (c->cpus && *c->cpus) || (c->mems && *c->mems); }

void cg_memory_warn_kmem(const struct spec_memory *m)
{
	if ((m->has_kernel && m->kernel > 0) || (m->has_kernel_tcp && m->kernel_tcp > 0))
		log_warn("memory.kernel and memory.kernelTCP are ignored: this kernel has no kernel memory limits");
}

bool cg_pids_value(int64_t limit, char *buf, size_t size)
{
	if (limit == 0)
		return false;
	if (limit < 0)
		snprintf(buf, size, "max");
	else
		snprintf(buf, size, "%" PRId64, limit);
	return true;
}

bool cg_hugetlb_size_ok(const char *s)
{
	size_t i = 0;
	while (s[i] >= '0' && s[i] <= '9')
		i++;
	if (i == 0 || !s[i] || !strchr("KMGTP", s[i]) || s[i + 1] != 'B' || s[i + 2] != '\0')
		return false;
	return true;
}
