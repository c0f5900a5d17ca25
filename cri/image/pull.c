#include "pull.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "ref.h"
#include "unpack.h"

#define MANIFEST_MAX (4 << 20)

struct membuf {
	char *buf;
	size_t len;
};

static int mem_sink(void *data, const void *buf, size_t len, struct kelp_err *err)
{
	struct membuf *m = data;
	if (m->len + len > MANIFEST_MAX)
		return kelp_fail(err, EFBIG, "manifest larger than %d bytes", MANIFEST_MAX);
	m->buf = xrealloc(m->buf, m->len + len + 1);
	memcpy(m->buf + m->len, buf, len);
	m->len += len;
	m->buf[m->len] = '\0';
	return 0;
}

static int mem_reset(void *data, struct kelp_err *err)
{
	(void)err;
	struct membuf *m = data;
	m->len = 0;
	return 0;
}

/* Fetch a manifest or index by tag or digest and verify it: against the digest asked for, and
 * against what the registry says it is. */
static int fetch_manifest(struct kimg_registry *r, const char *ref, struct kimg_manifest *ret,
			  char digest[KIMG_DIGEST_LEN + 1], struct membuf *body, struct kelp_err *err)
{
	struct kimg_response resp = {0};
	if (kimg_registry_get(r, "manifests", ref, MT_ACCEPT, mem_sink, mem_reset, body, &resp, err) < 0)
		return kelp_error_wrap(err, "manifest %s/%s:%s", r->domain, r->repo, ref);
	kimg_digest_buf(body->buf ? body->buf : "", body->len, digest);
	int rc = -1;
	if (kimg_digest_valid(ref) && strcmp(ref, digest)) {
		kelp_fail(err, EIO, "manifest %s@%s: the registry sent content with digest %s", r->repo, ref, digest);
		goto out;
	}
	if (resp.docker_digest && kimg_digest_valid(resp.docker_digest) && strcmp(resp.docker_digest, digest)) {
		kelp_fail(err, EIO, "manifest %s:%s: Docker-Content-Digest says %s, the content is %s", r->repo, ref,
			  resp.docker_digest, digest);
		goto out;
	}
	if (kimg_manifest_parse(body->buf ? body->buf : "", body->len, resp.content_type, ret, err) < 0) {
		kelp_error_wrap(err, "manifest %s:%s", r->repo, ref);
		goto out;
	}
	rc = 0;
out:
	kimg_response_free(&resp);
	return rc;
}

struct blob_job {
	struct kimg_ingest in;
	const struct kimg_pull_opts *o;
	int64_t last_report;
};

static int ingest_sink(void *data, const void *buf, size_t len, struct kelp_err *err)
{
	struct blob_job *j = data;
	if (kimg_ingest_write(&j->in, buf, len, err) < 0)
		return -1;
	if (j->o->progress && (j->in.written - j->last_report >= (4 << 20) || j->in.written == j->in.size)) {
		j->o->progress(j->o->progress_data, j->in.digest, j->in.written, j->in.size);
		j->last_report = j->in.written;
	}
	return 0;
}

static int ingest_reset(void *data, struct kelp_err *err)
{
	struct blob_job *j = data;
	j->last_report = 0;
	return kimg_ingest_reset(&j->in, err);
}

/* Fetch one blob into the store unless it is there; concurrent fetches of it wait for the first. */
static int fetch_blob(struct kimg_store *s, struct kimg_registry *r, const struct kimg_desc *d,
		      const struct kimg_pull_opts *o, struct kelp_err *err)
{
	struct blob_job j = {.o = o};
	int b = kimg_ingest_begin(s, d->digest, d->size, &j.in, err);
	if (b < 0)
		return -1;
	if (b == 1)
		return 0;
	struct kimg_response resp = {0};
	if (kimg_registry_get(r, "blobs", d->digest, NULL, ingest_sink, ingest_reset, &j, &resp, err) < 0) {
		kimg_ingest_abort(&j.in);
		return kelp_error_wrap(err, "blob %s", d->digest);
	}
	kimg_response_free(&resp);
	return kimg_ingest_commit(&j.in, err);
}

struct workers {
	pthread_mutex_t mu;
	size_t next;
	bool failed;
	struct kelp_err err;
	struct kimg_store *s;
	struct kimg_registry *r;
	const struct kimg_manifest *m;
	const struct kimg_config *c;
	const struct kimg_pull_opts *o;
};

static void *worker(void *arg)
{
	struct workers *w = arg;
	for (;;) {
		pthread_mutex_lock(&w->mu);
		size_t i = w->next++;
		bool stop = w->failed || i >= w->m->n_layers;
		pthread_mutex_unlock(&w->mu);
		if (stop)
			return NULL;
		struct kelp_err err = {0};
		const struct kimg_desc *d = &w->m->layers[i];
		/* unpacked as soon as it lands, while the other layers still download */
		if (fetch_blob(w->s, w->r, d, w->o, &err) < 0 || kimg_unpack_layer(w->s, d->digest, w->c->diff_ids[i], &err) < 0) {
			pthread_mutex_lock(&w->mu);
			if (!w->failed) {
				w->failed = true;
				w->err = err;
			}
			pthread_mutex_unlock(&w->mu);
			return NULL;
		}
	}
}

