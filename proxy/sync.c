/* Inputs: manifest files into changes of the model, for the start-up sync and for one file of
 * a watched directory. */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cleanup.h"
#include "engine_int.h"
#include "kube_manifest.h"
#include "log.h"
#include "objects.h"
#include "reader.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The changes of one run, and the strings they name themselves by, in chunks of their own:
 * at start-up 20,000 of them, which as separate allocations would be left as holes between the
 * model's long-lived objects (3 MB of a 10,000-service heap). */
struct strchunk {
	struct strchunk *next;
	size_t used, cap;
	char data[];
};

struct changes {
	struct change *v;
	size_t n, cap;
	struct strchunk *strs;
};

static struct change *change_push(struct changes *c)
{
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 64;
		c->v = xrealloc(c->v, c->cap * sizeof(*c->v));
	}
	struct change *ch = &c->v[c->n++];
	memset(ch, 0, sizeof(*ch));
	return ch;
}

static char *changes_alloc(struct changes *cs, size_t n)
{
	struct strchunk *k = cs->strs;
	if (!k || k->cap - k->used < n) {
		size_t cap = k ? k->cap * 2 : 16384;
		if (cap > (2u << 20))
			cap = 2u << 20;
		if (cap < n)
			cap = n;
		k = xmalloc(sizeof(*k) + cap);
		k->used = 0;
		k->cap = cap;
		k->next = cs->strs;
		cs->strs = k;
	}
	char *p = k->data + k->used;
	k->used += n;
	return p;
}

/* key, file and where of a change, from the run's chunks (freed with the changes) */
static void change_names(struct changes *cs, struct change *c, const char *key, const char *file, const char *where)
{
	size_t kl = strlen(key) + 1, fl = strlen(file) + 1, wl = strlen(where) + 1;
	char *b = changes_alloc(cs, kl + fl + wl);
	c->key = memcpy(b, key, kl);
	c->file = memcpy(b + kl, file, fl);
	c->where = memcpy(b + kl + fl, where, wl);
}

static void changes_free(struct changes *c)
{
	for (size_t i = 0; i < c->n; i++)
		kp_change_free(&c->v[i]);
	free(c->v);
	for (struct strchunk *k = c->strs, *next; k; k = next) {
		next = k->next;
		free(k);
	}
	memset(c, 0, sizeof(*c));
}

static void strv_push(char ***v, size_t *n, const char *s)
{
	*v = xrealloc(*v, (*n + 2) * sizeof(**v));
	(*v)[(*n)++] = xstrdup(s);
	(*v)[*n] = NULL;
}

/* The objects of one file: valid ones become changes; keys gets every Service and EndpointSlice
 * key the file names (valid or not); refused ones are reported. The changes take the objects. */
static void file_objects(struct kp_engine *e, struct kp_fobjs *fo, const char *path, struct changes *out, char ***keys,
			 size_t *n_keys, struct hmap *seen, struct hmap *refused)
{
	for (size_t i = 0; i < fo->n; i++) {
		struct kp_fobj *o = &fo->v[i];
		if (o->error) {
			kp_report(e, "%s: %s", o->where, o->error);
			if (!o->key)
				continue;
			strv_push(keys, n_keys, o->key);
			if (refused && !hmap_gets(refused, o->key))
				hmap_put(refused, o->key, strlen(o->key), xstrdup(path));
			continue;
		}
		if (hmap_gets(seen, o->key)) {
			kp_report(e, "%s: defined more than once; this copy is ignored", o->where);
			continue;
		}
		hmap_put(seen, o->key, strlen(o->key), (void *)1);
		strv_push(keys, n_keys, o->key);
		struct change *c = change_push(out);
		c->is_svc = o->is_svc;
		change_names(out, c, o->key + 2, path, o->where);
		c->svc = TAKE_PTR(o->svc);
		c->sl = TAKE_PTR(o->sl);
	}
}

