/* The state file (--state-dir/state.json): the last good version of every object (so that a
 * refused object keeps its rules across runs), per-service summaries for `show`, the counters
 * for `show --metrics`. Written atomically after every commit. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
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

static void gen_state(struct kp_engine *e, yajl_gen g);

int kp_engine_write_state(struct kp_engine *e, const char *dir, struct kelp_err *err)
{
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return kelp_error(err, errno, "create state directory %s", dir);
	cleanup_close int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return kelp_error(err, errno, "open state directory %s", dir);
	char tmp[64];
	snprintf(tmp, sizeof(tmp), ".%s.%d.tmp", STATE_FILE, (int)getpid());
	unlinkat(dfd, tmp, 0); /* a leftover of a crashed run with our pid */
	struct sink *k = xcalloc(1, sizeof(*k));
	k->fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (k->fd < 0) {
		int e2 = errno;
		free(k);
		return kelp_error(err, e2, "create %s/%s", dir, tmp);
	}
	yajl_gen g = yajl_gen_alloc(NULL);
	if (!g)
		abort();
	yajl_gen_config(g, yajl_gen_print_callback, sink_print, k);
	gen_state(e, g);
	yajl_gen_free(g);
	sink_flush(k);
	int code = k->err;
	if (!code && fsync(k->fd) < 0)
		code = errno;
	if (close(k->fd) < 0 && !code)
		code = errno;
	free(k);
	if (!code && renameat(dfd, tmp, dfd, STATE_FILE) < 0)
		code = errno;
	if (code) {
		unlinkat(dfd, tmp, 0);
		return kelp_error(err, code, "write state %s/%s", dir, STATE_FILE);
	}
	if (fsync(dfd) < 0)
		return kelp_error(err, errno, "sync state directory %s", dir);
	return 0;
}

static int cmp_svcrec(const void *pa, const void *pb)
{
	const struct kp_service *a = (*(const struct svcrec *const *)pa)->svc, *b = (*(const struct svcrec *const *)pb)->svc;
	int c = strcmp(a->ns, b->ns);
	return c ? c : strcmp(a->name, b->name);
}

static void gen_state(struct kp_engine *e, yajl_gen g)
{
	yajl_gen_map_open(g);
	kg_key_int(g, "version", 1);
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
	kg_key(g, "services");
	yajl_gen_array_open(g);
	/* in name order: show's table and a diff of two state files read well */
	struct hmap_ent *ent;
	const struct svcrec **v = xcalloc(e->svcs.n + 1, sizeof(*v));
	size_t n = 0;
	for (size_t i = 0; hmap_next(&e->svcs, &i, &ent);)
		if (((const struct svcrec *)ent->val)->svc)
			v[n++] = ent->val;
	qsort(v, n, sizeof(*v), cmp_svcrec);
	for (size_t i = 0; i < n; i++) {
		const struct svcrec *r = v[i];
		yajl_gen_map_open(g);
		if (r->svc_file)
			kg_key_str(g, "file", r->svc_file);
		kg_key(g, "object");
		kp_service_gen(g, r->svc);
		gen_summary(g, r);
		yajl_gen_map_close(g);
	}
	free(v);
	yajl_gen_array_close(g);
	kg_key(g, "slices");
	yajl_gen_array_open(g);
	for (size_t i = 0; hmap_next(&e->slices, &i, &ent);) {
		const struct slicerec *r = ent->val;
		yajl_gen_map_open(g);
		if (r->file)
			kg_key_str(g, "file", r->file);
		kg_key(g, "object");
		kp_slice_gen(g, r->sl);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
}

/* The parsed state; *ret_root.v NULL when there is none. */
static int read_state(const char *dir, struct kj *ret_root, struct kelp_err *err)
{
	cleanup_free char *buf = NULL;
	size_t len;
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, STATE_FILE);
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
	struct kj root;
	if (read_state(dir, &root, err) < 0)
		return -1;
	if (!root.v)
		return 0;
	struct kj list;
	for (int pass = 0; pass < 2; pass++) {
		if (kj_field(&root, pass ? "slices" : "services", &list, NULL) != 1 || !YAJL_IS_ARRAY(list.v))
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
	yajl_tree_free(root.v);
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

int kp_show(const char *dir, enum kp_show_format fmt, FILE *out, struct kelp_err *err)
{
	struct kj root;
	if (read_state(dir, &root, err) < 0)
		return -1;
	struct kj m = {0}, counts = {0}, list = {0};
	if (root.v) {
		kj_field(&root, "metrics", &m, NULL);
		kj_field(&root, "counts", &counts, NULL);
		kj_field(&root, "services", &list, NULL);
	}
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
		for (size_t i = 0; list.v && YAJL_IS_ARRAY(list.v) && i < kj_len(&list); i++) {
			struct kj it, s;
			kj_index(&list, i, &it);
			if (kj_field(&it, "summary", &s, NULL) != 1)
				continue;
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
		for (size_t i = 0; list.v && YAJL_IS_ARRAY(list.v) && i < kj_len(&list); i++) {
			struct kj it, s, ep;
			kj_index(&list, i, &it);
			if (kj_field(&it, "summary", &s, NULL) != 1)
				continue;
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
	if (root.v)
		yajl_tree_free(root.v);
	return 0;
}

/* For flush: the service addresses the state knows (conntrack entries to delete). */
int kp_state_service_addrs(const char *dir, struct kp_ct_target **ret, size_t *ret_n, struct kelp_err *err)
{
	struct kj root;
	*ret = NULL;
	*ret_n = 0;
	if (read_state(dir, &root, err) < 0)
		return -1;
	if (!root.v)
		return 0;
	struct kj list;
	size_t n = 0, cap = 0;
	struct kp_ct_target *v = NULL;
	if (kj_field(&root, "services", &list, NULL) == 1 && YAJL_IS_ARRAY(list.v)) {
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
	yajl_tree_free(root.v);
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
	return 0;
}
