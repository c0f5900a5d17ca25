/* The `kelp` command line: global options, one file per verb, each a thin layer over one
 * library call. Exit status 1 on error, as runc. */
#pragma once
#include <getopt.h>
#include <stdbool.h>

#include "container.h"
#include "error.h"

struct cli {
	struct kelp_runtime rt;
	const char *log_path;
	char **argv; /* main's, for a re-exec from the sealed copy (runtime/sealed.c) */
};

struct verb {
	const char *name;
	const char *usage;
	int (*run)(struct cli *cli, int argc, char **argv);
};

extern const struct verb verb_create, verb_start, verb_run, verb_state, verb_kill, verb_delete, verb_list, verb_ps,
	verb_exec, verb_spec;

/* Report err once (stderr, and the --log file) and return 1. */
int cli_fail(const struct kelp_err *err);
/* Usage error: "kelp VERB: MSG" and the verb's usage; returns 1. */
int cli_usage(const struct verb *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The socket-activation fds handed to us (LISTEN_FDS, when LISTEN_PID is unset or ours). */
int cli_listen_fds(void);
/* Parse a non-negative integer option value. */
int cli_parse_uint(const char *s, int *ret);

/* The options that create and run share (runc's): their getopt entries, and their handling. */
enum {
	CLI_OPT_BUNDLE = 'b',
	CLI_OPT_CONSOLE = 0x100,
	CLI_OPT_PIDFILE,
	CLI_OPT_NOPIVOT,
	CLI_OPT_NOKEYRING,
	CLI_OPT_PRESERVE,
	CLI_OPT_CREATE_END /* a verb's own options start here */
};
#define CLI_CREATE_OPTIONS                                                   \
	{ "bundle", required_argument, NULL, CLI_OPT_BUNDLE },               \
	{ "console-socket", required_argument, NULL, CLI_OPT_CONSOLE },      \
	{ "pid-file", required_argument, NULL, CLI_OPT_PIDFILE },            \
	{ "no-pivot", no_argument, NULL, CLI_OPT_NOPIVOT },                  \
	{ "no-new-keyring", no_argument, NULL, CLI_OPT_NOKEYRING },          \
	{ "preserve-fds", required_argument, NULL, CLI_OPT_PRESERVE }
/* Option c into o: 0 when it is one of CLI_CREATE_OPTIONS, -1 when it is not, else the exit
 * status of a usage error (its value is bad). */
int cli_create_opt(const struct verb *v, int c, struct kelp_create_opts *o);

/* Foreground supervision for run and exec: forward signals to pid, proxy the pty (console_fd
 * >= 0) with our terminal, reap children; returns pid's exit status (128+N for signal N).
 * Signals must already be blocked with cli_block_signals(). */
int cli_foreground(pid_t pid, int console_fd);
void cli_block_signals(void);
void cli_unblock_signals(void);
extern const struct verb verb_pause, verb_resume, verb_update, verb_events, verb_features;
