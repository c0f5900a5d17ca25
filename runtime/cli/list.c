#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "json.h"

static const struct option list_opts[] = {
	{ "format", required_argument, NULL, 'f' },
	{ "quiet", no_argument, NULL, 'q' },
	{ 0 },
};

static void print_json(struct kelp_state **v, size_t n)
{
	yajl_gen g = kg_new(false);
	yajl_gen_array_open(g);
	for (size_t i = 0; i < n; i++) {
		struct kelp_state *s = v[i];
		yajl_gen_map_open(g);
		kg_key_str(g, "ociVersion", KELP_OCI_VERSION);
		kg_key_str(g, "id", s->id);
		kg_key_int(g, "pid", s->status == KELP_STOPPED ? 0 : s->pid);
		kg_key_str(g, "status", kelp_status_name(s->status));
		kg_key_str(g, "bundle", s->bundle ? s->bundle : "");
		kg_key_str(g, "rootfs", s->rootfs ? s->rootfs : "");
		kg_key_str(g, "created", s->created ? s->created : "");
		kg_key_str(g, "owner", s->owner ? s->owner : "");
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	char *out = kg_finish(g, NULL);
	printf("%s\n", out);
	free(out);
}

static void print_table(struct kelp_state **v, size_t n)
{
	int w_id = 2, w_pid = 3, w_st = 6, w_b = 6, w_c = 7;
	char pid[32];
	for (size_t i = 0; i < n; i++) {
		int l;
		if ((l = (int)strlen(v[i]->id)) > w_id)
			w_id = l;
		if ((l = snprintf(pid, sizeof(pid), "%d", v[i]->status == KELP_STOPPED ? 0 : v[i]->pid)) > w_pid)
			w_pid = l;
		if ((l = (int)strlen(kelp_status_name(v[i]->status))) > w_st)
			w_st = l;
		if (v[i]->bundle && (l = (int)strlen(v[i]->bundle)) > w_b)
			w_b = l;
		if (v[i]->created && (l = (int)strlen(v[i]->created)) > w_c)
			w_c = l;
	}
	printf("%-*s   %-*s   %-*s   %-*s   %-*s   %s\n", w_id, "ID", w_pid, "PID", w_st, "STATUS", w_b, "BUNDLE", w_c,
	       "CREATED", "OWNER");
	for (size_t i = 0; i < n; i++) {
		struct kelp_state *s = v[i];
		snprintf(pid, sizeof(pid), "%d", s->status == KELP_STOPPED ? 0 : s->pid);
		printf("%-*s   %-*s   %-*s   %-*s   %-*s   %s\n", w_id, s->id, w_pid, pid, w_st, kelp_status_name(s->status),
		       w_b, s->bundle ? s->bundle : "", w_c, s->created ? s->created : "",
		       s->owner && *s->owner ? s->owner : "root");
	}
}

static int cmd_list(struct cli *cli, int argc, char **argv)
{
	const char *format = "table";
	bool quiet = false;
	int c;
	while ((c = getopt_long_only(argc, argv, "+f:q", list_opts, NULL)) != -1) {
		if (c == 'f')
			format = optarg;
		else if (c == 'q')
			quiet = true;
		else
			return cli_usage(&verb_list, "unknown option");
	}
	if (optind != argc)
		return cli_usage(&verb_list, "takes no arguments");
	if (strcmp(format, "table") != 0 && strcmp(format, "json") != 0)
		return cli_usage(&verb_list, "--format: expected table or json, got '%s'", format);
	struct kelp_err err = { 0 };
	struct kelp_state **v;
	size_t n;
	if (kelp_list(&cli->rt, &v, &n, &err) < 0)
		return cli_fail(&err);
	if (quiet)
		for (size_t i = 0; i < n; i++)
			printf("%s\n", v[i]->id);
	else if (strcmp(format, "json") == 0)
		print_json(v, n);
	else
		print_table(v, n);
	for (size_t i = 0; i < n; i++)
		kelp_state_free(v[i]);
	free(v);
	return 0;
}

const struct verb verb_list = { "list", "[--format table|json] [--quiet]", cmd_list };
