/* `create`: the runtime side. Validates everything it can before making anything, clones the
 * container's init, maps its ids, places it in its cgroup, waits until it is set up, then
 * records the state. On any failure everything made so far is removed. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "fs.h"
#include "hooks.h"
#include "idmap.h"
#include "mounts.h"
#include "procattr.h"
#include "seccomp_notify.h"
#include "sysctl.h"
#include "init.h"
#include "netdev.h"
#include "internal.h"
#include "log.h"
#include "sync.h"

/* The rootfs: relative paths are taken from the bundle and must stay inside it; absolute paths
 * are used as given (podman and CRI-O keep the rootfs outside the bundle). */
static int resolve_rootfs(const char *bundle, const char *root_path, char **ret, struct kelp_err *err)
{
	cleanup_free char *joined = root_path[0] == '/' ? xstrdup(root_path) : xasprintf("%s/%s", bundle, root_path);
	char real[PATH_MAX];
	if (!realpath(joined, real))
		return kelp_error(err, errno, "root.path: rootfs %s", joined);
	struct stat st;
	if (stat(real, &st) < 0 || !S_ISDIR(st.st_mode))
		return kelp_fail(err, ENOTDIR, "root.path: rootfs %s is not a directory", real);
	if (root_path[0] != '/') {
		size_t bl = strlen(bundle);
		if (strncmp(real, bundle, bl) != 0 || (real[bl] != '/' && real[bl] != '\0'))
			return kelp_fail(err, EINVAL, "root.path: rootfs %s resolves to %s, outside the bundle %s", root_path,
					  real, bundle);
	}
	*ret = xstrdup(real);
	return 0;
}

static int write_idmap(pid_t pid, const char *file, const struct spec_idmap *maps, size_t n, struct kelp_err *err)
{
	char path[64];
	size_t cap = n * 40 + 1, len = 0;
	cleanup_free char *buf = xmalloc(cap);
	buf[0] = '\0';
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, cap - len, "%u %u %u\n", maps[i].container_id, maps[i].host_id, maps[i].size);
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	cleanup_close int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return kelp_error(err, errno, "open %s", path);
	if (write(fd, buf, len) != (ssize_t)len)
		return kelp_error(err, errno, "write %s", path);
	return 0;
}

/* The host id that container id `id` maps to, or the overflow id when it is unmapped. */
static unsigned host_id_of(const struct spec_idmap *maps, size_t n, unsigned id)
{
	for (size_t i = 0; i < n; i++)
		if (id >= maps[i].container_id && id - maps[i].container_id < maps[i].size)
			return maps[i].host_id + (id - maps[i].container_id);
	return 65534;
}

static int connect_console(const char *path, struct kelp_err *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path))
		return kelp_fail(err, ENAMETOOLONG, "console socket %s", path);
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return kelp_error(err, errno, "socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		kelp_error(err, errno, "connect to console socket %s", path);
		close(fd);
		return -1;
	}
	return fd;
}

struct creation {
	int *idmap_fds;
	struct spec *spec;
	struct procattr attr;
	struct kelp_caps *caps;
	struct kelp_seccomp *seccomp;
	struct kelp_cgroup *cg;
	bool cg_created;
	int rootfd, statefd;
	bool state_made;
	const char *id;
	pid_t child, init;
	int sync;
	int console;
};

static void creation_undo(struct creation *c)
{
	struct kelp_err ignored;
	if (c->init > 0)
		kill(c->init, SIGKILL);
	if (c->child > 0) {
		kill(c->child, SIGKILL);
		waitpid(c->child, NULL, 0);
	}
	if (c->init > 0 && c->init != c->child) {
		/* a subreaper (run) reaps it; otherwise wait until it is gone from the cgroup */
		waitpid(c->init, NULL, __WALL | WNOHANG);
	}
	if (c->cg_created)
		cgroup_destroy(c->cg, &ignored);
	if (c->state_made)
		kelp_rm_rf_at(c->rootfd, c->id, &ignored);
}

static void creation_free(struct creation *c)
{
	for (size_t i = 0; c->idmap_fds && c->spec && i < c->spec->n_mounts; i++)
		if (c->idmap_fds[i] >= 0)
			close(c->idmap_fds[i]);
	free(c->idmap_fds);
	spec_free(c->spec);
	caps_free(c->caps);
	seccomp_free(c->seccomp);
	cgroup_free(c->cg);
	if (c->rootfd >= 0)
		close(c->rootfd);
	if (c->statefd >= 0)
		close(c->statefd);
	if (c->sync >= 0)
		close(c->sync);
	if (c->console >= 0)
		close(c->console);
}

static pid_t clone_child(int flags)
{
	return (pid_t)syscall(SYS_clone, (unsigned long)flags | SIGCHLD, NULL, NULL, NULL, 0);
}

