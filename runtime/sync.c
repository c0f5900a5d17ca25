#include "sync.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int send_with_fd(int sock, const void *buf, size_t len, int fd)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (fd >= 0) {
		memset(&u, 0, sizeof(u));
		mh.msg_control = u.buf;
		mh.msg_controllen = sizeof(u.buf);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	ssize_t n;
	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -1 : 0;
}

static ssize_t recv_with_fd(int sock, void *buf, size_t len, int *ret_fd)
{
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	ssize_t n;
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (ret_fd)
		*ret_fd = -1;
	if (n < 0)
		return -1;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			int fd;
			memcpy(&fd, CMSG_DATA(c), sizeof(int));
			if (ret_fd && *ret_fd < 0)
				*ret_fd = fd;
			else
				close(fd);
		}
	}
	return n;
}

int sync_send(int fd, int type, int value, int send_fd_)
{
	struct sync_msg m = { .type = type, .value = value };
	/* only the header travels; msg is for errors */
	return send_with_fd(fd, &m, offsetof(struct sync_msg, msg) + 1, send_fd_);
}

int sync_send_error(int fd, const struct kelp_err *err)
{
	struct sync_msg m = { .type = SYNC_ERROR, .err_code = err->code };
	memcpy(m.msg, err->msg, sizeof(m.msg));
	m.msg[sizeof(m.msg) - 1] = '\0';
	return send_with_fd(fd, &m, offsetof(struct sync_msg, msg) + strlen(m.msg) + 1, -1);
}

int sync_recv(int fd, struct sync_msg *msg, int *ret_fd)
{
	memset(msg, 0, sizeof(*msg));
	ssize_t n = recv_with_fd(fd, msg, sizeof(*msg), ret_fd);
	if (n < 0)
		return -1;
	if (n == 0) {
		errno = ECONNRESET;
		return -1;
	}
	if ((size_t)n < offsetof(struct sync_msg, msg)) {
		errno = EPROTO;
		return -1;
	}
	msg->msg[sizeof(msg->msg) - 1] = '\0';
	return 0;
}

int sync_expect(int fd, int type, struct sync_msg *msg, int *ret_fd, struct kelp_err *err)
{
	if (sync_recv(fd, msg, ret_fd) < 0) {
		if (errno == ECONNRESET)
			return kelp_error(err, ECONNRESET, "container init exited before it was set up");
		return kelp_error(err, errno, "read from container init");
	}
	if (msg->type == SYNC_ERROR) {
		err->code = msg->err_code;
		memcpy(err->msg, msg->msg, sizeof(err->msg));
		return -1;
	}
	if (msg->type != type)
		return kelp_fail(err, EPROTO, "container init sent message %d, expected %d", msg->type, type);
	return 0;
}

int send_fd(int sock, int fd, const char *name)
{
	return send_with_fd(sock, name, strlen(name) + 1, fd);
}

int recv_fd(int sock)
{
	char buf[4096];
	int fd = -1;
	if (recv_with_fd(sock, buf, sizeof(buf), &fd) < 0)
		return -1;
	if (fd < 0)
		errno = EBADMSG;
	return fd;
}
