/* Image references normalised as Docker does: "busybox" is docker.io/library/busybox:latest,
 * "host:5000/x/y@sha256:..." keeps its digest, a name with a tag and a digest keeps both. */
#pragma once
#include "error.h"

struct kimg_ref {
	char *domain; /* "docker.io", "registry.k8s.io", "127.0.0.1:5000" */
	char *path;   /* "library/busybox" */
	char *tag;    /* "latest"; NULL when only a digest was given */
	char *digest; /* "sha256:<64 hex>" or NULL */
	char *name;   /* domain/path */
	char *full;   /* domain/path[:tag][@digest] */
};

/* Parse and normalise s. Errors say what is wrong with which reference. */
int kimg_ref_parse(const char *s, struct kimg_ref *ret, struct kelp_err *err);
void kimg_ref_free(struct kimg_ref *r);
/* The host to contact for a domain ("docker.io" is served by registry-1.docker.io). */
const char *kimg_ref_registry_host(const char *domain);
