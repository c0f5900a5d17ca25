#include <stdio.h>
#include <string.h>

#include <unistd.h>

#include "cli.h"

static const struct option create_opts[] = {
	CLI_CREATE_OPTIONS,
	{ 0 },
};

int cli_create_opt(const struct verb *v, int c, struct kelp_create_opts *o)
{
	switch (c) {
	case CLI_OPT_BUNDLE:
		o->bundle = optarg;
		return 0;
	case CLI_OPT_CONSOLE:
		o->console_socket = optarg;
		return 0;
	case CLI_OPT_PIDFILE:
		o->pid_file = optarg;
		return 0;
	case CLI_OPT_NOPIVOT:
		o->no_pivot = true;
		return 0;
	case CLI_OPT_NOKEYRING:
		return 0; /* kelp never creates a session keyring */
	case CLI_OPT_PRESERVE:
		if (cli_parse_uint(optarg, &o->preserve_fds) < 0)
			return cli_usage(v, "--preserve-fds: expected a number, got '%s'", optarg);
		return 0;
	default:
		return -1;
	}
}

static int cmd_create(struct cli *cli, int argc, char **argv)
{
	struct kelp_create_opts o = { .bundle = ".", .reexec_argv = cli->argv, .reexec_envp = environ };
	int c;
	while ((c = getopt_long_only(argc, argv, "+b:", create_opts, NULL)) != -1) {
		int r = cli_create_opt(&verb_create, c, &o);
		if (r > 0)
			return r;
		if (r < 0)
			return cli_usage(&verb_create, "unknown option");
	}
	if (optind != argc - 1)
		return cli_usage(&verb_create, "expected exactly one container id");
	o.id = argv[optind];
	o.listen_fds = cli_listen_fds();
	struct kelp_err err = { 0 };
	if (kelp_create(&cli->rt, &o, NULL, NULL, &err) < 0)
		return cli_fail(&err);
	return 0;
}

const struct verb verb_create = {
	"create", "[--bundle DIR] [--console-socket SOCK] [--pid-file FILE] [--preserve-fds N] [--no-pivot] ID", cmd_create
};
