/* The Services and EndpointSlices of one parsed manifest file, turned into the model. Pure: the
 * reader threads run it next to the parse, while the file's tree is still in their cache, and
 * hand on these small objects instead of the tree. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "kube_manifest.h"
#include "model.h"

struct kp_fobj {
	struct kp_service *svc; /* the object, valid: one of svc and sl */
	struct kp_slice *sl;
	bool is_svc;
	const char *where; /* "FILE (document N[, items[K]]): name", for messages */
	const char *key;   /* "S ns/name" or "E ns/name"; NULL for a refused object with no name */
	const char *error; /* refused: why (where not included); NULL when valid */
	char *strs;        /* where, key and error live here */
};

struct kp_fobjs {
	struct kp_fobj *v;
	size_t n, cap;
};

/* Every Service and EndpointSlice of a buffer (what names it), in order, other kinds skipped;
 * each object is turned into the model as soon as the parser has it (km_parse_each): a List's
 * trees never exist all at once. -1: not YAML/JSON (err says where), and *out is empty. */
int kp_fobjs_parse(const char *buf, size_t len, const char *what, struct kp_fobjs *out, struct kelp_err *err);
/* The same for a file (km_read_file_each); -1 also when it cannot be read. */
int kp_fobjs_read_file(const char *path, struct kp_fobjs *out, struct kelp_err *err);
/* Frees what was not taken: a caller that keeps svc or sl sets it to NULL first. */
void kp_fobjs_free(struct kp_fobjs *o);
/* "S ns/name" or "E ns/name" */
void kp_obj_key(char *buf, size_t size, bool is_svc, const char *ns, const char *name);