static int fetch_layers(struct kimg_store *s, struct kimg_registry *r, const struct kimg_manifest *m,
			const struct kimg_config *c, const struct kimg_pull_opts *o, struct kelp_err *err)
{
	struct workers w = {.mu = PTHREAD_MUTEX_INITIALIZER, .s = s, .r = r, .m = m, .c = c, .o = o};
	size_t n = o->config && o->config->max_downloads > 0 ? (size_t)o->config->max_downloads : 3;
	if (n > m->n_layers)
		n = m->n_layers;
	pthread_t tids[64];
	size_t started = 0;
	for (; started < n && started < ARRAY_SIZE(tids); started++) {
		int e = pthread_create(&tids[started], NULL, worker, &w);
		if (e) {
			pthread_mutex_lock(&w.mu);
			if (!w.failed) {
				w.failed = true;
				kelp_error(&w.err, e, "start a download thread");
			}
			pthread_mutex_unlock(&w.mu);
			break;
		}
	}
	for (size_t i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	if (w.failed) {
		if (err)
			*err = w.err;
		return -1;
	}
	return 0;
}

static int pull_locked(struct kimg_store *s, const struct kimg_ref *ref, const struct kimg_pull_opts *o,
		       struct kimg_image *ret, struct kelp_err *err)
{
	struct kimg_registry r;
	struct kimg_manifest top = {0}, m = {0};
	struct kimg_config c = {0};
	struct membuf top_body = {0}, m_body = {0};
	cleanup_free char *cbuf = NULL;
	size_t clen;
	char top_digest[KIMG_DIGEST_LEN + 1], m_digest[KIMG_DIGEST_LEN + 1];
	const char *index = NULL;
	int rc = -1;
	if (kimg_registry_new(o->config, ref->domain, ref->path, o->auth, &r, err) < 0)
		return -1;
	if (fetch_manifest(&r, ref->digest ? ref->digest : ref->tag, &top, top_digest, &top_body, err) < 0)
		goto out;
	if (top.kind == KIMG_INDEX) {
		struct kimg_platform node = {0};
		const struct kimg_platform *want = o->platform;
		if (!want) {
			if (kimg_platform_parse(NULL, &node, err) < 0)
				goto out;
			want = &node;
		}
		size_t pick;
		int sr = kimg_platform_select(&top, want, &pick, err);
		kimg_platform_free(&node);
		if (sr < 0) {
			kelp_error_wrap(err, "image %s", ref->full);
			goto out;
		}
		if (fetch_manifest(&r, top.entries[pick].digest, &m, m_digest, &m_body, err) < 0)
			goto out;
		if (m.kind != KIMG_MANIFEST) {
			kelp_fail(err, EINVAL, "image %s: index entry %s is not an image manifest", ref->full, m_digest);
			goto out;
		}
		index = top_digest;
	} else {
		m = top;
		memset(&top, 0, sizeof(top));
		memcpy(m_digest, top_digest, sizeof(m_digest));
		m_body = top_body;
		memset(&top_body, 0, sizeof(top_body));
	}
	/* config first: its diffIDs check every layer as it is unpacked */
	if (fetch_blob(s, &r, &m.config, o, err) < 0 || kimg_blob_read(s, m.config.digest, MANIFEST_MAX, &cbuf, &clen, err) < 0 ||
	    kimg_config_parse(cbuf, clen, &c, err) < 0) {
		kelp_error_wrap(err, "image %s: config", ref->full);
		goto out;
	}
	if (c.n_diff_ids != m.n_layers) {
		kelp_fail(err, EINVAL, "image %s: the manifest has %zu layers, the config %zu diffIDs", ref->full, m.n_layers,
			  c.n_diff_ids);
		goto out;
	}
	if (fetch_layers(s, &r, &m, &c, o, err) < 0) {
		kelp_error_wrap(err, "image %s", ref->full);
		goto out;
	}
	/* the manifests go in last: they are what makes the blobs an image */
	if (index && kimg_blob_put(s, top_digest, top_body.buf, top_body.len, NULL, err) < 0)
		goto out;
	if (kimg_blob_put(s, m_digest, m_body.buf, m_body.len, NULL, err) < 0)
		goto out;
	rc = kimg_image_commit(s, ref->full, index ? top_digest : m_digest, m_digest, index, ret, err);
out:
	kimg_manifest_free(&top);
	kimg_manifest_free(&m);
	kimg_config_free(&c);
	free(top_body.buf);
	free(m_body.buf);
	kimg_registry_free(&r);
	return rc;
}

int kimg_pull(struct kimg_store *s, const char *refstr, const struct kimg_pull_opts *o, struct kimg_image *ret,
	      struct kelp_err *err)
{
	struct kimg_ref ref;
	if (kimg_ref_parse(refstr, &ref, err) < 0)
		return -1;
	int rc;
	{
		cleanup_close int lock = kimg_store_lock(s, false, err);
		rc = lock < 0 ? -1 : pull_locked(s, &ref, o, ret, err);
	}
	if (rc < 0) {
		/* leave the store as it was, unless another pull or import is running (then the
		 * next collection takes what this one fetched) */
		struct kelp_err ignored;
		if (kimg_store_gc_try(s, &ignored) < 0)
			log_debug("pull %s: cleanup deferred: %s", ref.full, ignored.msg);
	} else {
		log_debug("pulled %s", ref.full);
	}
	kimg_ref_free(&ref);
	return rc;
}
