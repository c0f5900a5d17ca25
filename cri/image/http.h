/* One HTTP exchange on libcurl, shared by the registry client and its token fetches: response
 * headers the distribution API needs, bodies to a sink (2xx) or a short error buffer, and the
 * options every request gets (HTTP/2 over TLS, redirects limited to allowed protocols, stall
 * timeouts). Internal to cri/image. */
#pragma once
#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "registry.h"

#define ERR_BODY_MAX 512

struct xfer {
	CURL *c;
	kimg_sink_fn sink;
	void *data;
	struct kelp_err *err;
	bool sink_failed;
	char errbody[ERR_BODY_MAX + 1];
	size_t errlen;
	char *www_auth, *content_type, *docker_digest;
	int64_t length;
};

size_t kimg_http_on_header(char *buf, size_t size, size_t n, void *data);
size_t kimg_http_on_body(char *buf, size_t size, size_t n, void *data);
void kimg_http_xfer_clear(struct xfer *x);
/* https only, or http and https when plain HTTP is allowed (redirects too). */
void kimg_http_set_protocols(CURL *c, bool plain_ok);
void kimg_http_common_opts(CURL *c);

/* A sink into memory, refusing more than max bytes. */
struct membuf {
	char *buf;
	size_t len, max;
};
int kimg_http_mem_sink(void *data, const void *buf, size_t len, struct kelp_err *err);
char *kimg_http_escape(CURL *c, const char *s);
