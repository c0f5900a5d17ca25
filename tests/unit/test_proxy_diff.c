/* Unit tests of the engine's difference (proxy/engine.c, proxy/sync.c), without a kernel: the
 * batches are built and counted, never sent. A one-service change must send the same number
 * of messages whatever the number of services; refused objects keep what they had. */
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

#include "fs.h"
#include "proxy.h"

struct reports {
	int n;
	char last[2048];
};

static void report(void *ctx, const char *line)
{
	struct reports *r = ctx;
	r->n++;
	snprintf(r->last, sizeof(r->last), "%s", line);
}

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "we");
	if (!f)
		failf("create %s", path);
	fputs(text, f);
	fclose(f);
}

/* Service i with endpoints 10.<i>.0.1 .. 10.<i>.0.<n_eps> (plus one address `extra`). */
static void service_text(char *buf, size_t size, int i, int n_eps, const char *extra)
{
	int off = snprintf(buf, size,
			   "apiVersion: v1\nkind: Service\nmetadata: {name: s%d, namespace: t}\n"
			   "spec:\n  clusterIP: 10.96.%d.%d\n  ports: [{name: http, port: 80, targetPort: 8080}]\n---\n"
			   "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
			   "metadata: {name: s%d-1, namespace: t, labels: {kubernetes.io/service-name: s%d}}\n"
			   "addressType: IPv4\nports: [{name: http, port: 8080}]\nendpoints:\n",
			   i, i / 250, i % 250 + 1, i, i);
	for (int j = 1; j <= n_eps; j++)
		off += snprintf(buf + off, size - (size_t)off, "- {addresses: [10.%d.%d.%d]}\n", 100 + i / 250, i % 250, j);
	if (extra)
		snprintf(buf + off, size - (size_t)off, "- {addresses: [%s]}\n", extra);
}

static char *make_dir(int n)
{
	char tmpl[] = "/tmp/kelp-test-proxy-diff.XXXXXX";
	char *dir = mkdtemp(tmpl);
	if (!dir)
		failf("mkdtemp");
	dir = strdup(dir);
	char text[4096], name[64];
	for (int i = 0; i < n; i++) {
		service_text(text, sizeof(text), i, 3, NULL);
		snprintf(name, sizeof(name), "s%05d.yaml", i);
		write_file(dir, name, text);
	}
	return dir;
}

static void rm_dir(char *dir)
{
	struct kelp_err err;
	kelp_rm_rf_at(AT_FDCWD, dir, &err);
	free(dir);
}

/* Messages of one endpoint replaced in service 3 of n. */
static size_t one_change(int n)
{
	char *dir = make_dir(n);
	struct kp_opts o = {.node = "n1"};
	struct reports rep = {0};
	struct kp_engine *e = kp_engine_new(&o, NULL, report, &rep);
	struct kelp_err err = {0};
	char *paths[] = {dir, NULL};
	if (kp_engine_full_sync(e, paths, 1, NULL, &err) != 0)
		failf("full sync: %s (%s)", err.msg, rep.last);
	assert_int_equal(kp_engine_n_services(e), n);
	char text[4096], path[4096];
	service_text(text, sizeof(text), 3, 2, "10.200.0.1"); /* 10.x.y.3 leaves, 10.200.0.1 comes */
	write_file(dir, "s00003.yaml", text);
	snprintf(path, sizeof(path), "%s/s00003.yaml", dir);
	if (kp_engine_file_changed(e, path, false, &err) != 0)
		failf("change: %s (%s)", err.msg, rep.last);
	size_t m = kp_engine_last_messages(e);
	kp_engine_free(e);
	rm_dir(dir);
	return m;
}

static void test_one_change_independent_of_size(void **state)
{
	(void)state;
	size_t m10 = one_change(10), m1000 = one_change(1000);
	/* endpoints map: one delete + one add message; hairpin set: the same */
	assert_int_equal(m10, 4);
	assert_int_equal(m1000, m10);
}

static void test_refused_keeps_rules(void **state)
{
	(void)state;
	char *dir = make_dir(3);
	struct kp_opts o = {.node = "n1"};
	struct reports rep = {0};
	struct kp_engine *e = kp_engine_new(&o, NULL, report, &rep);
	struct kelp_err err = {0};
	char *paths[] = {dir, NULL};
	assert_int_equal(kp_engine_full_sync(e, paths, 1, NULL, &err), 0);
	size_t full = kp_engine_last_messages(e);
	assert_true(full > 10);

	/* a port out of range: refused, named, nothing sent, the service is still there */
	char path[4096];
	snprintf(path, sizeof(path), "%s/s00001.yaml", dir);
	char text[4096];
	service_text(text, sizeof(text), 1, 3, NULL);
	char *p80 = strstr(text, "port: 80,");
	memcpy(p80, "port: 0, ", 9);
	write_file(dir, "s00001.yaml", text);
	assert_int_equal(kp_engine_file_changed(e, path, false, &err), 1);
	assert_non_null(strstr(rep.last, "s00001.yaml (document 1): Service t/s1: spec.ports[0].port: 0 is out of range 1-65535"));
	assert_int_equal(kp_engine_last_messages(e), 0);
	assert_int_equal(kp_engine_n_services(e), 3);
	assert_int_equal(kp_engine_n_endpoints(e), 9);

	/* a cluster IP already used by another service: refused, the rest of the file applies */
	write_file(dir, "s00002.yaml",
		   "apiVersion: v1\nkind: Service\nmetadata: {name: s2, namespace: t}\n"
		   "spec:\n  clusterIP: 10.96.0.1\n  ports: [{name: http, port: 80}]\n---\n"
		   "apiVersion: v1\nkind: Service\nmetadata: {name: s9, namespace: t}\n"
		   "spec:\n  clusterIP: 10.96.0.9\n  ports: [{name: http, port: 80}]\n");
	snprintf(path, sizeof(path), "%s/s00002.yaml", dir);
	assert_int_equal(kp_engine_file_changed(e, path, false, &err), 1);
	assert_non_null(strstr(rep.last, "Service t/s2: spec: 10.96.0.1 port 80/TCP is already used by Service t/s0"));
	assert_int_equal(kp_engine_n_services(e), 4);

	/* a YAML syntax error: the file's objects stay as they were */
	write_file(dir, "s00000.yaml", "apiVersion: v1\nkind: [Service\n");
	snprintf(path, sizeof(path), "%s/s00000.yaml", dir);
	assert_int_equal(kp_engine_file_changed(e, path, false, &err), 1);
	assert_non_null(strstr(rep.last, "s00000.yaml:"));
	assert_int_equal(kp_engine_n_services(e), 4);

	/* the file removed: its objects go */
	unlink(path);
	assert_int_equal(kp_engine_file_changed(e, path, true, &err), 0);
	assert_int_equal(kp_engine_n_services(e), 3);
	assert_true(kp_engine_last_messages(e) > 0);
	kp_engine_free(e);
	rm_dir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_change_independent_of_size),
		cmocka_unit_test(test_refused_keeps_rules),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
