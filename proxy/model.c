#include "model.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "hmap.h"

enum kp_kind kp_object_kind(const struct km_object *o)
{
	const char *kind_p[] = {"kind", NULL}, *api_p[] = {"apiVersion", NULL};
	yajl_val kind = yajl_tree_get(o->node.v, kind_p, yajl_t_string);
	yajl_val api = yajl_tree_get(o->node.v, api_p, yajl_t_string);
	if (!kind)
		return KP_KIND_OTHER;
	if (!strcmp(kind->u.string, "Service") && (!api || !strcmp(api->u.string, "v1")))
		return KP_KIND_SERVICE;
	if (!strcmp(kind->u.string, "EndpointSlice") && (!api || !strcmp(api->u.string, "discovery.k8s.io/v1")))
		return KP_KIND_SLICE;
	return KP_KIND_OTHER;
}

int kp_addr_parse(const char *s, struct kp_addr *ret)
{
	struct kp_addr a = {0};
	if (inet_pton(AF_INET, s, a.ip) == 1)
		a.fam = KP_V4;
	else if (inet_pton(AF_INET6, s, a.ip) == 1)
		a.fam = KP_V6;
	else
		return -1;
	*ret = a;
	return 0;
}

int kp_cidr_parse(const char *s, struct kp_cidr *ret)
{
	char buf[64];
	const char *slash = strchr(s, '/');
	if (!slash || (size_t)(slash - s) >= sizeof(buf))
		return -1;
	memcpy(buf, s, (size_t)(slash - s));
	buf[slash - s] = 0;
	struct kp_addr a;
	if (kp_addr_parse(buf, &a) < 0)
		return -1;
	char *end;
	errno = 0;
	long p = strtol(slash + 1, &end, 10);
	int max = a.fam == KP_V4 ? 32 : 128;
	if (errno || end == slash + 1 || *end || p < 0 || p > max || !isdigit((unsigned char)slash[1]))
		return -1;
	struct kp_cidr c = {.fam = a.fam, .prefix = (uint8_t)p};
	memcpy(c.ip, a.ip, 16);
	/* host bits are cleared, as the apiserver normalises them */
	for (int i = 0; i < 16; i++) {
		int bits = p - i * 8;
		c.ip[i] &= bits >= 8 ? 0xff : bits <= 0 ? 0 : (uint8_t)(0xff << (8 - bits));
	}
	*ret = c;
	return 0;
}

bool kp_cidr_contains(const struct kp_cidr *c, const struct kp_addr *a)
{
	if (c->fam != a->fam)
		return false;
	for (int i = 0; i < 16; i++) {
		int bits = c->prefix - i * 8;
		uint8_t m = bits >= 8 ? 0xff : bits <= 0 ? 0 : (uint8_t)(0xff << (8 - bits));
		if ((a->ip[i] & m) != c->ip[i])
			return false;
	}
	return true;
}

const char *kp_addr_str(const struct kp_addr *a, char *buf, size_t size)
{
	if (!inet_ntop(a->fam == KP_V4 ? AF_INET : AF_INET6, a->ip, buf, (socklen_t)size))
		snprintf(buf, size, "?");
	return buf;
}

const char *kp_proto_name(uint8_t proto)
{
	switch (proto) {
	case IPPROTO_TCP:
		return "TCP";
	case IPPROTO_UDP:
		return "UDP";
	case IPPROTO_SCTP:
		return "SCTP";
	default:
		return "?";
	}
}

static int parse_proto(const struct kj *obj, uint8_t *ret, struct kelp_err *err)
{
	cleanup_free char *p = NULL;
	struct kj f;
	if (kj_field(obj, "protocol", &f, err) < 0)
		return -1;
	if (!f.v) {
		*ret = IPPROTO_TCP;
		return 0;
	}
	if (kj_string(&f, &p, err) < 0)
		return -1;
	if (!strcmp(p, "TCP"))
		*ret = IPPROTO_TCP;
	else if (!strcmp(p, "UDP"))
		*ret = IPPROTO_UDP;
	else if (!strcmp(p, "SCTP"))
		*ret = IPPROTO_SCTP;
	else
		return kelp_fail(err, EINVAL, "%s: unknown protocol \"%s\" (TCP, UDP or SCTP)", f.path, p);
	return 0;
}

/* A port number 1-65535 (0 refused). present=false leaves *ret unchanged. */
static int parse_port_num(const struct kj *obj, const char *key, bool required, uint16_t *ret, struct kelp_err *err)
{
	struct kj f;
	int r = required ? kj_required(obj, key, &f, err) : kj_field(obj, key, &f, err);
	if (r < 0)
		return -1;
	if (!f.v)
		return 0;
	int64_t v;
	if (kj_int64(&f, &v, err) < 0)
		return -1;
	if (v < 1 || v > 65535)
		return kelp_fail(err, EINVAL, "%s: %lld is out of range 1-65535", f.path, (long long)v);
	*ret = (uint16_t)v;
	return 0;
}

