/* OCI hooks: each runs with the container's state JSON on stdin, its own args and env, and a
 * timeout; a failure names the hook. Where a hook runs (runtime or container namespaces) is
 * decided by the caller at the point in the lifecycle the spec gives. */
#pragma once
#include "container.h"
#include "error.h"
#include "spec.h"

/* Run every hook of `kind` in order; stop at the first failure. */
int hooks_run(const struct spec *s, enum hook_kind kind, const char *state_json, struct kelp_err *err);

/* The state JSON hooks read: {ociVersion, id, status, pid, bundle, annotations}. */
char *hooks_state_json(const char *id, const char *status, pid_t pid, const char *bundle, char **annotation_keys,
		       char **annotation_values);
