/* bench/proxy/connrate.c — the data-path probe of bench/proxy.sh: a server that accepts and
 * closes, and a client that opens and closes TCP connections to one address in a loop.
 *
 *   connrate serve PORT                  listen on 0.0.0.0:PORT; prints "listening" when ready
 *   connrate client ADDR PORT SECONDS    connect()/close() for SECONDS; prints
 *                                        "CONNECTIONS SECONDS RATE SLOW CPU_US"
 * SLOW counts connects over 200 ms (a lost SYN waits 1 s); CPU_US is the client's user+system
 * time: the forward path (the node's NAT lookup included) runs in softirq inline in the
 * client's sends, and is charged to it, so CPU per connection says what the path costs even
 * when other load on the machine makes the rate jump.
 *
 * The client closes with SO_LINGER 0 (a reset, no TIME_WAIT), so a run of several seconds never
 * runs out of local ports. Any failed connect stops the client with a message and status 1:
 * a refused or lost connection is a broken data path, not a slow one. Static, no libraries. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int parse_port(const char *s)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 1 || v > 65535) {
		fprintf(stderr, "connrate: bad port '%s'\n", s);
		exit(2);
	}
	return (int)v;
}

static double now(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0) {
		perror("connrate: clock_gettime");
		exit(1);
	}
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int serve(int port)
{
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		perror("connrate: socket");
		return 1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0) {
		perror("connrate: SO_REUSEADDR");
		return 1;
	}
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(INADDR_ANY) };
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "connrate: bind 0.0.0.0:%d: %s\n", port, strerror(errno));
		return 1;
	}
	if (listen(fd, 4096) < 0) {
		perror("connrate: listen");
		return 1;
	}
	if (printf("listening\n") < 0 || fflush(stdout) != 0) {
		perror("connrate: stdout");
		return 1;
	}
	for (;;) {
		int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0) {
			/* a client's reset can reach a queued connection before accept */
			if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
				continue;
			perror("connrate: accept4");
			return 1;
		}
		if (close(c) < 0 && errno != ECONNRESET) {
			perror("connrate: close");
			return 1;
		}
	}
}

static int client(const char *addr, int port, const char *secs)
{
	char *end;
	double dur = strtod(secs, &end);
	if (end == secs || *end != '\0' || !(dur > 0 && dur <= 600)) {
		fprintf(stderr, "connrate: bad duration '%s' (seconds, at most 600)\n", secs);
		return 2;
	}
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
		fprintf(stderr, "connrate: bad IPv4 address '%s'\n", addr);
		return 2;
	}
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	struct rusage ru0, ru1;
	if (getrusage(RUSAGE_SELF, &ru0) < 0) {
		perror("connrate: getrusage");
		return 1;
	}
	unsigned long long n = 0, slow = 0;
	double t0 = now(), t = t0;
	while (t - t0 < dur) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			perror("connrate: socket");
			return 1;
		}
		if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) < 0) {
			perror("connrate: SO_LINGER");
			return 1;
		}
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			fprintf(stderr, "connrate: connect %s:%d: %s (after %llu connections)\n", addr, port,
				strerror(errno), n);
			return 1;
		}
		if (close(fd) < 0) {
			perror("connrate: close");
			return 1;
		}
		double t1 = now();
		if (t1 - t > 0.2)
			slow++;
		t = t1;
		n++;
	}
	if (getrusage(RUSAGE_SELF, &ru1) < 0) {
		perror("connrate: getrusage");
		return 1;
	}
	long long cpu = (ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec + ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) * 1000000LL +
			(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec + ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec);
	if (printf("%llu %.6f %.1f %llu %lld\n", n, t - t0, (double)n / (t - t0), slow, cpu) < 0 || fflush(stdout) != 0) {
		perror("connrate: stdout");
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "serve") == 0)
		return serve(parse_port(argv[2]));
	if (argc == 5 && strcmp(argv[1], "client") == 0)
		return client(argv[2], parse_port(argv[3]), argv[4]);
	fprintf(stderr, "usage: connrate serve PORT | connrate client ADDR PORT SECONDS\n");
	return 2;
}