static int parse_ip(const struct kj *f, struct kp_addr *ret, struct kelp_err *err)
{
	cleanup_free char *s = NULL;
	if (kj_string(f, &s, err) < 0)
		return -1;
	if (kp_addr_parse(s, ret) < 0)
		return kelp_fail(err, EINVAL, "%s: \"%s\" is not an IP address", f->path, s);
	return 0;
}

static int parse_ip_list(const struct kj *f, struct kp_addr **ret, size_t *ret_n, struct kelp_err *err)
{
	if (!f->v)
		return 0;
	if (kj_expect_array(f, err) < 0)
		return -1;
	size_t n = kj_len(f);
	struct kp_addr *a = xcalloc(n ? n : 1, sizeof(*a));
	for (size_t i = 0; i < n; i++) {
		struct kj e;
		kj_index(f, i, &e);
		if (parse_ip(&e, &a[i], err) < 0) {
			free(a);
			return -1;
		}
	}
	*ret = a;
	*ret_n = n;
	return 0;
}

/* DNS-1123 subdomain, as the apiserver enforces for names and namespaces. */
static bool kube_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 253 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-' || s[i] == '.'))
			return false;
	return true;
}

/* metadata.name (required), metadata.namespace (default "default"). */
static int parse_meta(const struct kj *obj, struct kj *meta, char **ret_ns, char **ret_name, struct kelp_err *err)
{
	if (kj_expect_object(obj, err) < 0 || kj_required(obj, "metadata", meta, err) < 0 ||
	    kj_expect_object(meta, err) < 0)
		return -1;
	cleanup_free char *ns = NULL, *name = NULL;
	if (kj_req_string(meta, "name", &name, err) < 0 || kj_opt_string(meta, "namespace", &ns, err) < 0)
		return -1;
	if (!*name || !kube_name_ok(name))
		return kelp_fail(err, EINVAL, "metadata.name: \"%s\" is not a valid name", name);
	if (ns && (!*ns || !kube_name_ok(ns)))
		return kelp_fail(err, EINVAL, "metadata.namespace: \"%s\" is not a valid namespace", ns);
	*ret_ns = ns ? TAKE_PTR(ns) : xstrdup("default");
	*ret_name = TAKE_PTR(name);
	return 0;
}

/* An IANA service name, as a named targetPort or port name must be: 1-15 lowercase
 * alphanumerics or '-', at least one letter, no leading/trailing/double '-'. */
static bool port_name_ok(const char *s)
{
	size_t n = strlen(s);
	bool letter = false;
	if (n == 0 || n > 15 || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		if (islower((unsigned char)s[i]))
			letter = true;
		else if (s[i] == '-') {
			if (s[i + 1] == '-')
				return false;
		} else if (!isdigit((unsigned char)s[i]))
			return false;
	}
	return letter;
}

static int parse_svc_port(const struct kj *p, enum kp_svc_type type, struct kp_port *ret, struct kelp_err *err)
{
	if (kj_expect_object(p, err) < 0)
		return -1;
	struct kp_port port = {0};
	cleanup_free char *name = NULL;
	if (kj_opt_string(p, "name", &name, err) < 0)
		return -1;
	if (name && *name && strlen(name) > 63)
		return kelp_fail(err, EINVAL, "%s.name: \"%s\" is longer than 63 characters", p->path, name);
	if (parse_proto(p, &port.proto, err) < 0 || parse_port_num(p, "port", true, &port.port, err) < 0 ||
	    parse_port_num(p, "nodePort", false, &port.node_port, err) < 0)
		return -1;
	if (port.node_port && type != KP_NODE_PORT && type != KP_LOAD_BALANCER)
		return kelp_fail(err, EINVAL, "%s.nodePort: may only be used with type NodePort or LoadBalancer", p->path);
	struct kj t;
	if (kj_field(p, "targetPort", &t, err) < 0)
		return -1;
	if (t.v && YAJL_IS_STRING(t.v)) {
		const char *tn = YAJL_GET_STRING(t.v);
		if (!port_name_ok(tn))
			return kelp_fail(err, EINVAL, "%s: \"%s\" is not a valid port name (1-15 lowercase letters, digits, '-')",
					 t.path, tn);
		port.target_name = xstrdup(tn);
	} else if (t.v) {
		if (parse_port_num(p, "targetPort", false, &port.target_num, err) < 0)
			return -1;
	} else {
		port.target_num = port.port;
	}
	port.name = name ? TAKE_PTR(name) : xstrdup("");
	*ret = port;
	return 0;
}

/* While a parse builds an object, its parts are separate allocations; the result is packed
 * into one (pack_service, pack_slice). */
static void service_free_parts(struct kp_service *s)
{
	if (!s)
		return;
	free(s->ns);
	free(s->name);
	for (size_t i = 0; i < s->n_ports; i++) {
		free(s->ports[i].name);
		free(s->ports[i].target_name);
	}
	free(s->ports);
	free(s->ext_ips);
	free(s->lb_ips);
	free(s->src_ranges);
	free(s);
}

static void svc_freep(struct kp_service **s)
{
	service_free_parts(*s);
}

