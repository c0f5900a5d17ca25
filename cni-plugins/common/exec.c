/* Network namespace files and delegated plugins (IPAM): spec section 4. */
#include <errno.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "cni.h"
#include "fs.h"

int cni_netns_open(const char *path, struct cni_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cni_syserr(err, errno == ENOENT ? CNI_ERR_UNKNOWN_CONTAINER : CNI_ERR_IO, errno,
				  "open network namespace %s", path);
	int type = ioctl(fd, NS_GET_NSTYPE);
	if (type != CLONE_NEWNET) {
		close(fd);
		return cni_fail(err, CNI_ERR_UNKNOWN_CONTAINER, "%s is not a network namespace", path);
	}
	return fd;
}

/* The first executable `type` in the CNI_PATH directories. */
static char *find_plugin(const char *path, const char *type, struct cni_err *err)
{
	if (!kelp_name_is_safe(type))
		return cni_fail(err, CNI_ERR_CONFIG, "plugin type \"%s\" is not a valid file name", type), NULL;
	if (!path || !*path)
		return cni_fail(err, CNI_ERR_ENV, "CNI_PATH is not set, cannot find plugin %s", type), NULL;
	cleanup_free char *copy = xstrdup(path);
	char *save = NULL;
	for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		char *cand = xasprintf("%s/%s", dir, type);
		if (access(cand, X_OK) == 0)
			return cand;
		free(cand);
	}
	cni_fail(err, CNI_ERR_CONFIG, "plugin %s not found in CNI_PATH %s", type, path);
	return NULL;
}

/* The environment with CNI_COMMAND replaced. */
static char **delegate_env(char *const *env, const char *cmd)
{
	size_t n = 0;
	while (env && env[n])
		n++;
	char **out = xcalloc(n + 2, sizeof(char *));
	size_t j = 0;
	for (size_t i = 0; i < n; i++)
		if (strncmp(env[i], "CNI_COMMAND=", 12) != 0)
			out[j++] = xstrdup(env[i]);
	out[j++] = xasprintf("CNI_COMMAND=%s", cmd);
	return out;
}

static int delegate_error(const char *type, const char *cmd, const char *out, size_t len, int status,
			  struct cni_err *err)
{
	struct kj root;
	struct kelp_err ignored;
	int64_t code = 0;
	cleanup_free char *msg = NULL, *details = NULL;
	if (len > 0 && kj_parse(out, len, "error", &root, &ignored) == 0) {
		kj_opt_int64(&root, "code", &code, NULL, &ignored);
		kj_opt_string(&root, "msg", &msg, &ignored);
		kj_opt_string(&root, "details", &details, &ignored);
		yajl_tree_free(root.v);
	}
	if (msg)
		return cni_fail(err, code > 0 ? (int)code : CNI_ERR_INTERNAL, "%s %s: %s%s%s", type, cmd, msg,
				details && *details ? ": " : "", details && *details ? details : "");
	if (WIFSIGNALED(status))
		return cni_fail(err, CNI_ERR_INTERNAL, "%s %s: killed by signal %d", type, cmd, WTERMSIG(status));
	return cni_fail(err, CNI_ERR_INTERNAL, "%s %s: exit status %d without an error result", type, cmd,
			WEXITSTATUS(status));
}

int cni_delegate(const struct cni_req *req, const char *type, const char *cmd, struct cni_result *ret,
		 struct cni_err *err)
{
	return cni_delegate_conf(req, type, cmd, req->stdin_buf, req->stdin_len, ret, err);
}

void cni_gen_value(yajl_gen g, yajl_val v)
{
	if (!v || YAJL_IS_NULL(v)) {
		yajl_gen_null(g);
	} else if (YAJL_IS_STRING(v)) {
		kg_str(g, v->u.string);
	} else if (YAJL_IS_NUMBER(v)) {
		yajl_gen_number(g, v->u.number.r, strlen(v->u.number.r));
	} else if (YAJL_IS_TRUE(v)) {
		yajl_gen_bool(g, 1);
	} else if (YAJL_IS_FALSE(v)) {
		yajl_gen_bool(g, 0);
	} else if (YAJL_IS_ARRAY(v)) {
		yajl_gen_array_open(g);
		for (size_t i = 0; i < v->u.array.len; i++)
			cni_gen_value(g, v->u.array.values[i]);
		yajl_gen_array_close(g);
	} else if (YAJL_IS_OBJECT(v)) {
		yajl_gen_map_open(g);
		for (size_t i = 0; i < v->u.object.len; i++) {
			kg_str(g, v->u.object.keys[i]);
			cni_gen_value(g, v->u.object.values[i]);
		}
		yajl_gen_map_close(g);
	}
}

