/* The CNI Success result: parsed from any supported version (a delegate's answer, prevResult)
 * and written in the version the caller asked for (0.3.x/0.4.0 carry ips[].version, 1.1.0 adds
 * the route attributes mtu/advmss/priority/table/scope). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "ip.h"
#include "json.h"

#define CNI_MAX_IFACES 8
#define CNI_MAX_IPS 16
#define CNI_MAX_ROUTES 64

struct cni_iface {
	char *name, *mac, *sandbox, *socket_path, *pci_id;
	int64_t mtu; /* -1: absent */
};

struct cni_ipconf {
	struct cni_ip addr; /* with prefix */
	bool has_gw;
	struct cni_ip gw;
	int iface; /* index into interfaces, -1: absent */
};

struct cni_route {
	struct cni_ip dst;
	bool has_gw;
	struct cni_ip gw;
	/* spec 1.1 attributes, -1: absent */
	int64_t mtu, advmss, priority, table, scope;
};

struct cni_result {
	size_t n_ifaces, n_ips, n_routes;
	struct cni_iface ifaces[CNI_MAX_IFACES];
	struct cni_ipconf ips[CNI_MAX_IPS];
	struct cni_route routes[CNI_MAX_ROUTES];
	char **dns_nameservers, **dns_search, **dns_options; /* NULL-terminated or NULL */
	char *dns_domain;
};

void cni_result_init(struct cni_result *r);
void cni_result_free(struct cni_result *r);
/* Append an interface (strings are copied); returns its index or -1 when full. */
int cni_result_add_iface(struct cni_result *r, const char *name, const char *mac, const char *sandbox, int64_t mtu);
int cni_result_add_route(struct cni_result *r, const struct cni_ip *dst, const struct cni_ip *gw);

/* Parse a result object (n: the object, e.g. the config's prevResult). */
int cni_result_parse(const struct kj *n, struct cni_result *ret, struct kelp_err *err);
/* Parse the "dns" object of a config into r. */
int cni_result_parse_dns(const struct kj *dns, struct cni_result *r, struct kelp_err *err);
/* Write the result as version `version` (no trailing newline). */
char *cni_result_json(const struct cni_result *r, const char *version, size_t *ret_len);