void kp_service_free(struct kp_service *s)
{
	free(s); /* packed: one allocation */
}

/* ---- packing: one allocation per object --------------------------------------------------
 * At 10,000 services the model is 20,000 objects, each of 6 to 20 small allocations (names,
 * ports, endpoints) with malloc's overhead on every one; one block per object (the struct, its
 * arrays, then its strings) makes the resident model about a third smaller. */

struct pack {
	char *w;
};

static void *pack_array(struct pack *p, const void *src, size_t n, size_t size)
{
	void *d = p->w;
	if (n)
		memcpy(d, src, n * size);
	p->w += n * size;
	return d;
}

static char *pack_str(struct pack *p, const char *str)
{
	if (!str)
		return NULL;
	size_t n = strlen(str) + 1;
	char *d = memcpy(p->w, str, n);
	p->w += n;
	return d;
}

static size_t str_size(const char *str)
{
	return str ? strlen(str) + 1 : 0;
}

static struct kp_service *pack_service(struct kp_service *s)
{
	/* kp_port holds pointers: the arrays of it come first, right after the struct */
	size_t n = sizeof(*s) + s->n_ports * sizeof(*s->ports) + (s->n_ext + s->n_lb) * sizeof(struct kp_addr) +
		   s->n_src_ranges * sizeof(struct kp_cidr) + str_size(s->ns) + str_size(s->name);
	for (size_t i = 0; i < s->n_ports; i++)
		n += str_size(s->ports[i].name) + str_size(s->ports[i].target_name);
	struct kp_service *d = xmalloc(n);
	struct pack p = {(char *)(d + 1)};
	*d = *s;
	d->ports = pack_array(&p, s->ports, s->n_ports, sizeof(*s->ports));
	d->ext_ips = pack_array(&p, s->ext_ips, s->n_ext, sizeof(*s->ext_ips));
	d->lb_ips = pack_array(&p, s->lb_ips, s->n_lb, sizeof(*s->lb_ips));
	d->src_ranges = pack_array(&p, s->src_ranges, s->n_src_ranges, sizeof(*s->src_ranges));
	d->ns = pack_str(&p, s->ns);
	d->name = pack_str(&p, s->name);
	for (size_t i = 0; i < s->n_ports; i++) {
		d->ports[i].name = pack_str(&p, s->ports[i].name);
		d->ports[i].target_name = pack_str(&p, s->ports[i].target_name);
	}
	service_free_parts(s);
	return d;
}

static int parse_enum(const struct kj *obj, const char *key, const char *const *names, int def, int *ret,
		      struct kelp_err *err)
{
	cleanup_free char *v = NULL;
	if (kj_opt_string(obj, key, &v, err) < 0)
		return -1;
	if (!v) {
		*ret = def;
		return 0;
	}
	for (int i = 0; names[i]; i++)
		if (!strcmp(names[i], v)) {
			*ret = i;
			return 0;
		}
	char list[256] = "";
	for (int i = 0; names[i]; i++)
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "", names[i]);
	return kelp_fail(err, EINVAL, "%s%s%s: unknown value \"%s\" (%s)", obj->path, *obj->path ? "." : "", key, v, list);
}

static int parse_families(const struct kj *spec, int fams[KP_NFAM], size_t *ret_n, struct kelp_err *err)
{
	struct kj f;
	*ret_n = 0;
	if (kj_field(spec, "ipFamilies", &f, err) < 0)
		return -1;
	if (!f.v)
		return 0;
	if (kj_expect_array(&f, err) < 0)
		return -1;
	size_t n = kj_len(&f);
	if (n > 2)
		return kelp_fail(err, EINVAL, "%s: at most 2 families", f.path);
	for (size_t i = 0; i < n; i++) {
		struct kj e;
		kj_index(&f, i, &e);
		cleanup_free char *v = NULL;
		if (kj_string(&e, &v, err) < 0)
			return -1;
		if (!strcmp(v, "IPv4"))
			fams[i] = KP_V4;
		else if (!strcmp(v, "IPv6"))
			fams[i] = KP_V6;
		else
			return kelp_fail(err, EINVAL, "%s: unknown family \"%s\" (IPv4 or IPv6)", e.path, v);
		if (i == 1 && fams[0] == fams[1])
			return kelp_fail(err, EINVAL, "%s: family %s given twice", e.path, v);
	}
	*ret_n = n;
	return 0;
}