/* The delegate's output (status as waitpid gives it) to a result or an error. */
static int delegate_output(const char *type, const char *cmd, const char *out, size_t len, int status,
			   struct cni_result *ret, struct cni_err *err)
{
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return delegate_error(type, cmd, out, len, status, err);
	if (!ret)
		return 0;
	struct kj root;
	if (kj_parse(out, len, "result", &root, &err->k) < 0)
		return cni_wrap(err, CNI_ERR_DECODE, "%s %s", type, cmd);
	int r = cni_result_parse(&root, ret, &err->k);
	yajl_tree_free(root.v);
	if (r < 0)
		return cni_wrap(err, CNI_ERR_DECODE, "%s %s result", type, cmd);
	return 0;
}

static int delegate_in_process(const struct cni_plugin *p, const struct cni_req *req, const char *type,
			       const char *cmd, const char *conf, size_t conf_len, struct cni_result *ret,
			       struct cni_err *err)
{
	cleanup_close int out = memfd_create("cni-out", MFD_CLOEXEC);
	if (out < 0)
		return cni_syserr(err, CNI_ERR_IO, errno, "memfd for %s", type);
	char **env = delegate_env(req->env, cmd);
	int rc = cni_run(p, env, conf, conf_len, out);
	strv_free(env);
	cleanup_free char *buf = NULL;
	size_t len = 0;
	struct kelp_err rerr;
	if (lseek(out, 0, SEEK_SET) < 0 || kelp_read_fd(out, 1 << 22, &buf, &len, &rerr) < 0)
		return cni_fail(err, CNI_ERR_IO, "read the output of %s", type);
	return delegate_output(type, cmd, buf, len, (rc & 0xff) << 8, ret, err);
}

int cni_delegate_conf(const struct cni_req *req, const char *type, const char *cmd, const char *conf, size_t conf_len,
		      struct cni_result *ret, struct cni_err *err)
{
	/* looked up even when it runs in process, so CNI_PATH means what it says */
	cleanup_free char *bin = find_plugin(req->path, type, err);
	if (!bin)
		return -1;
	if (&kelp_host_local_plugin && strcmp(type, kelp_host_local_plugin.name) == 0)
		return delegate_in_process(&kelp_host_local_plugin, req, type, cmd, conf, conf_len, ret, err);
	/* stdin from a memfd: no writer to keep alive, no pipe-size deadlock. */
	cleanup_close int in = memfd_create("cni-conf", MFD_CLOEXEC);
	if (in < 0)
		return cni_syserr(err, CNI_ERR_IO, errno, "memfd for %s", type);
	if (kelp_write_all(in, conf, conf_len) < 0 || lseek(in, 0, SEEK_SET) < 0)
		return cni_syserr(err, CNI_ERR_IO, errno, "write the config for %s", type);
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return cni_syserr(err, CNI_ERR_IO, errno, "pipe for %s", type);
	cleanup_close int rd = p[0];
	cleanup_close int wr = p[1];
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in, STDIN_FILENO);
	posix_spawn_file_actions_adddup2(&fa, wr, STDOUT_FILENO);
	char **env = delegate_env(req->env, cmd);
	char *argv[] = {bin, NULL};
	pid_t pid;
	int rc = posix_spawn(&pid, bin, &fa, NULL, argv, env);
	posix_spawn_file_actions_destroy(&fa);
	strv_free(env);
	if (rc != 0)
		return cni_syserr(err, CNI_ERR_IO, rc, "run %s", bin);
	close(TAKE_FD(wr));
	cleanup_free char *out = NULL;
	size_t len = 0;
	struct kelp_err rerr;
	int rr = kelp_read_fd(rd, 1 << 22, &out, &len, &rerr);
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return cni_syserr(err, CNI_ERR_IO, errno, "wait for %s", type);
	if (rr < 0)
		return cni_fail(err, CNI_ERR_IO, "read the output of %s: %s", type, rerr.msg);
	return delegate_output(type, cmd, out, len, status, ret, err);
}
