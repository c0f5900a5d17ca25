/* The OCI runtime-spec config.json (1.3) as C structs, and its parser. The parser checks types
 * and required fields and reports the JSON path of the first bad field; semantic checks that
 * need the bundle (rootfs inside it, ...) live in spec_validate(). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"

enum ns_type { NS_PID, NS_NET, NS_MNT, NS_IPC, NS_UTS, NS_USER, NS_CGROUP, NS_TIME, NS_COUNT };

struct spec_namespace {
	bool present;
	char *path; /* join this namespace instead of creating one */
};

struct spec_idmap {
	uint32_t container_id, host_id, size;
};

struct spec_mount {
	char *destination;
	char *type;
	char *source;
	char **options;
	struct spec_idmap *uid_mappings, *gid_mappings; /* idmapped mounts (issue 4) */
	size_t n_uid_mappings, n_gid_mappings;
};

struct spec_rlimit {
	int resource; /* RLIMIT_* */
	char *name;
	uint64_t soft, hard;
};

struct spec_caps {
	char **bounding, **effective, **inheritable, **permitted, **ambient;
};

struct spec_user {
	uint32_t uid, gid;
	bool has_umask;
	uint32_t umask;
	uint32_t *additional_gids;
	size_t n_additional_gids;
	char *username; /* for exec --user NAME */
};

struct spec_scheduler {
	bool present;
	char *policy;
	int32_t nice, priority;
	char **flags;
	uint64_t runtime, deadline, period;
};

struct spec_io_priority {
	bool present;
	char *klass;
	int32_t priority;
};

struct spec_process {
	bool terminal;
	uint32_t console_height, console_width;
	struct spec_user user;
	char **args;
	char **env;
	char *cwd;
	bool has_caps;
	struct spec_caps caps;
	struct spec_rlimit *rlimits;
	size_t n_rlimits;
	bool no_new_privileges;
	bool has_oom_score_adj;
	int32_t oom_score_adj;
	char *apparmor_profile;
	char *selinux_label;
	struct spec_scheduler sched;
	struct spec_io_priority ioprio;
	char *affinity_initial, *affinity_final; /* execCPUAffinity (exec only) */
};

struct spec_device {
	char type; /* c b u p */
	char *path;
	int64_t major, minor;
	bool has_mode, has_uid, has_gid;
	uint32_t file_mode, uid, gid;
};

struct spec_device_rule {
	bool allow;
	char type; /* a c b */
	int64_t major, minor; /* -1 = wildcard */
	char access[4];
};

struct spec_hugetlb {
	char *page_size;
	uint64_t limit;
	bool has_rsvp; /* unused; kept for v2 rsvd files */
};

struct spec_memory {
	bool has_limit, has_reservation, has_swap, has_kernel, has_kernel_tcp, has_swappiness;
	int64_t limit, reservation, swap, kernel, kernel_tcp;
	uint64_t swappiness;
	bool has_disable_oom_killer, disable_oom_killer;
	bool has_use_hierarchy, use_hierarchy;
	bool check_before_update;
};

struct spec_cpu {
	bool has_shares, has_quota, has_burst, has_period, has_rt_runtime, has_rt_period, has_idle;
	uint64_t shares, burst, period, rt_period;
	int64_t quota, rt_runtime, idle;
	char *cpus, *mems;
};

struct spec_pids {
	bool has_limit;
	int64_t limit;
};

struct spec_resources {
	struct spec_device_rule *devices;
	size_t n_devices;
	bool has_memory, has_cpu, has_pids;
	struct spec_memory memory;
	struct spec_cpu cpu;
	struct spec_pids pids;
	struct spec_hugetlb *hugetlb;
	size_t n_hugetlb;
	/* v2 raw files ("memory.high": "1G"), written as given on cgroup v2 */
	char **unified_keys, **unified_values;
	bool keep_devices; /* `update`: leave the device rules as they are */
};

enum seccomp_op { SCMP_OP_NE_, SCMP_OP_LT_, SCMP_OP_LE_, SCMP_OP_EQ_, SCMP_OP_GE_, SCMP_OP_GT_, SCMP_OP_MASKED_EQ_ };

struct spec_seccomp_arg {
	uint32_t index;
	uint64_t value, value_two;
	char *op; /* "SCMP_CMP_EQ", ... */
};

