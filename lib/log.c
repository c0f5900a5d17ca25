#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int log_fd = STDERR_FILENO;
static enum kelp_log_format log_format = KELP_LOG_TEXT;
static bool log_debug_on;

static const char *level_name[] = { "debug", "info", "warning", "error" };

int kelp_log_parse_format(const char *s, enum kelp_log_format *ret)
{
	if (strcmp(s, "text") == 0)
		*ret = KELP_LOG_TEXT;
	else if (strcmp(s, "json") == 0)
		*ret = KELP_LOG_JSON;
	else
		return -1;
	return 0;
}

int kelp_log_init(const char *path, enum kelp_log_format format, bool debug, struct kelp_err *err)
{
	log_format = format;
	log_debug_on = debug;
	if (!path || !*path) {
		kelp_log_close();
		return 0;
	}
	{
		int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
		if (fd < 0)
			return kelp_error(err, errno, "open log file %s", path);
		kelp_log_close();
		log_fd = fd;
	}
	return 0;
}

bool kelp_log_to_file(void)
{
	return log_fd != STDERR_FILENO;
}

void kelp_log_close(void)
{
	if (log_fd != STDERR_FILENO)
		close(log_fd);
	log_fd = STDERR_FILENO;
}

int kelp_log_fd(void)
{
	return log_fd;
}

bool kelp_log_debug_enabled(void)
{
	return log_debug_on;
}

/* Length of the valid UTF-8 sequence at s (2..4), or 0. */
static size_t utf8_seq_len(const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t n;
	unsigned min;
	unsigned cp;
	if (u[0] >= 0xc2 && u[0] <= 0xdf) {
		n = 2;
		cp = u[0] & 0x1f;
		min = 0x80;
	} else if (u[0] >= 0xe0 && u[0] <= 0xef) {
		n = 3;
		cp = u[0] & 0x0f;
		min = 0x800;
	} else if (u[0] >= 0xf0 && u[0] <= 0xf4) {
		n = 4;
		cp = u[0] & 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((u[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (u[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

void kelp_json_escape(const char *s, char *buf, size_t size)
{
	size_t o = 0;
	if (size == 0)
		return;
	for (; *s && o + 7 < size; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)c;
		} else if (c == '\n') {
			buf[o++] = '\\';
			buf[o++] = 'n';
		} else if (c == '\t') {
			buf[o++] = '\\';
			buf[o++] = 't';
		} else if (c < 0x20) {
			o += (size_t)snprintf(buf + o, size - o, "\\u%04x", c);
		} else if (c >= 0x80) {
			/* copy a whole valid UTF-8 sequence, or write U+FFFD for a bad byte, so that
			 * every record stays valid JSON */
			size_t n = utf8_seq_len(s);
			if (n == 0) {
				o += (size_t)snprintf(buf + o, size - o, "\\ufffd");
			} else {
				memcpy(buf + o, s, n);
				o += n;
				s += n - 1;
			}
		} else {
			buf[o++] = (char)c;
		}
	}
	buf[o] = '\0';
}

void kelp_log(enum kelp_log_level level, const char *fmt, ...)
{
	if (level == KELP_LOG_DEBUG && !log_debug_on)
		return;
	int saved = errno;
	char msg[2048], line[4608];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	struct timespec ts;
	struct tm tm;
	char when[64];
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t w = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(when + w, sizeof(when) - w, ".%09ldZ", ts.tv_nsec);

	int n;
	if (log_format == KELP_LOG_JSON) {
		char esc[4096];
		kelp_json_escape(msg, esc, sizeof(esc));
		n = snprintf(line, sizeof(line), "{\"level\":\"%s\",\"msg\":\"%s\",\"time\":\"%s\"}\n",
			     level_name[level], esc, when);
	} else if (log_fd == STDERR_FILENO) {
		n = snprintf(line, sizeof(line), "kelp: %s%s%s\n", level == KELP_LOG_ERROR ? "" : level_name[level],
			     level == KELP_LOG_ERROR ? "" : ": ", msg);
	} else {
		n = snprintf(line, sizeof(line), "%s %s: %s\n", when, level_name[level], msg);
	}
	if (n > (int)sizeof(line) - 1)
		n = sizeof(line) - 1;
	/* One write per record so concurrent writers to an O_APPEND file never interleave. */
	if (n > 0 && write(log_fd, line, (size_t)n) < 0) {
		/* logging must never fail the caller */
	}
	errno = saved;
}
