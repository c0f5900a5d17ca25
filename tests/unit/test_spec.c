/* config.json parsing: every field kelp reads, and errors that name the JSON path. Also the
 * small parsers next to it: mount options, signals, container ids. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>

#include <cmocka.h>

#include "container.h"
#include "internal.h"
#include "mounts.h"
#include "spec.h"
#include "sysctl.h"

static const char full[] = "{"
	"\"ociVersion\": \"1.0.2\","
	"\"process\": {\"terminal\": true, \"consoleSize\": {\"height\": 24, \"width\": 80},"
	"  \"user\": {\"uid\": 1000, \"gid\": 1001, \"umask\": 18, \"additionalGids\": [5, 6]},"
	"  \"args\": [\"sh\", \"-c\", \"true\"], \"env\": [\"PATH=/bin\", \"A=b\"], \"cwd\": \"/tmp\","
	"  \"capabilities\": {\"bounding\": [\"CAP_KILL\"], \"effective\": [\"CAP_KILL\"], \"ambient\": []},"
	"  \"rlimits\": [{\"type\": \"RLIMIT_NOFILE\", \"soft\": 512, \"hard\": 1024}],"
	"  \"noNewPrivileges\": true, \"oomScoreAdj\": 100},"
	"\"root\": {\"path\": \"rootfs\", \"readonly\": true},"
	"\"hostname\": \"h\", \"domainname\": \"d\","
	"\"mounts\": [{\"destination\": \"/proc\", \"type\": \"proc\", \"source\": \"proc\"},"
	"  {\"destination\": \"/data\", \"type\": \"bind\", \"source\": \"/srv\", \"options\": [\"rbind\", \"ro\"]}],"
	"\"annotations\": {\"a\": \"1\"},"
	"\"linux\": {"
	"  \"namespaces\": [{\"type\": \"pid\"}, {\"type\": \"network\", \"path\": \"/run/netns/x\"}, {\"type\": \"user\"}, {\"type\": \"uts\"}, {\"type\": \"mount\"}],"
	"  \"uidMappings\": [{\"containerID\": 0, \"hostID\": 100000, \"size\": 65536}],"
	"  \"gidMappings\": [{\"containerID\": 0, \"hostID\": 100000, \"size\": 65536}],"
	"  \"devices\": [{\"type\": \"c\", \"path\": \"/dev/fuse\", \"major\": 10, \"minor\": 229, \"fileMode\": 438}],"
	"  \"cgroupsPath\": \"/a/b\","
	"  \"resources\": {\"devices\": [{\"allow\": false, \"access\": \"rwm\"}, {\"allow\": true, \"type\": \"c\", \"major\": 1, \"minor\": 3, \"access\": \"rw\"}],"
	"    \"memory\": {\"limit\": 67108864, \"swap\": 134217728},"
	"    \"cpu\": {\"shares\": 512, \"quota\": 50000, \"period\": 100000, \"cpus\": \"0-1\"},"
	"    \"pids\": {\"limit\": 32},"
	"    \"hugepageLimits\": [{\"pageSize\": \"2MB\", \"limit\": 2097152}],"
	"    \"unified\": {\"memory.high\": \"1G\"}},"
	"  \"rootfsPropagation\": \"rslave\","
	"  \"maskedPaths\": [\"/proc/kcore\"], \"readonlyPaths\": [\"/proc/sys\"],"
	"  \"seccomp\": {\"defaultAction\": \"SCMP_ACT_ALLOW\", \"architectures\": [\"SCMP_ARCH_X86_64\"],"
	"    \"syscalls\": [{\"names\": [\"mkdir\"], \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": 38,"
	"      \"args\": [{\"index\": 1, \"value\": 7, \"valueTwo\": 0, \"op\": \"SCMP_CMP_EQ\"}]}]}"
	"}}";

static void test_full_config(void **state)
{
	(void)state;
	struct spec *s = NULL;
	struct kelp_err err = { 0 };
	assert_int_equal(spec_parse(full, strlen(full), "config.json", &s, &err), 0);
	assert_string_equal(s->oci_version, "1.0.2");
	assert_true(s->process.terminal);
	assert_int_equal(s->process.console_width, 80);
	assert_int_equal(s->process.user.uid, 1000);
	assert_int_equal(s->process.user.gid, 1001);
	assert_true(s->process.user.has_umask);
	assert_int_equal(s->process.user.umask, 18);
	assert_int_equal(s->process.user.n_additional_gids, 2);
	assert_string_equal(s->process.args[2], "true");
	assert_null(s->process.args[3]);
	assert_string_equal(s->process.cwd, "/tmp");
	assert_string_equal(s->process.caps.bounding[0], "CAP_KILL");
	assert_null(s->process.caps.ambient[0]);
	assert_null(s->process.caps.permitted);
	assert_int_equal(s->process.n_rlimits, 1);
	assert_int_equal(s->process.rlimits[0].resource, RLIMIT_NOFILE);
	assert_int_equal(s->process.rlimits[0].soft, 512);
	assert_true(s->process.no_new_privileges);
	assert_int_equal(s->process.oom_score_adj, 100);
	assert_string_equal(s->root_path, "rootfs");
	assert_true(s->root_readonly);
	assert_string_equal(s->hostname, "h");
	assert_int_equal(s->n_mounts, 2);
	assert_string_equal(s->mounts[1].source, "/srv");
	assert_string_equal(s->annotation_keys[0], "a");
	const struct spec_linux *l = &s->linux_;
	assert_true(l->ns[NS_PID].present);
	assert_null(l->ns[NS_PID].path);
	assert_string_equal(l->ns[NS_NET].path, "/run/netns/x");
	assert_false(l->ns[NS_IPC].present);
	assert_int_equal(l->uid_mappings[0].host_id, 100000);
	assert_int_equal(l->devices[0].major, 10);
	assert_int_equal(l->devices[0].file_mode, 438);
	assert_string_equal(l->cgroups_path, "/a/b");
	assert_int_equal(l->resources.n_devices, 2);
	assert_false(l->resources.devices[0].allow);
	assert_int_equal(l->resources.devices[0].major, -1);
	assert_string_equal(l->resources.devices[1].access, "rw");
	assert_int_equal(l->resources.memory.limit, 67108864);
	assert_true(l->resources.memory.has_swap);
	assert_false(l->resources.memory.has_reservation);
	assert_int_equal(l->resources.cpu.shares, 512);
	assert_string_equal(l->resources.cpu.cpus, "0-1");
	assert_int_equal(l->resources.pids.limit, 32);
	assert_string_equal(l->resources.hugetlb[0].page_size, "2MB");
	assert_string_equal(l->resources.unified_values[0], "1G");
	assert_string_equal(l->rootfs_propagation, "rslave");
	assert_string_equal(l->seccomp->syscalls[0].args[0].op, "SCMP_CMP_EQ");
	assert_int_equal(l->seccomp->syscalls[0].errno_ret, 38);
	assert_int_equal(spec_validate(s, &err), 0);
	spec_free(s);
}

/* Replace the first occurrence of `from` in the full config and expect this error text. */
static void expect_error(const char *from, const char *to, const char *want)
{
	char buf[sizeof(full) + 512];
	const char *at = strstr(full, from);
	assert_non_null(at);
	size_t pre = (size_t)(at - full);
	snprintf(buf, sizeof(buf), "%.*s%s%s", (int)pre, full, to, at + strlen(from));
	struct spec *s = NULL;
	struct kelp_err err = { 0 };
	int r = spec_parse(buf, strlen(buf), "config.json", &s, &err);
	if (r == 0) {
		r = spec_validate(s, &err);
		spec_free(s);
	}
	if (r == 0 || !strstr(err.msg, want))
		fail_msg("%s -> %s: got '%s', want '%s'", from, to, r == 0 ? "success" : err.msg, want);
}

