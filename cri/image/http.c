#include "http.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"

static char *header_value(const char *line, size_t n, const char *name)
{
	size_t k = strlen(name);
	if (n <= k + 1 || strncasecmp(line, name, k) || line[k] != ':')
		return NULL;
	const char *v = line + k + 1;
	const char *end = line + n;
	while (v < end && isspace((unsigned char)*v))
		v++;
	while (end > v && isspace((unsigned char)end[-1]))
		end--;
	char *s = strndup(v, (size_t)(end - v));
	if (!s)
		abort();
	return s;
}

size_t kimg_http_on_header(char *buf, size_t size, size_t n, void *data)
{
	struct xfer *x = data;
	size_t len = size * n;
	/* a redirect starts a new header block: forget the old one's values */
	if (len >= 5 && !strncmp(buf, "HTTP/", 5)) {
		free(x->www_auth);
		free(x->content_type);
		free(x->docker_digest);
		x->www_auth = x->content_type = x->docker_digest = NULL;
		x->length = -1;
	}
	char *v;
	if ((v = header_value(buf, len, "WWW-Authenticate"))) {
		free(x->www_auth);
		x->www_auth = v;
	} else if ((v = header_value(buf, len, "Content-Type"))) {
		free(x->content_type);
		x->content_type = v;
	} else if ((v = header_value(buf, len, "Docker-Content-Digest"))) {
		free(x->docker_digest);
		x->docker_digest = v;
	} else if ((v = header_value(buf, len, "Content-Length"))) {
		x->length = strtoll(v, NULL, 10);
		free(v);
	}
	return len;
}

size_t kimg_http_on_body(char *buf, size_t size, size_t n, void *data)
{
	struct xfer *x = data;
	size_t len = size * n;
	long status = 0;
	curl_easy_getinfo(x->c, CURLINFO_RESPONSE_CODE, &status);
	if (status / 100 != 2 || !x->sink) {
		size_t room = ERR_BODY_MAX - x->errlen;
		size_t k = len < room ? len : room;
		memcpy(x->errbody + x->errlen, buf, k);
		x->errlen += k;
		x->errbody[x->errlen] = '\0';
		return len;
	}
	if (x->sink(x->data, buf, len, x->err) < 0) {
		x->sink_failed = true;
		return 0; /* aborts the transfer */
	}
	return len;
}

void kimg_http_xfer_clear(struct xfer *x)
{
	free(x->www_auth);
	free(x->content_type);
	free(x->docker_digest);
	x->www_auth = x->content_type = x->docker_digest = NULL;
	x->errlen = 0;
	x->errbody[0] = '\0';
	x->length = -1;
	x->sink_failed = false;
}

void kimg_http_set_protocols(CURL *c, bool plain_ok)
{
	const char *p = plain_ok ? "http,https" : "https";
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, p);
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, p);
}

void kimg_http_common_opts(CURL *c)
{
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
	curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
	/* a stalled transfer fails instead of hanging a pull forever */
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "kelpd/0.1");
	curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
}


int kimg_http_mem_sink(void *data, const void *buf, size_t len, struct kelp_err *err)
{
	struct membuf *m = data;
	if (m->len + len > m->max)
		return kelp_fail(err, EFBIG, "response larger than %zu bytes", m->max);
	m->buf = xrealloc(m->buf, m->len + len + 1);
	memcpy(m->buf + m->len, buf, len);
	m->len += len;
	m->buf[m->len] = '\0';
	return 0;
}

char *kimg_http_escape(CURL *c, const char *s)
{
	char *e = curl_easy_escape(c, s, 0);
	if (!e)
		abort();
	char *r = xstrdup(e);
	curl_free(e);
	return r;
}
