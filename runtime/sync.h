/* Messages between the runtime and the container's init over a SOCK_SEQPACKET pair: one
 * message per packet, an fd attached where one travels (the pty master). */
#pragma once
#include <sys/types.h>

#include "error.h"

enum sync_type {
	SYNC_GO = 1,      /* parent → child: ids mapped, cgroups joined; go on */
	SYNC_MAP_REQUEST, /* child → parent: I unshared a user namespace, write my id maps */
	SYNC_PID,         /* child → parent: value is the pid of the process that becomes init */
	SYNC_CONSOLE,     /* child → parent: the pty master is attached */
	SYNC_HOOKS,       /* child → parent: mounts done; run prestart and createRuntime hooks,
			   * then GO with value = init's pid in the runtime's pid namespace */
	SYNC_SECCOMP,     /* child → parent: the seccomp listener fd is attached; parent hands it
			   * to linux.seccomp.listenerPath, then GO */
	SYNC_READY,       /* child → parent: set up, waiting on the exec fifo */
	SYNC_ERROR,       /* child → parent: msg/err_code say what failed */
};

struct sync_msg {
	int type;
	int value;
	int err_code;
	char msg[KELP_ERR_MSG_MAX];
};

int sync_send(int fd, int type, int value, int send_fd);
int sync_send_error(int fd, const struct kelp_err *err);
/* Receive one message; *ret_fd (may be NULL) gets an attached fd or -1. EOF → error ECONNRESET. */
int sync_recv(int fd, struct sync_msg *msg, int *ret_fd);
/* Receive and require `type`; a SYNC_ERROR becomes err. */
int sync_expect(int fd, int type, struct sync_msg *msg, int *ret_fd, struct kelp_err *err);

/* Send one fd over a unix socket (SCM_RIGHTS) with `name` as the payload, as runc does for the
 * console socket. */
int send_fd(int sock, int fd, const char *name);
/* Receive one fd (MSG_CMSG_CLOEXEC); -1 on error. */
int recv_fd(int sock);
