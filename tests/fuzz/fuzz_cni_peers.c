/* libFuzzer target: kelp-vxlan's peers file (the cluster's nodes: name, underlay IP, pod subnet,
 * VTEP MAC), which a node agent writes from what the API server says about other nodes. Parsed
 * by vx_peers_parse as `kelp-vxlan sync` and every ADD read it; property beyond "no report": a
 * parse that succeeds gives distinct names and non-overlapping subnets, each findable by name. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cni.h"
#include "vxlan/overlay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vx_peers p;
	struct cni_err err = {0};
	if (vx_peers_parse((const char *)data, size, "peers.json", &p, &err) < 0) {
		if (!err.k.msg[0] || !err.code || p.v)
			abort();
		return 0;
	}
	for (size_t i = 0; i < p.n; i++) {
		if (vx_peers_find(&p, p.v[i].name) != &p.v[i])
			abort();
		for (size_t j = 0; j < i; j++)
			if (cni_ip_contains(&p.v[i].subnet, &p.v[j].subnet) || cni_ip_contains(&p.v[j].subnet, &p.v[i].subnet))
				abort();
	}
	vx_peers_free(&p);
	return 0;
}