static int parse_cluster_ips(const struct kj *spec, struct kp_service *s, struct kelp_err *err)
{
	int fams[KP_NFAM];
	size_t n_fams;
	if (parse_families(spec, fams, &n_fams, err) < 0)
		return -1;
	struct kj cip, cips;
	if (kj_field(spec, "clusterIP", &cip, err) < 0 || kj_field(spec, "clusterIPs", &cips, err) < 0)
		return -1;
	/* clusterIPs wins; clusterIP must then be its first entry */
	struct kj list[2];
	size_t n = 0;
	if (cips.v) {
		if (kj_expect_array(&cips, err) < 0)
			return -1;
		n = kj_len(&cips);
		if (n > 2)
			return kelp_fail(err, EINVAL, "%s: at most 2 addresses", cips.path);
		for (size_t i = 0; i < n; i++)
			kj_index(&cips, i, &list[i]);
	} else if (cip.v) {
		list[0] = cip;
		n = 1;
	}
	if (cip.v && cips.v && n > 0) {
		cleanup_free char *a = NULL, *b = NULL;
		if (kj_string(&cip, &a, err) < 0 || kj_string(&list[0], &b, err) < 0)
			return -1;
		if (strcmp(a, b))
			return kelp_fail(err, EINVAL, "%s: \"%s\" differs from clusterIPs[0] \"%s\"", cip.path, a, b);
	}
	for (size_t i = 0; i < n; i++) {
		cleanup_free char *v = NULL;
		if (kj_string(&list[i], &v, err) < 0)
			return -1;
		if (!strcmp(v, "None") || !*v) {
			if (!strcmp(v, "None"))
				s->headless = true;
			if (!strcmp(v, "None") && i == 0)
				return 0;
			return kelp_fail(err, EINVAL, "%s: \"%s\" is not an IP address", list[i].path, v);
		}
		struct kp_addr a;
		if (kp_addr_parse(v, &a) < 0)
			return kelp_fail(err, EINVAL, "%s: \"%s\" is not an IP address", list[i].path, v);
		if (i < n_fams && fams[i] != a.fam)
			return kelp_fail(err, EINVAL, "%s: %s is not in the service's family %s (spec.ipFamilies[%zu])",
					 list[i].path, v, fams[i] == KP_V4 ? "IPv4" : "IPv6", i);
		if (s->has_cip[a.fam])
			return kelp_fail(err, EINVAL, "%s: a second %s address", list[i].path, a.fam == KP_V4 ? "IPv4" : "IPv6");
		s->cluster_ips[a.fam] = a;
		s->has_cip[a.fam] = true;
	}
	if (n_fams > n && n > 0)
		return kelp_fail(err, EINVAL, "spec.clusterIPs: %zu address(es) for %zu families in spec.ipFamilies", n, n_fams);
	return 0;
}

