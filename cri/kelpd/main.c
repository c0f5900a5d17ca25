/* kelpd: for now the image store's command line (`kelpd image ...`); the CRI server comes next. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kelpd.h"
#include "log.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: kelpd [--config FILE] [--root DIR] [--debug] image pull|import|ls|inspect|rm ...\n");
}

int kelpd_load_config(const struct kelpd_opts *o, struct kelpd_config *ret, struct kelp_err *err)
{
	if (kelpd_config_load(o->config_path ? o->config_path : KELPD_CONFIG_DEFAULT, !o->config_path, ret, err) < 0)
		return -1;
	if (o->root) {
		free(ret->root);
		ret->root = strdup(o->root);
		if (!ret->root)
			abort();
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct kelpd_opts o = {0};
	static const struct option longopts[] = {
		{"config", required_argument, NULL, 'c'}, {"root", required_argument, NULL, 'r'},
		{"debug", no_argument, NULL, 'd'},        {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;
	while ((c = getopt_long(argc, argv, "+c:r:dh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': o.config_path = optarg; break;
		case 'r': o.root = optarg; break;
		case 'd': o.debug = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	struct kelp_err err = {0};
	if (kelp_log_init(NULL, KELP_LOG_TEXT, o.debug, &err) < 0) {
		fprintf(stderr, "kelpd: %s\n", err.msg);
		return 1;
	}
	if (optind < argc && !strcmp(argv[optind], "image"))
		return kelpd_image_main(&o, argc - optind, argv + optind);
	usage(stderr);
	return 2;
}