static int do_create(const struct kelp_runtime *rt, const struct kelp_create_opts *o, struct creation *c,
		     int *ret_console_fd, struct kelp_err *err)
{
	char bundle[PATH_MAX];
	cleanup_free char *rootfs = NULL;
	int ns_fds[NS_COUNT];
	bool cloned[NS_COUNT] = { 0 };
	int sp[2] = { -1, -1 }, fifo = -1;
	for (int i = 0; i < NS_COUNT; i++)
		ns_fds[i] = -1;

	if (!kelp_id_is_valid(o->id))
		return kelp_fail(err, EINVAL, "invalid container id '%s': use letters, digits, '_', '+', '-' and '.'", o->id);
	if (!realpath(o->bundle ? o->bundle : ".", bundle))
		return kelp_error(err, errno, "bundle %s", o->bundle ? o->bundle : ".");
	cleanup_free char *config = NULL;
	size_t config_len;
	if (spec_read(bundle, &config, &config_len, err) < 0 ||
	    spec_parse(config, config_len, "config.json", &c->spec, err) < 0)
		return -1;
	struct spec *s = c->spec;
	if (!s->has_process)
		return kelp_fail(err, EINVAL, "config.json: process: required to create a container");
	if (spec_validate(s, err) < 0 || sysctl_validate(s, err) < 0 || resolve_rootfs(bundle, s->root_path, &rootfs, err) < 0)
		return kelp_error_wrap(err, "config.json");
	/* An init that processes outside the container's own new pid namespace can see must not
	 * run the host's kelp binary (runtime/sealed.c): start over from the sealed copy. */
	if (o->reexec_argv && (!s->linux_.ns[NS_PID].present || s->linux_.ns[NS_PID].path) &&
	    kelp_reexec_sealed(o->reexec_argv, o->reexec_envp, err) < 0)
		return -1;
	if (s->process.terminal && !o->console_socket && !o->foreground)
		return kelp_fail(err, EINVAL, "process.terminal is true: a --console-socket is needed to hand over the pty");
	if (s->process.has_caps && caps_prepare(&s->process.caps, &c->caps, err) < 0)
		return -1;
	if (s->linux_.seccomp && seccomp_prepare(s->linux_.seccomp, &c->seccomp, err) < 0)
		return -1;
	if (procattr_prepare(&s->process, &s->linux_, &c->attr, err) < 0 || intel_rdt_check(&s->linux_, err) < 0)
		return kelp_error_wrap(err, "config.json");
	if (o->listen_fds > 0) {
		/* systemd socket activation passes through: the fds, and the variables naming them */
		size_t n = strv_len(s->process.env);
		s->process.env = xrealloc(s->process.env, (n + 3) * sizeof(char *));
		s->process.env[n] = xasprintf("LISTEN_FDS=%d", o->listen_fds);
		s->process.env[n + 1] = xstrdup("LISTEN_PID=1");
		s->process.env[n + 2] = NULL;
	}
	if (cgroup_open(s->linux_.cgroups_path, o->id, &c->cg, err) < 0)
		return kelp_error_wrap(err, "linux.cgroupsPath");

	/* the state directory: its creation is what claims the id */
	c->rootfd = state_root_open(rt, true, err);
	if (c->rootfd < 0)
		return -1;
	if (mkdirat(c->rootfd, o->id, 0711) < 0) {
		if (errno == EEXIST)
			return kelp_fail(err, EEXIST, "container with id %s already exists", o->id);
		return kelp_error(err, errno, "create state directory for %s", o->id);
	}
	c->state_made = true;
	c->statefd = openat(c->rootfd, o->id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (c->statefd < 0)
		return kelp_error(err, errno, "open state directory of %s", o->id);
	if (mkfifoat(c->statefd, EXEC_FIFO, 0600) < 0)
		return kelp_error(err, errno, "create exec fifo of %s", o->id);
	/* exec needs the config the container was made from, even if the bundle changes */
	/* its directory entry becomes durable with state.json's, which comes later */
	if (kelp_atomic_write_nodirsync(c->statefd, CONFIG_COPY, config, config_len, 0600, err) < 0)
		return -1;
	if (s->linux_.ns[NS_USER].present && !s->linux_.ns[NS_USER].path) {
		/* init opens the fifo as its own root, a different uid on the host */
		uid_t u = host_id_of(s->linux_.uid_mappings, s->linux_.n_uid_mappings, 0);
		gid_t g = host_id_of(s->linux_.gid_mappings, s->linux_.n_gid_mappings, 0);
		if (fchownat(c->statefd, EXEC_FIFO, u, g, AT_SYMLINK_NOFOLLOW) < 0)
			return kelp_error(err, errno, "chown exec fifo of %s", o->id);
	}
	fifo = openat(c->statefd, EXEC_FIFO, O_PATH | O_CLOEXEC);
	if (fifo < 0)
		return kelp_error(err, errno, "open exec fifo of %s", o->id);

	for (int t = 0; t < NS_COUNT; t++) {
		const char *p = s->linux_.ns[t].path;
		if (!p)
			continue;
		ns_fds[t] = open(p, O_RDONLY | O_CLOEXEC);
		if (ns_fds[t] < 0) {
			kelp_error(err, errno, "open %s namespace %s", ns_type_names[t], p);
			goto out;
		}
	}
	if (o->console_socket) {
		c->console = connect_console(o->console_socket, err);
		if (c->console < 0)
			goto out;
	}
	c->idmap_fds = xcalloc(s->n_mounts ? s->n_mounts : 1, sizeof(int));
	for (size_t i = 0; i < s->n_mounts; i++) {
		const struct spec_idmap *u, *g;
		size_t nu, ng;
		c->idmap_fds[i] = -1;
		if (!mount_idmapped(s, i, &u, &nu, &g, &ng))
			continue;
		if (nu == 0 || ng == 0) {
			kelp_fail(err, EINVAL, "mounts[%zu]: idmap needs uidMappings and gidMappings (the mount's or the container's)", i);
			goto out;
		}
		int userns = idmap_userns_fd(u, nu, g, ng, err);
		c->idmap_fds[i] = userns < 0 ? -1 : mount_idmap_tree(&s->mounts[i], userns, err);
		if (userns >= 0)
			close(userns);
		if (c->idmap_fds[i] < 0) {
			kelp_error_wrap(err, "mounts[%zu] (%s)", i, s->mounts[i].destination);
			goto out;
		}
	}
	{
		cleanup_free char *saved = cgroup_saved_path(c->cg);
		struct kelp_state early = { .id = (char *)o->id, .bundle = bundle, .rootfs = rootfs, .cgroup_path = saved };
		if (state_write_early(c->statefd, &early, err) < 0)
			goto out;
	}
	if (cgroup_create(c->cg, err) < 0)
		goto out;
	c->cg_created = true;
	/* even without resources: the default device rules apply */
	if (cgroup_apply(c->cg, s->linux_.has_resources ? &s->linux_.resources : NULL, err) < 0)
		goto out;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) {
		kelp_error(err, errno, "socketpair");
		goto out;
	}
	c->sync = sp[0];

	/* Without joined namespaces, one clone creates them all (but cgroup, which must come
	 * after the move into the cgroup). */
	bool any_join = false;
	for (int t = 0; t < NS_COUNT; t++)
		any_join |= ns_fds[t] >= 0;
	/* A time namespace is entered by a fork after unshare; that child must become pid 1, so
	 * the pid namespace is then unshared alongside rather than cloned. */
	bool pid_by_fork = s->linux_.ns[NS_TIME].present;
	int flags = 0;
	if (!any_join)
		for (int t = 0; t < NS_COUNT; t++)
			if (s->linux_.ns[t].present && t != NS_CGROUP && t != NS_TIME && !(t == NS_PID && pid_by_fork)) {
				flags |= ns_clone_flags[t];
				cloned[t] = true;
			}
	if (o->foreground && prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) {
		kelp_error(err, errno, "prctl PR_SET_CHILD_SUBREAPER");
		goto out;
	}
	fflush(NULL);
	c->child = clone_child(flags);
	if (c->child < 0) {
		kelp_error(err, errno, "clone container init (flags 0x%x)", flags);
		goto out;
	}
	if (c->child == 0) {
		close(sp[0]);
		struct init_ctx ic = {
			.spec = s,
			.id = o->id,
			.bundle = bundle,
			.rootfs = rootfs,
			.sync_fd = sp[1],
			.fifo_fd = fifo,
			.console_sock = c->console,
			.console_via_sync = o->foreground && !o->console_socket,
			.no_pivot = o->no_pivot,
			.preserve_fds = o->listen_fds + o->preserve_fds,
			.caps = c->caps,
			.seccomp = c->seccomp,
			.cg = c->cg,
			.attr = &c->attr,
			.idmap_fds = c->idmap_fds,
		};
		memcpy(ic.ns_fds, ns_fds, sizeof(ns_fds));
		memcpy(ic.cloned, cloned, sizeof(cloned));
		container_init(&ic);
	}
	close(sp[1]);
	sp[1] = -1;
	c->init = c->child;

	struct sync_msg m;
	const struct spec_linux *l = &s->linux_;
	bool new_user = l->ns[NS_USER].present && !l->ns[NS_USER].path;
	if (new_user && cloned[NS_USER]) {
		if (write_idmap(c->child, "uid_map", l->uid_mappings, l->n_uid_mappings, err) < 0 ||
		    write_idmap(c->child, "gid_map", l->gid_mappings, l->n_gid_mappings, err) < 0)
			goto out;
	}
	if (cgroup_enter(c->cg, c->child, err) < 0)
		goto out;
	if (sync_send(c->sync, SYNC_GO, 0, -1) < 0) {
		kelp_error(err, errno, "release container init");
		goto out;
	}
	if (new_user && !cloned[NS_USER]) {
		if (sync_expect(c->sync, SYNC_MAP_REQUEST, &m, NULL, err) < 0)
			goto out;
		if (write_idmap(c->child, "uid_map", l->uid_mappings, l->n_uid_mappings, err) < 0 ||
		    write_idmap(c->child, "gid_map", l->gid_mappings, l->n_gid_mappings, err) < 0)
			goto out;
		if (sync_send(c->sync, SYNC_GO, 0, -1) < 0) {
			kelp_error(err, errno, "release container init");
			goto out;
		}
	}
	for (;;) {
		int fd = -1;
		if (sync_recv(c->sync, &m, &fd) < 0) {
			kelp_error(err, errno == ECONNRESET ? ECONNRESET : errno, "container init exited before it was set up");
			goto out;
		}
		if (m.type == SYNC_ERROR) {
			err->code = m.err_code;
			memcpy(err->msg, m.msg, sizeof(err->msg));
			goto out;
		}
		if (m.type == SYNC_PID) {
			/* the intermediate process exits once it has reported its child */
			c->init = m.value;
			int st;
			waitpid(c->child, &st, 0);
			c->child = -1;
			continue;
		}
		if (m.type == SYNC_CONSOLE) {
			if (ret_console_fd)
				*ret_console_fd = fd;
			else if (fd >= 0)
				close(fd);
			continue;
		}
		if (m.type == SYNC_HOOKS) {
			cleanup_free char *state = hooks_state_json(o->id, "creating", c->init, bundle, s->annotation_keys,
								    s->annotation_values);
			/* devices first: prestart hooks (CNI) may configure them */
			if (netdev_move_all(&s->linux_, c->init, err) < 0 || hooks_run(s, HOOK_PRESTART, state, err) < 0 ||
			    hooks_run(s, HOOK_CREATE_RUNTIME, state, err) < 0)
				goto out;
			if (sync_send(c->sync, SYNC_GO, c->init, -1) < 0) {
				kelp_error(err, errno, "release container init after hooks");
				goto out;
			}
			continue;
		}
		if (m.type == SYNC_SECCOMP) {
			cleanup_close int nfd = fd;
			cleanup_free char *state = hooks_state_json(o->id, "creating", c->init, bundle, s->annotation_keys,
								    s->annotation_values);
			if (seccomp_notify_send(s->linux_.seccomp, nfd, c->init, state, err) < 0)
				goto out;
			if (sync_send(c->sync, SYNC_GO, 0, -1) < 0) {
				kelp_error(err, errno, "release container init after seccomp");
				goto out;
			}
			continue;
		}
		if (m.type == SYNC_READY)
			break;
		kelp_fail(err, EPROTO, "unexpected message %d from container init", m.type);
		goto out;
	}

	struct kelp_state st = {
		.id = (char *)o->id,
		.pid = c->init,
		.pid_start = proc_start_time(c->init, NULL),
		.bundle = bundle,
		.rootfs = rootfs,
		.created = now_rfc3339(),
		.owner = "",
		.cgroup_path = cgroup_saved_path(c->cg),
		.annotation_keys = s->annotation_keys,
		.annotation_values = s->annotation_values,
	};
	int r = state_write(c->statefd, &st, err);
	free(st.created);
	free(st.cgroup_path);
	if (r < 0)
		goto out;
	if (o->pid_file && write_pid_file(o->pid_file, c->init, err) < 0)
		goto out;
	close(fifo);
	for (int t = 0; t < NS_COUNT; t++)
		if (ns_fds[t] >= 0)
			close(ns_fds[t]);
	return 0;
out:
	if (fifo >= 0)
		close(fifo);
	if (sp[1] >= 0)
		close(sp[1]);
	for (int t = 0; t < NS_COUNT; t++)
		if (ns_fds[t] >= 0)
			close(ns_fds[t]);
	return -1;
}

int kelp_create(const struct kelp_runtime *rt, const struct kelp_create_opts *o, pid_t *ret_pid, int *ret_console_fd,
		struct kelp_err *err)
{
	struct creation c = { .rootfd = -1, .statefd = -1, .sync = -1, .console = -1, .id = o->id };
	if (ret_console_fd)
		*ret_console_fd = -1;
	int r = do_create(rt, o, &c, ret_console_fd, err);
	if (r < 0) {
		creation_undo(&c);
		if (ret_console_fd && *ret_console_fd >= 0) {
			close(*ret_console_fd);
			*ret_console_fd = -1;
		}
	} else if (ret_pid) {
		*ret_pid = c.init;
	}
	creation_free(&c);
	return r;
}
