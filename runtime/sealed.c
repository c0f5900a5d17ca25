/* Against CVE-2019-5736: a process in the container must never reach a writable kelp binary
 * through /proc/PID/exe, which is what every clone of the runtime shows until it execs the
 * container's process. So `exec` (which joins a container full of processes) and a create
 * whose init others can see (a joined or the host pid namespace) run from a sealed, unwritable
 * memfd copy of kelp. A new pid namespace holds nobody but the init until it execs: there the
 * clone itself is safe, given that the init is not dumpable, that `exec` waits for `start`
 * (kelp_pid_runs_sealed), and that the process it execs is never kelp itself
 * (process_refuse_runtime). That saves an exec, a third of `kelp run`. */
#include <errno.h>
#include <fcntl.h>
#include <linux/memfd.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cleanup.h"
#include "container.h"

#define SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

static bool exe_sealed(const char *exe)
{
	cleanup_close int fd = open(exe, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	int seals = fcntl(fd, F_GET_SEALS);
	return seals >= 0 && (seals & SEALS) == SEALS;
}

static bool running_sealed(void)
{
	return exe_sealed("/proc/self/exe");
}

bool kelp_pid_runs_sealed(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	return exe_sealed(path);
}

int kelp_reexec_sealed(char **argv, char **envp, struct kelp_err *err)
{
	if (running_sealed())
		return 0;
	cleanup_close int src = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (src < 0)
		return kelp_error(err, errno, "open /proc/self/exe");
	struct stat st;
	if (fstat(src, &st) < 0)
		return kelp_error(err, errno, "stat /proc/self/exe");
	cleanup_close int mfd = (int)syscall(SYS_memfd_create, "kelp", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (mfd < 0)
		return kelp_error(err, errno, "memfd_create");
	off_t left = st.st_size;
	while (left > 0) {
		ssize_t n = sendfile(mfd, src, NULL, (size_t)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return kelp_error(err, n < 0 ? errno : EIO, "copy kelp into a memfd");
		left -= n;
	}
	if (fcntl(mfd, F_ADD_SEALS, SEALS) < 0)
		return kelp_error(err, errno, "seal the memfd copy of kelp");
	syscall(SYS_execveat, mfd, "", argv, envp, AT_EMPTY_PATH);
	return kelp_error(err, errno, "re-exec kelp from its sealed copy");
}
