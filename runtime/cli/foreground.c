/* Supervising a process in the foreground (run, exec): signals are forwarded, the pty proxied
 * with our own terminal in raw mode, children reaped, and the exit status passed on. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"
#include "fs.h"

static sigset_t forwarded;

void cli_block_signals(void)
{
	sigfillset(&forwarded);
	sigdelset(&forwarded, SIGKILL);
	sigdelset(&forwarded, SIGSTOP);
	sigdelset(&forwarded, SIGSEGV);
	sigdelset(&forwarded, SIGBUS);
	sigdelset(&forwarded, SIGILL);
	sigdelset(&forwarded, SIGFPE);
	sigdelset(&forwarded, SIGTTIN);
	sigdelset(&forwarded, SIGTTOU);
	sigdelset(&forwarded, SIGTSTP);
	sigprocmask(SIG_BLOCK, &forwarded, NULL);
}

void cli_unblock_signals(void)
{
	sigprocmask(SIG_UNBLOCK, &forwarded, NULL);
}

static void copy_winsize(int from, int to)
{
	struct winsize ws;
	if (ioctl(from, TIOCGWINSZ, &ws) == 0)
		ioctl(to, TIOCSWINSZ, &ws);
}

/* Move what is readable on `from` to `to`; false at EOF or error. */
static bool pump(int from, int to)
{
	char buf[8192];
	ssize_t n = read(from, buf, sizeof(buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return true;
	if (n <= 0)
		return false;
	return kelp_write_all(to, buf, (size_t)n) == 0;
}

int cli_foreground(pid_t pid, int console_fd)
{
	int sfd = signalfd(-1, &forwarded, SFD_CLOEXEC);
	if (sfd < 0) {
		perror("kelp: signalfd");
		kill(pid, SIGKILL);
	}
	struct termios saved;
	bool raw = false;
	if (console_fd >= 0 && isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0) {
		struct termios t = saved;
		cfmakeraw(&t);
		raw = tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0;
		copy_winsize(STDIN_FILENO, console_fd);
	}
	int status = -1;
	bool stdin_open = console_fd >= 0, console_open = console_fd >= 0;
	while (status < 0) {
		struct pollfd p[3] = {
			{ .fd = sfd, .events = POLLIN },
			{ .fd = stdin_open ? STDIN_FILENO : -1, .events = POLLIN },
			{ .fd = console_open ? console_fd : -1, .events = POLLIN },
		};
		int r = poll(p, 3, -1);
		if (r < 0 && errno != EINTR)
			break;
		if (p[2].revents & (POLLIN | POLLHUP | POLLERR))
			console_open = pump(console_fd, STDOUT_FILENO);
		if (p[1].revents & (POLLIN | POLLHUP | POLLERR))
			stdin_open = pump(STDIN_FILENO, console_fd);
		if (!(p[0].revents & POLLIN))
			continue;
		struct signalfd_siginfo si;
		if (read(sfd, &si, sizeof(si)) != sizeof(si))
			continue;
		if (si.ssi_signo == SIGWINCH) {
			if (console_fd >= 0)
				copy_winsize(STDIN_FILENO, console_fd);
		} else if (si.ssi_signo != SIGCHLD) {
			kill(pid, (int)si.ssi_signo);
			continue;
		}
		/* reap everything: as a subreaper we also inherit the container's orphans */
		int st;
		pid_t w;
		while ((w = waitpid(-1, &st, WNOHANG)) > 0)
			if (w == pid)
				status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	}
	/* what the process wrote just before exiting */
	while (console_open) {
		struct pollfd p = { .fd = console_fd, .events = POLLIN };
		if (poll(&p, 1, 100) <= 0)
			break;
		console_open = pump(console_fd, STDOUT_FILENO);
	}
	if (raw)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
	if (sfd >= 0)
		close(sfd);
	return status < 0 ? 255 : status;
}