static void test_errors_name_the_path(void **state)
{
	(void)state;
	expect_error("\"limit\": 67108864", "\"limit\": \"big\"",
		     "config.json: linux.resources.memory.limit: expected an integer, got a string");
	expect_error("\"major\": 1,", "\"major\": \"1\",", "linux.resources.devices[1].major: expected an integer");
	expect_error("\"type\": \"network\"", "\"type\": \"netwrk\"",
		     "linux.namespaces[1].type: unknown namespace type 'netwrk'");
	expect_error("\"ociVersion\": \"1.0.2\",", "", "ociVersion: required field is missing");
	expect_error("\"path\": \"rootfs\", ", "", "root.path: required field is missing");
	/* nothing is silently ignored: unknown fields, known ones kelp cannot honour here */
	expect_error("\"path\": \"rootfs\"", "\"paht\": \"rootfs\"", "config.json: root.paht: unknown field");
	expect_error("\"limit\": 67108864", "\"limt\": 67108864", "linux.resources.memory.limt: unknown field");
	expect_error("\"hostname\": \"h\",", "\"hostname\": \"h\", \"windows\": {\"layerFolders\": [\"x\"]},",
		     "windows: not supported: a section for another platform");
	expect_error("\"pids\": {\"limit\": 32},", "\"pids\": {\"limit\": 32}, \"blockIO\": {\"weight\": 10},",
		     "linux.resources.blockIO: not supported");
	expect_error("\"cwd\": \"/tmp\",", "\"cwd\": \"/tmp\", \"apparmorProfile\": \"p\",",
		     "process.apparmorProfile: AppArmor is not enabled on this host");
	expect_error("\"op\": \"SCMP_CMP_EQ\"", "\"op\": \"SCMP_CMP_EQ\", \"x\": 1",
		     "linux.seccomp.syscalls[0].args[0].x: unknown field");
	expect_error("\"cwd\": \"/tmp\",", "", "process.cwd: required field is missing");
	expect_error("\"args\": [\"sh\", \"-c\", \"true\"]", "\"args\": \"sh\"", "process.args: expected an array, got a string");
	expect_error("\"args\": [\"sh\", \"-c\", \"true\"]", "\"args\": []", "process.args: must hold at least one entry");
	expect_error("\"hostID\": 100000", "\"hostID\": -1", "linux.uidMappings[0].hostID: expected a non-negative integer");
	expect_error("\"hostID\": 100000", "\"hostID\": 4294967296", "linux.uidMappings[0].hostID: integer 4294967296 out of range");
	expect_error("\"RLIMIT_NOFILE\"", "\"RLIMIT_FOO\"", "process.rlimits[0].type: unknown rlimit RLIMIT_FOO");
	expect_error("\"soft\": 512", "\"soft\": 2048", "process.rlimits[0]: soft limit above hard limit");
	expect_error("\"rslave\"", "\"sideways\"", "linux.rootfsPropagation: unknown propagation 'sideways'");
	expect_error("\"destination\": \"/data\"", "\"destination\": \"data\"", "mounts[1].destination: data is not an absolute path");
	expect_error("\"type\": \"c\", \"path\"", "\"type\": \"x\", \"path\"", "linux.devices[0].type: expected c, b, u or p");
	expect_error("\"index\": 1", "\"index\": 6", "linux.seccomp.syscalls[0].args[0].index: 6 is above 5");
	expect_error("\"oomScoreAdj\": 100", "\"oomScoreAdj\": 5000", "process.oomScoreAdj: 5000 is outside -1000..1000");
	expect_error("{\"type\": \"user\"}", "{\"type\": \"pid\"}", "namespace 'pid' listed twice");
	expect_error("\"hostname\": \"h\",", "\"hostname\": 5,", "hostname: expected a string, got a number");
	expect_error("{\"type\": \"user\"}", "{\"type\": \"ipc\"}", "linux.uidMappings: id mappings need a user namespace");
}

