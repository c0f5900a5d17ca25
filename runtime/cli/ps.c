#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "cli.h"
#include "fs.h"

static const struct option ps_opts[] = { { "format", required_argument, NULL, 'f' }, { 0 } };

static bool has_pid(const pid_t *pids, size_t n, long pid)
{
	for (size_t i = 0; i < n; i++)
		if (pids[i] == pid)
			return true;
	return false;
}

/* Run ps(1) with the user's options and keep the header and the container's lines. */
static int ps_table(char **ps_args, const pid_t *pids, size_t n, struct kelp_err *err)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return kelp_error(err, errno, "pipe");
	size_t na = strv_len(ps_args);
	char **argv = xcalloc(na + 3, sizeof(char *));
	argv[0] = "ps";
	if (na == 0)
		argv[1] = "-ef";
	for (size_t i = 0; i < na; i++)
		argv[1 + i] = ps_args[i];
	pid_t child = fork();
	if (child == 0) {
		dup2(p[1], STDOUT_FILENO);
		execvp("ps", argv);
		_exit(127);
	}
	free(argv);
	close(p[1]);
	if (child < 0) {
		close(p[0]);
		return kelp_error(err, errno, "fork ps");
	}
	cleanup_free char *out = NULL;
	int r = kelp_read_fd(p[0], 64 << 20, &out, NULL, err);
	close(p[0]);
	int st;
	waitpid(child, &st, 0);
	if (r < 0)
		return kelp_error_wrap(err, "read ps output");
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return kelp_error(err, 0, "ps %s failed (exit status %d)", na ? ps_args[0] : "-ef", WEXITSTATUS(st));
	char *save = NULL, *line = strtok_r(out, "\n", &save);
	if (!line)
		return 0;
	/* the PID column of the header says which field to read */
	int col = -1, i = 0;
	cleanup_free char *hdr = xstrdup(line);
	char *hs = NULL;
	for (char *f = strtok_r(hdr, " \t", &hs); f; f = strtok_r(NULL, " \t", &hs), i++)
		if (strcmp(f, "PID") == 0)
			col = i;
	if (col < 0)
		return kelp_fail(err, EINVAL, "ps output has no PID column");
	printf("%s\n", line);
	while ((line = strtok_r(NULL, "\n", &save))) {
		cleanup_free char *copy = xstrdup(line);
		char *fs = NULL, *f = strtok_r(copy, " \t", &fs);
		for (i = 0; f && i < col; i++)
			f = strtok_r(NULL, " \t", &fs);
		if (f && has_pid(pids, n, strtol(f, NULL, 10)))
			printf("%s\n", line);
	}
	return 0;
}

static int cmd_ps(struct cli *cli, int argc, char **argv)
{
	const char *format = "table";
	int c;
	while ((c = getopt_long_only(argc, argv, "+f:", ps_opts, NULL)) != -1) {
		if (c != 'f')
			return cli_usage(&verb_ps, "unknown option");
		format = optarg;
	}
	if (optind >= argc)
		return cli_usage(&verb_ps, "expected a container id");
	if (strcmp(format, "table") != 0 && strcmp(format, "json") != 0)
		return cli_usage(&verb_ps, "--format: expected table or json, got '%s'", format);
	struct kelp_err err = { 0 };
	pid_t *pids = NULL;
	size_t n = 0;
	if (kelp_pids(&cli->rt, argv[optind], &pids, &n, &err) < 0)
		return cli_fail(&err);
	int rc = 0;
	if (strcmp(format, "json") == 0) {
		if (optind + 1 < argc) {
			free(pids);
			return cli_usage(&verb_ps, "ps options cannot be used with --format json");
		}
		printf("[");
		for (size_t i = 0; i < n; i++)
			printf("%s%d", i ? "," : "", (int)pids[i]);
		printf("]\n");
	} else if (ps_table(argv + optind + 1, pids, n, &err) < 0) {
		rc = cli_fail(&err);
	}
	free(pids);
	return rc;
}

const struct verb verb_ps = { "ps", "[--format table|json] ID [PS-OPTIONS...]", cmd_ps };
