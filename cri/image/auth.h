/* Registry authentication: a Bearer token from the WWW-Authenticate challenge's realm
 * (anonymous, username/password, or an identity token exchanged as a refresh token), or Basic
 * credentials. Internal to cri/image. */
#pragma once
#include "error.h"
#include "registry.h"

/* "Bearer <token>" for the challenge www, fetched for endpoint ep. EACCES when the token server
 * refuses the credentials. */
int kimg_auth_fetch_token(struct kimg_registry *r, struct kimg_endpoint *ep, const char *www, char **ret,
			  struct kelp_err *err);
/* "Basic <base64 user:password>". */
int kimg_auth_basic(const struct kimg_auth *a, char **ret);
