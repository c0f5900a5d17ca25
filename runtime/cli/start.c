#include "cli.h"

static int cmd_start(struct cli *cli, int argc, char **argv)
{
	if (argc != 2 || argv[1][0] == '-')
		return cli_usage(&verb_start, "expected exactly one container id");
	struct kelp_err err = { 0 };
	if (kelp_start(&cli->rt, argv[1], &err) < 0)
		return cli_fail(&err);
	return 0;
}

const struct verb verb_start = { "start", "ID", cmd_start };
