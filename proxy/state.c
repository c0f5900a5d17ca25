/* The state file (--state-dir/state.json): the last good version of every object (so that a
 * refused object keeps its rules across runs), per-service summaries for `show`, the counters
 * for `show --metrics`. Written atomically after every commit. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "engine_int.h"
#include "fs.h"
#include "json.h"

#define STATE_FILE "state.json"
#define STATE_MAX (512u << 20)

static const char *const type_names[] = {"ClusterIP", "NodePort", "LoadBalancer", "ExternalName"};

static void kg_key_double(yajl_gen g, const char *key, double v)
{
	kg_key(g, key);
	yajl_gen_double(g, v);
}

static void gen_summary(yajl_gen g, const struct svcrec *r)
{
	const struct kp_service *s = r->svc;
	kg_key(g, "summary");
	yajl_gen_map_open(g);
	kg_key_str(g, "namespace", s->ns);
	kg_key_str(g, "name", s->name);
	kg_key_str(g, "type", type_names[s->type]);
	kg_key(g, "clusterIPs");
	yajl_gen_array_open(g);
	for (int f = 0; f < KP_NFAM; f++) {
		char buf[64];
		if (s->has_cip[f] && !s->headless)
			kg_str(g, kp_addr_str(&s->cluster_ips[f], buf, sizeof(buf)));
	}
	if (s->headless)
		kg_str(g, "None");
	yajl_gen_array_close(g);
	kg_key(g, "ports");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < s->n_ports; i++) {
		char buf[64];
		if (s->ports[i].node_port)
			snprintf(buf, sizeof(buf), "%u:%u/%s", s->ports[i].port, s->ports[i].node_port,
				 kp_proto_name(s->ports[i].proto));
		else
			snprintf(buf, sizeof(buf), "%u/%s", s->ports[i].port, kp_proto_name(s->ports[i].proto));
		kg_str(g, buf);
	}
	yajl_gen_array_close(g);
	size_t ready = 0, total = 0;
	for (size_t i = 0; i < r->n_slices; i++) {
		if (r->slices[i]->fam < 0)
			continue;
		for (size_t j = 0; j < r->slices[i]->n_eps; j++) {
			total++;
			ready += (r->slices[i]->eps[j].cond & KP_EP_READY) != 0;
		}
	}
	kg_key(g, "endpoints");
	yajl_gen_map_open(g);
	kg_key_int(g, "ready", (long long)ready);
	kg_key_int(g, "total", (long long)total);
	yajl_gen_map_close(g);
	kg_key_int(g, "rules", r->n_elems);
	yajl_gen_map_close(g);
}

/* The state is streamed to its temp file through a small buffer: at 10,000 services it is
 * megabytes, which would otherwise sit in memory twice (generator buffer and copy). */
struct sink {
	int fd, err;
	size_t len;
	char buf[64 * 1024];
};

static void sink_flush(struct sink *k)
{
	if (k->len && !k->err && kelp_write_all(k->fd, k->buf, k->len) < 0)
		k->err = errno ? errno : EIO;
	k->len = 0;
}

static void sink_print(void *ctx, const char *str, size_t len)
{
	struct sink *k = ctx;
	if (k->len + len > sizeof(k->buf))
		sink_flush(k);
	if (len > sizeof(k->buf)) {
		if (!k->err && kelp_write_all(k->fd, str, len) < 0)
			k->err = errno ? errno : EIO;
		return;
	}
	memcpy(k->buf + k->len, str, len);
	k->len += len;
}

#define OBJ_DIR "objects"

unsigned kp_state_shard(const char *key, size_t len)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (size_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)key[i]) * 16777619u;
	return h & (KP_STATE_SHARDS - 1);
}

static bool shard_dirty(const struct kp_engine *e, unsigned s)
{
	return !e->state_written || (e->state_dirty[s / 8] & (1u << (s % 8)));
}

/* Stream gen(e, g, shard) into a new temp file dir/tmp; returns its open fd (data written,
 * not yet synced) or -1. */
