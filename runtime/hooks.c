#include "hooks.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "fs.h"
#include "internal.h"
#include "json.h"

char *hooks_state_json(const char *id, const char *status, pid_t pid, const char *bundle, char **annotation_keys,
		       char **annotation_values)
{
	yajl_gen g = kg_new(false);
	yajl_gen_map_open(g);
	kg_key_str(g, "ociVersion", KELP_OCI_VERSION);
	kg_key_str(g, "id", id);
	kg_key_str(g, "status", status);
	if (pid > 0)
		kg_key_int(g, "pid", pid);
	kg_key_str(g, "bundle", bundle ? bundle : "");
	kg_key(g, "annotations");
	yajl_gen_map_open(g);
	for (size_t i = 0; annotation_keys && annotation_keys[i]; i++)
		kg_key_str(g, annotation_keys[i], annotation_values[i]);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	return kg_finish(g, NULL);
}

static int run_one(const struct spec_hook *h, const char *name, size_t i, const char *state, struct kelp_err *err)
{
	int in[2];
	if (pipe2(in, O_CLOEXEC) < 0)
		return kelp_error(err, errno, "%s hook %zu (%s): pipe", name, i, h->path);
	char *default_args[] = { h->path, NULL };
	char *empty_env[] = { NULL };
	pid_t pid = fork();
	if (pid < 0) {
		close(in[0]);
		close(in[1]);
		return kelp_error(err, errno, "%s hook %zu (%s): fork", name, i, h->path);
	}
	if (pid == 0) {
		/* stdout and stderr stay the runtime's, as runc does */
		if (dup2(in[0], STDIN_FILENO) < 0)
			_exit(126);
		kelp_cloexec_from(3);
		execve(h->path, h->args && h->args[0] ? h->args : default_args, h->env ? h->env : empty_env);
		_exit(127);
	}
	close(in[0]);
	/* the hook may not read its stdin at all: a closed pipe is fine */
	signal(SIGPIPE, SIG_IGN);
	kelp_write_all(in[1], state, strlen(state));
	close(in[1]);
	int pidfd = sys_pidfd_open(pid, 0);
	if (pidfd >= 0 && h->has_timeout) {
		if (pidfd_wait_exit(pidfd, h->timeout * 1000) < 0 && errno == ETIMEDOUT) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			close(pidfd);
			return kelp_fail(err, ETIMEDOUT, "%s hook %zu (%s): timed out after %d s", name, i, h->path, h->timeout);
		}
	}
	if (pidfd >= 0)
		close(pidfd);
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return kelp_error(err, errno, "%s hook %zu (%s): wait", name, i, h->path);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 127 && access(h->path, X_OK) < 0)
		return kelp_error(err, errno, "%s hook %zu (%s): exec", name, i, h->path);
	if (WIFEXITED(st))
		return kelp_fail(err, EIO, "%s hook %zu (%s): exit status %d", name, i, h->path, WEXITSTATUS(st));
	return kelp_fail(err, EIO, "%s hook %zu (%s): killed by signal %d", name, i, h->path, WTERMSIG(st));
}

int hooks_run(const struct spec *s, enum hook_kind kind, const char *state_json, struct kelp_err *err)
{
	for (size_t i = 0; i < s->n_hooks[kind]; i++)
		if (run_one(&s->hooks[kind][i], kelp_hook_names[kind], i, state_json, err) < 0)
			return -1;
	return 0;
}
