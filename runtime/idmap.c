/* Idmapped mounts: a user namespace holding a mount's mappings, made by the runtime and kept
 * as an fd that init hands to mount_setattr(MOUNT_ATTR_IDMAP). */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "idmap.h"

static int write_map(pid_t pid, const char *file, const struct spec_idmap *m, size_t n, struct kelp_err *err)
{
	char buf[4096], path[64];
	size_t o = 0;
	for (size_t i = 0; i < n && o < sizeof(buf) - 40; i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%u %u %u\n", m[i].container_id, m[i].host_id, m[i].size);
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	cleanup_close int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return kelp_error(err, errno, "open %s", path);
	if (write(fd, buf, o) != (ssize_t)o)
		return kelp_error(err, errno, "write %s", path);
	return 0;
}

int idmap_userns_fd(const struct spec_idmap *uids, size_t nu, const struct spec_idmap *gids, size_t ng,
		    struct kelp_err *err)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return kelp_error(err, errno, "pipe");
	/* a child born in a new user namespace holds it while we map it and take an fd */
	pid_t pid = (pid_t)syscall(SYS_clone, (unsigned long)CLONE_NEWUSER | SIGCHLD, NULL, NULL, NULL, 0);
	if (pid == 0) {
		char c;
		close(p[1]);
		while (read(p[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	close(p[0]);
	if (pid < 0) {
		close(p[1]);
		return kelp_error(err, errno, "clone a user namespace for an idmapped mount");
	}
	int fd = -1;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
	if (write_map(pid, "uid_map", uids, nu, err) == 0 && write_map(pid, "gid_map", gids, ng, err) == 0) {
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			kelp_error(err, errno, "open %s", path);
	}
	close(p[1]);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	return fd;
}
