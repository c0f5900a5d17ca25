/* Unit tests of proxy/reader.c: files parsed ahead by 0 to 4 worker threads come out complete
 * and in order, as model objects (a Service, an EndpointSlice whose endpoints name nodes of their
 * own, so that threads intern node names at once, or a refused nameless one), with the error of
 * a bad file at its place; stopping early frees what was parsed ahead. Every slot of the 4-chunk
 * window is reused (200 files: 8 chunks of 25). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_util.h"

#include "cleanup.h"
#include "fs.h"
#include "reader.h"

#define N_FILES 200
#define BAD 77 /* this one is not YAML */

static char dir[] = "/tmp/kelp-test-reader.XXXXXX";
static char *files[N_FILES + 1];

static int setup(void **state)
{
	(void)state;
	if (!mkdtemp(dir))
		return -1;
	for (int i = 0; i < N_FILES; i++) {
		files[i] = xasprintf("%s/svc-%03d.yaml", dir, i);
		FILE *f = fopen(files[i], "w");
		if (!f)
			return -1;
		if (i == BAD) {
			fprintf(f, "kind: [Service\n");
		} else {
			fprintf(f,
				"apiVersion: v1\nkind: Service\nmetadata:\n  name: svc-%03d\nspec:\n  clusterIP: 10.96.0.%d\n"
				"  ports:\n  - port: 80\n---\nkind: EndpointSlice\n",
				i, i % 250 + 1);
			/* every 10th slice has no name (refused); the others put their endpoints on nodes
			 * of their own: the threads intern new node names at the same time */
			if (i % 10)
				fprintf(f, "metadata: {name: svc-%03d-x, labels: {kubernetes.io/service-name: svc-%03d}}\n", i, i);
			fprintf(f, "addressType: IPv4\nports: [{port: 8080}]\nendpoints:\n");
			for (int k = 0; k < 4; k++)
				fprintf(f, "- {addresses: [10.0.%d.%d], nodeName: node-%03d-%d}\n", i, k + 1, i, k);
		}
		fclose(f);
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	for (int i = 0; i < N_FILES; i++) {
		unlink(files[i]);
		free(files[i]);
	}
	rmdir(dir);
	return 0;
}

static void read_all(int workers)
{
	struct kp_reader *r = kp_reader_start_workers(files, N_FILES, workers);
	for (int i = 0; i < N_FILES; i++) {
		struct kp_fobjs f = {0};
		struct kelp_err err = {0};
		int rc = kp_reader_next(r, &f, &err);
		if (i == BAD) {
			if (rc != -1 || !strstr(err.msg, files[i]))
				failf("%d workers: file %d: rc %d, error '%s'", workers, i, rc, err.msg);
			continue;
		}
		if (rc != 0)
			failf("%d workers: file %d: %s", workers, i, err.msg);
		char want[16], node[32];
		snprintf(want, sizeof(want), "svc-%03d", i);
		if (f.n != 2 || !strstr(f.v[0].where, want) || !f.v[0].svc)
			failf("%d workers: file %d gave %zu objects, the first %s", workers, i, f.n,
			      f.n ? f.v[0].where : "none");
		if (i % 10 == 0) {
			if (f.v[1].sl || !f.v[1].error)
				failf("%d workers: file %d: the nameless slice was not refused", workers, i);
		} else {
			if (!f.v[1].sl || f.v[1].sl->n_eps != 4)
				failf("%d workers: file %d: slice %s", workers, i, f.v[1].error ? f.v[1].error : "without 4 endpoints");
			for (int k = 0; k < 4; k++) {
				snprintf(node, sizeof(node), "node-%03d-%d", i, k);
				if (!f.v[1].sl->eps[k].node || strcmp(f.v[1].sl->eps[k].node, node))
					failf("%d workers: file %d: endpoint %d on node %s, not %s", workers, i, k,
					      f.v[1].sl->eps[k].node ? f.v[1].sl->eps[k].node : "(none)", node);
			}
		}
		kp_fobjs_free(&f);
	}
	kp_reader_stop(r);
}

static void test_in_order(void **state)
{
	(void)state;
	/* most workers first: node names are new to the intern table only in the first run */
	for (int w = 4; w >= 0; w--)
		for (int round = 0; round < 3; round++)
			read_all(w);
	read_all(-1);
}

static void test_stop_early(void **state)
{
	(void)state;
	for (int w = 0; w <= 4; w++) {
		struct kp_reader *r = kp_reader_start_workers(files, N_FILES, w);
		for (int i = 0; i < 40; i++) {
			struct kp_fobjs f = {0};
			struct kelp_err err;
			if (kp_reader_next(r, &f, &err) == 0)
				kp_fobjs_free(&f);
		}
		kp_reader_stop(r); /* what the workers parsed ahead is freed (LeakSanitizer under make asan) */
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_in_order),
		cmocka_unit_test(test_stop_early),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
