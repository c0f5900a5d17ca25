#include <stdio.h>
#include <unistd.h>

#include "cli.h"

enum { OPT_BUNDLE = 'b', OPT_DETACH = 'd', OPT_CONSOLE = 0x100, OPT_PIDFILE, OPT_NOPIVOT, OPT_NOKEYRING, OPT_PRESERVE,
       OPT_KEEP };

static const struct option run_opts[] = {
	{ "bundle", required_argument, NULL, OPT_BUNDLE },
	{ "console-socket", required_argument, NULL, OPT_CONSOLE },
	{ "pid-file", required_argument, NULL, OPT_PIDFILE },
	{ "no-pivot", no_argument, NULL, OPT_NOPIVOT },
	{ "no-new-keyring", no_argument, NULL, OPT_NOKEYRING },
	{ "preserve-fds", required_argument, NULL, OPT_PRESERVE },
	{ "detach", no_argument, NULL, OPT_DETACH },
	{ "keep", no_argument, NULL, OPT_KEEP },
	{ 0 },
};

static int cmd_run(struct cli *cli, int argc, char **argv)
{
	struct kelp_create_opts o = { .bundle = ".", .reexec_argv = cli->argv, .reexec_envp = environ };
	bool detach = false, keep = false;
	int c;
	while ((c = getopt_long_only(argc, argv, "+b:d", run_opts, NULL)) != -1) {
		switch (c) {
		case OPT_BUNDLE:
			o.bundle = optarg;
			break;
		case OPT_CONSOLE:
			o.console_socket = optarg;
			break;
		case OPT_PIDFILE:
			o.pid_file = optarg;
			break;
		case OPT_NOPIVOT:
			o.no_pivot = true;
			break;
		case OPT_NOKEYRING:
			break;
		case OPT_PRESERVE:
			if (cli_parse_uint(optarg, &o.preserve_fds) < 0)
				return cli_usage(&verb_run, "--preserve-fds: expected a number, got '%s'", optarg);
			break;
		case OPT_DETACH:
			detach = true;
			break;
		case OPT_KEEP:
			keep = true;
			break;
		default:
			return cli_usage(&verb_run, "unknown option");
		}
	}
	if (optind != argc - 1)
		return cli_usage(&verb_run, "expected exactly one container id");
	if (detach && keep)
		return cli_usage(&verb_run, "--keep cannot be used with --detach");
	o.id = argv[optind];
	o.listen_fds = cli_listen_fds();
	o.foreground = !detach;
	struct kelp_err err = { 0 };
	pid_t pid;
	int console = -1;
	if (!detach)
		cli_block_signals();
	if (kelp_create(&cli->rt, &o, &pid, &console, &err) < 0)
		return cli_fail(&err);
	if (kelp_start(&cli->rt, o.id, &err) < 0) {
		struct kelp_err ignored;
		kelp_delete(&cli->rt, o.id, true, &ignored);
		return cli_fail(&err);
	}
	if (detach)
		return 0;
	int status = cli_foreground(pid, console);
	if (console >= 0)
		close(console);
	if (!keep && kelp_delete(&cli->rt, o.id, true, &err) < 0)
		cli_fail(&err);
	return status;
}

const struct verb verb_run = {
	"run", "[--bundle DIR] [--detach] [--console-socket SOCK] [--pid-file FILE] [--preserve-fds N] [--no-pivot] [--keep] ID",
	cmd_run
};