int kp_service_parse(const struct kj *obj, struct kp_service **ret, struct kelp_err *err)
{
	__attribute__((cleanup(svc_freep))) struct kp_service *s = xcalloc(1, sizeof(*s));
	struct kj meta, spec, f;
	if (parse_meta(obj, &meta, &s->ns, &s->name, err) < 0)
		return -1;
	if (kj_required(obj, "spec", &spec, err) < 0 || kj_expect_object(&spec, err) < 0)
		return -1;
	static const char *const types[] = {"ClusterIP", "NodePort", "LoadBalancer", "ExternalName", NULL};
	int t;
	if (parse_enum(&spec, "type", types, KP_CLUSTER_IP, &t, err) < 0)
		return -1;
	s->type = (enum kp_svc_type)t;
	if (parse_cluster_ips(&spec, s, err) < 0)
		return -1;

	if (kj_field(&spec, "ports", &f, err) < 0)
		return -1;
	if (f.v) {
		if (kj_expect_array(&f, err) < 0)
			return -1;
		s->n_ports = kj_len(&f);
		s->ports = xcalloc(s->n_ports ? s->n_ports : 1, sizeof(*s->ports));
		for (size_t i = 0; i < s->n_ports; i++) {
			struct kj p;
			kj_index(&f, i, &p);
			if (parse_svc_port(&p, s->type, &s->ports[i], err) < 0) {
				s->n_ports = i; /* free only what was filled */
				return -1;
			}
			struct kp_port *pi = &s->ports[i];
			if (s->n_ports > 1 && !*pi->name)
				return kelp_fail(err, EINVAL, "%s.name: required when a service has several ports", p.path);
			for (size_t j = 0; j < i; j++) {
				struct kp_port *pj = &s->ports[j];
				if (*pi->name && !strcmp(pi->name, pj->name))
					return kelp_fail(err, EINVAL, "%s.name: duplicate port name \"%s\" (also spec.ports[%zu])",
							 p.path, pi->name, j);
				if (pi->port == pj->port && pi->proto == pj->proto)
					return kelp_fail(err, EINVAL, "%s: duplicate port %u/%s (also spec.ports[%zu])", p.path,
							 pi->port, kp_proto_name(pi->proto), j);
				if (pi->node_port && pi->node_port == pj->node_port && pi->proto == pj->proto)
					return kelp_fail(err, EINVAL,
							 "%s.nodePort: duplicate node port %u/%s (also spec.ports[%zu])", p.path,
							 pi->node_port, kp_proto_name(pi->proto), j);
			}
		}
	}

	if (kj_field(&spec, "externalIPs", &f, err) < 0 || parse_ip_list(&f, &s->ext_ips, &s->n_ext, err) < 0)
		return -1;

	static const char *const aff[] = {"None", "ClientIP", NULL};
	int a;
	if (parse_enum(&spec, "sessionAffinity", aff, 0, &a, err) < 0)
		return -1;
	if (a == 1) {
		s->affinity_timeout = 10800;
		struct kj c, ci, to;
		if (kj_field(&spec, "sessionAffinityConfig", &c, err) < 0)
			return -1;
		if (c.v && (kj_field(&c, "clientIP", &ci, err) < 0))
			return -1;
		if (c.v && ci.v) {
			if (kj_field(&ci, "timeoutSeconds", &to, err) < 0)
				return -1;
			if (to.v) {
				int64_t v;
				if (kj_int64(&to, &v, err) < 0)
					return -1;
				if (v < 1 || v > 86400)
					return kelp_fail(err, EINVAL, "%s: %lld is out of range 1-86400", to.path, (long long)v);
				s->affinity_timeout = (uint32_t)v;
			}
		}
	}
	static const char *const pol[] = {"Cluster", "Local", NULL};
	int etp, itp;
	if (parse_enum(&spec, "externalTrafficPolicy", pol, 0, &etp, err) < 0 ||
	    parse_enum(&spec, "internalTrafficPolicy", pol, 0, &itp, err) < 0)
		return -1;
	s->etp_local = etp == 1;
	s->itp_local = itp == 1;

	cleanup_strv char **ranges = NULL;
	size_t n_ranges = 0;
	if (kj_opt_string_array(&spec, "loadBalancerSourceRanges", &ranges, &n_ranges, err) < 0)
		return -1;
	if (n_ranges) {
		s->src_ranges = xcalloc(n_ranges, sizeof(*s->src_ranges));
		for (size_t i = 0; i < n_ranges; i++) {
			/* a bare address is a host range, as kube-proxy accepts it */
			char buf[80];
			snprintf(buf, sizeof(buf), "%s%s", ranges[i], strchr(ranges[i], '/') ? "" : strchr(ranges[i], ':') ? "/128" : "/32");
			if (kp_cidr_parse(buf, &s->src_ranges[i]) < 0)
				return kelp_fail(err, EINVAL, "spec.loadBalancerSourceRanges[%zu]: \"%s\" is not a CIDR", i,
						 ranges[i]);
		}
		s->n_src_ranges = n_ranges;
	}

	/* status.loadBalancer.ingress[].ip (hostname-only entries carry no address) */
	struct kj st, lb, ing;
	if (kj_field(obj, "status", &st, err) < 0)
		return -1;
	if (st.v && kj_field(&st, "loadBalancer", &lb, err) < 0)
		return -1;
	if (st.v && lb.v && kj_field(&lb, "ingress", &ing, err) < 0)
		return -1;
	if (st.v && lb.v && ing.v) {
		if (kj_expect_array(&ing, err) < 0)
			return -1;
		size_t n = kj_len(&ing);
		s->lb_ips = xcalloc(n ? n : 1, sizeof(*s->lb_ips));
		for (size_t i = 0; i < n; i++) {
			struct kj e, ip;
			kj_index(&ing, i, &e);
			if (kj_field(&e, "ip", &ip, err) < 0)
				return -1;
			if (!ip.v)
				continue;
			if (parse_ip(&ip, &s->lb_ips[s->n_lb], err) < 0)
				return -1;
			s->n_lb++;
		}
	}
	/* every address must be in a family the service has */
	if (!s->headless && s->type != KP_EXTERNAL_NAME) {
		if (!s->has_cip[KP_V4] && !s->has_cip[KP_V6])
			return kelp_fail(err, EINVAL, "spec.clusterIP: required (an address, or None for a headless service)");
		for (size_t i = 0; i < s->n_ext; i++)
			if (!s->has_cip[s->ext_ips[i].fam])
				return kelp_fail(err, EINVAL, "spec.externalIPs[%zu]: not in a family of the service", i);
		for (size_t i = 0; i < s->n_lb; i++)
			if (!s->has_cip[s->lb_ips[i].fam])
				return kelp_fail(err, EINVAL, "status.loadBalancer.ingress: %s address not in a family of the service",
						 s->lb_ips[i].fam == KP_V4 ? "IPv4" : "IPv6");
	}
	*ret = pack_service(TAKE_PTR(s));
	return 0;
}

static void slice_free_parts(struct kp_slice *s)
{
	if (!s)
		return;
	free(s->ns);
	free(s->name);
	free(s->service);
	for (size_t i = 0; i < s->n_ports; i++)
		free(s->ports[i].name);
	free(s->ports);
	free(s->eps); /* node names are interned */
	free(s);
}

static void slice_freep(struct kp_slice **s)
{
	slice_free_parts(*s);
}

void kp_slice_free(struct kp_slice *s)
{
	free(s); /* packed: one allocation */
}

