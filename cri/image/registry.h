/* OCI distribution client on libcurl for one repository: endpoints are the configured mirrors
 * in order, then the registry itself (HTTPS, or HTTP only where the config allows it); Bearer
 * tokens from WWW-Authenticate (anonymous, username/password or identity token) and Basic auth,
 * cached per endpoint and shared by the threads of a pull. */
#pragma once
#include <curl/curl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "error.h"

/* What a CRI AuthConfig carries. All may be NULL. */
struct kimg_auth {
	const char *username, *password, *identity_token;
};

struct kimg_endpoint {
	char *base; /* "https://registry-1.docker.io", "http://127.0.0.1:5000" */
	bool plain_ok;
	bool is_mirror;
	pthread_mutex_t mu;
	char *authz; /* "Bearer ..." or "Basic ...", once learnt */
};

struct kimg_registry {
	char *domain, *repo;
	struct kimg_endpoint *eps;
	size_t n_eps;
	const struct kimg_auth *auth;
	/* connections, TLS sessions and DNS shared by the pull's threads: one handshake per
	 * endpoint instead of one per blob */
	CURLSH *share;
	pthread_mutex_t share_mu[8];
};

int kimg_registry_new(const struct kelpd_config *cfg, const char *domain, const char *repo,
		      const struct kimg_auth *auth, struct kimg_registry *ret, struct kelp_err *err);
void kimg_registry_free(struct kimg_registry *r);

/* Where a response body goes: called with each chunk of a 2xx response. */
typedef int (*kimg_sink_fn)(void *data, const void *buf, size_t len, struct kelp_err *err);
/* Before each endpoint is tried (so a sink can start over). */
typedef int (*kimg_reset_fn)(void *data, struct kelp_err *err);

struct kimg_response {
	long status;
	char *content_type;
	char *docker_digest; /* Docker-Content-Digest */
	int64_t length;      /* Content-Length, -1 when unknown */
};
void kimg_response_free(struct kimg_response *r);

/* GET /v2/<repo>/<kind>/<ref> from the first endpoint that has it. kind is "manifests" or
 * "blobs"; accept may be NULL. */
int kimg_registry_get(struct kimg_registry *r, const char *kind, const char *ref, const char *accept,
		      kimg_sink_fn sink, kimg_reset_fn reset, void *data, struct kimg_response *ret,
		      struct kelp_err *err);
