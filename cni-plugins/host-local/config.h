/* kelp-host-local's view of the `ipam` object: range sets (one per address family in dual
 * stack), routes and the data directory. Compatible with the reference host-local's fields. */
#pragma once
#include <stddef.h>

#include "cni.h"
#include "ip.h"

#define HL_MAX_SETS 4
#define HL_MAX_RANGES 16

struct hl_range {
	struct cni_ip subnet; /* masked to its network */
	cni_u128 start, end;  /* inclusive */
	struct cni_ip gw;
};

struct hl_set {
	size_t n;
	struct hl_range r[HL_MAX_RANGES];
};

struct hl_conf {
	char *data_dir; /* dataDir/<network name> */
	size_t n_sets;
	struct hl_set sets[HL_MAX_SETS];
	size_t n_routes;
	struct cni_route routes[CNI_MAX_ROUTES];
};

/* Parse and validate req's ipam object; every problem is code 7 with the JSON path. */
int hl_conf_parse(const struct cni_req *req, struct hl_conf *ret, struct cni_err *err);
void hl_conf_free(struct hl_conf *c);