static struct kp_slice *pack_slice(struct kp_slice *s)
{
	/* both arrays hold pointers: they come first */
	size_t n = sizeof(*s) + s->n_ports * sizeof(*s->ports) + s->n_eps * sizeof(*s->eps) + str_size(s->ns) +
		   str_size(s->name) + str_size(s->service);
	for (size_t i = 0; i < s->n_ports; i++)
		n += str_size(s->ports[i].name);
	struct kp_slice *d = xmalloc(n);
	struct pack p = {(char *)(d + 1)};
	*d = *s;
	d->ports = pack_array(&p, s->ports, s->n_ports, sizeof(*s->ports));
	d->eps = pack_array(&p, s->eps, s->n_eps, sizeof(*s->eps));
	d->ns = pack_str(&p, s->ns);
	d->name = pack_str(&p, s->name);
	d->service = pack_str(&p, s->service);
	for (size_t i = 0; i < s->n_ports; i++)
		d->ports[i].name = pack_str(&p, s->ports[i].name);
	slice_free_parts(s);
	return d;
}

static int parse_cond(const struct kj *c, const char *key, bool def, bool *ret, struct kelp_err *err)
{
	*ret = def;
	return c->v ? kj_opt_bool(c, key, ret, err) : 0;
}

/* Node names are few and repeated on every endpoint (100,000 copies of a handful of names in a
 * big cluster): each is kept once for the life of the process. The reader threads parse
 * slices at the same time, hence the lock. */
static const char *intern_node(const char *name)
{
	static struct hmap names;
	static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	pthread_mutex_lock(&mu);
	void **v = hmap_gets(&names, name);
	const char *copy = v ? *v : NULL;
	if (!copy) {
		char *c = xstrdup(name);
		hmap_put(&names, name, strlen(name), c);
		copy = c;
	}
	pthread_mutex_unlock(&mu);
	return copy;
}

static yajl_val obj_get(yajl_val o, const char *key)
{
	for (size_t i = 0; i < o->u.object.len; i++)
		if (!strcmp(o->u.object.keys[i], key))
			return o->u.object.values[i];
	return NULL;
}

/* An endpoint whose fields are all of the expected types and whose addresses all parse in
 * the slice's family: filled in, true. Else false (the caller reports what is wrong). */
static bool fast_endpoint(yajl_val e, int fam, struct kp_endpoint *ret)
{
	if (!YAJL_IS_OBJECT(e))
		return false;
	yajl_val addrs = obj_get(e, "addresses"), cond = obj_get(e, "conditions"), node = obj_get(e, "nodeName");
	if (!addrs || !YAJL_IS_ARRAY(addrs) || !addrs->u.array.len)
		return false;
	if (cond && !YAJL_IS_NULL(cond) && !YAJL_IS_OBJECT(cond))
		return false;
	if (node && !YAJL_IS_NULL(node) && !YAJL_IS_STRING(node))
		return false;
	bool c[3] = {true, true, false}, given[3] = {false, false, false};
	static const char *const names[3] = {"ready", "serving", "terminating"};
	for (int k = 0; k < 3 && cond && YAJL_IS_OBJECT(cond); k++) {
		yajl_val v = obj_get(cond, names[k]);
		if (!v || YAJL_IS_NULL(v))
			continue;
		if (!YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v))
			return false;
		c[k] = YAJL_IS_TRUE(v);
		given[k] = true;
	}
	if (!given[1])
		c[1] = c[0]; /* serving defaults to ready */
	struct kp_addr first = {0};
	for (size_t k = 0; k < addrs->u.array.len; k++) {
		yajl_val a = addrs->u.array.values[k];
		struct kp_addr ad;
		if (!YAJL_IS_STRING(a) || kp_addr_parse(a->u.string, &ad) < 0 || ad.fam != fam)
			return false;
		if (k == 0)
			first = ad;
	}
	*ret = (struct kp_endpoint){.addr = first,
				    .cond = (uint8_t)((c[0] ? KP_EP_READY : 0) | (c[1] ? KP_EP_SERVING : 0) |
						      (c[2] ? KP_EP_TERMINATING : 0)),
				    .node = node && YAJL_IS_STRING(node) ? intern_node(node->u.string) : NULL};
	return true;
}

