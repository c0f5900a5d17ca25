/* seccomp-agent — a minimal seccomp notify agent for tests: listen on SOCKET, receive the
 * container process state and its listener fd, print the state on one line, then answer every
 * notified syscall with -ERRNO. Usage: seccomp-agent SOCKET ERRNO */
#include <errno.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: seccomp-agent SOCKET ERRNO\n");
		return 2;
	}
	int answer = atoi(argv[2]);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", argv[1]);
	unlink(argv[1]);
	int l = socket(AF_UNIX, SOCK_STREAM, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(l, 4) < 0) {
		perror("seccomp-agent: listen");
		return 1;
	}
	int c = accept(l, NULL, NULL);
	if (c < 0) {
		perror("seccomp-agent: accept");
		return 1;
	}
	char buf[8192];
	union {
		char b[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) - 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof(u.b) };
	ssize_t n = recvmsg(c, &mh, 0);
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	if (n <= 0 || !cm || cm->cmsg_type != SCM_RIGHTS) {
		fprintf(stderr, "seccomp-agent: no fd received\n");
		return 1;
	}
	buf[n] = '\0';
	int fd;
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	printf("%s\n", buf);
	fflush(stdout);
	for (;;) {
		struct seccomp_notif req;
		memset(&req, 0, sizeof(req));
		if (ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0) {
			if (errno == EINTR)
				continue;
			return 0; /* the filter's processes are gone */
		}
		struct seccomp_notif_resp resp = { .id = req.id, .error = -answer };
		printf("notified syscall %d\n", req.data.nr);
		fflush(stdout);
		ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, &resp);
	}
}
