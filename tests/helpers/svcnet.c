/* svcnet — the backend and client of the kelp-proxy integration tests (tests/integration/7x-proxy-*).
 * A backend answers every TCP/SCTP connection and every UDP datagram with one line naming itself
 * and the source address it saw, so a test can tell which endpoint a service connection reached
 * and whether it was masqueraded. Plain libc, linked statically like the other helpers.
 *
 *   svcnet serve NAME [-r FILE] PROTO:PORT...
 *       listen on [::]:PORT (IPv4 and IPv6) for each PROTO (tcp, udp, sctp) and answer
 *       "NAME SOURCE-ADDRESS\n" (IPv4-mapped sources printed as plain IPv4). When FILE is given,
 *       "ready" is written to it once every socket is bound. An sctp port is left out, with a
 *       note on stderr, when the kernel has no SCTP; the other ports still serve.
 *   svcnet get [-n COUNT] [-i MS] [-w MS] PROTO HOST PORT
 *       COUNT (default 1) attempts, one after another, MS apart (-i, default 0), each waiting at
 *       most -w MS (default 2000). One line per attempt: the backend's answer, or
 *       "error ERRNO-NAME ELAPSED-MSms" (ECONNREFUSED for a reset or an ICMP port unreachable,
 *       ETIMEDOUT when nothing came back in time).
 *   svcnet sctp-ok
 *       exit 0 when an SCTP socket can be made here, else print why and exit 1.
 *
 * Exit status: 0 when every attempt got an answer, 1 when one did not (or on a failure to
 * serve), 2 for bad usage. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IPPROTO_SCTP
#define IPPROTO_SCTP 132
#endif
#define MAX_LISTEN 16

static int usage(void)
{
	fputs("usage: svcnet serve NAME [-r FILE] PROTO:PORT...\n"
	      "       svcnet get [-n COUNT] [-i MS] [-w MS] PROTO HOST PORT\n"
	      "       svcnet sctp-ok\n",
	      stderr);
	return 2;
}

static const char *errname(int e)
{
	const char *n = strerrorname_np(e);
	return n ? n : "EUNKNOWN";
}

static long now_ms(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
		return 0;
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static int parse_num(const char *s, long min, long max, long *ret)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max) {
		fprintf(stderr, "svcnet: '%s' is not a number in [%ld, %ld]\n", s, min, max);
		return -1;
	}
	*ret = v;
	return 0;
}

/* "tcp" -> SOCK_STREAM/IPPROTO_TCP and so on. */
static int parse_proto(const char *s, int *type, int *proto)
{
	if (strcmp(s, "tcp") == 0) {
		*type = SOCK_STREAM;
		*proto = IPPROTO_TCP;
	} else if (strcmp(s, "udp") == 0) {
		*type = SOCK_DGRAM;
		*proto = IPPROTO_UDP;
	} else if (strcmp(s, "sctp") == 0) {
		*type = SOCK_STREAM;
		*proto = IPPROTO_SCTP;
	} else {
		fprintf(stderr, "svcnet: unknown protocol '%s' (tcp, udp or sctp)\n", s);
		return -1;
	}
	return 0;
}

static void format_addr(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], buf, len);
			return;
		}
		inet_ntop(AF_INET6, &s6->sin6_addr, buf, len);
	} else if (ss->ss_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, buf, len);
	} else {
		snprintf(buf, len, "family-%d", ss->ss_family);
	}
}

/* ---- serve -------------------------------------------------------------------------------- */

struct listener {
	int fd;
	int type;
};