int kp_slice_parse(const struct kj *obj, struct kp_slice **ret, struct kelp_err *err)
{
	__attribute__((cleanup(slice_freep))) struct kp_slice *s = xcalloc(1, sizeof(*s));
	struct kj meta, labels, f;
	if (parse_meta(obj, &meta, &s->ns, &s->name, err) < 0)
		return -1;
	if (kj_field(&meta, "labels", &labels, err) < 0)
		return -1;
	struct kj svc = {0};
	if (labels.v && kj_field(&labels, "kubernetes.io/service-name", &svc, err) < 0)
		return -1;
	if (!svc.v)
		return kelp_fail(err, EINVAL, "metadata.labels.kubernetes.io/service-name: required (the slice's service)");
	if (kj_string(&svc, &s->service, err) < 0)
		return -1;
	if (!kube_name_ok(s->service))
		return kelp_fail(err, EINVAL, "%s: \"%s\" is not a valid service name", svc.path, s->service);

	cleanup_free char *at = NULL;
	if (kj_req_string(obj, "addressType", &at, err) < 0)
		return -1;
	if (!strcmp(at, "IPv4"))
		s->fam = KP_V4;
	else if (!strcmp(at, "IPv6"))
		s->fam = KP_V6;
	else if (!strcmp(at, "FQDN"))
		s->fam = -1;
	else
		return kelp_fail(err, EINVAL, "addressType: unknown value \"%s\" (IPv4, IPv6 or FQDN)", at);

	if (kj_field(obj, "ports", &f, err) < 0)
		return -1;
	if (f.v) {
		if (kj_expect_array(&f, err) < 0)
			return -1;
		size_t n = kj_len(&f);
		s->ports = xcalloc(n ? n : 1, sizeof(*s->ports));
		for (size_t i = 0; i < n; i++) {
			struct kj p;
			kj_index(&f, i, &p);
			struct kp_slice_port *sp = &s->ports[i];
			if (kj_expect_object(&p, err) < 0 || kj_opt_string(&p, "name", &sp->name, err) < 0)
				return -1;
			s->n_ports = i + 1;
			if (!sp->name)
				sp->name = xstrdup("");
			if (parse_proto(&p, &sp->proto, err) < 0 || parse_port_num(&p, "port", false, &sp->port, err) < 0)
				return -1;
			for (size_t j = 0; j < i; j++)
				if (!strcmp(s->ports[j].name, sp->name) && s->ports[j].proto == sp->proto)
					return kelp_fail(err, EINVAL, "%s.name: duplicate port name \"%s\"", p.path, sp->name);
		}
	}

	if (kj_field(obj, "endpoints", &f, err) < 0)
		return -1;
	if (f.v) {
		if (kj_expect_array(&f, err) < 0)
			return -1;
		size_t n = kj_len(&f), cap = n ? n : 1;
		s->eps = xcalloc(cap, sizeof(*s->eps));
		for (size_t i = 0; i < n; i++) {
			if (s->n_eps == cap) {
				cap *= 2;
				s->eps = xrealloc(s->eps, cap * sizeof(*s->eps));
			}
			/* the common well-formed endpoint without building JSON paths (100,000 of them
			 * in a large cluster); anything unusual takes the checked way below */
			if (s->fam >= 0 && fast_endpoint(f.v->u.array.values[i], s->fam, &s->eps[s->n_eps])) {
				s->n_eps++;
				continue;
			}
			struct kj e, addrs, cond, node;
			kj_index(&f, i, &e);
			if (kj_expect_object(&e, err) < 0 || kj_required(&e, "addresses", &addrs, err) < 0 ||
			    kj_expect_array(&addrs, err) < 0 || kj_field(&e, "conditions", &cond, err) < 0 ||
			    kj_field(&e, "nodeName", &node, err) < 0)
				return -1;
			bool ready, serving, terminating;
			if (parse_cond(&cond, "ready", true, &ready, err) < 0 ||
			    parse_cond(&cond, "serving", ready, &serving, err) < 0 ||
			    parse_cond(&cond, "terminating", false, &terminating, err) < 0)
				return -1;
			cleanup_free char *nodename = NULL;
			if (node.v && kj_string(&node, &nodename, err) < 0)
				return -1;
			size_t na = kj_len(&addrs);
			if (na == 0)
				return kelp_fail(err, EINVAL, "%s: at least one address is required", addrs.path);
			if (s->fam < 0)
				continue; /* FQDN: not for us */
			/* every address is checked; only the first is used, as kube-proxy does */
			struct kp_addr first = {0};
			for (size_t k = 0; k < na; k++) {
				struct kj ak;
				kj_index(&addrs, k, &ak);
				struct kp_addr a;
				if (parse_ip(&ak, &a, err) < 0)
					return -1;
				if (a.fam != s->fam)
					return kelp_fail(err, EINVAL, "%s: %s address in a slice of addressType %s", ak.path,
							 a.fam == KP_V4 ? "IPv4" : "IPv6", at);
				if (k == 0)
					first = a;
			}
			struct kp_endpoint *ep = &s->eps[s->n_eps++];
			*ep = (struct kp_endpoint){.addr = first,
						   .cond = (uint8_t)((ready ? KP_EP_READY : 0) | (serving ? KP_EP_SERVING : 0) |
								     (terminating ? KP_EP_TERMINATING : 0)),
						   .node = nodename ? intern_node(nodename) : NULL};
		}
	}
	*ret = pack_slice(TAKE_PTR(s));
	return 0;
}

/* ---- back to manifests (the state file) ---------------------------------------------------- */

static void gen_meta(yajl_gen g, const char *api, const char *kind, const char *ns, const char *name)
{
	kg_key_str(g, "apiVersion", api);
	kg_key_str(g, "kind", kind);
	kg_key(g, "metadata");
	yajl_gen_map_open(g);
	kg_key_str(g, "namespace", ns);
	kg_key_str(g, "name", name);
}

static void gen_ip(yajl_gen g, const struct kp_addr *a)
{
	char buf[64];
	kg_str(g, kp_addr_str(a, buf, sizeof(buf)));
}

