/* Pull an image from a registry into the store: manifest (an index resolved to this platform),
 * config, layers downloaded in parallel and unpacked as they land, then the image recorded.
 * A failed pull records nothing; the blobs it fetched go at the next garbage collection (at
 * once when no other pull is running). */
#pragma once
#include "config.h"
#include "db.h"
#include "image.h"
#include "manifest.h"
#include "registry.h"
#include "store.h"

struct kimg_pull_opts {
	const struct kelpd_config *config;    /* mirrors, plain HTTP, parallelism (may be NULL) */
	const struct kimg_platform *platform; /* NULL: this node */
	const struct kimg_auth *auth;         /* may be NULL: anonymous */
	kimg_progress_fn progress;            /* may be NULL */
	void *progress_data;
};

int kimg_pull(struct kimg_store *s, const char *ref, const struct kimg_pull_opts *o, struct kimg_image *ret,
	      struct kelp_err *err);
