#include "config.h"

#include <errno.h>
#include <string.h>

#include "cleanup.h"
#include "fs.h"

#define DEFAULT_DATA_DIR "/var/lib/cni/networks"

void hl_conf_free(struct hl_conf *c)
{
	free(c->data_dir);
	memset(c, 0, sizeof(*c));
}

static int cfail(struct cni_err *err, const struct kj *at, const char *fmt, const char *val)
{
	return cni_fail(err, CNI_ERR_CONFIG, fmt, at->path, val);
}

static int ip_field(const struct kj *obj, const char *key, bool prefix, bool *has, struct cni_ip *ret,
		    struct cni_err *err)
{
	cleanup_free char *s = NULL;
	if (kj_opt_string(obj, key, &s, &err->k) < 0)
		return err->code = CNI_ERR_CONFIG, -1;
	*has = s != NULL;
	if (!s)
		return 0;
	if (cni_ip_parse(s, prefix, ret) < 0) {
		struct kj at;
		kj_field(obj, key, &at, &err->k);
		return cfail(err, &at, prefix ? "%s: \"%s\" is not an IP prefix (address/length)" : "%s: \"%s\" is not an IP address", s);
	}
	return 0;
}

static int parse_range(const struct kj *o, struct hl_range *r, struct cni_err *err)
{
	bool has;
	struct cni_ip ip;
	if (kj_expect_object(o, &err->k) < 0)
		return err->code = CNI_ERR_CONFIG, -1;
	if (ip_field(o, "subnet", true, &has, &r->subnet, err) < 0)
		return -1;
	if (!has)
		return cni_fail(err, CNI_ERR_CONFIG, "%s.subnet: required field is missing", o->path);
	int bits = cni_ip_bits(r->subnet.family);
	/* at least 2 usable addresses besides network and gateway, as the reference demands */
	if (r->subnet.prefix > bits - 2)
		return cni_fail(err, CNI_ERR_CONFIG, "%s.subnet: /%d is too small to allocate from", o->path, r->subnet.prefix);
	r->subnet.a = cni_ip_first(&r->subnet);
	cni_u128 first = r->subnet.a, last = cni_ip_last(&r->subnet);
	r->start = first + 1;
	r->end = r->subnet.family == AF_INET ? last - 1 : last;
	r->gw = (struct cni_ip){.family = r->subnet.family, .a = first + 1, .prefix = -1};
	const char *keys[] = {"rangeStart", "rangeEnd", "gateway"};
	for (int i = 0; i < 3; i++) {
		if (ip_field(o, keys[i], false, &has, &ip, err) < 0)
			return -1;
		if (!has)
			continue;
		if (!cni_ip_contains(&r->subnet, &ip))
			return cni_fail(err, CNI_ERR_CONFIG, "%s.%s: not inside subnet", o->path, keys[i]);
		if (i == 0)
			r->start = ip.a;
		else if (i == 1)
			r->end = ip.a;
		else
			r->gw = ip;
	}
	if (r->start > r->end)
		return cni_fail(err, CNI_ERR_CONFIG, "%s: rangeStart is after rangeEnd", o->path);
	return 0;
}

static bool overlap(const struct hl_range *a, const struct hl_range *b)
{
	return a->subnet.family == b->subnet.family && a->start <= b->end && b->start <= a->end;
}

