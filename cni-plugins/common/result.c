#include "result.h"

#include <errno.h>
#include <string.h>

#include "cleanup.h"
#include "cni.h"

void cni_result_init(struct cni_result *r)
{
	memset(r, 0, sizeof(*r));
}

void cni_result_free(struct cni_result *r)
{
	for (size_t i = 0; i < r->n_ifaces; i++) {
		free(r->ifaces[i].name);
		free(r->ifaces[i].mac);
		free(r->ifaces[i].sandbox);
		free(r->ifaces[i].socket_path);
		free(r->ifaces[i].pci_id);
	}
	strv_free(r->dns_nameservers);
	strv_free(r->dns_search);
	strv_free(r->dns_options);
	free(r->dns_domain);
	cni_result_init(r);
}

int cni_result_add_iface(struct cni_result *r, const char *name, const char *mac, const char *sandbox, int64_t mtu)
{
	if (r->n_ifaces >= CNI_MAX_IFACES)
		return -1;
	struct cni_iface *f = &r->ifaces[r->n_ifaces];
	memset(f, 0, sizeof(*f));
	f->name = xstrdup(name);
	f->mac = mac ? xstrdup(mac) : NULL;
	f->sandbox = sandbox ? xstrdup(sandbox) : NULL;
	f->mtu = mtu;
	return (int)r->n_ifaces++;
}

int cni_result_add_route(struct cni_result *r, const struct cni_ip *dst, const struct cni_ip *gw)
{
	if (r->n_routes >= CNI_MAX_ROUTES)
		return -1;
	struct cni_route *rt = &r->routes[r->n_routes++];
	memset(rt, 0, sizeof(*rt));
	rt->dst = *dst;
	if (gw) {
		rt->has_gw = true;
		rt->gw = *gw;
	}
	rt->mtu = rt->advmss = rt->priority = rt->table = rt->scope = -1;
	return 0;
}

static int parse_ip_field(const struct kj *obj, const char *key, bool need_prefix, bool *ret_has, struct cni_ip *ret,
			  struct kelp_err *err)
{
	cleanup_free char *s = NULL;
	if (kj_opt_string(obj, key, &s, err) < 0)
		return -1;
	if (!s) {
		if (ret_has)
			*ret_has = false;
		return 0;
	}
	if (cni_ip_parse(s, need_prefix, ret) < 0)
		return kelp_fail(err, EINVAL, "%s.%s: \"%s\" is not an IP %s", obj->path, key, s,
				 need_prefix ? "prefix (address/length)" : "address");
	if (ret_has)
		*ret_has = true;
	return 0;
}

static int opt_u32(const struct kj *obj, const char *key, int64_t *ret, struct kelp_err *err)
{
	uint32_t v;
	bool present = false;
	if (kj_opt_uint32(obj, key, &v, &present, err) < 0)
		return -1;
	*ret = present ? (int64_t)v : -1;
	return 0;
}

int cni_result_parse_dns(const struct kj *dns, struct cni_result *r, struct kelp_err *err)
{
	if (kj_expect_object(dns, err) < 0)
		return -1;
	if (kj_opt_string_array(dns, "nameservers", &r->dns_nameservers, NULL, err) < 0 ||
	    kj_opt_string_array(dns, "search", &r->dns_search, NULL, err) < 0 ||
	    kj_opt_string_array(dns, "options", &r->dns_options, NULL, err) < 0 ||
	    kj_opt_string(dns, "domain", &r->dns_domain, err) < 0)
		return -1;
	return 0;
}

