#include "reader.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"

/* Files go out in chunks: a thread takes a whole chunk, and the two sides meet once per chunk,
 * not once per file (a futex wait and wake-up per file cost more than the parse saved, on a VM
 * with 2 CPUs). Chunks are of CHUNK files, fewer when there are few files (down to one: two
 * big List files are then read at the same time). Chunk c lives in slot c % WINDOW, which
 * bounds what is held at once. */
#define CHUNK 32
#define WINDOW 4
#define MAX_WORKERS 4

enum slot_state { SLOT_FREE, SLOT_BUSY, SLOT_DONE };

struct result {
	struct kp_fobjs f;
	struct kelp_err err;
	int rc;
	bool taken;
};

struct slot {
	size_t chunk; /* which chunk the slot holds: a slot is reused every WINDOW chunks */
	enum slot_state state;
	struct result res[CHUNK];
};

struct kp_reader {
	char *const *files;
	size_t n, chunk, n_chunks; /* chunk: files per chunk, at most CHUNK */
	size_t next_claim; /* the first chunk nobody has started */
	size_t next_out;   /* the next file handed out */
	bool stop;
	struct slot *slots;
	pthread_mutex_t mu;
	pthread_cond_t work, done;
	pthread_t workers[MAX_WORKERS];
	int n_workers;
};

static size_t chunk_end(const struct kp_reader *r, size_t c)
{
	size_t end = (c + 1) * r->chunk;
	return end > r->n ? r->n : end;
}

/* Called with the lock held: chunk c, the oldest not handed out entirely, frees its slot only
 * once its last file is out; claims may run WINDOW chunks ahead of it. */
static bool can_claim(const struct kp_reader *r)
{
	return r->next_claim < r->n_chunks && r->next_claim < r->next_out / r->chunk + WINDOW;
}

/* Called with the lock held, returns with it held: parses the next unstarted chunk. */
static void parse_chunk(struct kp_reader *r)
{
	size_t c = r->next_claim++;
	struct slot *s = &r->slots[c % WINDOW];
	memset(s, 0, sizeof(*s));
	s->chunk = c;
	s->state = SLOT_BUSY;
	pthread_mutex_unlock(&r->mu);
	for (size_t i = c * r->chunk; i < chunk_end(r, c); i++) {
		struct result *res = &s->res[i - c * r->chunk];
		res->rc = kp_fobjs_read_file(r->files[i], &res->f, &res->err);
	}
	pthread_mutex_lock(&r->mu);
	s->state = SLOT_DONE;
	pthread_cond_broadcast(&r->done);
}

static void *worker(void *arg)
{
	struct kp_reader *r = arg;
	pthread_mutex_lock(&r->mu);
	for (;;) {
		while (!r->stop && r->next_claim < r->n_chunks && !can_claim(r))
			pthread_cond_wait(&r->work, &r->mu);
		if (r->stop || r->next_claim >= r->n_chunks)
			break;
		parse_chunk(r);
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

struct kp_reader *kp_reader_start(char *const *files, size_t n)
{
	return kp_reader_start_workers(files, n, -1);
}

struct kp_reader *kp_reader_start_workers(char *const *files, size_t n, int workers)
{
	struct kp_reader *r = xcalloc(1, sizeof(*r));
	r->files = files;
	r->n = n;
	/* an eighth of the files, 1 to CHUNK: a few files still make several chunks */
	r->chunk = n / 8 > CHUNK ? CHUNK : n / 8 ? n / 8 : 1;
	r->n_chunks = (n + r->chunk - 1) / r->chunk;
	r->slots = xcalloc(WINDOW, sizeof(*r->slots));
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->work, NULL);
	pthread_cond_init(&r->done, NULL);
	/* the consumer parses too whenever it would wait: one worker per other CPU, and a busy
	 * machine just leaves more of the chunks to the consumer */
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int want = r->n_chunks < 2 || cpus < 2 ? 0 : cpus - 1 > MAX_WORKERS ? MAX_WORKERS : (int)(cpus - 1);
	if (workers >= 0)
		want = workers > MAX_WORKERS ? MAX_WORKERS : workers;
	for (int i = 0; i < want; i++) {
		if (pthread_create(&r->workers[i], NULL, worker, r) != 0)
			break; /* fewer workers, or none: kp_reader_next parses itself */
		r->n_workers++;
	}
	return r;
}

int kp_reader_next(struct kp_reader *r, struct kp_fobjs *ret, struct kelp_err *err)
{
	pthread_mutex_lock(&r->mu);
	size_t i = r->next_out, c = i / r->chunk;
	struct slot *s = &r->slots[c % WINDOW];
	while (!(s->state == SLOT_DONE && s->chunk == c)) {
		if (can_claim(r))
			parse_chunk(r); /* chunk c, or one ahead while a worker finishes c */
		else
			pthread_cond_wait(&r->done, &r->mu);
	}
	struct result *res = &s->res[i - c * r->chunk];
	int rc = res->rc;
	if (rc < 0) {
		*err = res->err;
	} else {
		*ret = res->f;
		memset(&res->f, 0, sizeof(res->f));
	}
	res->taken = true;
	r->next_out++;
	if (r->next_out == chunk_end(r, c)) {
		/* the slot is free for chunk c + WINDOW */
		s->state = SLOT_FREE;
		pthread_cond_broadcast(&r->work);
	}
	pthread_mutex_unlock(&r->mu);
	return rc < 0 ? -1 : 0;
}

void kp_reader_stop(struct kp_reader *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->mu);
	r->stop = true;
	pthread_cond_broadcast(&r->work);
	pthread_mutex_unlock(&r->mu);
	for (int i = 0; i < r->n_workers; i++)
		pthread_join(r->workers[i], NULL);
	for (size_t k = 0; k < WINDOW; k++) {
		struct slot *s = &r->slots[k];
		if (s->state != SLOT_DONE)
			continue;
		for (size_t j = 0; j < CHUNK; j++)
			if (!s->res[j].taken && s->res[j].rc == 0)
				kp_fobjs_free(&s->res[j].f);
	}
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->done);
	pthread_cond_destroy(&r->work);
	free(r->slots);
	free(r);
}
