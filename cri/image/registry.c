#include "registry.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "cleanup.h"
#include "http.h"
#include "log.h"
#include "ref.h"


static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init(void)
{
	curl_global_init(CURL_GLOBAL_ALL);
}

void kimg_response_free(struct kimg_response *r)
{
	free(r->content_type);
	free(r->docker_digest);
	memset(r, 0, sizeof(*r));
}

void kimg_registry_free(struct kimg_registry *r)
{
	if (r->share) {
		curl_share_cleanup(r->share);
		for (size_t i = 0; i < ARRAY_SIZE(r->share_mu); i++)
			pthread_mutex_destroy(&r->share_mu[i]);
	}
	for (size_t i = 0; i < r->n_eps; i++) {
		free(r->eps[i].base);
		free(r->eps[i].authz);
		pthread_mutex_destroy(&r->eps[i].mu);
	}
	free(r->eps);
	free(r->domain);
	free(r->repo);
	memset(r, 0, sizeof(*r));
}

static void add_ep(struct kimg_registry *r, char *base, bool plain_ok, bool mirror)
{
	r->eps = xrealloc(r->eps, (r->n_eps + 1) * sizeof(*r->eps));
	struct kimg_endpoint *e = &r->eps[r->n_eps++];
	memset(e, 0, sizeof(*e));
	size_t n = strlen(base);
	while (n > 0 && base[n - 1] == '/')
		base[--n] = '\0';
	e->base = base;
	e->plain_ok = plain_ok;
	e->is_mirror = mirror;
	pthread_mutex_init(&e->mu, NULL);
}

static void share_lock(CURL *c, curl_lock_data d, curl_lock_access a, void *data)
{
	(void)c;
	(void)a;
	struct kimg_registry *r = data;
	pthread_mutex_lock(&r->share_mu[(size_t)d % ARRAY_SIZE(r->share_mu)]);
}

static void share_unlock(CURL *c, curl_lock_data d, void *data)
{
	(void)c;
	struct kimg_registry *r = data;
	pthread_mutex_unlock(&r->share_mu[(size_t)d % ARRAY_SIZE(r->share_mu)]);
}

