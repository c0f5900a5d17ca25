/* kelp-portmap's input: runtimeConfig.portMappings, as the CNI runtime sends it. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cni.h"

#define PM_MAX 128

struct mapping {
	uint16_t host_port, container_port;
	uint8_t proto; /* IPPROTO_TCP / IPPROTO_UDP / IPPROTO_SCTP */
	bool has_host_ip;
	struct cni_ip host_ip;
};

/* Fills ret[0..*ret_n) (room for PM_MAX); no portMappings is zero mappings. */
int pm_parse_mappings(const struct cni_req *req, struct mapping *ret, size_t *ret_n, struct cni_err *err);