static int stream_tmp(int dfd, const char *tmp, void (*gen)(struct kp_engine *, yajl_gen, void *), struct kp_engine *e,
		      void *ctx)
{
	unlinkat(dfd, tmp, 0); /* a leftover of a crashed run */
	struct sink *k = xcalloc(1, sizeof(*k));
	k->fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (k->fd < 0) {
		free(k);
		return -1;
	}
	yajl_gen g = yajl_gen_alloc(NULL);
	if (!g)
		abort();
	yajl_gen_config(g, yajl_gen_print_callback, sink_print, k);
	gen(e, g, ctx);
	yajl_gen_free(g);
	sink_flush(k);
	int fd = k->fd, code = k->err;
	free(k);
	if (code) {
		close(fd);
		unlinkat(dfd, tmp, 0);
		errno = code;
		return -1;
	}
	/* start the write-back now: the fsyncs below then wait for all shards at once */
	if (sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE) < 0) {
		/* only a hint: the fsync that follows reports what matters */
	}
	return fd;
}

/* The records of one shard. */
struct shard {
	const struct svcrec **v;
	size_t n, cap;
};

static void gen_shard(struct kp_engine *e, yajl_gen g, void *ctx);
static void gen_head(struct kp_engine *e, yajl_gen g, void *unused);

/* The shards being written: their temp files, open, written, not yet synced nor renamed. */
struct kp_state_write {
	struct kp_engine *e;
	char *dir;
	int dfd, odfd;
	int fds[KP_STATE_SHARDS];
	unsigned shards[KP_STATE_SHARDS], n;
	int code;        /* errno of the first failure */
	pthread_t thread;
};

static void shard_tmp_name(char *buf, size_t size, unsigned shard)
{
	snprintf(buf, size, ".%02x.json.%d.tmp", shard, (int)getpid());
}

/* Stage 1: every dirty shard into its temp file. Reads the model only. */
static void write_shards(struct kp_state_write *w)
{
	struct kp_engine *e = w->e;
	/* the records of the shards to write, in one pass */
	struct shard *sh = xcalloc(KP_STATE_SHARDS, sizeof(*sh));
	struct hmap_ent *ent;
	for (size_t i = 0; hmap_next(&e->svcs, &i, &ent);) {
		unsigned s = kp_state_shard(ent->key, ent->klen);
		if (!shard_dirty(e, s))
			continue;
		struct shard *x = &sh[s];
		if (x->n == x->cap) {
			x->cap = x->cap ? x->cap * 2 : 64;
			x->v = xrealloc(x->v, x->cap * sizeof(*x->v));
		}
		x->v[x->n++] = ent->val;
	}
	for (unsigned s = 0; s < KP_STATE_SHARDS && !w->code; s++) {
		if (!shard_dirty(e, s))
			continue;
		char tmp[64];
		shard_tmp_name(tmp, sizeof(tmp), s);
		int fd = stream_tmp(w->odfd, tmp, gen_shard, e, &sh[s]);
		if (fd < 0) {
			w->code = errno;
			break;
		}
		w->fds[w->n] = fd;
		w->shards[w->n++] = s;
	}
	for (unsigned s = 0; s < KP_STATE_SHARDS; s++)
		free(sh[s].v);
	free(sh);
}

static void *write_shards_thread(void *arg)
{
	write_shards(arg);
	return NULL;
}