static void file_record(struct kp_engine *e, const char *path, char **keys)
{
	void **p = hmap_gets(&e->files, path);
	struct filerec *fr;
	if (p) {
		fr = *p;
		strv_free(fr->keys);
	} else {
		fr = xcalloc(1, sizeof(*fr));
		hmap_put(&e->files, path, strlen(path), fr);
	}
	fr->keys = keys;
}

/* A file that cannot be read or parsed keeps the objects it had (from the state file at
 * start-up). */
/* The last good version po of the object key, as a change of this run (once per key). */
static void push_prev(struct prevobj *po, const char *key, const char *path, struct changes *out, struct hmap *seen)
{
	if ((!po->svc && !po->sl) || hmap_gets(seen, key))
		return;
	hmap_put(seen, key, strlen(key), (void *)1);
	struct change *c = change_push(out);
	c->is_svc = po->svc != NULL;
	change_names(out, c, key + 2, path, path);
	c->svc = TAKE_PTR(po->svc);
	c->sl = TAKE_PTR(po->sl);
}

static void keep_prev(struct kp_engine *e, const char *key, const char *path, struct changes *out, struct hmap *seen)
{
	void **p = hmap_gets(&e->prev, key);
	if (p)
		push_prev(*p, key, path, out, seen);
}

static void keep_prev_of_file(struct kp_engine *e, const char *path, struct changes *out, struct hmap *seen)
{
	struct hmap_ent *ent;
	for (size_t i = 0; hmap_next(&e->prev, &i, &ent);) {
		struct prevobj *po = ent->val;
		if (!po->file || strcmp(po->file, path))
			continue;
		char key[600];
		snprintf(key, sizeof(key), "%.*s", (int)ent->klen, (const char *)ent->key);
		push_prev(po, key, path, out, seen);
	}
}

int kp_engine_full_sync(struct kp_engine *e, char *const *paths, size_t n_paths, const char *state_dir,
			struct kelp_err *err)
{
	double t0 = now_s();
	e->errors_this_sync = 0;
	struct changes ch = {0};
	struct hmap seen, refused;
	hmap_init(&seen);
	hmap_init(&refused);
	char **failed = NULL;
	size_t n_failed = 0;
	/* every input file first: a path that cannot be listed changes nothing */
	char **files = NULL;
	size_t n_files = 0;
	for (size_t p = 0; p < n_paths; p++) {
		cleanup_strv char **list = NULL;
		size_t n_list = 0;
		struct kelp_err lerr = {0};
		if (km_list_files(paths[p], &list, &n_list, &lerr) < 0) {
			/* a missing input would replace every rule with nothing: refuse the sync */
			*err = lerr;
			strv_free(files);
			hmap_free(&seen);
			hmap_free(&refused);
			return -1;
		}
		for (size_t i = 0; i < n_list; i++)
			strv_push(&files, &n_files, list[i]);
	}
	struct kp_reader *rd = kp_reader_start(files, n_files);
	for (size_t i = 0; i < n_files; i++) {
		struct kp_fobjs fo = {0};
		struct kelp_err ferr = {0};
		char **keys = NULL;
		size_t n_keys = 0;
		if (kp_reader_next(rd, &fo, &ferr) < 0) {
			kp_report(e, "%s", ferr.msg);
			strv_push(&failed, &n_failed, files[i]);
			continue;
		}
		file_objects(e, &fo, files[i], &ch, &keys, &n_keys, &seen, &refused);
		kp_fobjs_free(&fo);
		file_record(e, files[i], keys ? keys : xcalloc(1, sizeof(char *)));
	}
	kp_reader_stop(rd);
	strv_free(files);
	/* refused objects and unreadable files keep their last good versions */
	if ((refused.n || n_failed) && state_dir) {
		struct kelp_err serr = {0};
		if (kp_engine_load_state(e, state_dir, &serr) < 0)
			log_warn("previous state ignored: %s", serr.msg);
		struct hmap_ent *ent;
		for (size_t i = 0; hmap_next(&refused, &i, &ent);) {
			char key[600];
			snprintf(key, sizeof(key), "%.*s", (int)ent->klen, (const char *)ent->key);
			keep_prev(e, key, ent->val, &ch, &seen);
		}
		for (size_t i = 0; i < n_failed; i++)
			keep_prev_of_file(e, failed[i], &ch, &seen);
	}
	{
		struct hmap_ent *ent;
		for (size_t i = 0; hmap_next(&refused, &i, &ent);)
			free(ent->val);
	}
	hmap_free(&refused);
	strv_free(failed);
	hmap_free(&seen);
	/* the trees of the input are gone: give their memory back */
	malloc_trim(0);
	if (getenv("KELP_PROXY_TIMING"))
		fprintf(stderr, "kelp-proxy: %zu objects read in %.3f s\n", ch.n, now_s() - t0);
	e->run_state_dir = state_dir;
	int r = kp_engine_run(e, ch.v, ch.n, true, t0, err);
	e->run_state_dir = NULL;
	changes_free(&ch);
	/* the last good versions are in the model now */
	struct hmap_ent *ent;
	for (size_t i = 0; hmap_next(&e->prev, &i, &ent);) {
		struct prevobj *po = ent->val;
		kp_service_free(po->svc);
		kp_slice_free(po->sl);
		free(po->file);
		free(po);
	}
	hmap_free(&e->prev);
	e->m.sync_errors += e->errors_this_sync;
	if (r < 0)
		return -1;
	return e->errors_this_sync ? 1 : 0;
}

