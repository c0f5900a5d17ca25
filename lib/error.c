#include "error.h"

#include <stdio.h>
#include <string.h>

int kelp_verror(struct kelp_err *err, int code, const char *fmt, va_list ap)
{
	if (!err)
		return -1;
	int n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(err->msg))
		n = sizeof(err->msg) - 1;
	if (code != 0)
		snprintf(err->msg + n, sizeof(err->msg) - n, ": %s", strerror(code));
	err->code = code;
	return -1;
}

int kelp_error(struct kelp_err *err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	kelp_verror(err, code, fmt, ap);
	va_end(ap);
	return -1;
}

int kelp_fail(struct kelp_err *err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	kelp_verror(err, 0, fmt, ap);
	va_end(ap);
	if (err)
		err->code = code;
	return -1;
}

int kelp_error_wrap(struct kelp_err *err, const char *fmt, ...)
{
	if (!err)
		return -1;
	char prefix[KELP_ERR_MSG_MAX];
	char old[KELP_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof(old));
	snprintf(err->msg, sizeof(err->msg), "%s: %s", prefix, old);
	return -1;
}

void kelp_error_clear(struct kelp_err *err)
{
	if (!err)
		return;
	err->code = 0;
	err->msg[0] = '\0';
}
