#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "log.h"

#define KELP_VERSION "0.1.0"

static const struct verb *const verbs[] = {
	&verb_create, &verb_start, &verb_run, &verb_state, &verb_kill, &verb_delete,
	&verb_list,   &verb_ps,    &verb_exec, &verb_spec, &verb_pause, &verb_resume,
	&verb_update, &verb_events, &verb_features,
};

int cli_fail(const struct kelp_err *err)
{
	const char *msg = err->msg[0] ? err->msg : "unknown error";
	if (kelp_log_to_file())
		log_error("%s", msg);
	fprintf(stderr, "kelp: %s\n", msg);
	return 1;
}

int cli_usage(const struct verb *v, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "kelp %s: ", v->name);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nusage: kelp %s %s\n", v->name, v->usage);
	return 1;
}

int cli_parse_uint(const char *s, int *ret)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 0 || v > 1 << 20)
		return -1;
	*ret = (int)v;
	return 0;
}

int cli_listen_fds(void)
{
	const char *n = getenv("LISTEN_FDS"), *pid = getenv("LISTEN_PID");
	int v;
	if (!n || cli_parse_uint(n, &v) < 0)
		return 0;
	if (pid && atoi(pid) != getpid())
		return 0;
	return v;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: kelp [--root DIR] [--log FILE] [--log-format text|json] [--debug] COMMAND [ARGS]\n\n"
		   "kelp is an OCI runtime with runc's command line.\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		fprintf(f, "  %-8s %s\n", verbs[i]->name, verbs[i]->usage);
}

/* Verbs after which a clone of this process lives in the container until it execs. */
/* exec always joins a container whose other processes see it; create and run decide from the
 * config (kelp_create_opts.reexec_argv). */
static bool joins_container(const char *verb)
{
	return strcmp(verb, "exec") == 0;
}

extern char **environ;

int main(int argc, char **argv)
{
	struct cli cli = { .rt = { .root = KELP_DEFAULT_ROOT } };
	enum kelp_log_format fmt = KELP_LOG_TEXT;
	bool debug = false;
	static const struct option opts[] = {
		{ "root", required_argument, NULL, 'r' },
		{ "log", required_argument, NULL, 'l' },
		{ "log-format", required_argument, NULL, 'f' },
		{ "debug", no_argument, NULL, 'd' },
		{ "systemd-cgroup", no_argument, NULL, 's' },
		{ "criu", required_argument, NULL, 'c' },
		{ "rootless", required_argument, NULL, 'R' },
		{ "version", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;
	/* '+': stop at the verb, whose own options follow it */
	while ((c = getopt_long_only(argc, argv, "+vh", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			cli.rt.root = optarg;
			break;
		case 'l':
			cli.log_path = optarg;
			break;
		case 'f':
			if (kelp_log_parse_format(optarg, &fmt) < 0) {
				fprintf(stderr, "kelp: --log-format: expected text or json, got '%s'\n", optarg);
				return 1;
			}
			break;
		case 'd':
			debug = true;
			break;
		case 's':
			cli.rt.systemd_cgroup = true;
			break;
		case 'c':
		case 'R':
			break; /* accepted for runc compatibility; nothing to do */
		case 'v':
			printf("kelp version %s\nspec: %s\n", KELP_VERSION, KELP_OCI_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	struct kelp_err err = { 0 };
	if (kelp_log_init(cli.log_path, fmt, debug, &err) < 0)
		return cli_fail(&err);
	if (optind >= argc) {
		usage(stderr);
		return 1;
	}
	const char *name = argv[optind];
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (strcmp(verbs[i]->name, name) != 0)
			continue;
		if (cli.rt.systemd_cgroup && (strcmp(name, "create") == 0 || strcmp(name, "run") == 0)) {
			char comm[64] = "";
			FILE *f = fopen("/proc/1/comm", "re");
			if (f) {
				if (fgets(comm, sizeof(comm), f))
					comm[strcspn(comm, "\n")] = '\0';
				fclose(f);
			}
			if (strcmp(comm, "systemd") != 0)
				kelp_fail(&err, ENOTSUP, "--systemd-cgroup: systemd is not PID 1 on this machine (PID 1 is %s), "
							 "so there is no systemd to manage cgroups; run without it (cgroupfs)",
					  *comm ? comm : "unknown");
			else
				kelp_fail(&err, ENOTSUP, "--systemd-cgroup: the systemd cgroup driver is not in this kelp "
							 "build; run without it (cgroupfs)");
			return cli_fail(&err);
		}
		cli.argv = argv;
		if (joins_container(name) && kelp_reexec_sealed(argv, environ, &err) < 0)
			return cli_fail(&err);
		int vargc = argc - optind;
		char **vargv = argv + optind;
		optind = 0; /* reset getopt for the verb */
		return verbs[i]->run(&cli, vargc, vargv);
	}
	fprintf(stderr, "kelp: no such command: %s\n", name);
	usage(stderr);
	return 1;
}