int kp_engine_file_changed(struct kp_engine *e, const char *path, bool removed, struct kelp_err *err)
{
	double t0 = now_s();
	e->errors_this_sync = 0;
	struct changes ch = {0};
	struct hmap seen;
	hmap_init(&seen);
	char **keys = NULL;
	size_t n_keys = 0;
	if (!removed) {
		struct kp_fobjs fo;
		struct kelp_err ferr = {0};
		if (kp_fobjs_read_file(path, &fo, &ferr) < 0) {
			if (ferr.code != ENOENT) {
				kp_report(e, "%s", ferr.msg);
				e->m.sync_errors += e->errors_this_sync;
				hmap_free(&seen);
				return 1;
			}
			removed = true; /* gone again before we read it */
		} else {
			file_objects(e, &fo, path, &ch, &keys, &n_keys, &seen, NULL);
			kp_fobjs_free(&fo);
		}
	}
	/* what the file held before and holds no more is deleted */
	void **p = hmap_gets(&e->files, path);
	if (p) {
		struct filerec *fr = *p;
		for (size_t i = 0; fr->keys && fr->keys[i]; i++) {
			const char *key = fr->keys[i];
			if (hmap_gets(&seen, key))
				continue;
			bool named = false;
			for (size_t j = 0; j < n_keys && !named; j++)
				named = !strcmp(keys[j], key);
			if (named)
				continue; /* refused now: keeps its rules */
			bool is_svc = key[0] == 'S';
			/* only if it still comes from this file */
			void **q = hmap_gets(is_svc ? &e->svcs : &e->slices, key + 2);
			if (!q)
				continue;
			const char *file = is_svc ? ((struct svcrec *)*q)->svc_file : ((struct slicerec *)*q)->file;
			if (!file || strcmp(file, path))
				continue;
			if (is_svc && !((struct svcrec *)*q)->svc)
				continue;
			struct change *c = change_push(&ch);
			c->is_svc = is_svc;
			change_names(&ch, c, key + 2, path, path);
		}
	}
	hmap_free(&seen);
	int r = kp_engine_run(e, ch.v, ch.n, false, t0, err);
	changes_free(&ch);
	/* the file's record follows the model: unchanged when the commit failed */
	if (r < 0) {
		strv_free(keys);
	} else if (removed) {
		void *fr = hmap_del(&e->files, path, strlen(path));
		if (fr) {
			strv_free(((struct filerec *)fr)->keys);
			free(fr);
		}
		strv_free(keys);
	} else {
		file_record(e, path, keys ? keys : xcalloc(1, sizeof(char *)));
	}
	e->m.sync_errors += e->errors_this_sync;
	if (r < 0)
		return -1;
	return e->errors_this_sync ? 1 : 0;
}