static int parse_inner(const struct kj *n, struct cni_result *r, struct kelp_err *err)
{
	struct kj arr, it, f;
	if (kj_expect_object(n, err) < 0)
		return -1;
	if (kj_field(n, "interfaces", &arr, err) > 0) {
		if (kj_expect_array(&arr, err) < 0)
			return -1;
		for (size_t i = 0; i < kj_len(&arr); i++) {
			kj_index(&arr, i, &it);
			if (kj_expect_object(&it, err) < 0)
				return -1;
			if (r->n_ifaces >= CNI_MAX_IFACES)
				return kelp_fail(err, E2BIG, "%s: more than %d interfaces", arr.path, CNI_MAX_IFACES);
			struct cni_iface *x = &r->ifaces[r->n_ifaces++];
			memset(x, 0, sizeof(*x));
			x->mtu = -1;
			if (kj_req_string(&it, "name", &x->name, err) < 0 || kj_opt_string(&it, "mac", &x->mac, err) < 0 ||
			    kj_opt_string(&it, "sandbox", &x->sandbox, err) < 0 ||
			    kj_opt_string(&it, "socketPath", &x->socket_path, err) < 0 ||
			    kj_opt_string(&it, "pciID", &x->pci_id, err) < 0 || opt_u32(&it, "mtu", &x->mtu, err) < 0)
				return -1;
		}
	}
	if (kj_field(n, "ips", &arr, err) > 0) {
		if (kj_expect_array(&arr, err) < 0)
			return -1;
		for (size_t i = 0; i < kj_len(&arr); i++) {
			kj_index(&arr, i, &it);
			if (kj_expect_object(&it, err) < 0)
				return -1;
			if (r->n_ips >= CNI_MAX_IPS)
				return kelp_fail(err, E2BIG, "%s: more than %d addresses", arr.path, CNI_MAX_IPS);
			struct cni_ipconf *x = &r->ips[r->n_ips];
			memset(x, 0, sizeof(*x));
			if (kj_required(&it, "address", &f, err) < 0 || parse_ip_field(&it, "address", true, NULL, &x->addr, err) < 0 ||
			    parse_ip_field(&it, "gateway", false, &x->has_gw, &x->gw, err) < 0)
				return -1;
			int64_t idx = -1;
			if (opt_u32(&it, "interface", &idx, err) < 0)
				return -1;
			if (idx >= (int64_t)r->n_ifaces && r->n_ifaces > 0)
				return kelp_fail(err, EINVAL, "%s.interface: %lld is not an index of interfaces", it.path,
						 (long long)idx);
			x->iface = (int)idx;
			r->n_ips++;
		}
	}
	if (kj_field(n, "routes", &arr, err) > 0) {
		if (kj_expect_array(&arr, err) < 0)
			return -1;
		for (size_t i = 0; i < kj_len(&arr); i++) {
			kj_index(&arr, i, &it);
			if (kj_expect_object(&it, err) < 0)
				return -1;
			if (r->n_routes >= CNI_MAX_ROUTES)
				return kelp_fail(err, E2BIG, "%s: more than %d routes", arr.path, CNI_MAX_ROUTES);
			struct cni_route *x = &r->routes[r->n_routes];
			memset(x, 0, sizeof(*x));
			if (kj_required(&it, "dst", &f, err) < 0 || parse_ip_field(&it, "dst", true, NULL, &x->dst, err) < 0 ||
			    parse_ip_field(&it, "gw", false, &x->has_gw, &x->gw, err) < 0 || opt_u32(&it, "mtu", &x->mtu, err) < 0 ||
			    opt_u32(&it, "advmss", &x->advmss, err) < 0 || opt_u32(&it, "priority", &x->priority, err) < 0 ||
			    opt_u32(&it, "table", &x->table, err) < 0 || opt_u32(&it, "scope", &x->scope, err) < 0)
				return -1;
			r->n_routes++;
		}
	}
	if (kj_field(n, "dns", &f, err) > 0 && cni_result_parse_dns(&f, r, err) < 0)
		return -1;
	return 0;
}

int cni_result_parse(const struct kj *n, struct cni_result *ret, struct kelp_err *err)
{
	cni_result_init(ret);
	if (parse_inner(n, ret, err) < 0) {
		cni_result_free(ret);
		return -1;
	}
	return 0;
}

