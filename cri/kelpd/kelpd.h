/* kelpd's command line: global options, then one file per command group. */
#pragma once
#include <stdbool.h>

#include "config.h"

struct kelpd_opts {
	const char *config_path; /* NULL: the default, which may be missing */
	const char *root;        /* --root overrides the config */
	bool debug;
};

/* Load the configuration the options name, with --root applied. */
int kelpd_load_config(const struct kelpd_opts *o, struct kelpd_config *ret, struct kelp_err *err);
int kelpd_image_main(const struct kelpd_opts *o, int argc, char **argv);
