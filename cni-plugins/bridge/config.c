#include "config.h"

#include <string.h>

#include "cleanup.h"

void br_conf_free(struct br_conf *c)
{
	free(c->bridge);
	free(c->ipam_type);
	cni_result_free(&c->dns);
}

int br_conf_parse(const struct cni_req *req, struct br_conf *c, struct cni_err *err)
{
	struct kj f;
	memset(c, 0, sizeof(*c));
	cni_result_init(&c->dns);
	const struct kj *n = &req->conf;
	uint32_t vlan = 0;
	bool has_vlan = false, has_mtu = false;
	if (kj_opt_string(n, "bridge", &c->bridge, &err->k) < 0 || kj_opt_bool(n, "isGateway", &c->is_gw, &err->k) < 0 ||
	    kj_opt_bool(n, "isDefaultGateway", &c->is_default_gw, &err->k) < 0 ||
	    kj_opt_bool(n, "forceAddress", &c->force_address, &err->k) < 0 ||
	    kj_opt_bool(n, "ipMasq", &c->ip_masq, &err->k) < 0 || kj_opt_bool(n, "hairpinMode", &c->hairpin, &err->k) < 0 ||
	    kj_opt_bool(n, "promiscMode", &c->promisc, &err->k) < 0 ||
	    kj_opt_uint32(n, "mtu", &c->mtu, &has_mtu, &err->k) < 0 || kj_opt_uint32(n, "vlan", &vlan, &has_vlan, &err->k) < 0)
		return err->code = CNI_ERR_CONFIG, -1;
	if (!c->bridge)
		c->bridge = xstrdup("cni0");
	if (!cni_ifname_valid(c->bridge))
		return cni_fail(err, CNI_ERR_CONFIG, "bridge: \"%s\" is not a valid interface name", c->bridge);
	if (has_mtu && (c->mtu < 68 || c->mtu > 65535))
		return cni_fail(err, CNI_ERR_CONFIG, "mtu: %u is out of range (68-65535)", c->mtu);
	if (vlan > 4094)
		return cni_fail(err, CNI_ERR_CONFIG, "vlan: %u is out of range (0-4094)", vlan);
	c->vlan = (int)vlan;
	if (c->is_default_gw)
		c->is_gw = true; /* as the reference: a default gateway is a gateway */
	if (kj_required(n, "ipam", &f, &err->k) < 0 || kj_expect_object(&f, &err->k) < 0 ||
	    kj_req_string(&f, "type", &c->ipam_type, &err->k) < 0)
		return err->code = CNI_ERR_CONFIG, -1;
	if (kj_field(n, "dns", &f, &err->k) > 0 && cni_result_parse_dns(&f, &c->dns, &err->k) < 0)
		return err->code = CNI_ERR_CONFIG, -1;
	return 0;
}
