#include "objects.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "error.h"

void kp_obj_key(char *buf, size_t size, bool is_svc, const char *ns, const char *name)
{
	snprintf(buf, size, "%c %s/%s", is_svc ? 'S' : 'E', ns, name);
}

/* where, key and error of o in one allocation */
static void fobj_strings(struct kp_fobj *o, const char *where, const char *key, const char *error)
{
	size_t wl = strlen(where) + 1, kl = key ? strlen(key) + 1 : 0, el = error ? strlen(error) + 1 : 0;
	char *b = o->strs = xmalloc(wl + kl + el);
	o->where = memcpy(b, where, wl);
	o->key = key ? memcpy(b + wl, key, kl) : NULL;
	o->error = error ? memcpy(b + wl + kl, error, el) : NULL;
}

/* One object into the end of out (other kinds are skipped). */
static void add_object(struct kp_fobjs *out, const struct km_object *o)
{
	enum kp_kind kind = kp_object_kind(o);
	if (kind == KP_KIND_OTHER)
		return;
	char name[600], loc[600], where[1200], key[600];
	km_object_name(o, name, sizeof(name));
	/* the contract's form names the document also for a file's only one:
	 * "FILE (document N[, items[K]])" */
	km_where_long(o, loc, sizeof(loc));
	snprintf(where, sizeof(where), "%s: %s", loc, name);
	if (out->n == out->cap) {
		out->cap = out->cap ? 2 * out->cap : 4;
		out->v = xrealloc(out->v, out->cap * sizeof(*out->v));
	}
	struct kp_fobj *fo = &out->v[out->n++];
	memset(fo, 0, sizeof(*fo));
	fo->is_svc = kind == KP_KIND_SERVICE;
	struct kelp_err err = {0};
	int r = fo->is_svc ? kp_service_parse(&o->node, &fo->svc, &err) : kp_slice_parse(&o->node, &fo->sl, &err);
	if (r < 0) {
		/* the object's name, if it has one, to keep its last good version */
		const char *ns_p[] = {"metadata", "namespace", NULL}, *name_p[] = {"metadata", "name", NULL};
		yajl_val ns = yajl_tree_get(o->node.v, ns_p, yajl_t_string);
		yajl_val nm = yajl_tree_get(o->node.v, name_p, yajl_t_string);
		if (nm)
			kp_obj_key(key, sizeof(key), fo->is_svc, ns ? ns->u.string : "default", nm->u.string);
		fobj_strings(fo, where, nm ? key : NULL, err.msg);
		return;
	}
	kp_obj_key(key, sizeof(key), fo->is_svc, fo->is_svc ? fo->svc->ns : fo->sl->ns,
		   fo->is_svc ? fo->svc->name : fo->sl->name);
	fobj_strings(fo, where, key, NULL);
}

static void each_object(void *ctx, const struct km_object *o)
{
	struct kp_fobjs *out = ctx;
	if (!o)
		kp_fobjs_free(out); /* the file is read again, or failed */
	else
		add_object(out, o);
}

int kp_fobjs_parse(const char *buf, size_t len, const char *what, struct kp_fobjs *out, struct kelp_err *err)
{
	memset(out, 0, sizeof(*out));
	return km_parse_each(buf, len, what, each_object, out, err);
}

int kp_fobjs_read_file(const char *path, struct kp_fobjs *out, struct kelp_err *err)
{
	memset(out, 0, sizeof(*out));
	return km_read_file_each(path, each_object, out, err);
}

void kp_fobjs_free(struct kp_fobjs *o)
{
	if (!o)
		return;
	for (size_t i = 0; i < o->n; i++) {
		kp_service_free(o->v[i].svc);
		kp_slice_free(o->v[i].sl);
		free(o->v[i].strs);
	}
	free(o->v);
	memset(o, 0, sizeof(*o));
}
