/* A service as nftables set elements. Everything kelp-proxy programs for a service is an
 * element of one of a few global named sets and maps (see docs/proxy.md); rules and chains do
 * not depend on the services, except the shared per-endpoint-count chains ("groups"). So a
 * service's state is this list of elements, and a change is a difference of two lists. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model.h"

enum kp_set {
	KS_SVC,      /* daddr . proto . dport -> verdict: cluster IPs */
	KS_EXT,      /* daddr . proto . dport -> verdict: external IPs and load-balancer IPs */
	KS_NODEPORT, /* proto . dport -> verdict */
	KS_EPS_SVC,  /* daddr . proto . dport . bucket -> endpoint addr . port */
	KS_EPS_EXT,  /* the same for external IPs */
	KS_EPS_NP,   /* proto . dport . bucket -> endpoint addr . port */
	KS_NOEP,     /* daddr . proto . dport without a usable endpoint: rejected */
	KS_NOEP_NP,  /* proto . dport of node ports without a usable endpoint */
	KS_EXTMASQ,  /* daddr . proto . dport of external IPs whose traffic is masqueraded */
	KS_NPMASQ,   /* proto . dport of node ports whose traffic is masqueraded */
	KS_HAIRPIN,  /* addr . addr: an endpoint reaching itself through a service */
	KS_LBGUARD,  /* daddr . proto . dport: load-balancer IPs with source ranges */
	KS_LBALLOW,  /* daddr . proto . dport . saddr (interval on saddr): allowed sources */
	KS_NSETS,
};

/* Verdicts of the verdict maps. */
enum { KV_GOTO = 1, KV_DROP = 2 };
/* How a packet reached a service: the group chain reads the key of the same map again. */
enum { KP_PATH_CLUSTER = 1, KP_PATH_EXTERNAL = 2, KP_PATH_NODEPORT = 3 };

struct kp_elem {
	uint8_t fam, set, klen, dlen;
	uint8_t key[40];
	uint8_t data[20];
	uint8_t key_end[40]; /* KS_LBALLOW only: last address of the range (klen bytes) */
};

struct kp_elemvec {
	struct kp_elem *v;
	size_t n, cap;
};

/* A group chain: targets with N endpoints and session affinity timeout T (0: none). */
struct kp_group {
	uint8_t fam, path;
	uint32_t n, timeout;
};

struct kp_node {
	const char *name; /* this node (EndpointSlice nodeName) */
};

/* Every element of service s given its slices. */
void kp_service_elems(const char *node, const struct kp_service *s, struct kp_slice *const *slices, size_t n_slices,
		      struct kp_elemvec *out);
/* The group of a verdict map element (KV_GOTO). */
bool kp_elem_group(const struct kp_elem *e, struct kp_group *ret);

void kp_elemvec_push(struct kp_elemvec *v, const struct kp_elem *e);
void kp_elemvec_free(struct kp_elemvec *v);
/* Sort and drop exact duplicates (hairpin pairs shared by several ports). */
void kp_elemvec_sort(struct kp_elemvec *v);
int kp_elem_cmp(const struct kp_elem *a, const struct kp_elem *b);
/* Same set and key (data may differ). */
bool kp_elem_same_key(const struct kp_elem *a, const struct kp_elem *b);
/* A key that identifies the element's set slot: fam, set, key. */
size_t kp_elem_idkey(const struct kp_elem *e, uint8_t *buf);
/* For the addresses a service claims (its cluster, external and node port tuples, with or
 * without endpoints): fam, class, key; 0 for other elements. */
size_t kp_elem_owned_key(const struct kp_elem *e, uint8_t *buf);
