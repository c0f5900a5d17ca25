/* Leveled logging to stderr or a file, as text or as JSON lines (runc's --log-format json,
 * which containerd's shim reads back). Libraries log at debug level only; main() and the
 * daemons' request handlers report errors once. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "error.h"

enum kelp_log_level { KELP_LOG_DEBUG, KELP_LOG_INFO, KELP_LOG_WARN, KELP_LOG_ERROR };
enum kelp_log_format { KELP_LOG_TEXT, KELP_LOG_JSON };

/* path NULL or "" logs to stderr. The file is opened O_APPEND|O_CLOEXEC. */
int kelp_log_init(const char *path, enum kelp_log_format format, bool debug, struct kelp_err *err);
int kelp_log_parse_format(const char *s, enum kelp_log_format *ret);
/* Whether records go somewhere other than stderr (a --log file). */
bool kelp_log_to_file(void);
void kelp_log_close(void);
/* The fd records go to (stderr's when no file), for code that closes every other fd. */
int kelp_log_fd(void);

void kelp_log(enum kelp_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool kelp_log_debug_enabled(void);

#define log_debug(...)                                                                             \
	do {                                                                                       \
		if (kelp_log_debug_enabled())                                                      \
			kelp_log(KELP_LOG_DEBUG, __VA_ARGS__);                                     \
	} while (0)
#define log_info(...) kelp_log(KELP_LOG_INFO, __VA_ARGS__)
#define log_warn(...) kelp_log(KELP_LOG_WARN, __VA_ARGS__)
#define log_error(...) kelp_log(KELP_LOG_ERROR, __VA_ARGS__)

/* Escape s as the inside of a JSON string into buf (always NUL-terminated, truncated). */
void kelp_json_escape(const char *s, char *buf, size_t size);