static void test_malformed(void **state)
{
	(void)state;
	struct spec *s = NULL;
	struct kelp_err err = { 0 };
	const char *bad[] = { "{", "[]", "{\"ociVersion\": \"1\", \"root\": {\"path\": \"r\"}} trailing", "" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(spec_parse(bad[i], strlen(bad[i]), "config.json", &s, &err), -1);
		assert_non_null(strstr(err.msg, "config.json"));
	}
	const char minimal[] = "{\"ociVersion\": \"1.0.0\", \"root\": {\"path\": \"r\"}}";
	assert_int_equal(spec_parse(minimal, strlen(minimal), "config.json", &s, &err), 0);
	assert_false(s->has_process);
	spec_free(s);
}

static void test_mount_options(void **state)
{
	(void)state;
	struct mount_opts o;
	struct kelp_err err = { 0 };
	char *opts[] = { "nosuid", "noexec", "rw", "mode=755", "rslave", "size=64k", "ro", NULL };
	assert_int_equal(mount_opts_parse(opts, &o, &err), 0);
	assert_int_equal(o.flags, MS_NOSUID | MS_NOEXEC | MS_RDONLY);
	assert_int_equal(o.propagation, MS_SLAVE | MS_REC);
	assert_string_equal(o.data, "mode=755,size=64k");
	assert_false(o.bind);
	mount_opts_free(&o);
	char *b[] = { "rbind", "nodev", NULL };
	assert_int_equal(mount_opts_parse(b, &o, &err), 0);
	assert_true(o.bind && o.rbind);
	assert_int_equal(o.flags, MS_NODEV);
	assert_null(o.data);
	mount_opts_free(&o);
	char *c[] = { "a,b", NULL };
	assert_int_equal(mount_opts_parse(c, &o, &err), -1);
	assert_int_equal(propagation_flags("private"), MS_PRIVATE);
	assert_int_equal(propagation_flags("nope"), 0);
}