struct spec_seccomp_syscall {
	char **names;
	char *action; /* "SCMP_ACT_ERRNO", ... */
	bool has_errno_ret;
	uint32_t errno_ret;
	struct spec_seccomp_arg *args;
	size_t n_args;
};

struct spec_seccomp {
	char *default_action;
	bool has_default_errno_ret;
	uint32_t default_errno_ret;
	char **architectures;
	char **flags;
	char *listener_path;
	char *listener_metadata;
	struct spec_seccomp_syscall *syscalls;
	size_t n_syscalls;
};

struct spec_time_offset {
	char *clock; /* "monotonic" or "boottime" */
	int64_t secs;
	uint32_t nanosecs;
};

struct spec_linux {
	struct spec_namespace ns[NS_COUNT];
	struct spec_idmap *uid_mappings, *gid_mappings;
	size_t n_uid_mappings, n_gid_mappings;
	struct spec_device *devices;
	size_t n_devices;
	char *cgroups_path;
	bool has_resources;
	struct spec_resources resources;
	char *rootfs_propagation;
	char **masked_paths;
	char **readonly_paths;
	char *mount_label;
	char **sysctl_keys, **sysctl_values;
	/* netDevices: host interface names, and their names in the container (NULL: the same) */
	char **netdev_host, **netdev_name;
	size_t n_netdevs;
	struct spec_seccomp *seccomp;
	bool has_personality;
	char *personality_domain;
	char **personality_flags;
	bool has_mempolicy;
	char *mempolicy_mode, *mempolicy_nodes;
	char **mempolicy_flags;
	struct spec_time_offset *time_offsets;
	size_t n_time_offsets;
	bool has_intel_rdt;
};

enum hook_kind { HOOK_PRESTART, HOOK_CREATE_RUNTIME, HOOK_CREATE_CONTAINER, HOOK_START_CONTAINER, HOOK_POSTSTART,
		 HOOK_POSTSTOP, HOOK_COUNT };

struct spec_hook {
	char *path;
	char **args;
	char **env;
	bool has_timeout;
	int32_t timeout; /* seconds */
};

extern const char *const kelp_hook_names[HOOK_COUNT + 1]; /* "prestart", ... (config.json) */

struct spec {
	char *oci_version;
	char *root_path;
	bool root_readonly;
	bool has_process;
	struct spec_process process;
	char *hostname;
	char *domainname;
	struct spec_mount *mounts;
	size_t n_mounts;
	char **annotation_keys, **annotation_values;
	bool has_linux;
	struct spec_linux linux_;
	struct spec_hook *hooks[HOOK_COUNT];
	size_t n_hooks[HOOK_COUNT];
};

extern const char *const ns_type_names[NS_COUNT];      /* "pid", "network", ... (config.json) */
extern const char *const ns_type_names_null[NS_COUNT + 1];
extern const char *const ns_proc_names[NS_COUNT];      /* "pid", "net", ... (/proc/PID/ns) */
extern const int ns_clone_flags[NS_COUNT];

/* Parse config.json text. `what` names the source in errors ("config.json"). */
int spec_parse(const char *buf, size_t len, const char *what, struct spec **ret, struct kelp_err *err);
int spec_load(const char *bundle, struct spec **ret, struct kelp_err *err);
/* The raw text of BUNDLE/config.json. */
int spec_read(const char *bundle, char **ret_buf, size_t *ret_len, struct kelp_err *err);
void spec_free(struct spec *s);

/* Parse a linux.resources object alone (update --resources FILE). */
int spec_parse_resources(const char *buf, size_t len, const char *what, struct spec_resources *ret, struct kelp_err *err);
void spec_resources_free(struct spec_resources *r);

/* Parse a process object alone (exec --process FILE). */
int spec_parse_process(const char *buf, size_t len, const char *what, struct spec_process *ret, struct kelp_err *err);
void spec_process_free(struct spec_process *p);

/* Checks that need more than the JSON: namespace combinations, id mappings, rlimits. */
int spec_validate(const struct spec *s, struct kelp_err *err);

/* The default config.json of `kelp spec` (rootless: with a user namespace). */
char *spec_default_json(bool rootless);

int rlimit_from_name(const char *name);