static int open_listener(const char *spec, struct listener *ret)
{
	char proto_name[8];
	const char *colon = strchr(spec, ':');
	if (!colon || (size_t)(colon - spec) >= sizeof proto_name) {
		fprintf(stderr, "svcnet: '%s' is not PROTO:PORT\n", spec);
		return -2;
	}
	memcpy(proto_name, spec, colon - spec);
	proto_name[colon - spec] = '\0';
	int type, proto;
	long port;
	if (parse_proto(proto_name, &type, &proto) < 0 || parse_num(colon + 1, 1, 65535, &port) < 0)
		return -2;
	int fd = socket(AF_INET6, type | SOCK_CLOEXEC, proto);
	if (fd < 0) {
		if (proto == IPPROTO_SCTP && (errno == EPROTONOSUPPORT || errno == ESOCKTNOSUPPORT)) {
			fprintf(stderr, "svcnet: %s left out: this kernel has no SCTP (%s)\n", spec, strerror(errno));
			return 0;
		}
		fprintf(stderr, "svcnet: socket for %s: %s\n", spec, strerror(errno));
		return -1;
	}
	int zero = 0, one = 1;
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_port = htons((unsigned short)port),
				   .sin6_addr = IN6ADDR_ANY_INIT };
	if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || (type == SOCK_STREAM && listen(fd, 128) < 0)) {
		fprintf(stderr, "svcnet: listen on %s: %s\n", spec, strerror(errno));
		close(fd);
		return -1;
	}
	ret->fd = fd;
	ret->type = type;
	return 1;
}

static void answer_stream(int lfd, const char *name)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			fprintf(stderr, "svcnet: accept: %s\n", strerror(errno));
		return;
	}
	char addr[INET6_ADDRSTRLEN], line[256];
	format_addr(&ss, addr, sizeof addr);
	int n = snprintf(line, sizeof line, "%s %s\n", name, addr);
	if (write(fd, line, n) != n)
		fprintf(stderr, "svcnet: answer to %s: %s\n", addr, strerror(errno));
	close(fd);
}

static void answer_dgram(int fd, const char *name)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	char buf[512];
	if (recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&ss, &sl) < 0) {
		if (errno != EAGAIN && errno != EINTR)
			fprintf(stderr, "svcnet: recvfrom: %s\n", strerror(errno));
		return;
	}
	char addr[INET6_ADDRSTRLEN], line[256];
	format_addr(&ss, addr, sizeof addr);
	int n = snprintf(line, sizeof line, "%s %s\n", name, addr);
	if (sendto(fd, line, n, 0, (struct sockaddr *)&ss, sl) != n)
		fprintf(stderr, "svcnet: answer to %s: %s\n", addr, strerror(errno));
}

static int serve(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	const char *name = argv[0], *ready = NULL;
	int i = 1;
	if (i + 1 < argc && strcmp(argv[i], "-r") == 0) {
		ready = argv[i + 1];
		i += 2;
	}
	if (i >= argc)
		return usage();
	struct pollfd pfd[MAX_LISTEN];
	int type[MAX_LISTEN], n = 0;
	for (; i < argc; i++) {
		if (n == MAX_LISTEN) {
			fprintf(stderr, "svcnet: at most %d ports\n", MAX_LISTEN);
			return 2;
		}
		struct listener l;
		int r = open_listener(argv[i], &l);
		if (r == -2)
			return usage();
		if (r < 0)
			return 1;
		if (r == 0)
			continue;
		pfd[n] = (struct pollfd){ .fd = l.fd, .events = POLLIN };
		type[n++] = l.type;
	}
	if (ready) {
		int fd = open(ready, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || write(fd, "ready\n", 6) != 6 || close(fd) < 0) {
			fprintf(stderr, "svcnet: %s: %s\n", ready, strerror(errno));
			return 1;
		}
	}
	for (;;) {
		if (poll(pfd, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "svcnet: poll: %s\n", strerror(errno));
			return 1;
		}
		for (int k = 0; k < n; k++) {
			if (!(pfd[k].revents & POLLIN))
				continue;
			if (type[k] == SOCK_STREAM)
				answer_stream(pfd[k].fd, name);
			else
				answer_dgram(pfd[k].fd, name);
		}
	}
}

/* ---- get ---------------------------------------------------------------------------------- */