void kp_service_gen(yajl_gen g, const struct kp_service *s)
{
	static const char *const types[] = {"ClusterIP", "NodePort", "LoadBalancer", "ExternalName"};
	yajl_gen_map_open(g);
	gen_meta(g, "v1", "Service", s->ns, s->name);
	yajl_gen_map_close(g);
	kg_key(g, "spec");
	yajl_gen_map_open(g);
	kg_key_str(g, "type", types[s->type]);
	kg_key(g, "clusterIPs");
	yajl_gen_array_open(g);
	if (s->headless)
		kg_str(g, "None");
	for (int f = 0; f < KP_NFAM && !s->headless; f++)
		if (s->has_cip[f])
			gen_ip(g, &s->cluster_ips[f]);
	yajl_gen_array_close(g);
	kg_key(g, "ports");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < s->n_ports; i++) {
		const struct kp_port *p = &s->ports[i];
		yajl_gen_map_open(g);
		if (*p->name)
			kg_key_str(g, "name", p->name);
		kg_key_str(g, "protocol", kp_proto_name(p->proto));
		kg_key_int(g, "port", p->port);
		if (p->node_port)
			kg_key_int(g, "nodePort", p->node_port);
		if (p->target_name)
			kg_key_str(g, "targetPort", p->target_name);
		else
			kg_key_int(g, "targetPort", p->target_num);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	if (s->n_ext) {
		kg_key(g, "externalIPs");
		yajl_gen_array_open(g);
		for (size_t i = 0; i < s->n_ext; i++)
			gen_ip(g, &s->ext_ips[i]);
		yajl_gen_array_close(g);
	}
	if (s->affinity_timeout) {
		kg_key_str(g, "sessionAffinity", "ClientIP");
		kg_key(g, "sessionAffinityConfig");
		yajl_gen_map_open(g);
		kg_key(g, "clientIP");
		yajl_gen_map_open(g);
		kg_key_int(g, "timeoutSeconds", s->affinity_timeout);
		yajl_gen_map_close(g);
		yajl_gen_map_close(g);
	}
	if (s->etp_local)
		kg_key_str(g, "externalTrafficPolicy", "Local");
	if (s->itp_local)
		kg_key_str(g, "internalTrafficPolicy", "Local");
	if (s->n_src_ranges) {
		kg_key(g, "loadBalancerSourceRanges");
		yajl_gen_array_open(g);
		for (size_t i = 0; i < s->n_src_ranges; i++) {
			char buf[64], out[80];
			struct kp_addr a = {.fam = s->src_ranges[i].fam};
			memcpy(a.ip, s->src_ranges[i].ip, 16);
			snprintf(out, sizeof(out), "%s/%u", kp_addr_str(&a, buf, sizeof(buf)), s->src_ranges[i].prefix);
			kg_str(g, out);
		}
		yajl_gen_array_close(g);
	}
	yajl_gen_map_close(g);
	if (s->n_lb) {
		kg_key(g, "status");
		yajl_gen_map_open(g);
		kg_key(g, "loadBalancer");
		yajl_gen_map_open(g);
		kg_key(g, "ingress");
		yajl_gen_array_open(g);
		for (size_t i = 0; i < s->n_lb; i++) {
			yajl_gen_map_open(g);
			kg_key(g, "ip");
			gen_ip(g, &s->lb_ips[i]);
			yajl_gen_map_close(g);
		}
		yajl_gen_array_close(g);
		yajl_gen_map_close(g);
		yajl_gen_map_close(g);
	}
	yajl_gen_map_close(g);
}

void kp_slice_gen(yajl_gen g, const struct kp_slice *s)
{
	yajl_gen_map_open(g);
	gen_meta(g, "discovery.k8s.io/v1", "EndpointSlice", s->ns, s->name);
	kg_key(g, "labels");
	yajl_gen_map_open(g);
	kg_key_str(g, "kubernetes.io/service-name", s->service);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	kg_key_str(g, "addressType", s->fam == KP_V4 ? "IPv4" : s->fam == KP_V6 ? "IPv6" : "FQDN");
	kg_key(g, "ports");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < s->n_ports; i++) {
		yajl_gen_map_open(g);
		kg_key_str(g, "name", s->ports[i].name);
		kg_key_str(g, "protocol", kp_proto_name(s->ports[i].proto));
		if (s->ports[i].port)
			kg_key_int(g, "port", s->ports[i].port);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	kg_key(g, "endpoints");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < s->n_eps; i++) {
		const struct kp_endpoint *e = &s->eps[i];
		yajl_gen_map_open(g);
		kg_key(g, "addresses");
		yajl_gen_array_open(g);
		gen_ip(g, &e->addr);
		yajl_gen_array_close(g);
		/* the defaults (ready, serving, not terminating) are left out: a smaller state */
		if (e->cond != (KP_EP_READY | KP_EP_SERVING)) {
			kg_key(g, "conditions");
			yajl_gen_map_open(g);
			kg_key_bool(g, "ready", e->cond & KP_EP_READY);
			kg_key_bool(g, "serving", e->cond & KP_EP_SERVING);
			kg_key_bool(g, "terminating", e->cond & KP_EP_TERMINATING);
			yajl_gen_map_close(g);
		}
		if (e->node)
			kg_key_str(g, "nodeName", e->node);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
}
