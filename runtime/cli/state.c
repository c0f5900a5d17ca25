#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

static int cmd_state(struct cli *cli, int argc, char **argv)
{
	if (argc != 2 || argv[1][0] == '-')
		return cli_usage(&verb_state, "expected exactly one container id");
	struct kelp_err err = { 0 };
	struct kelp_state *s;
	if (kelp_state_load(&cli->rt, argv[1], &s, &err) < 0)
		return cli_fail(&err);
	char *json = kelp_state_json(s, true);
	printf("%s", json);
	free(json);
	kelp_state_free(s);
	return 0;
}

const struct verb verb_state = { "state", "ID", cmd_state };
