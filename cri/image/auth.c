#include "auth.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "http.h"
#include "json.h"

#define TOKEN_MAX (1 << 20)

/* The value of param `key` in `Bearer realm="...",service="...",scope="..."`. */
static char *auth_param(const char *h, const char *key)
{
	size_t k = strlen(key);
	const char *p = h;
	while (*p && !isspace((unsigned char)*p))
		p++; /* the scheme */
	while (*p) {
		while (*p == ',' || isspace((unsigned char)*p))
			p++;
		const char *name = p;
		while (*p && *p != '=')
			p++;
		if (!*p)
			return NULL;
		size_t nlen = (size_t)(p - name);
		p++;
		char *val = xmalloc(strlen(p) + 1);
		size_t o = 0;
		if (*p == '"') {
			for (p++; *p && *p != '"'; p++) {
				if (*p == '\\' && p[1])
					p++;
				val[o++] = *p;
			}
			if (*p == '"')
				p++;
		} else {
			while (*p && *p != ',')
				val[o++] = *p++;
		}
		val[o] = '\0';
		if (nlen == k && !strncasecmp(name, key, k))
			return val;
		free(val);
	}
	return NULL;
}

int kimg_auth_fetch_token(struct kimg_registry *r, struct kimg_endpoint *ep, const char *www, char **ret,
		       struct kelp_err *err)
{
	cleanup_free char *realm = auth_param(www, "realm");
	cleanup_free char *service = auth_param(www, "service");
	cleanup_free char *scope = auth_param(www, "scope");
	if (!realm)
		return kelp_fail(err, EPROTO, "registry %s: Bearer challenge without a realm", ep->base);
	if (!scope)
		scope = xasprintf("repository:%s:pull", r->repo);
	CURL *c = curl_easy_init();
	if (!c)
		abort();
	cleanup_free char *esc_service = service ? kimg_http_escape(c, service) : NULL;
	cleanup_free char *esc_scope = kimg_http_escape(c, scope);
	struct membuf m = {.max = TOKEN_MAX};
	struct xfer x = {.c = c, .sink = kimg_http_mem_sink, .data = &m, .err = err, .length = -1};
	cleanup_free char *url = NULL, *form = NULL;
	int rc = -1;
	const struct kimg_auth *a = r->auth;
	kimg_http_common_opts(c);
	curl_easy_setopt(c, CURLOPT_SHARE, r->share);
	/* the realm may be plain HTTP only when the registry itself is allowed to be */
	kimg_http_set_protocols(c, ep->plain_ok);
	if (a && a->identity_token) {
		cleanup_free char *tok = kimg_http_escape(c, a->identity_token);
		url = xstrdup(realm);
		form = xasprintf("grant_type=refresh_token&client_id=kelpd&refresh_token=%s&scope=%s%s%s", tok, esc_scope,
				 esc_service ? "&service=" : "", esc_service ? esc_service : "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, form);
	} else {
		url = xasprintf("%s%sscope=%s%s%s", realm, strchr(realm, '?') ? "&" : "?", esc_scope,
				esc_service ? "&service=" : "", esc_service ? esc_service : "");
		if (a && a->username) {
			curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
			curl_easy_setopt(c, CURLOPT_USERNAME, a->username);
			curl_easy_setopt(c, CURLOPT_PASSWORD, a->password ? a->password : "");
		}
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, kimg_http_on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &x);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, kimg_http_on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
	CURLcode cr = curl_easy_perform(c);
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (x.sink_failed) {
		kelp_error_wrap(err, "token from %s", realm);
	} else if (cr != CURLE_OK) {
		kelp_fail(err, EIO, "token from %s: %s", realm, curl_easy_strerror(cr));
	} else if (status == 401 || status == 403) {
		kelp_fail(err, EACCES, "registry %s refused the credentials%s%s (token server %s said %ld)", r->domain,
			  a && a->username ? " of " : "", a && a->username ? a->username : "", realm, status);
	} else if (status / 100 != 2) {
		kelp_fail(err, EIO, "token from %s: HTTP %ld %s", realm, status, x.errbody);
	} else {
		struct kj root;
		if (kj_parse(m.buf ? m.buf : "", m.len, "token response", &root, err) == 0) {
			char *tok = NULL;
			if (kj_opt_string(&root, "token", &tok, err) == 0 && !tok)
				kj_opt_string(&root, "access_token", &tok, err);
			if (tok) {
				*ret = xasprintf("Bearer %s", tok);
				free(tok);
				rc = 0;
			} else {
				kelp_fail(err, EPROTO, "token from %s: no token in the response", realm);
			}
			yajl_tree_free(root.v);
		}
	}
	kimg_http_xfer_clear(&x);
	curl_easy_cleanup(c);
	free(m.buf);
	return rc;
}

int kimg_auth_basic(const struct kimg_auth *a, char **ret)
{
	static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	cleanup_free char *plain = xasprintf("%s:%s", a->username, a->password ? a->password : "");
	size_t n = strlen(plain);
	char *out = xmalloc(6 + 4 * ((n + 2) / 3) + 1);
	char *o = out + sprintf(out, "Basic ");
	const unsigned char *p = (const unsigned char *)plain;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
		*o++ = tbl[(v >> 18) & 63];
		*o++ = tbl[(v >> 12) & 63];
		*o++ = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
		*o++ = i + 2 < n ? tbl[v & 63] : '=';
	}
	*o = '\0';
	*ret = out;
	return 0;
}