/* Wait for EVENTS on FD until the absolute DEADLINE (ms); 0 when ready, else an errno. */
static int wait_fd(int fd, short events, long deadline)
{
	for (;;) {
		long left = deadline - now_ms();
		if (left <= 0)
			return ETIMEDOUT;
		struct pollfd p = { .fd = fd, .events = events };
		int r = poll(&p, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return errno;
		if (r > 0)
			return 0;
	}
}

/* One attempt: the answer line in BUF, or an errno. */
static int attempt(int type, int proto, const struct sockaddr_storage *sa, socklen_t sl, long wait_ms, char *buf,
		   size_t len)
{
	long deadline = now_ms() + wait_ms;
	int fd = socket(sa->ss_family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, proto);
	if (fd < 0)
		return errno;
	int e = 0;
	size_t got = 0;
	if (connect(fd, (const struct sockaddr *)sa, sl) < 0) {
		if (errno != EINPROGRESS) {
			e = errno;
			goto out;
		}
		if ((e = wait_fd(fd, POLLOUT, deadline)) != 0)
			goto out;
		socklen_t el = sizeof e;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0)
			e = errno;
		if (e)
			goto out;
	}
	if (type == SOCK_DGRAM && send(fd, "ping\n", 5, 0) < 0) {
		e = errno;
		goto out;
	}
	/* A datagram is the whole answer; a stream answers with one line and closes. */
	while (got + 1 < len) {
		if ((e = wait_fd(fd, POLLIN, deadline)) != 0)
			goto out;
		ssize_t r = recv(fd, buf + got, len - 1 - got, 0);
		if (r < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			e = errno;
			goto out;
		}
		got += (size_t)r;
		if (r == 0 || type == SOCK_DGRAM || memchr(buf, '\n', got))
			break;
	}
	if (got == 0)
		e = ECONNRESET;
out:
	close(fd);
	buf[got] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return e;
}

static int get(int argc, char **argv)
{
	long count = 1, interval = 0, wait_ms = 2000;
	int i = 0;
	for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
		long *dst = strcmp(argv[i], "-n") == 0 ? &count
			    : strcmp(argv[i], "-i") == 0 ? &interval
			    : strcmp(argv[i], "-w") == 0 ? &wait_ms
							 : NULL;
		if (!dst || parse_num(argv[i + 1], argv[i][1] == 'i' ? 0 : 1, 100000000, dst) < 0)
			return usage();
	}
	if (argc - i != 3)
		return usage();
	int type, proto;
	long port;
	if (parse_proto(argv[i], &type, &proto) < 0 || parse_num(argv[i + 2], 1, 65535, &port) < 0)
		return usage();
	struct sockaddr_storage sa = { 0 };
	socklen_t sl;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&sa;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&sa;
	if (inet_pton(AF_INET, argv[i + 1], &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((unsigned short)port);
		sl = sizeof *s4;
	} else if (inet_pton(AF_INET6, argv[i + 1], &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((unsigned short)port);
		sl = sizeof *s6;
	} else {
		fprintf(stderr, "svcnet: '%s' is not an IP address\n", argv[i + 1]);
		return 2;
	}
	/* A reset peer must not kill the client. */
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
		fprintf(stderr, "svcnet: signal: %s\n", strerror(errno));
		return 1;
	}
	int failed = 0;
	for (long k = 0; k < count; k++) {
		if (k > 0 && interval > 0)
			usleep((useconds_t)(interval * 1000));
		char buf[256];
		long t0 = now_ms();
		int e = attempt(type, proto, &sa, sl, wait_ms, buf, sizeof buf);
		if (e) {
			printf("error %s %ldms\n", errname(e), now_ms() - t0);
			failed = 1;
		} else {
			printf("%s\n", buf);
		}
	}
	if (fflush(stdout) != 0) {
		fprintf(stderr, "svcnet: stdout: %s\n", strerror(errno));
		return 1;
	}
	return failed;
}

static int sctp_ok(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_SCTP);
	if (fd < 0) {
		printf("socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP): %s\n", strerror(errno));
		return 1;
	}
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	if (strcmp(argv[1], "serve") == 0)
		return serve(argc - 2, argv + 2);
	if (strcmp(argv[1], "get") == 0)
		return get(argc - 2, argv + 2);
	if (strcmp(argv[1], "sctp-ok") == 0 && argc == 2)
		return sctp_ok();
	return usage();
}