int hl_conf_parse(const struct cni_req *req, struct hl_conf *c, struct cni_err *err)
{
	struct kj ipam, ranges, f;
	memset(c, 0, sizeof(*c));
	if (kj_required(&req->conf, "ipam", &ipam, &err->k) < 0 || kj_expect_object(&ipam, &err->k) < 0)
		return err->code = CNI_ERR_CONFIG, -1;
	cleanup_free char *dir = NULL;
	if (kj_opt_string(&ipam, "dataDir", &dir, &err->k) < 0)
		return err->code = CNI_ERR_CONFIG, -1;
	if (dir && dir[0] != '/')
		return cni_fail(err, CNI_ERR_CONFIG, "ipam.dataDir: \"%s\" is not an absolute path", dir);
	c->data_dir = xasprintf("%s/%s", dir ? dir : DEFAULT_DATA_DIR, req->name);

	int r = kj_field(&ipam, "ranges", &ranges, &err->k);
	if (r > 0) {
		if (kj_expect_array(&ranges, &err->k) < 0)
			return err->code = CNI_ERR_CONFIG, -1;
		if (kj_len(&ranges) == 0 || kj_len(&ranges) > HL_MAX_SETS)
			return cni_fail(err, CNI_ERR_CONFIG, "ipam.ranges: needs 1 to %d range sets", HL_MAX_SETS);
		for (size_t i = 0; i < kj_len(&ranges); i++) {
			struct kj set;
			kj_index(&ranges, i, &set);
			if (kj_expect_array(&set, &err->k) < 0)
				return err->code = CNI_ERR_CONFIG, -1;
			if (kj_len(&set) == 0 || kj_len(&set) > HL_MAX_RANGES)
				return cni_fail(err, CNI_ERR_CONFIG, "%s: needs 1 to %d ranges", set.path, HL_MAX_RANGES);
			struct hl_set *s = &c->sets[c->n_sets++];
			for (size_t j = 0; j < kj_len(&set); j++) {
				struct kj ro;
				kj_index(&set, j, &ro);
				if (parse_range(&ro, &s->r[s->n], err) < 0)
					return -1;
				if (s->r[s->n].subnet.family != s->r[0].subnet.family)
					return cni_fail(err, CNI_ERR_CONFIG, "%s: mixes IPv4 and IPv6 in one range set", set.path);
				s->n++;
			}
		}
	} else {
		/* the reference's older single-range form: subnet/rangeStart/rangeEnd/gateway in ipam */
		if (kj_field(&ipam, "subnet", &f, &err->k) <= 0)
			return cni_fail(err, CNI_ERR_CONFIG, "ipam.ranges: required field is missing (or ipam.subnet)");
		c->n_sets = 1;
		c->sets[0].n = 1;
		if (parse_range(&ipam, &c->sets[0].r[0], err) < 0)
			return -1;
	}
	/* No address may be handed out by two ranges. */
	for (size_t a = 0; a < c->n_sets; a++)
		for (size_t i = 0; i < c->sets[a].n; i++)
			for (size_t b = a; b < c->n_sets; b++)
				for (size_t j = (b == a ? i + 1 : 0); j < c->sets[b].n; j++)
					if (overlap(&c->sets[a].r[i], &c->sets[b].r[j])) {
						char x[CNI_IP_STRLEN], y[CNI_IP_STRLEN];
						return cni_fail(err, CNI_ERR_CONFIG, "ipam.ranges: range %s (set %zu) overlaps range %s (set %zu)",
								cni_ip_fmt(&c->sets[a].r[i].subnet, true, x), a,
								cni_ip_fmt(&c->sets[b].r[j].subnet, true, y), b);
					}

	struct kj routes;
	if (kj_field(&ipam, "routes", &routes, &err->k) > 0) {
		if (kj_expect_array(&routes, &err->k) < 0)
			return err->code = CNI_ERR_CONFIG, -1;
		for (size_t i = 0; i < kj_len(&routes); i++) {
			struct kj ro;
			kj_index(&routes, i, &ro);
			bool has, has_gw;
			struct cni_ip dst, gw;
			if (kj_expect_object(&ro, &err->k) < 0)
				return err->code = CNI_ERR_CONFIG, -1;
			if (ip_field(&ro, "dst", true, &has, &dst, err) < 0 || ip_field(&ro, "gw", false, &has_gw, &gw, err) < 0)
				return -1;
			if (!has)
				return cni_fail(err, CNI_ERR_CONFIG, "%s.dst: required field is missing", ro.path);
			if (c->n_routes >= CNI_MAX_ROUTES)
				return cni_fail(err, CNI_ERR_CONFIG, "ipam.routes: more than %d routes", CNI_MAX_ROUTES);
			struct cni_route *rt = &c->routes[c->n_routes++];
			memset(rt, 0, sizeof(*rt));
			rt->dst = dst;
			rt->has_gw = has_gw;
			rt->gw = gw;
			rt->mtu = rt->advmss = rt->priority = rt->table = rt->scope = -1;
		}
	}
	return 0;
}
