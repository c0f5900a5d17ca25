/* `features`: what this binary supports, as the runtime-spec's features.md describes it. Every
 * list comes from the code that implements it, so the answer cannot drift from the truth. */
#include <stdio.h>
#include <string.h>
#include <seccomp.h>

#include "cleanup.h"
#include "container.h"
#include "json.h"
#include "mounts.h"
#include "procattr.h"
#include "security.h"

static void str_array(yajl_gen g, const char *key, const char *const *v)
{
	kg_key(g, key);
	yajl_gen_array_open(g);
	for (size_t i = 0; v && v[i]; i++)
		kg_str(g, v[i]);
	yajl_gen_array_close(g);
}

static void enabled(yajl_gen g, const char *key, bool on)
{
	kg_key(g, key);
	yajl_gen_map_open(g);
	kg_key_bool(g, "enabled", on);
	yajl_gen_map_close(g);
}

char *kelp_features_json(void)
{
	yajl_gen g = kg_new(true);
	yajl_gen_map_open(g);
	kg_key_str(g, "ociVersionMin", "1.0.0");
	kg_key_str(g, "ociVersionMax", KELP_OCI_VERSION);
	str_array(g, "hooks", kelp_hook_names);
	cleanup_strv char **opts = mount_option_names();
	str_array(g, "mountOptions", (const char *const *)opts);

	kg_key(g, "linux");
	yajl_gen_map_open(g);
	str_array(g, "namespaces", ns_type_names_null);
	cleanup_strv char **caps = caps_known_names();
	str_array(g, "capabilities", (const char *const *)caps);
	kg_key(g, "cgroup");
	yajl_gen_map_open(g);
	kg_key_bool(g, "v1", true);
	kg_key_bool(g, "v2", true);
	kg_key_bool(g, "systemd", false);
	kg_key_bool(g, "systemdUser", false);
	kg_key_bool(g, "rdma", false);
	yajl_gen_map_close(g);
	kg_key(g, "seccomp");
	yajl_gen_map_open(g);
	kg_key_bool(g, "enabled", true);
	str_array(g, "actions", seccomp_action_names);
	str_array(g, "operators", seccomp_op_names);
	kg_key(g, "archs");
	yajl_gen_array_open(g);
	for (size_t i = 0; seccomp_arch_names[i]; i++)
		if (seccomp_arch_supported(seccomp_arch_names[i]))
			kg_str(g, seccomp_arch_names[i]);
	yajl_gen_array_close(g);
	str_array(g, "knownFlags", seccomp_flag_names);
	str_array(g, "supportedFlags", seccomp_flag_names);
	yajl_gen_map_close(g);
	enabled(g, "apparmor", false);
	enabled(g, "selinux", false);
	enabled(g, "intelRdt", false);
	enabled(g, "netDevices", true);
	kg_key(g, "memoryPolicy");
	yajl_gen_map_open(g);
	str_array(g, "modes", mempolicy_mode_names);
	str_array(g, "flags", mempolicy_flag_names);
	yajl_gen_map_close(g);
	kg_key(g, "mountExtensions");
	yajl_gen_map_open(g);
	enabled(g, "idmap", true);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);

	kg_key(g, "annotations");
	yajl_gen_map_open(g);
	const struct scmp_version *v = seccomp_version();
	char ver[32];
	snprintf(ver, sizeof(ver), "%u.%u.%u", v ? v->major : 0, v ? v->minor : 0, v ? v->micro : 0);
	kg_key_str(g, "io.github.seccomp.libseccomp.version", ver);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	return kg_finish(g, NULL);
}
