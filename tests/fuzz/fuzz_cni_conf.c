/* libFuzzer target: a CNI plugin's stdin. Byte 0 picks CNI_COMMAND; the rest is the network
 * configuration, run through the exec protocol (cni_run: cniVersion/cniVersions negotiation,
 * name/type, prevResult, runtimeConfig, GC's valid-attachments) into a plugin whose handlers
 * parse the config as each plugin family does: host-local's ipam object, bridge's fields,
 * portmap's runtimeConfig.portMappings, vxlan's overlay fields. The handlers touch no system state (no netns, no store). */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "bridge/config.h"
#include "cni.h"
#include "host-local/config.h"
#include "portmap/config.h"
#include "vxlan/overlay.h"

static int devnull = -1;

static int parse_all(struct cni_req *req, struct cni_err *err)
{
	struct hl_conf hl = {0};
	struct br_conf br = {0};
	struct vx_conf vx = {0};
	struct cni_err ignored = {0};
	/* Each family's parser sees every input, valid for it or not; as in the plugins, the
	 * struct is freed whatever the parser returned (it owns what it filled on error too). */
	(void)hl_conf_parse(req, &hl, &ignored);
	hl_conf_free(&hl);
	ignored = (struct cni_err){0};
	(void)br_conf_parse(req, &br, &ignored);
	br_conf_free(&br);
	ignored = (struct cni_err){0};
	(void)vx_conf_parse(&req->conf, &vx, &ignored);
	vx_conf_free(&vx);
	ignored = (struct cni_err){0};
	struct mapping pm[PM_MAX];
	size_t n_pm = 0;
	(void)pm_parse_mappings(req, pm, &n_pm, &ignored);
	(void)err;
	return 0;
}

static int fz_add(struct cni_req *req, struct cni_result *ret, struct cni_err *err)
{
	/* Echo prevResult back so the result writer runs on parsed hostile input too. */
	if (parse_all(req, err) < 0)
		return -1;
	if (!req->has_prev)
		return 0;
	const struct cni_result *p = &req->prev;
	for (size_t i = 0; i < p->n_ifaces; i++)
		cni_result_add_iface(ret, p->ifaces[i].name, p->ifaces[i].mac, p->ifaces[i].sandbox, p->ifaces[i].mtu);
	for (size_t i = 0; i < p->n_ips && i < CNI_MAX_IPS; i++) {
		ret->ips[ret->n_ips] = p->ips[i];
		if (ret->ips[ret->n_ips].iface >= (int)ret->n_ifaces)
			ret->ips[ret->n_ips].iface = -1;
		ret->n_ips++;
	}
	for (size_t i = 0; i < p->n_routes; i++)
		cni_result_add_route(ret, &p->routes[i].dst, p->routes[i].has_gw ? &p->routes[i].gw : NULL);
	return 0;
}

static int fz_del(struct cni_req *req, struct cni_err *err) { return parse_all(req, err); }

static const struct cni_plugin fz_plugin = {
	.name = "kelp-fuzz",
	.add = fz_add,
	.del = fz_del,
	.check = fz_del,
	.status = fz_del,
	.gc = fz_del,
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (devnull < 0) {
		perror("/dev/null");
		abort();
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const cmds[] = {"ADD", "DEL", "CHECK", "STATUS", "GC", "VERSION"};
	if (size < 1)
		return 0;
	char cmd[32];
	snprintf(cmd, sizeof(cmd), "CNI_COMMAND=%s", cmds[data[0] % 6]);
	char *const env[] = {cmd, "CNI_CONTAINERID=fuzz0", "CNI_NETNS=/run/netns/kelp-fuzz-none", "CNI_IFNAME=eth0",
			     "CNI_PATH=/nonexistent", "CNI_ARGS=K8S_POD_NAME=p;K8S_POD_NAMESPACE=n", NULL};
	cni_run(&fz_plugin, env, (const char *)data + 1, size - 1, devnull);
	return 0;
}
