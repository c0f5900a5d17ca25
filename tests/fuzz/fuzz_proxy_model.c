/* libFuzzer target: kelp-proxy's Service and EndpointSlice model (proxy/model.c) from a
 * manifest (through lib/kube_manifest's km_parse_each and proxy/objects.c, as `kelp-proxy sync`
 * reads one; a refused input leaves no object), and what it becomes (proxy/elems.c).
 * Properties beyond "no report": every object the model accepts is written back as the state
 * file writes it (kp_service_gen, kp_slice_gen) and read back to the same model;
 * a refused object says why; the elements of each accepted service, with the input's slices,
 * are generated, and each one's key and data fit their set. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "elems.h"
#include "json.h"
#include "kube_manifest.h"
#include "model.h"
#include "objects.h"

#define MAX_OBJS 64

static bool same_addr(const struct kp_addr *a, const struct kp_addr *b)
{
	return a->fam == b->fam && memcmp(a->ip, b->ip, a->fam == KP_V4 ? 4 : 16) == 0;
}

static bool same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool same_service(const struct kp_service *a, const struct kp_service *b)
{
	if (!same_str(a->ns, b->ns) || !same_str(a->name, b->name) || a->type != b->type || a->headless != b->headless ||
	    a->n_ports != b->n_ports || a->n_ext != b->n_ext || a->n_lb != b->n_lb || a->n_src_ranges != b->n_src_ranges ||
	    a->affinity_timeout != b->affinity_timeout || a->etp_local != b->etp_local || a->itp_local != b->itp_local)
		return false;
	for (int f = 0; f < KP_NFAM; f++)
		if (a->has_cip[f] != b->has_cip[f] || (a->has_cip[f] && !same_addr(&a->cluster_ips[f], &b->cluster_ips[f])))
			return false;
	for (size_t i = 0; i < a->n_ports; i++) {
		const struct kp_port *p = &a->ports[i], *q = &b->ports[i];
		if (!same_str(p->name, q->name) || p->proto != q->proto || p->port != q->port || p->node_port != q->node_port ||
		    p->target_num != q->target_num || !same_str(p->target_name, q->target_name))
			return false;
	}
	for (size_t i = 0; i < a->n_ext; i++)
		if (!same_addr(&a->ext_ips[i], &b->ext_ips[i]))
			return false;
	for (size_t i = 0; i < a->n_lb; i++)
		if (!same_addr(&a->lb_ips[i], &b->lb_ips[i]))
			return false;
	for (size_t i = 0; i < a->n_src_ranges; i++)
		if (a->src_ranges[i].prefix != b->src_ranges[i].prefix ||
		    !same_addr((const struct kp_addr *)&a->src_ranges[i], (const struct kp_addr *)&b->src_ranges[i]))
			return false;
	return true;
}

static bool same_slice(const struct kp_slice *a, const struct kp_slice *b)
{
	if (!same_str(a->ns, b->ns) || !same_str(a->name, b->name) || !same_str(a->service, b->service) ||
	    a->fam != b->fam || a->n_ports != b->n_ports || a->n_eps != b->n_eps)
		return false;
	for (size_t i = 0; i < a->n_ports; i++)
		if (!same_str(a->ports[i].name, b->ports[i].name) || a->ports[i].proto != b->ports[i].proto ||
		    a->ports[i].port != b->ports[i].port)
			return false;
	for (size_t i = 0; i < a->n_eps; i++)
		if (!same_addr(&a->eps[i].addr, &b->eps[i].addr) || a->eps[i].cond != b->eps[i].cond ||
		    !same_str(a->eps[i].node, b->eps[i].node))
			return false;
	return true;
}

/* The state file's round trip: written by gen, read back by the parser. */
static void roundtrip(const struct kp_service *s, const struct kp_slice *sl)
{
	yajl_gen g = kg_new(false);
	if (!g)
		abort();
	if (s)
		kp_service_gen(g, s);
	else
		kp_slice_gen(g, sl);
	size_t len;
	char *text = kg_finish(g, &len);
	struct kj back;
	struct kelp_err err = {0};
	if (kj_parse(text, len, "state", &back, &err) < 0) {
		fprintf(stderr, "ROUNDTRIP: the state's JSON does not parse: %s\n%s\n", err.msg, text);
		abort();
	}
	struct kp_service *s2 = NULL;
	struct kp_slice *sl2 = NULL;
	int r = s ? kp_service_parse(&back, &s2, &err) : kp_slice_parse(&back, &sl2, &err);
	if (r < 0 || (s && !same_service(s, s2)) || (sl && !same_slice(sl, sl2))) {
		fprintf(stderr, "ROUNDTRIP: %s\n%s\n", r < 0 ? err.msg : "a different object", text);
		abort();
	}
	kp_service_free(s2);
	kp_slice_free(sl2);
	yajl_tree_free(back.v);
	free(text);
}

static void check_elems(const struct kp_elemvec *v)
{
	for (size_t i = 0; i < v->n; i++) {
		const struct kp_elem *e = &v->v[i];
		if (e->set >= KS_NSETS || e->fam >= KP_NFAM || e->klen == 0 || e->klen > sizeof(e->key) ||
		    e->dlen > sizeof(e->data))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* as kelp-proxy's reader threads turn a file into model objects */
	struct kp_fobjs fo;
	struct kelp_err err = {0};
	if (kp_fobjs_parse((const char *)data, size, "fuzz.yaml", &fo, &err) < 0) {
		if (!err.msg[0] || fo.n || fo.v)
			abort();
		return 0;
	}
	struct kp_service *svcs[MAX_OBJS];
	struct kp_slice *slices[MAX_OBJS];
	size_t n_svcs = 0, n_slices = 0;
	for (size_t i = 0; i < fo.n; i++) {
		struct kp_fobj *o = &fo.v[i];
		if (!o->where || !o->where[0])
			abort();
		if (o->error) {
			if (!o->error[0] || o->svc || o->sl)
				abort();
			continue;
		}
		if (!o->key || (o->is_svc ? !o->svc || o->sl : !o->sl || o->svc))
			abort();
		/* the key names the object: "S ns/name" or "E ns/name" */
		char key[600];
		kp_obj_key(key, sizeof(key), o->is_svc, o->is_svc ? o->svc->ns : o->sl->ns,
			   o->is_svc ? o->svc->name : o->sl->name);
		if (strcmp(key, o->key))
			abort();
		roundtrip(o->svc, o->sl);
		if (o->svc && n_svcs < MAX_OBJS)
			svcs[n_svcs++] = TAKE_PTR(o->svc);
		else if (o->sl && n_slices < MAX_OBJS)
			slices[n_slices++] = TAKE_PTR(o->sl);
	}
	kp_fobjs_free(&fo);
	for (size_t i = 0; i < n_svcs; i++) {
		/* the service's slices, as the engine matches them */
		struct kp_slice *mine[MAX_OBJS];
		size_t n = 0;
		for (size_t j = 0; j < n_slices; j++)
			if (!strcmp(slices[j]->ns, svcs[i]->ns) && !strcmp(slices[j]->service, svcs[i]->name))
				mine[n++] = slices[j];
		struct kp_elemvec v = {0};
		kp_service_elems("node-0", svcs[i], mine, n, &v);
		check_elems(&v);
		kp_elemvec_free(&v);
		kp_service_free(svcs[i]);
	}
	for (size_t j = 0; j < n_slices; j++)
		kp_slice_free(slices[j]);
	return 0;
}
