/* Parsing runtimeConfig.portMappings: its own file so the fuzz target reaches it. */
#include <netinet/in.h>
#include <string.h>
#include <strings.h>

#include "cleanup.h"
#include "config.h"

/* Keys as Go's encoding/json matches them, case-insensitively: containerd 1.6 (go-cni) sends
 * "HostPort", "ContainerPort", "Protocol", "HostIP". */
static const char *ci_key(const struct kj *obj, const char *key)
{
	for (size_t i = 0; YAJL_IS_OBJECT(obj->v) && i < obj->v->u.object.len; i++)
		if (strcasecmp(obj->v->u.object.keys[i], key) == 0)
			return obj->v->u.object.keys[i];
	return key;
}

int pm_parse_mappings(const struct cni_req *req, struct mapping *ret, size_t *ret_n, struct cni_err *err)
{
	struct kj arr;
	*ret_n = 0;
	if (!req->runtime_config.v || kj_field(&req->runtime_config, "portMappings", &arr, &err->k) <= 0)
		return 0;
	if (kj_expect_array(&arr, &err->k) < 0)
		return err->code = CNI_ERR_CONFIG, -1;
	if (kj_len(&arr) > PM_MAX)
		return cni_fail(err, CNI_ERR_CONFIG, "%s: more than %d mappings", arr.path, PM_MAX);
	for (size_t i = 0; i < kj_len(&arr); i++) {
		struct kj m;
		kj_index(&arr, i, &m);
		int64_t hp, cp;
		bool has_hp = false, has_cp = false;
		cleanup_free char *proto = NULL, *hip = NULL;
		if (kj_expect_object(&m, &err->k) < 0 || kj_opt_int64(&m, ci_key(&m, "hostPort"), &hp, &has_hp, &err->k) < 0 ||
		    kj_opt_int64(&m, ci_key(&m, "containerPort"), &cp, &has_cp, &err->k) < 0 ||
		    kj_opt_string(&m, ci_key(&m, "protocol"), &proto, &err->k) < 0 ||
		    kj_opt_string(&m, ci_key(&m, "hostIP"), &hip, &err->k) < 0)
			return err->code = CNI_ERR_CONFIG, -1;
		if (!has_hp || hp < 1 || hp > 65535)
			return cni_fail(err, CNI_ERR_CONFIG, "%s.hostPort: needs a port 1-65535, got %lld", m.path,
					has_hp ? (long long)hp : 0LL);
		if (!has_cp || cp < 1 || cp > 65535)
			return cni_fail(err, CNI_ERR_CONFIG, "%s.containerPort: needs a port 1-65535, got %lld", m.path,
					has_cp ? (long long)cp : 0LL);
		struct mapping *x = &ret[*ret_n];
		memset(x, 0, sizeof(*x));
		x->host_port = (uint16_t)hp;
		x->container_port = (uint16_t)cp;
		if (!proto || strcasecmp(proto, "tcp") == 0)
			x->proto = IPPROTO_TCP;
		else if (strcasecmp(proto, "udp") == 0)
			x->proto = IPPROTO_UDP;
		else if (strcasecmp(proto, "sctp") == 0)
			x->proto = IPPROTO_SCTP;
		else
			return cni_fail(err, CNI_ERR_CONFIG, "%s.protocol: \"%s\" is not tcp, udp or sctp", m.path, proto);
		if (hip && *hip && strcmp(hip, "0.0.0.0") != 0 && strcmp(hip, "::") != 0) {
			if (cni_ip_parse(hip, false, &x->host_ip) < 0 || x->host_ip.prefix != -1)
				return cni_fail(err, CNI_ERR_CONFIG, "%s.hostIP: \"%s\" is not an IP address", m.path, hip);
			x->has_host_ip = true;
		}
		(*ret_n)++;
	}
	return 0;
}
