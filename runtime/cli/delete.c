#include <errno.h>

#include "cli.h"

static const struct option delete_opts[] = { { "force", no_argument, NULL, 'f' }, { 0 } };

static int cmd_delete(struct cli *cli, int argc, char **argv)
{
	bool force = false;
	int c;
	while ((c = getopt_long_only(argc, argv, "+f", delete_opts, NULL)) != -1) {
		if (c != 'f')
			return cli_usage(&verb_delete, "unknown option");
		force = true;
	}
	if (optind >= argc)
		return cli_usage(&verb_delete, "expected a container id");
	int rc = 0;
	for (int i = optind; i < argc; i++) {
		struct kelp_err err = { 0 };
		if (kelp_delete(&cli->rt, argv[i], force, &err) < 0) {
			/* runc: force-deleting a container that is already gone is not an error */
			if (force && err.code == ENOENT)
				continue;
			rc = cli_fail(&err);
		}
	}
	return rc;
}

const struct verb verb_delete = { "delete", "[--force] ID...", cmd_delete };
