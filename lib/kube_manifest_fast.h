/* A fast reader for the block YAML that `kubectl get -o yaml` (and go-yaml) writes: mappings and
 * sequences by indentation, one-line plain, single- and double-quoted scalars, `{}` and `[]`,
 * `---` between documents. It feeds the same libyaml events to the same tree builder as
 * libyaml's parser would, about ten times faster. Anything else (comments, anchors, tags, flow
 * collections with content, block scalars, multi-line scalars, escapes, tabs, CR, non-ASCII
 * bytes, a root that is not a mapping) makes it give up at once, and the caller reads the buffer
 * with libyaml instead: the fast reader never decides that input is wrong, only that it is not
 * its subset. Where it does not give up, the events are exactly libyaml's (checked by
 * fuzz_kube_manifest, which compares the two trees on every input). */
#pragma once
#include <stddef.h>
#include <yaml.h>

/* returned when the buffer leaves the subset */
#define KMF_GIVE_UP 1

/* fn gets every event, in libyaml's order (no STREAM_START); a negative return stops the scan
 * and is returned. Event fields point into scratch memory valid for the call only. */
typedef int (*kmf_event_fn)(void *ctx, yaml_event_t *e);

/* 0 when the whole buffer was read, KMF_GIVE_UP, or fn's negative return. */
int kmf_scan(const char *buf, size_t len, kmf_event_fn fn, void *ctx);
/* The same for one JSON value, read by yajl (`kubectl get -o json`): KMF_GIVE_UP when it is
 * not JSON, or holds what libyaml reads otherwise (\u escapes of UTF-16 surrogates, raw NEL,
 * LS or PS). */
int kmf_scan_json(const char *buf, size_t len, kmf_event_fn fn, void *ctx);