static struct kp_state_write *state_open(struct kp_engine *e, const char *dir, struct kelp_err *err)
{
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return kelp_error(err, errno, "create state directory %s", dir), NULL;
	struct kp_state_write *w = xcalloc(1, sizeof(*w));
	w->e = e;
	w->dir = xstrdup(dir);
	w->odfd = -1;
	w->dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->dfd < 0) {
		kelp_error(err, errno, "open state directory %s", dir);
	} else if (mkdirat(w->dfd, OBJ_DIR, 0700) < 0 && errno != EEXIST) {
		kelp_error(err, errno, "create %s/%s", dir, OBJ_DIR);
	} else if ((w->odfd = openat(w->dfd, OBJ_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		kelp_error(err, errno, "open %s/%s", dir, OBJ_DIR);
	} else {
		return w;
	}
	if (w->dfd >= 0)
		close(w->dfd);
	free(w->dir);
	free(w);
	return NULL;
}

/* Stage 2, publish: the temp files synced, renamed over the shards, the directory synced; or,
 * !publish (or a failure), the temp files removed. Frees w; the state directory's fd goes to
 * *ret_dfd when that is not NULL (else it is closed). */
static int state_close(struct kp_state_write *w, bool publish, struct kelp_err *err, int *ret_dfd)
{
	int code = w->code;
	if (!publish && !code)
		code = ECANCELED;
	/* Many shards (the first write, a big change): one syncfs instead of a journal commit per
	 * file (256 fsyncs took 0.4 s on ext4); a few: their own fsyncs. */
	bool whole_fs = w->n > 16;
	if (!code && whole_fs && syncfs(w->odfd) < 0)
		code = errno;
	for (unsigned i = 0; i < w->n; i++) {
		if (!code && !whole_fs && fsync(w->fds[i]) < 0)
			code = errno;
		if (close(w->fds[i]) < 0 && !code)
			code = errno;
	}
	for (unsigned i = 0; i < w->n; i++) {
		char tmp[64], name[16];
		shard_tmp_name(tmp, sizeof(tmp), w->shards[i]);
		snprintf(name, sizeof(name), "%02x.json", w->shards[i]);
		if (!code && renameat(w->odfd, tmp, w->odfd, name) < 0)
			code = errno;
		if (code)
			unlinkat(w->odfd, tmp, 0);
	}
	int r = 0;
	if (code == ECANCELED && !publish)
		r = 0;
	else if (code)
		r = kelp_error(err, code, "write state %s/%s", w->dir, OBJ_DIR);
	else if (w->n && fsync(w->odfd) < 0)
		r = kelp_error(err, errno, "sync state directory %s/%s", w->dir, OBJ_DIR);
	if (!code && r == 0) {
		memset(w->e->state_dirty, 0, sizeof(w->e->state_dirty));
		w->e->state_written = true;
	}
	close(w->odfd);
	if (ret_dfd)
		*ret_dfd = w->dfd;
	else
		close(w->dfd);
	free(w->dir);
	free(w);
	return r;
}

struct kp_state_write *kp_state_begin(struct kp_engine *e, const char *dir)
{
	struct kelp_err err;
	struct kp_state_write *w = state_open(e, dir, &err);
	if (!w)
		return NULL; /* written, and its error reported, by the kp_engine_write_state that follows */
	if (pthread_create(&w->thread, NULL, write_shards_thread, w) != 0) {
		state_close(w, false, &err, NULL);
		return NULL;
	}
	return w;
}

int kp_state_end(struct kp_state_write *w, bool publish, struct kelp_err *err)
{
	pthread_join(w->thread, NULL);
	return state_close(w, publish, err, NULL);
}

/* Crash-safe: every shard that changed is written to a temp file and fsynced before any is
 * renamed; then the objects directory is fsynced, and state.json (counters, counts) replaced
 * last, the same way. A crash in between leaves each shard at its old or its new version,
 * both of them objects that were programmed: all the state is for is the last good version of
 * a refused object and `show`. */
int kp_engine_write_state(struct kp_engine *e, const char *dir, struct kelp_err *err)
{
	struct kp_state_write *w = state_open(e, dir, err);
	if (!w)
		return -1;
	write_shards(w);
	int dfd;
	if (state_close(w, true, err, &dfd) < 0) {
		close(dfd);
		return -1;
	}

	char tmp[64];
	snprintf(tmp, sizeof(tmp), ".%s.%d.tmp", STATE_FILE, (int)getpid());
	int fd = stream_tmp(dfd, tmp, gen_head, e, NULL);
	int code = fd < 0 ? errno : 0;
	if (fd >= 0) {
		code = fsync(fd) < 0 ? errno : 0;
		if (close(fd) < 0 && !code)
			code = errno;
		if (!code && renameat(dfd, tmp, dfd, STATE_FILE) < 0)
			code = errno;
		if (code)
			unlinkat(dfd, tmp, 0);
	}
	if (code) {
		close(dfd);
		return kelp_error(err, code, "write state %s/%s", dir, STATE_FILE);
	}
	if (fsync(dfd) < 0) {
		code = errno;
		close(dfd);
		return kelp_error(err, code, "sync state directory %s", dir);
	}
	close(dfd);
	return 0;
}

static int cmp_svcrec(const void *pa, const void *pb)
{
	const struct kp_service *a = (*(const struct svcrec *const *)pa)->svc, *b = (*(const struct svcrec *const *)pb)->svc;
	int c = strcmp(a->ns, b->ns);
	return c ? c : strcmp(a->name, b->name);
}

/* state.json: the counters first (a sync reads only the file's head for them), the counts. */
static void gen_head(struct kp_engine *e, yajl_gen g, void *unused)
{
	(void)unused;
	yajl_gen_map_open(g);
	kg_key_int(g, "version", 2);
	kg_key(g, "metrics");
	yajl_gen_map_open(g);
	kg_key_int(g, "syncs_full", (long long)e->m.syncs_full);
	kg_key_int(g, "syncs_partial", (long long)e->m.syncs_partial);
	kg_key_int(g, "sync_errors", (long long)e->m.sync_errors);
	kg_key_double(g, "duration_sum", e->m.duration_sum);
	kg_key_int(g, "duration_count", (long long)e->m.duration_count);
	kg_key_double(g, "last_duration", e->m.last_duration);
	kg_key_int(g, "last_messages", (long long)e->m.last_messages);
	yajl_gen_map_close(g);
	kg_key(g, "counts");
	yajl_gen_map_open(g);
	kg_key_int(g, "services", (long long)kp_engine_n_services(e));
	kg_key_int(g, "endpoints", (long long)kp_engine_n_endpoints(e));
	kg_key_int(g, "elements", (long long)e->total_elems);
	kg_key_int(g, "group_chains", (long long)e->groups.n);
	yajl_gen_map_close(g);
	kg_key_int(g, "shards", KP_STATE_SHARDS);
	yajl_gen_map_close(g);
}

/* objects/NN.json: the services of shard NN in name order (so that two versions diff well),
 * each a minimal manifest (its last good version) with its summary, then their slices. */
static void gen_shard(struct kp_engine *e, yajl_gen g, void *ctx)
{
	struct shard *sh = ctx;
	yajl_gen_map_open(g);
	kg_key_int(g, "version", 2);
	const struct svcrec **v = sh->v;
	size_t n = sh->n;
	/* records with slices only sort after the services, unordered */
	size_t n_svc = 0;
	for (size_t i = 0; i < n; i++)
		if (v[i]->svc) {
			const struct svcrec *t = v[n_svc];
			v[n_svc++] = v[i];
			v[i] = t;
		}
	/* an empty shard has no array at all: qsort's pointer must not be NULL, even for 0 */
	if (n_svc > 1)
		qsort(v, n_svc, sizeof(*v), cmp_svcrec);
	kg_key(g, "services");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < n_svc; i++) {
		const struct svcrec *r = v[i];
		yajl_gen_map_open(g);
		if (r->svc_file)
			kg_key_str(g, "file", r->svc_file);
		kg_key(g, "object");
		kp_service_gen(g, r->svc);
		gen_summary(g, r);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	kg_key(g, "slices");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < v[i]->n_slices; j++) {
			const struct kp_slice *sl = v[i]->slices[j];
			char key[600];
			snprintf(key, sizeof(key), "%s/%s", sl->ns, sl->name);
			void **p = hmap_gets(&e->slices, key);
			const struct slicerec *sr = p ? *p : NULL;
			yajl_gen_map_open(g);
			if (sr && sr->file)
				kg_key_str(g, "file", sr->file);
			kg_key(g, "object");
			kp_slice_gen(g, sl);
			yajl_gen_map_close(g);
		}
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
}

