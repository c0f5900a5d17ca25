#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "cli.h"
#include "fs.h"

static const struct option spec_opts[] = {
	{ "bundle", required_argument, NULL, 'b' },
	{ "rootless", no_argument, NULL, 'r' },
	{ 0 },
};

static int cmd_spec(struct cli *cli, int argc, char **argv)
{
	(void)cli;
	const char *bundle = ".";
	bool rootless = false;
	int c;
	while ((c = getopt_long_only(argc, argv, "+b:", spec_opts, NULL)) != -1) {
		if (c == 'b')
			bundle = optarg;
		else if (c == 'r')
			rootless = true;
		else
			return cli_usage(&verb_spec, "unknown option");
	}
	if (optind != argc)
		return cli_usage(&verb_spec, "takes no arguments");
	struct kelp_err err = { 0 };
	cleanup_close int dfd = open(bundle, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		kelp_error(&err, errno, "open bundle %s", bundle);
		return cli_fail(&err);
	}
	if (faccessat(dfd, "config.json", F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
		kelp_error(&err, EEXIST, "File %s/config.json exists. Remove it first", bundle);
		return cli_fail(&err);
	}
	cleanup_free char *json = spec_default_json(rootless);
	if (kelp_atomic_write(dfd, "config.json", json, strlen(json), 0644, &err) < 0)
		return cli_fail(&err);
	return 0;
}

const struct verb verb_spec = { "spec", "[--bundle DIR] [--rootless]", cmd_spec };
