#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cleanup.h"
#include "cli.h"

enum { OPT_CONSOLE = 0x100, OPT_PIDFILE, OPT_PRESERVE, OPT_NNP, OPT_LABEL, OPT_APPARMOR, OPT_CGROUP, OPT_IGNORE_PAUSED };

static const struct option exec_opts[] = {
	{ "console-socket", required_argument, NULL, OPT_CONSOLE },
	{ "pid-file", required_argument, NULL, OPT_PIDFILE },
	{ "preserve-fds", required_argument, NULL, OPT_PRESERVE },
	{ "cwd", required_argument, NULL, 'w' },
	{ "env", required_argument, NULL, 'e' },
	{ "tty", no_argument, NULL, 't' },
	{ "user", required_argument, NULL, 'u' },
	{ "additional-gids", required_argument, NULL, 'g' },
	{ "process", required_argument, NULL, 'p' },
	{ "detach", no_argument, NULL, 'd' },
	{ "cap", required_argument, NULL, 'c' },
	{ "no-new-privs", no_argument, NULL, OPT_NNP },
	{ "process-label", required_argument, NULL, OPT_LABEL },
	{ "apparmor", required_argument, NULL, OPT_APPARMOR },
	{ "cgroup", required_argument, NULL, OPT_CGROUP },
	{ "ignore-paused", no_argument, NULL, OPT_IGNORE_PAUSED },
	{ 0 },
};

static void strv_push(char ***v, const char *s)
{
	size_t n = strv_len(*v);
	*v = xrealloc(*v, (n + 2) * sizeof(char *));
	(*v)[n] = xstrdup(s);
	(*v)[n + 1] = NULL;
}

static int cmd_exec(struct cli *cli, int argc, char **argv)
{
	struct kelp_exec_opts o = { 0 };
	cleanup_strv char **env = NULL;
	cleanup_strv char **caps = NULL;
	int c;
	while ((c = getopt_long_only(argc, argv, "+w:e:tu:g:p:dc:", exec_opts, NULL)) != -1) {
		switch (c) {
		case OPT_CONSOLE:
			o.console_socket = optarg;
			break;
		case OPT_PIDFILE:
			o.pid_file = optarg;
			break;
		case OPT_PRESERVE:
			if (cli_parse_uint(optarg, &o.preserve_fds) < 0)
				return cli_usage(&verb_exec, "--preserve-fds: expected a number, got '%s'", optarg);
			break;
		case 'w':
			o.cwd = optarg;
			break;
		case 'e':
			strv_push(&env, optarg);
			break;
		case 't':
			o.tty = o.has_tty = true;
			break;
		case 'u':
			o.user = optarg;
			break;
		case 'p':
			o.process_file = optarg;
			break;
		case 'd':
			o.detach = true;
			break;
		case 'c':
			strv_push(&caps, optarg);
			break;
		case OPT_NNP:
			o.no_new_privs = true;
			break;
		case 'g':
			return cli_usage(&verb_exec, "--additional-gids is not supported by this kelp version");
		case OPT_LABEL:
		case OPT_APPARMOR:
			return cli_usage(&verb_exec, "no LSM is supported by this kelp version");
		case OPT_CGROUP:
			return cli_usage(&verb_exec, "--cgroup is not supported by this kelp version");
		case OPT_IGNORE_PAUSED:
			break;
		default:
			return cli_usage(&verb_exec, "unknown option");
		}
	}
	if (optind >= argc)
		return cli_usage(&verb_exec, "expected a container id");
	o.id = argv[optind];
	o.env = env;
	o.caps = caps;
	if (!o.process_file) {
		if (optind + 1 >= argc)
			return cli_usage(&verb_exec, "expected a command (or --process FILE)");
		o.args = argv + optind + 1;
	} else if (optind + 1 < argc) {
		return cli_usage(&verb_exec, "a command cannot be given with --process");
	}
	struct kelp_err err = { 0 };
	pid_t pid;
	int console = -1;
	if (!o.detach)
		cli_block_signals();
	if (kelp_exec(&cli->rt, &o, &pid, o.detach ? NULL : &console, &err) < 0)
		return cli_fail(&err);
	if (o.detach)
		return 0;
	int status = cli_foreground(pid, console);
	if (console >= 0)
		close(console);
	return status;
}

const struct verb verb_exec = {
	"exec",
	"[--process FILE] [--detach] [--tty] [--console-socket SOCK] [--pid-file FILE] [--env K=V] [--cwd DIR] "
	"[--user UID[:GID]] [--cap CAP] [--preserve-fds N] ID [COMMAND ARGS...]",
	cmd_exec
};
