#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgroup.h"
#include "cli.h"
#include "internal.h"
#include "json.h"

static const struct option events_opts[] = {
	{ "stats", no_argument, NULL, 's' },
	{ "interval", required_argument, NULL, 'i' },
	{ 0 },
};

/* Go-style durations as runc takes them: "5s", "500ms", "1m", "1m30s". */
static int parse_duration_ms(const char *s, long *ret)
{
	long total = 0;
	const char *p = s;
	if (!*p)
		return -1;
	while (*p) {
		char *end;
		double v = strtod(p, &end);
		if (end == p)
			return -1;
		double mul;
		if (strncmp(end, "ms", 2) == 0) {
			mul = 1;
			end += 2;
		} else if (*end == 's') {
			mul = 1000;
			end++;
		} else if (*end == 'm') {
			mul = 60000;
			end++;
		} else if (*end == 'h') {
			mul = 3600000;
			end++;
		} else {
			return -1;
		}
		total += (long)(v * mul);
		p = end;
	}
	if (total <= 0)
		return -1;
	*ret = total;
	return 0;
}

static void print_stats(const char *id, const struct cg_stats *st)
{
	yajl_gen g = kg_new(false);
	yajl_gen_map_open(g);
	kg_key_str(g, "type", "stats");
	kg_key_str(g, "id", id);
	kg_key(g, "data");
	yajl_gen_map_open(g);
	kg_key(g, "cpu");
	yajl_gen_map_open(g);
	kg_key(g, "usage");
	yajl_gen_map_open(g);
	kg_key_int(g, "total", (long long)st->cpu_total_ns);
	kg_key_int(g, "kernel", (long long)st->cpu_kernel_ns);
	kg_key_int(g, "user", (long long)st->cpu_user_ns);
	yajl_gen_map_close(g);
	kg_key(g, "throttling");
	yajl_gen_map_open(g);
	kg_key_int(g, "periods", (long long)st->cpu_periods);
	kg_key_int(g, "throttledPeriods", (long long)st->cpu_throttled_periods);
	kg_key_int(g, "throttledTime", (long long)st->cpu_throttled_ns);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	kg_key(g, "memory");
	yajl_gen_map_open(g);
	kg_key(g, "usage");
	yajl_gen_map_open(g);
	kg_key_int(g, "limit", (long long)st->mem_limit);
	kg_key_int(g, "usage", (long long)st->mem_usage);
	kg_key_int(g, "max", (long long)st->mem_max_usage);
	kg_key_int(g, "failcnt", (long long)st->mem_failcnt);
	yajl_gen_map_close(g);
	kg_key(g, "swap");
	yajl_gen_map_open(g);
	kg_key_int(g, "limit", (long long)st->swap_limit);
	kg_key_int(g, "usage", (long long)st->swap_usage);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	kg_key(g, "pids");
	yajl_gen_map_open(g);
	kg_key_int(g, "current", (long long)st->pids_current);
	kg_key_int(g, "limit", (long long)st->pids_limit);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	char *out = kg_finish(g, NULL);
	printf("%s\n", out);
	fflush(stdout);
	free(out);
}

static int cmd_events(struct cli *cli, int argc, char **argv)
{
	bool once = false;
	long interval = 5000;
	int c;
	while ((c = getopt_long_only(argc, argv, "+", events_opts, NULL)) != -1) {
		if (c == 's')
			once = true;
		else if (c == 'i' && parse_duration_ms(optarg, &interval) == 0)
			continue;
		else if (c == 'i')
			return cli_usage(&verb_events, "--interval: expected a duration like 5s, got '%s'", optarg);
		else
			return cli_usage(&verb_events, "unknown option");
	}
	if (optind != argc - 1)
		return cli_usage(&verb_events, "expected exactly one container id");
	const char *id = argv[optind];
	struct kelp_err err = { 0 };
	struct cg_stats st;
	if (kelp_stats(&cli->rt, id, &st, &err) < 0)
		return cli_fail(&err);
	if (once) {
		print_stats(id, &st);
		return 0;
	}
	/* The stream: stats every interval, an "oom" event when the OOM kill count grows, until
	 * the container stops. */
	unsigned long long ooms = st.oom_kills;
	struct kelp_state *s;
	if (kelp_state_load(&cli->rt, id, &s, &err) < 0)
		return cli_fail(&err);
	int pidfd = state_pidfd(s, &err);
	kelp_state_free(s);
	if (pidfd < 0)
		return cli_fail(&err);
	for (;;) {
		print_stats(id, &st);
		struct pollfd p = { .fd = pidfd, .events = POLLIN };
		int r = poll(&p, 1, (int)interval);
		if (r > 0)
			break;
		if (r < 0 && errno != EINTR)
			break;
		if (kelp_stats(&cli->rt, id, &st, &err) < 0)
			break;
		if (st.oom_kills > ooms) {
			printf("{\"type\":\"oom\",\"id\":\"%s\"}\n", id);
			fflush(stdout);
			ooms = st.oom_kills;
		}
	}
	close(pidfd);
	return 0;
}

const struct verb verb_events = { "events", "[--stats] [--interval 5s] ID", cmd_events };
