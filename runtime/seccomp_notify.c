/* Seccomp notify: a filter with SCMP_ACT_NOTIFY is loaded by the container's process while the
 * runtime still listens; the runtime hands its listener fd, with the container process state,
 * to the agent at linux.seccomp.listenerPath. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cleanup.h"
#include "hooks.h"
#include "json.h"
#include "seccomp_notify.h"
#include "sync.h"

int seccomp_notify_load_early(struct kelp_seccomp **f, int sync_fd, struct kelp_err *err)
{
	if (!*f || !seccomp_uses_notify(*f))
		return 0;
	int fd = -1;
	if (seccomp_filter_load(*f, &fd, err) < 0)
		return -1;
	*f = NULL; /* loaded: not again before exec */
	struct sync_msg m;
	int r = sync_send(sync_fd, SYNC_SECCOMP, 0, fd);
	close(fd);
	if (r < 0)
		return kelp_error(err, errno, "hand the seccomp listener fd to the runtime");
	return sync_expect(sync_fd, SYNC_GO, &m, NULL, err);
}

int seccomp_notify_send(const struct spec_seccomp *sc, int notify_fd, pid_t pid, const char *state_json,
			struct kelp_err *err)
{
	if (!sc->listener_path)
		return kelp_fail(err, EINVAL, "linux.seccomp.listenerPath: required when SCMP_ACT_NOTIFY is used");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(sc->listener_path) >= sizeof(sa.sun_path))
		return kelp_fail(err, ENAMETOOLONG, "linux.seccomp.listenerPath %s: too long", sc->listener_path);
	strcpy(sa.sun_path, sc->listener_path);
	cleanup_close int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sock < 0)
		return kelp_error(err, errno, "socket");
	if (connect(sock, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return kelp_error(err, errno, "connect to seccomp agent %s", sc->listener_path);
	yajl_gen g = kg_new(false);
	yajl_gen_map_open(g);
	kg_key_str(g, "ociVersion", "1.3.0");
	kg_key(g, "fds");
	yajl_gen_array_open(g);
	kg_str(g, "seccompFd");
	yajl_gen_array_close(g);
	kg_key_int(g, "pid", pid);
	kg_key_str(g, "metadata", sc->listener_metadata ? sc->listener_metadata : "");
	kg_key(g, "state");
	/* the state document is already JSON: splice it in verbatim */
	yajl_gen_number(g, state_json, strlen(state_json));
	yajl_gen_map_close(g);
	cleanup_free char *msg = kg_finish(g, NULL);
	if (send_fd(sock, notify_fd, msg) < 0)
		return kelp_error(err, errno, "send the seccomp listener fd to %s", sc->listener_path);
	return 0;
}