int kimg_registry_new(const struct kelpd_config *cfg, const char *domain, const char *repo,
		      const struct kimg_auth *auth, struct kimg_registry *ret, struct kelp_err *err)
{
	(void)err;
	pthread_once(&curl_once, curl_init);
	struct kimg_registry r = {.domain = xstrdup(domain), .repo = xstrdup(repo), .auth = auth};
	const struct kimg_registry_conf *rc = cfg ? kelpd_config_registry(cfg, domain) : NULL;
	if (rc && rc->mirrors)
		for (char **m = rc->mirrors; *m; m++)
			/* a mirror written as http:// is plain HTTP by the config's own word */
			add_ep(&r, xstrdup(*m), !strncmp(*m, "http://", 7), true);
	bool plain = rc && rc->plain_http;
	add_ep(&r, xasprintf("%s://%s", plain ? "http" : "https", kimg_ref_registry_host(domain)), plain, false);
	*ret = r;
	/* the share's callbacks get ret, where the mutexes now live */
	for (size_t i = 0; i < ARRAY_SIZE(ret->share_mu); i++)
		pthread_mutex_init(&ret->share_mu[i], NULL);
	ret->share = curl_share_init();
	if (!ret->share)
		abort();
	curl_share_setopt(ret->share, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(ret->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(ret->share, CURLSHOPT_USERDATA, ret);
	curl_share_setopt(ret->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(ret->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	curl_share_setopt(ret->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
	return 0;
}

/* ---- requests ------------------------------------------------------------------------------ */

/* One endpoint: the request, and after a 401 the same request with credentials. Returns 0 on a
 * 2xx, 1 when the endpoint does not have it (404, a 5xx or no connection: try the next), -1 on a
 * hard error. */
static int try_endpoint(struct kimg_registry *r, struct kimg_endpoint *ep, const char *url, const char *accept,
			kimg_sink_fn sink, void *data, struct kimg_response *ret, struct kelp_err *err)
{
	CURL *c = curl_easy_init();
	if (!c)
		abort();
	struct xfer x = {.c = c, .sink = sink, .data = data, .err = err, .length = -1};
	int rc = -1;
	for (int attempt = 0; attempt < 2; attempt++) {
		curl_easy_reset(c);
		kimg_http_common_opts(c);
		curl_easy_setopt(c, CURLOPT_SHARE, r->share);
		kimg_http_set_protocols(c, ep->plain_ok);
		curl_easy_setopt(c, CURLOPT_URL, url);
		curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, kimg_http_on_header);
		curl_easy_setopt(c, CURLOPT_HEADERDATA, &x);
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, kimg_http_on_body);
		curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
		struct curl_slist *hdrs = NULL;
		cleanup_free char *accept_h = accept ? xasprintf("Accept: %s", accept) : NULL;
		if (accept_h)
			hdrs = curl_slist_append(hdrs, accept_h);
		pthread_mutex_lock(&ep->mu);
		cleanup_free char *authz = ep->authz ? xasprintf("Authorization: %s", ep->authz) : NULL;
		pthread_mutex_unlock(&ep->mu);
		if (authz)
			hdrs = curl_slist_append(hdrs, authz);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
		kimg_http_xfer_clear(&x);
		CURLcode cr = curl_easy_perform(c);
		curl_slist_free_all(hdrs);
		long status = 0;
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		if (x.sink_failed) {
			kelp_error_wrap(err, "%s", url);
			rc = -1;
			break;
		}
		if (cr != CURLE_OK) {
			kelp_fail(err, EIO, "%s: %s", url, curl_easy_strerror(cr));
			rc = 1;
			break;
		}
		if (status == 401 && attempt == 0 && x.www_auth) {
			char *newauth = NULL;
			const struct kimg_auth *a = r->auth;
			if (!strncasecmp(x.www_auth, "Bearer", 6)) {
				if (kimg_auth_fetch_token(r, ep, x.www_auth, &newauth, err) < 0) {
					rc = err && err->code == EACCES ? -1 : 1;
					break;
				}
			} else if (!strncasecmp(x.www_auth, "Basic", 5)) {
				if (!a || !a->username) {
					kelp_fail(err, EACCES, "registry %s (%s) wants credentials and none were given", r->domain, ep->base);
					rc = -1;
					break;
				}
				kimg_auth_basic(a, &newauth);
			} else {
				kelp_fail(err, EPROTO, "%s: unsupported authentication %s", url, x.www_auth);
				rc = -1;
				break;
			}
			pthread_mutex_lock(&ep->mu);
			free(ep->authz);
			ep->authz = newauth;
			pthread_mutex_unlock(&ep->mu);
			continue;
		}
		if (status == 401 || status == 403) {
			kelp_fail(err, EACCES, "registry %s refused the credentials%s%s for %s (HTTP %ld)", r->domain,
				  r->auth && r->auth->username ? " of " : "", r->auth && r->auth->username ? r->auth->username : "",
				  r->repo, status);
			rc = -1;
			break;
		}
		if (status / 100 != 2) {
			kelp_fail(err, status == 404 ? ENOENT : EIO, "%s: HTTP %ld %s", url, status, x.errbody);
			rc = 1;
			break;
		}
		ret->status = status;
		ret->content_type = TAKE_PTR(x.content_type);
		ret->docker_digest = TAKE_PTR(x.docker_digest);
		ret->length = x.length;
		rc = 0;
		break;
	}
	kimg_http_xfer_clear(&x);
	curl_easy_cleanup(c);
	return rc;
}

int kimg_registry_get(struct kimg_registry *r, const char *kind, const char *ref, const char *accept,
		      kimg_sink_fn sink, kimg_reset_fn reset, void *data, struct kimg_response *ret,
		      struct kelp_err *err)
{
	struct kelp_err last = {0};
	for (size_t i = 0; i < r->n_eps; i++) {
		struct kimg_endpoint *ep = &r->eps[i];
		if (reset && reset(data, err) < 0)
			return -1;
		cleanup_free char *url = xasprintf("%s/v2/%s/%s/%s", ep->base, r->repo, kind, ref);
		struct kimg_response resp = {0};
		int rr = try_endpoint(r, ep, url, accept, sink, data, &resp, &last);
		if (rr == 0) {
			log_debug("fetched %s", url);
			*ret = resp;
			return 0;
		}
		/* a mirror that fails is skipped; the registry's own answer is final */
		if (rr < 0 && !ep->is_mirror)
			break;
		log_debug("%s: %s; trying the next endpoint", url, last.msg);
	}
	if (err)
		*err = last;
	return -1;
}
