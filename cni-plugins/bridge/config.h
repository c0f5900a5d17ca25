/* kelp-bridge's config: the reference bridge plugin's fields. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "cni.h"

struct br_conf {
	char *bridge; /* default cni0 */
	bool is_gw, is_default_gw, force_address, ip_masq, hairpin, promisc;
	uint32_t mtu; /* 0: default */
	int vlan;     /* 0: none */
	char *ipam_type;
	struct cni_result dns; /* only the dns fields are used */
};

int br_conf_parse(const struct cni_req *req, struct br_conf *ret, struct cni_err *err);
void br_conf_free(struct br_conf *c);
