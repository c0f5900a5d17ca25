/* Kubernetes manifests as `kubectl get -o yaml` prints them: YAML (one or several documents) or
 * JSON, read into the same tree as lib/json so that the kj_* getters, and their errors naming
 * the JSON path of a bad field, serve both. A `List` (or `*List`) is opened into its items.
 * Files of a directory are read in name order, like `kubectl apply -f DIR`. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "json.h"

/* One object of a manifest. `where` names it for errors: "FILE" for a file's only object,
 * "FILE (document 2)", "FILE (document 1, items[3])". node.path is empty: kj errors start at
 * the object's own fields. */
struct km_object {
	const char *file;
	char where[512];
	int line; /* of the object's first line, 1-based */
	struct kj node;
};

struct km_file {
	char *path;
	struct kj *docs; /* each document's root; trees owned here */
	struct km_arena *arena; /* where every tree lives: never pass them to yajl_tree_free */
	size_t n_docs;
	struct km_object *objects;
	size_t n_objects;
};

/* Parse a buffer (what names it in errors). A YAML syntax error, a duplicate key or a document
 * that is not a mapping fails the whole buffer: "FILE:LINE:COLUMN: what". Scalars follow the
 * YAML 1.2 core schema (plus yes/no/on/off booleans, as kubectl's parser reads them); quoted
 * ones are always strings. Aliases are expanded, with a bound on the total size. */
int km_parse(const char *buf, size_t len, const char *what, struct km_file *ret, struct kelp_err *err);
/* km_parse with a chosen reader, for tests: the fast reader handles the block YAML kubectl
 * writes (lib/kube_manifest_fast.h) and hands anything else, and every error, to libyaml. */
enum km_reader {
	KM_READ_AUTO,    /* fast, then libyaml when the fast reader gives up or fails (km_parse) */
	KM_READ_LIBYAML, /* libyaml only */
	KM_READ_FAST,    /* fast only: KM_NOT_FAST where it gives up */
};
#define KM_NOT_FAST 1
/* Does the first non-blank byte open a JSON object or array? (Such a buffer goes to yajl.) */
bool km_looks_json(const char *buf, size_t len);
int km_parse_with(const char *buf, size_t len, const char *what, enum km_reader how, struct km_file *ret,
		  struct kelp_err *err);
/* Each object of a buffer, in order, handed to fn as soon as it is complete, instead of every
 * tree of the buffer at once at the end (a 10,000-service List is some 230 MB of trees; this way
 * one item's at a time). o and its tree live only during the call. o->where is always
 * "FILE (document N)" or "FILE (document N, items[K])". fn(ctx, NULL) means: forget every
 * object given so far (the buffer is read again from its start, or it failed). Errors, and what
 * is accepted, are km_parse's. */
typedef void (*km_object_fn)(void *ctx, const struct km_object *o);
/* o->where in that long form, also for a file's only document ("FILE", "FILE (items[K])"). */
void km_where_long(const struct km_object *o, char *buf, size_t size);
int km_parse_each(const char *buf, size_t len, const char *what, km_object_fn fn, void *ctx, struct kelp_err *err);
int km_read_file_each(const char *path, km_object_fn fn, void *ctx, struct kelp_err *err);
/* Read and parse one file (at most 64 MiB). */
int km_read_file(const char *path, struct km_file *ret, struct kelp_err *err);
void km_file_free(struct km_file *f);

/* The manifest files of path: path itself when it is a file, else the *.yaml, *.yml and *.json
 * files directly in the directory, sorted by name. *ret is NULL-terminated; free each and it. */
int km_list_files(const char *path, char ***ret, size_t *ret_n, struct kelp_err *err);

/* Convenience over an object: "kind" and "metadata.namespace"/"metadata.name" as
 * "KIND NAMESPACE/NAME" (namespace "default" when absent) into buf, for messages. */
const char *km_object_name(const struct km_object *o, char *buf, size_t size);
