#include "reader.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"

/* Parsed files waiting to be consumed: bounds the memory of the trees held at once. Job i
 * lives in slot i % WINDOW: a worker starts it only once job i - WINDOW was taken. */
#define WINDOW 16
#define MAX_WORKERS 4

struct job {
	size_t idx; /* which file the slot holds: a slot is reused every WINDOW files */
	struct km_file f;
	struct kelp_err err;
	int rc;
	bool done, taken;
};

struct kp_reader {
	char *const *files;
	size_t n, next_job, next_out;
	bool stop;
	struct job *jobs;
	pthread_mutex_t mu;
	pthread_cond_t work, done;
	pthread_t workers[MAX_WORKERS];
	int n_workers;
};

static void *worker(void *arg)
{
	struct kp_reader *r = arg;
	pthread_mutex_lock(&r->mu);
	for (;;) {
		while (!r->stop && r->next_job < r->n && r->next_job >= r->next_out + WINDOW)
			pthread_cond_wait(&r->work, &r->mu);
		if (r->stop || r->next_job >= r->n)
			break;
		size_t i = r->next_job++;
		struct job *j = &r->jobs[i % WINDOW];
		memset(j, 0, sizeof(*j));
		j->idx = i;
		pthread_mutex_unlock(&r->mu);
		j->rc = km_read_file(r->files[i], &j->f, &j->err);
		pthread_mutex_lock(&r->mu);
		j->done = true;
		pthread_cond_broadcast(&r->done);
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
	r->jobs = xcalloc(WINDOW, sizeof(*r->jobs));
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->work, NULL);
	pthread_cond_init(&r->done, NULL);
	/* threads pay only on idle CPUs: on a busy machine they cost more (locks, frees across
	 * malloc arenas) than they gain, measured at 10,000 services */
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	double load[1] = {0};
	if (getloadavg(load, 1) == 1)
		cpus = (long)((double)cpus - load[0]);
	int want = n < 4 || cpus < 1 ? 0 : cpus > MAX_WORKERS ? MAX_WORKERS : (int)cpus;
	if (workers >= 0)
		want = workers > MAX_WORKERS ? MAX_WORKERS : workers;
	for (int i = 0; i < want; i++) {
		if (pthread_create(&r->workers[i], NULL, worker, r) != 0)
			break; /* fewer workers, or none: kp_reader_next parses itself */
		r->n_workers++;
	}
	return r;
}

int kp_reader_next(struct kp_reader *r, struct km_file *ret, struct kelp_err *err)
{
	pthread_mutex_lock(&r->mu);
	size_t i = r->next_out;
	struct job *j = &r->jobs[i % WINDOW];
	if (r->n_workers == 0 && r->next_job <= i) {
		/* no thread: read it here */
		r->next_job = i + 1;
		memset(j, 0, sizeof(*j));
		j->idx = i;
		pthread_mutex_unlock(&r->mu);
		j->rc = km_read_file(r->files[i], &j->f, &j->err);
		pthread_mutex_lock(&r->mu);
		j->done = true;
	}
	/* done, and done with file i: the slot may still hold file i - WINDOW, taken already */
	while (!(j->done && j->idx == i))
		pthread_cond_wait(&r->done, &r->mu);
	/* out of the slot before it is given to job i + WINDOW */
	int rc = j->rc;
	if (rc < 0) {
		*err = j->err;
	} else {
		*ret = j->f;
		memset(&j->f, 0, sizeof(j->f));
	}
	j->taken = true;
	r->next_out++;
	pthread_cond_broadcast(&r->work);
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
	for (size_t i = 0; i < WINDOW; i++)
		if (r->jobs[i].done && !r->jobs[i].taken && r->jobs[i].rc == 0)
			km_file_free(&r->jobs[i].f);
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->work);
	pthread_cond_destroy(&r->done);
	free(r->jobs);
	free(r);
}
