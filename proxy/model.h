/* The Kubernetes objects kelp-proxy reads, as plain C: a Service (v1) and an EndpointSlice
 * (discovery.k8s.io/v1), parsed from lib/kube_manifest objects and validated field by field, so
 * that an error names the field ("spec.ports[1].port: 70000 is out of range 1-65535"). Only the
 * fields the data plane needs are kept. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "error.h"
#include "json.h"
#include "kube_manifest.h"

/* Families as table indices: 0 = IPv4, 1 = IPv6. */
enum { KP_V4 = 0, KP_V6 = 1, KP_NFAM = 2 };

struct kp_addr {
	uint8_t fam; /* KP_V4 / KP_V6 */
	uint8_t ip[16];
};

struct kp_cidr {
	uint8_t fam;
	uint8_t ip[16];
	uint8_t prefix;
};

enum kp_svc_type { KP_CLUSTER_IP, KP_NODE_PORT, KP_LOAD_BALANCER, KP_EXTERNAL_NAME };

struct kp_port {
	char *name;       /* "" when unnamed */
	uint8_t proto;    /* IPPROTO_TCP / UDP / SCTP */
	uint16_t port;
	uint16_t node_port; /* 0: none */
	uint16_t target_num; /* 0 when given by name (or absent: = port) */
	char *target_name;  /* NULL unless given by name */
};

struct kp_service {
	char *ns, *name;
	enum kp_svc_type type;
	bool headless;
	struct kp_addr cluster_ips[KP_NFAM]; /* by family */
	bool has_cip[KP_NFAM];
	struct kp_port *ports;
	size_t n_ports;
	struct kp_addr *ext_ips; /* externalIPs */
	size_t n_ext;
	struct kp_addr *lb_ips; /* status.loadBalancer.ingress[].ip */
	size_t n_lb;
	struct kp_cidr *src_ranges; /* loadBalancerSourceRanges */
	size_t n_src_ranges;
	uint32_t affinity_timeout; /* seconds; 0: no session affinity */
	bool etp_local, itp_local;
};

struct kp_slice_port {
	char *name; /* "" when unnamed */
	uint8_t proto;
	uint16_t port; /* 0: absent (the endpoints serve no port of this name) */
};

enum { KP_EP_READY = 1, KP_EP_SERVING = 2, KP_EP_TERMINATING = 4 };

struct kp_endpoint {
	struct kp_addr addr;
	uint8_t cond; /* KP_EP_* */
	const char *node; /* NULL when absent; interned, never freed */
};

struct kp_slice {
	char *ns, *name, *service;
	int fam; /* KP_V4 / KP_V6; -1 for FQDN slices (ignored) */
	struct kp_slice_port *ports;
	size_t n_ports;
	struct kp_endpoint *eps; /* one per address (an endpoint with several addresses is split) */
	size_t n_eps;
};

/* What one manifest object is. */
enum kp_kind { KP_KIND_SERVICE, KP_KIND_SLICE, KP_KIND_OTHER };
enum kp_kind kp_object_kind(const struct km_object *o);

/* Parse and validate. The error is "FIELD.PATH: what is wrong" (the caller adds where and which
 * object). */
int kp_service_parse(const struct kj *obj, struct kp_service **ret, struct kelp_err *err);
int kp_slice_parse(const struct kj *obj, struct kp_slice **ret, struct kelp_err *err);
void kp_service_free(struct kp_service *s);
void kp_slice_free(struct kp_slice *s);

/* Write them back as minimal manifests that the parsers above read again (the state file). */
void kp_service_gen(yajl_gen g, const struct kp_service *s);
void kp_slice_gen(yajl_gen g, const struct kp_slice *s);

/* Addresses and CIDRs as text ("10.0.0.1", "fd00::/64"); family from the text. */
int kp_addr_parse(const char *s, struct kp_addr *ret);
int kp_cidr_parse(const char *s, struct kp_cidr *ret);
const char *kp_addr_str(const struct kp_addr *a, char *buf, size_t size);
const char *kp_proto_name(uint8_t proto);
bool kp_cidr_contains(const struct kp_cidr *c, const struct kp_addr *a);
