#include "cli.h"

static int cmd_pause(struct cli *cli, int argc, char **argv)
{
	if (argc != 2 || argv[1][0] == '-')
		return cli_usage(&verb_pause, "expected exactly one container id");
	struct kelp_err err = { 0 };
	if (kelp_pause(&cli->rt, argv[1], &err) < 0)
		return cli_fail(&err);
	return 0;
}

static int cmd_resume(struct cli *cli, int argc, char **argv)
{
	if (argc != 2 || argv[1][0] == '-')
		return cli_usage(&verb_resume, "expected exactly one container id");
	struct kelp_err err = { 0 };
	if (kelp_resume(&cli->rt, argv[1], &err) < 0)
		return cli_fail(&err);
	return 0;
}

const struct verb verb_pause = { "pause", "ID", cmd_pause };
const struct verb verb_resume = { "resume", "ID", cmd_resume };