static void gen_strv(yajl_gen g, const char *key, char **v)
{
	if (!v)
		return;
	kg_key(g, key);
	yajl_gen_array_open(g);
	for (; *v; v++)
		kg_str(g, *v);
	yajl_gen_array_close(g);
}

static void gen_opt_int(yajl_gen g, const char *key, int64_t v)
{
	if (v >= 0)
		kg_key_int(g, key, v);
}

char *cni_result_json(const struct cni_result *r, const char *version, size_t *ret_len)
{
	char buf[CNI_IP_STRLEN];
	bool v03 = cni_version_cmp(version, "1.0.0") < 0;
	bool v11 = cni_version_cmp(version, "1.1.0") >= 0;
	yajl_gen g = kg_new(false);
	yajl_gen_map_open(g);
	kg_key_str(g, "cniVersion", version);
	if (r->n_ifaces > 0) {
		kg_key(g, "interfaces");
		yajl_gen_array_open(g);
		for (size_t i = 0; i < r->n_ifaces; i++) {
			const struct cni_iface *f = &r->ifaces[i];
			yajl_gen_map_open(g);
			kg_key_str(g, "name", f->name);
			if (f->mac)
				kg_key_str(g, "mac", f->mac);
			if (!v03 && f->mtu >= 0)
				kg_key_int(g, "mtu", f->mtu);
			if (f->sandbox)
				kg_key_str(g, "sandbox", f->sandbox);
			if (!v03 && f->socket_path)
				kg_key_str(g, "socketPath", f->socket_path);
			if (v11 && f->pci_id)
				kg_key_str(g, "pciID", f->pci_id);
			yajl_gen_map_close(g);
		}
		yajl_gen_array_close(g);
	}
	if (r->n_ips > 0) {
		kg_key(g, "ips");
		yajl_gen_array_open(g);
		for (size_t i = 0; i < r->n_ips; i++) {
			const struct cni_ipconf *x = &r->ips[i];
			yajl_gen_map_open(g);
			if (v03)
				kg_key_str(g, "version", x->addr.family == AF_INET ? "4" : "6");
			if (x->iface >= 0)
				kg_key_int(g, "interface", x->iface);
			kg_key_str(g, "address", cni_ip_fmt(&x->addr, true, buf));
			if (x->has_gw)
				kg_key_str(g, "gateway", cni_ip_fmt(&x->gw, false, buf));
			yajl_gen_map_close(g);
		}
		yajl_gen_array_close(g);
	}
	if (r->n_routes > 0) {
		kg_key(g, "routes");
		yajl_gen_array_open(g);
		for (size_t i = 0; i < r->n_routes; i++) {
			const struct cni_route *x = &r->routes[i];
			yajl_gen_map_open(g);
			kg_key_str(g, "dst", cni_ip_fmt(&x->dst, true, buf));
			if (x->has_gw)
				kg_key_str(g, "gw", cni_ip_fmt(&x->gw, false, buf));
			if (v11) {
				gen_opt_int(g, "mtu", x->mtu);
				gen_opt_int(g, "advmss", x->advmss);
				gen_opt_int(g, "priority", x->priority);
				gen_opt_int(g, "table", x->table);
				gen_opt_int(g, "scope", x->scope);
			}
			yajl_gen_map_close(g);
		}
		yajl_gen_array_close(g);
	}
	/* The reference plugins always write "dns" (possibly empty); runtimes accept both. */
	kg_key(g, "dns");
	yajl_gen_map_open(g);
	gen_strv(g, "nameservers", r->dns_nameservers);
	if (r->dns_domain)
		kg_key_str(g, "domain", r->dns_domain);
	gen_strv(g, "search", r->dns_search);
	gen_strv(g, "options", r->dns_options);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	return kg_finish(g, ret_len);
}