static void test_signals_and_ids(void **state)
{
	(void)state;
	assert_int_equal(signal_parse("KILL"), SIGKILL);
	assert_int_equal(signal_parse("SIGTERM"), SIGTERM);
	assert_int_equal(signal_parse("sigusr1"), SIGUSR1);
	assert_int_equal(signal_parse("9"), 9);
	assert_int_equal(signal_parse("RTMIN+2"), SIGRTMIN + 2);
	assert_int_equal(signal_parse("NOPE"), -1);
	assert_int_equal(signal_parse("0"), -1);
	assert_int_equal(signal_parse("99"), -1);
	assert_int_equal(signal_parse(""), -1);
	assert_true(kelp_id_is_valid("web-1.a_b+c"));
	assert_false(kelp_id_is_valid("a/b"));
	assert_false(kelp_id_is_valid(".."));
	assert_false(kelp_id_is_valid("."));
	assert_false(kelp_id_is_valid(""));
	assert_false(kelp_id_is_valid("a b"));
	assert_false(kelp_id_is_valid("a\nb"));
}

static void test_default_spec_parses(void **state)
{
	(void)state;
	for (int rootless = 0; rootless < 2; rootless++) {
		char *json = spec_default_json(rootless);
		struct spec *s = NULL;
		struct kelp_err err = { 0 };
		if (spec_parse(json, strlen(json), "default", &s, &err) < 0)
			fail_msg("default spec (rootless=%d): %s", rootless, err.msg);
		assert_int_equal(spec_validate(s, &err), 0);
		assert_int_equal(s->linux_.ns[NS_USER].present, rootless);
		/* no ambient capability that the kernel would not raise (none is inheritable) */
		assert_true(!s->process.caps.inheritable || !s->process.caps.inheritable[0]);
		assert_true(!s->process.caps.ambient || !s->process.caps.ambient[0]);
		spec_free(s);
		free(json);
	}
}

static int sysctl_one(const char *ns_json, const char *key, const char *value, struct kelp_err *err)
{
	char buf[1024];
	snprintf(buf, sizeof(buf),
		 "{\"ociVersion\": \"1.0.0\", \"root\": {\"path\": \"r\"}, \"linux\": {\"namespaces\": %s, "
		 "\"sysctl\": {\"%s\": \"%s\"}}}",
		 ns_json, key, value);
	struct spec *s = NULL;
	if (spec_parse(buf, strlen(buf), "config.json", &s, err) < 0)
		return -2;
	int r = sysctl_validate(s, err);
	spec_free(s);
	return r;
}

static void test_sysctl_rules(void **state)
{
	(void)state;
	struct kelp_err err = { 0 };
	const char *all = "[{\"type\": \"network\"}, {\"type\": \"ipc\"}, {\"type\": \"uts\"}]";
	assert_int_equal(sysctl_one(all, "net.ipv4.ip_forward", "1", &err), 0);
	assert_int_equal(sysctl_one(all, "net/ipv4/ping_group_range", "0 0", &err), 0);
	assert_int_equal(sysctl_one(all, "kernel.shm_rmid_forced", "1", &err), 0);
	assert_int_equal(sysctl_one(all, "fs.mqueue.msg_max", "10", &err), 0);
	assert_int_equal(sysctl_one(all, "kernel.hostname", "x", &err), 0);
	/* global sysctls never */
	assert_int_equal(sysctl_one(all, "kernel.core_pattern", "x", &err), -1);
	assert_non_null(strstr(err.msg, "not a namespaced sysctl"));
	assert_int_equal(sysctl_one(all, "vm.overcommit_memory", "1", &err), -1);
	/* a namespaced one without the namespace */
	assert_int_equal(sysctl_one("[{\"type\": \"ipc\"}]", "net.ipv4.ip_forward", "1", &err), -1);
	assert_non_null(strstr(err.msg, "needs the container's own network namespace"));
	assert_int_equal(sysctl_one("[{\"type\": \"network\"}]", "kernel.shmmax", "1", &err), -1);
	/* a joined namespace that is the runtime's own is the host's */
	assert_int_equal(sysctl_one("[{\"type\": \"network\", \"path\": \"/proc/self/ns/net\"}]",
				    "net.ipv4.ip_forward", "1", &err), -1);
	/* smuggled settings and hostile names */
	assert_int_equal(sysctl_one(all, "kernel.shm_rmid_forced", "1+kernel.core_pattern=|/tmp/x", &err), -1);
	assert_non_null(strstr(err.msg, "is not a single setting"));
	assert_int_equal(sysctl_one(all, "kernel.shm_rmid_forced", "1\\nkernel.core_pattern=x", &err), -1);
	assert_int_equal(sysctl_one(all, "net/ipv4/../../kernel/core_pattern", "x", &err), -1);
	assert_int_equal(sysctl_one(all, "net.ipv4.ip_forward ", "1", &err), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_config),	   cmocka_unit_test(test_errors_name_the_path),
		cmocka_unit_test(test_malformed),	   cmocka_unit_test(test_mount_options),
		cmocka_unit_test(test_signals_and_ids),    cmocka_unit_test(test_default_spec_parses),
		cmocka_unit_test(test_sysctl_rules),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
