#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

static int cmd_features(struct cli *cli, int argc, char **argv)
{
	(void)cli;
	(void)argv;
	if (argc != 1)
		return cli_usage(&verb_features, "takes no arguments");
	char *json = kelp_features_json();
	printf("%s", json);
	free(json);
	return 0;
}

const struct verb verb_features = { "features", "", cmd_features };
