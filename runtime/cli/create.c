#include <stdio.h>
#include <string.h>

#include <unistd.h>

#include "cli.h"

enum { OPT_BUNDLE = 'b', OPT_CONSOLE = 0x100, OPT_PIDFILE, OPT_NOPIVOT, OPT_NOKEYRING, OPT_PRESERVE };

static const struct option create_opts[] = {
	{ "bundle", required_argument, NULL, OPT_BUNDLE },
	{ "console-socket", required_argument, NULL, OPT_CONSOLE },
	{ "pid-file", required_argument, NULL, OPT_PIDFILE },
	{ "no-pivot", no_argument, NULL, OPT_NOPIVOT },
	{ "no-new-keyring", no_argument, NULL, OPT_NOKEYRING },
	{ "preserve-fds", required_argument, NULL, OPT_PRESERVE },
	{ 0 },
};

static int cmd_create(struct cli *cli, int argc, char **argv)
{
	struct kelp_create_opts o = { .bundle = ".", .reexec_argv = cli->argv, .reexec_envp = environ };
	int c;
	while ((c = getopt_long_only(argc, argv, "+b:", create_opts, NULL)) != -1) {
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
			break; /* kelp never creates a session keyring */
		case OPT_PRESERVE:
			if (cli_parse_uint(optarg, &o.preserve_fds) < 0)
				return cli_usage(&verb_create, "--preserve-fds: expected a number, got '%s'", optarg);
			break;
		default:
			return cli_usage(&verb_create, "unknown option");
		}
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
