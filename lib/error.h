/* One error type for all of kelp: an errno plus a message naming the object. */
#pragma once
#include <stdarg.h>

#define KELP_ERR_MSG_MAX 1024

struct kelp_err {
	int code;                   /* errno value, 0 when the error is not a system error */
	char msg[KELP_ERR_MSG_MAX]; /* "mount /proc on /run/kelp/x/rootfs/proc: Operation not permitted" */
};

/* Fill err with the formatted message, followed by ": strerror(code)" when code != 0.
 * Always returns -1 so callers can `return kelp_error(err, errno, "open %s", path);`. */
int kelp_error(struct kelp_err *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int kelp_verror(struct kelp_err *err, int code, const char *fmt, va_list ap);

/* An error that is not a failed system call ("container x does not exist"): the message as
 * given, with code kept for callers that branch on it (ENOENT, EEXIST, ...). */
int kelp_fail(struct kelp_err *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Prefix an existing error with context ("create container web: <old message>"); keeps code. */
int kelp_error_wrap(struct kelp_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Reset to "no error". */
void kelp_error_clear(struct kelp_err *err);
