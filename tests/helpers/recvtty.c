/* recvtty — the other end of a --console-socket: accept one connection, receive the pty master
 * (SCM_RIGHTS), report it, optionally type INPUT into it, and copy what the container writes to
 * stdout until the pty closes. Usage: recvtty SOCKET [INPUT] */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int recv_fd(int sock, char *name, size_t name_size)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = name, .iov_len = name_size - 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	ssize_t n = recvmsg(sock, &mh, 0);
	if (n < 0)
		return -1;
	name[n] = '\0';
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	if (!c || c->cmsg_type != SCM_RIGHTS)
		return -1;
	int fd;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: recvtty SOCKET [INPUT]\n");
		return 2;
	}
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", argv[1]);
	int l = socket(AF_UNIX, SOCK_STREAM, 0);
	unlink(argv[1]);
	if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(l, 1) < 0) {
		perror("recvtty: listen");
		return 1;
	}
	int c = accept(l, NULL, NULL);
	if (c < 0) {
		perror("recvtty: accept");
		return 1;
	}
	char name[256];
	int master = recv_fd(c, name, sizeof(name));
	if (master < 0) {
		perror("recvtty: receive fd");
		return 1;
	}
	printf("recvtty: received pty master (%s)\n", name);
	fflush(stdout);
	if (argc > 2 && write(master, argv[2], strlen(argv[2])) < 0)
		perror("recvtty: write input");
	char buf[4096];
	for (;;) {
		ssize_t n = read(master, buf, sizeof(buf));
		if (n <= 0)
			break; /* EIO once every slave fd is closed */
		if (write(STDOUT_FILENO, buf, (size_t)n) < 0)
			break;
	}
	return 0;
}
