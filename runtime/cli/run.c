#include <stdio.h>
#include <unistd.h>

#include "cli.h"

enum { OPT_DETACH = 'd', OPT_KEEP = CLI_OPT_CREATE_END };

static const struct option run_opts[] = {
	CLI_CREATE_OPTIONS,
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
		int r = cli_create_opt(&verb_run, c, &o);
		if (r > 0)
			return r;
		if (r == 0)
			continue;
		switch (c) {
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
