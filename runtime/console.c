#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "cleanup.h"
#include "init.h"
#include "mounts.h"
#include "sync.h"

int console_setup(int sock, bool via_sync, const struct spec_process *p, bool bind_dev_console, struct kelp_err *err)
{
	cleanup_close int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0)
		return kelp_error(err, errno, "open /dev/ptmx in the container");
	if (grantpt(master) < 0 || unlockpt(master) < 0)
		return kelp_error(err, errno, "unlock pty");
	char name[128];
	if (ptsname_r(master, name, sizeof(name)) != 0)
		return kelp_error(err, errno, "ptsname");
	/* TIOCGPTPEER opens the slave through the master, not by a path that could be swapped */
	int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0)
		slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0)
		return kelp_error(err, errno, "open pty slave %s", name);
	if (p->console_width || p->console_height) {
		struct winsize ws = { .ws_row = (unsigned short)p->console_height, .ws_col = (unsigned short)p->console_width };
		if (ioctl(slave, TIOCSWINSZ, &ws) < 0) {
			close(slave);
			return kelp_error(err, errno, "set console size");
		}
	}
	if (bind_dev_console && rootfs_bind_console(name, err) < 0) {
		close(slave);
		return -1;
	}
	int r = via_sync ? sync_send(sock, SYNC_CONSOLE, 0, master) : send_fd(sock, master, name);
	if (r < 0) {
		close(slave);
		return kelp_error(err, errno, "send pty master over the console socket");
	}
	if (setsid() < 0 && errno != EPERM) {
		close(slave);
		return kelp_error(err, errno, "setsid");
	}
	if (ioctl(slave, TIOCSCTTY, 0) < 0) {
		close(slave);
		return kelp_error(err, errno, "make the pty the controlling terminal");
	}
	for (int fd = 0; fd < 3; fd++)
		if (dup3(slave, fd, 0) < 0) {
			close(slave);
			return kelp_error(err, errno, "dup pty onto fd %d", fd);
		}
	if (slave > 2)
		close(slave);
	return 0;
}