/* One JSON file of the state; ret_root->v NULL when it does not exist. */
static int read_json(const char *path, struct kj *ret_root, struct kelp_err *err)
{
	cleanup_free char *buf = NULL;
	size_t len;
	ret_root->v = NULL;
	if (kelp_read_file_at(AT_FDCWD, path, STATE_MAX, &buf, &len, err) < 0) {
		if (err->code == ENOENT)
			return 0;
		return -1;
	}
	if (kj_parse(buf, len, path, ret_root, err) < 0)
		return kelp_error_wrap(err, "state %s", path);
	return 0;
}

/* The parsed state: state.json's root, then every shard's; *ret_n 0 when there is no state.
 * Services and slices are the "services" and "slices" arrays of all of them (a version 1
 * state.json had them at its root). */
static int read_state(const char *dir, struct kj **ret, size_t *ret_n, struct kelp_err *err)
{
	char path[4096];
	*ret = NULL;
	*ret_n = 0;
	struct kj *v = xcalloc(KP_STATE_SHARDS + 1, sizeof(*v));
	snprintf(path, sizeof(path), "%s/%s", dir, STATE_FILE);
	if (read_json(path, &v[0], err) < 0) {
		free(v);
		return -1;
	}
	if (!v[0].v) {
		free(v);
		return 0;
	}
	size_t n = 1;
	for (unsigned s = 0; s < KP_STATE_SHARDS; s++) {
		snprintf(path, sizeof(path), "%s/%s/%02x.json", dir, OBJ_DIR, s);
		if (read_json(path, &v[n], err) < 0) {
			for (size_t i = 0; i < n; i++)
				yajl_tree_free(v[i].v);
			free(v);
			return -1;
		}
		if (v[n].v)
			n++;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

static void free_state(struct kj *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		yajl_tree_free(v[i].v);
	free(v);
}

static uint64_t num_u(const struct kj *obj, const char *key)
{
	uint64_t v = 0;
	kj_opt_uint64(obj, key, &v, NULL, NULL);
	return v;
}

static double num_d(const struct kj *obj, const char *key)
{
	struct kj f;
	double v = 0;
	if (kj_field(obj, key, &f, NULL) == 1)
		kj_double(&f, &v, NULL);
	return v;
}

static void load_metrics(struct kp_engine *e, const struct kj *root)
{
	struct kj m;
	if (kj_field(root, "metrics", &m, NULL) == 1) {
		e->m.syncs_full = num_u(&m, "syncs_full");
		e->m.syncs_partial = num_u(&m, "syncs_partial");
		e->m.sync_errors = num_u(&m, "sync_errors");
		e->m.duration_count = num_u(&m, "duration_count");
		e->m.duration_sum = num_d(&m, "duration_sum");
		e->m.last_duration = num_d(&m, "last_duration");
		e->m.last_messages = num_u(&m, "last_messages");
	}
}

/* The counters only: they come first in the file, so its head is enough (the whole file of a
 * large cluster takes long to parse, and a sync needs it only when an object is refused). */
int kp_engine_load_metrics(struct kp_engine *e, const char *dir, struct kelp_err *err)
{
	char path[4096], head[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, STATE_FILE);
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : kelp_error(err, errno, "open %s", path);
	ssize_t n = read(fd, head, sizeof(head) - 1);
	if (n < 0)
		return kelp_error(err, errno, "read %s", path);
	head[n] = 0;
	char *start = strstr(head, "\"metrics\":{"), *end = start ? strchr(start, '}') : NULL;
	if (!end)
		return 0; /* not ours, or no counters yet */
	end[1] = 0;
	char doc[4200];
	snprintf(doc, sizeof(doc), "{%s}", start);
	struct kj root;
	if (kj_parse(doc, strlen(doc), path, &root, err) < 0)
		return -1;
	load_metrics(e, &root);
	yajl_tree_free(root.v);
	return 0;
}

int kp_engine_load_state(struct kp_engine *e, const char *dir, struct kelp_err *err)
{
	struct kj *docs;
	size_t n_docs;
	if (read_state(dir, &docs, &n_docs, err) < 0)
		return -1;
	for (int pass = 0; pass < 2; pass++)
		for (size_t d = 0; d < n_docs; d++) {
			struct kj list;
			if (kj_field(&docs[d], pass ? "slices" : "services", &list, NULL) != 1 || !YAJL_IS_ARRAY(list.v))
				continue;
			for (size_t i = 0; i < kj_len(&list); i++) {
				struct kj it, obj;
				kj_index(&list, i, &it);
				if (kj_field(&it, "object", &obj, NULL) != 1)
					continue;
				struct kelp_err perr = {0};
				struct prevobj *po = xcalloc(1, sizeof(*po));
				cleanup_free char *file = NULL;
				kj_opt_string(&it, "file", &file, NULL);
				obj.path[0] = 0;
				int r = pass ? kp_slice_parse(&obj, &po->sl, &perr) : kp_service_parse(&obj, &po->svc, &perr);
				if (r < 0) {
					free(po);
					continue; /* an entry we cannot read again is forgotten */
				}
				po->file = TAKE_PTR(file);
				char key[600];
				snprintf(key, sizeof(key), "%c %s/%s", pass ? 'E' : 'S', pass ? po->sl->ns : po->svc->ns,
					 pass ? po->sl->name : po->svc->name);
				void *old = hmap_gets(&e->prev, key) ? *hmap_gets(&e->prev, key) : NULL;
				if (old) {
					struct prevobj *o = old;
					kp_service_free(o->svc);
					kp_slice_free(o->sl);
					free(o->file);
					free(o);
				}
				hmap_put(&e->prev, key, strlen(key), po);
			}
		}
	free_state(docs, n_docs);
	return 0;
}

/* ---- show ---------------------------------------------------------------------------------- */

static const char *str_of(const struct kj *obj, const char *key)
{
	struct kj f;
	if (kj_field(obj, key, &f, NULL) == 1 && YAJL_IS_STRING(f.v))
		return YAJL_GET_STRING(f.v);
	return "";
}

static void join(const struct kj *obj, const char *key, char *buf, size_t size)
{
	struct kj f;
	buf[0] = 0;
	if (kj_field(obj, key, &f, NULL) != 1 || !YAJL_IS_ARRAY(f.v))
		return;
	for (size_t i = 0; i < kj_len(&f); i++) {
		struct kj e;
		kj_index(&f, i, &e);
		if (YAJL_IS_STRING(e.v))
			snprintf(buf + strlen(buf), size - strlen(buf), "%s%s", i ? "," : "", YAJL_GET_STRING(e.v));
	}
	if (!buf[0])
		snprintf(buf, size, "-");
}

static int cmp_summary(const void *pa, const void *pb)
{
	const struct kj *a = pa, *b = pb;
	int c = strcmp(str_of(a, "namespace"), str_of(b, "namespace"));
	return c ? c : strcmp(str_of(a, "name"), str_of(b, "name"));
}

int kp_show(const char *dir, enum kp_show_format fmt, FILE *out, struct kelp_err *err)
{
	struct kj *docs = NULL;
	size_t n_docs = 0;
	struct kj root = {0};
	if (fmt == KP_SHOW_METRICS) {
		/* state.json alone: a few hundred bytes, whatever the number of services */
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", dir, STATE_FILE);
		if (read_json(path, &root, err) < 0)
			return -1;
	} else {
		if (read_state(dir, &docs, &n_docs, err) < 0)
			return -1;
		if (n_docs)
			root = docs[0];
	}
	struct kj m = {0}, counts = {0};
	if (root.v) {
		kj_field(&root, "metrics", &m, NULL);
		kj_field(&root, "counts", &counts, NULL);
	}
	/* the summaries of every shard, in name order */
	struct kj *sums = NULL;
	size_t n_sums = 0, cap_sums = 0;
	for (size_t d = 0; d < n_docs; d++) {
		struct kj list;
		if (kj_field(&docs[d], "services", &list, NULL) != 1 || !YAJL_IS_ARRAY(list.v))
			continue;
		for (size_t i = 0; i < kj_len(&list); i++) {
			struct kj it;
			kj_index(&list, i, &it);
			if (n_sums == cap_sums) {
				cap_sums = cap_sums ? cap_sums * 2 : 256;
				sums = xrealloc(sums, cap_sums * sizeof(*sums));
			}
			if (kj_field(&it, "summary", &sums[n_sums], NULL) == 1)
				n_sums++;
		}
	}
	if (n_sums)
		qsort(sums, n_sums, sizeof(*sums), cmp_summary);
	if (fmt == KP_SHOW_METRICS) {
		fprintf(out, "# HELP kelp_proxy_syncs_total Transactions committed, by kind.\n"
			     "# TYPE kelp_proxy_syncs_total counter\n");
		fprintf(out, "kelp_proxy_syncs_total{kind=\"full\"} %" PRIu64 "\n", m.v ? num_u(&m, "syncs_full") : 0);
		fprintf(out, "kelp_proxy_syncs_total{kind=\"partial\"} %" PRIu64 "\n", m.v ? num_u(&m, "syncs_partial") : 0);
		fprintf(out, "# HELP kelp_proxy_sync_errors_total Objects refused, summed over syncs.\n"
			     "# TYPE kelp_proxy_sync_errors_total counter\n");
		fprintf(out, "kelp_proxy_sync_errors_total %" PRIu64 "\n", m.v ? num_u(&m, "sync_errors") : 0);
		fprintf(out, "# HELP kelp_proxy_sync_duration_seconds From a change seen to its commit acknowledged.\n"
			     "# TYPE kelp_proxy_sync_duration_seconds summary\n");
		fprintf(out, "kelp_proxy_sync_duration_seconds_sum %.9f\n", m.v ? num_d(&m, "duration_sum") : 0);
		fprintf(out, "kelp_proxy_sync_duration_seconds_count %" PRIu64 "\n", m.v ? num_u(&m, "duration_count") : 0);
		fprintf(out, "# TYPE kelp_proxy_last_sync_duration_seconds gauge\n");
		fprintf(out, "kelp_proxy_last_sync_duration_seconds %.9f\n", m.v ? num_d(&m, "last_duration") : 0);
		fprintf(out, "# TYPE kelp_proxy_last_sync_netlink_messages gauge\n");
		fprintf(out, "kelp_proxy_last_sync_netlink_messages %" PRIu64 "\n", m.v ? num_u(&m, "last_messages") : 0);
		fprintf(out, "# TYPE kelp_proxy_services gauge\n");
		fprintf(out, "kelp_proxy_services %" PRIu64 "\n", counts.v ? num_u(&counts, "services") : 0);
		fprintf(out, "# TYPE kelp_proxy_endpoints gauge\n");
		fprintf(out, "kelp_proxy_endpoints %" PRIu64 "\n", counts.v ? num_u(&counts, "endpoints") : 0);
		fprintf(out, "# TYPE kelp_proxy_nft_elements gauge\n");
		fprintf(out, "kelp_proxy_nft_elements %" PRIu64 "\n", counts.v ? num_u(&counts, "elements") : 0);
	} else if (fmt == KP_SHOW_JSON) {
		yajl_gen g = kg_new(true);
		yajl_gen_array_open(g);
		for (size_t i = 0; i < n_sums; i++) {
			struct kj s = sums[i];
			yajl_gen_map_open(g);
			kg_key_str(g, "namespace", str_of(&s, "namespace"));
			kg_key_str(g, "name", str_of(&s, "name"));
			kg_key_str(g, "type", str_of(&s, "type"));
			for (int k = 0; k < 2; k++) {
				struct kj a;
				kg_key(g, k ? "ports" : "clusterIPs");
				yajl_gen_array_open(g);
				if (kj_field(&s, k ? "ports" : "clusterIPs", &a, NULL) == 1 && YAJL_IS_ARRAY(a.v))
					for (size_t j = 0; j < kj_len(&a); j++) {
						struct kj x;
						kj_index(&a, j, &x);
						if (YAJL_IS_STRING(x.v))
							kg_str(g, YAJL_GET_STRING(x.v));
					}
				yajl_gen_array_close(g);
			}
			struct kj ep;
			kg_key(g, "endpoints");
			yajl_gen_map_open(g);
			if (kj_field(&s, "endpoints", &ep, NULL) == 1) {
				kg_key_int(g, "ready", (long long)num_u(&ep, "ready"));
				kg_key_int(g, "total", (long long)num_u(&ep, "total"));
			}
			yajl_gen_map_close(g);
			kg_key_int(g, "rules", (long long)num_u(&s, "rules"));
			yajl_gen_map_close(g);
		}
		yajl_gen_array_close(g);
		size_t len;
		cleanup_free char *text = kg_finish(g, &len);
		fwrite(text, 1, len, out);
		if (len && text[len - 1] != '\n')
			fputc('\n', out);
	} else {
		fprintf(out, "%-40s %-12s %-28s %-24s %-10s %s\n", "NAMESPACE/NAME", "TYPE", "CLUSTER-IP(S)", "PORTS",
			"ENDPOINTS", "RULES");
		for (size_t i = 0; i < n_sums; i++) {
			struct kj s = sums[i], ep;
			char nn[600], ips[128], ports[256], eps[64];
			snprintf(nn, sizeof(nn), "%s/%s", str_of(&s, "namespace"), str_of(&s, "name"));
			join(&s, "clusterIPs", ips, sizeof(ips));
			join(&s, "ports", ports, sizeof(ports));
			if (kj_field(&s, "endpoints", &ep, NULL) == 1)
				snprintf(eps, sizeof(eps), "%" PRIu64 "/%" PRIu64, num_u(&ep, "ready"), num_u(&ep, "total"));
			else
				snprintf(eps, sizeof(eps), "0/0");
			fprintf(out, "%-40s %-12s %-28s %-24s %-10s %" PRIu64 "\n", nn, str_of(&s, "type"), ips, ports, eps,
				num_u(&s, "rules"));
		}
	}
	free(sums);
	if (docs)
		free_state(docs, n_docs);
	else if (root.v)
		yajl_tree_free(root.v);
	return 0;
}

/* For flush: the service addresses the state knows (conntrack entries to delete). */
int kp_state_service_addrs(const char *dir, struct kp_ct_target **ret, size_t *ret_n, struct kelp_err *err)
{
	struct kj *docs;
	size_t n_docs;
	*ret = NULL;
	*ret_n = 0;
	if (read_state(dir, &docs, &n_docs, err) < 0)
		return -1;
	size_t n = 0, cap = 0;
	struct kp_ct_target *v = NULL;
	for (size_t d = 0; d < n_docs; d++) {
		struct kj list;
		if (kj_field(&docs[d], "services", &list, NULL) != 1 || !YAJL_IS_ARRAY(list.v))
			continue;
		for (size_t i = 0; i < kj_len(&list); i++) {
			struct kj it, obj;
			kj_index(&list, i, &it);
			if (kj_field(&it, "object", &obj, NULL) != 1)
				continue;
			struct kp_service *s = NULL;
			struct kelp_err perr;
			obj.path[0] = 0;
			if (kp_service_parse(&obj, &s, &perr) < 0)
				continue;
			for (size_t pi = 0; pi < s->n_ports; pi++) {
				if (!s->ports[pi].node_port || (s->type != KP_NODE_PORT && s->type != KP_LOAD_BALANCER))
					continue;
				if (n == cap) {
					cap = cap ? cap * 2 : 64;
					v = xrealloc(v, cap * sizeof(*v));
				}
				memset(&v[n], 0, sizeof(v[n]));
				v[n].node_port = true;
				v[n].proto = s->ports[pi].proto;
				v[n].port = htons(s->ports[pi].node_port);
				n++;
			}
			size_t na = 2 + s->n_ext + s->n_lb;
			for (size_t a = 0; a < na; a++) {
				const struct kp_addr *ad = a < 2 ? (s->has_cip[a] && !s->headless ? &s->cluster_ips[a] : NULL)
						   : a < 2 + s->n_ext ? &s->ext_ips[a - 2]
								      : &s->lb_ips[a - 2 - s->n_ext];
				if (!ad)
					continue;
				if (n == cap) {
					cap = cap ? cap * 2 : 64;
					v = xrealloc(v, cap * sizeof(*v));
				}
				memset(&v[n], 0, sizeof(v[n]));
				v[n].fam = ad->fam;
				memcpy(v[n].ip, ad->ip, 16);
				n++;
			}
			kp_service_free(s);
		}
	}
	if (n_docs)
		free_state(docs, n_docs);
	*ret = v;
	*ret_n = n;
	return 0;
}

int kp_state_remove(const char *dir, struct kelp_err *err)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, STATE_FILE);
	if (unlink(path) < 0 && errno != ENOENT)
		return kelp_error(err, errno, "remove %s", path);
	/* then the shards: without state.json they are never read */
	snprintf(path, sizeof(path), "%s/%s", dir, OBJ_DIR);
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : kelp_error(err, errno, "stat %s", path);
	cleanup_close int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return kelp_error(err, errno, "open %s", dir);
	if (kelp_rm_rf_at(dfd, OBJ_DIR, err) < 0)
		return kelp_error_wrap(err, "remove %s", path);
	return 0;
}
