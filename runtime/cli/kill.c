#include <signal.h>

#include "cli.h"
#include "internal.h"

static const struct option kill_opts[] = { { "all", no_argument, NULL, 'a' }, { 0 } };

static int cmd_kill(struct cli *cli, int argc, char **argv)
{
	bool all = false;
	int c;
	while ((c = getopt_long_only(argc, argv, "+a", kill_opts, NULL)) != -1) {
		if (c != 'a')
			return cli_usage(&verb_kill, "unknown option");
		all = true;
	}
	int n = argc - optind;
	if (n < 1 || n > 2)
		return cli_usage(&verb_kill, "expected a container id and an optional signal");
	int sig = SIGTERM;
	if (n == 2 && (sig = signal_parse(argv[optind + 1])) < 0)
		return cli_usage(&verb_kill, "unknown signal '%s'", argv[optind + 1]);
	struct kelp_err err = { 0 };
	if (kelp_kill(&cli->rt, argv[optind], sig, all, &err) < 0)
		return cli_fail(&err);
	return 0;
}

const struct verb verb_kill = { "kill", "[--all] ID [SIGNAL]", cmd_kill };
