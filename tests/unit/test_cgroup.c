/* Unit tests of the cgroup layer's pure parts: path resolution, conversions, the device eBPF
 * program builder, and mode detection on this machine. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>

#include "cgroup-internal.h"
#include "cleanup.h"
#include "fs.h"

static char *resolve(const char *cgroups_path, const char *id, const char *own, struct kelp_err *err)
{
	char *p = NULL;
	if (cg_resolve_path(cgroups_path, id, own, &p, err) < 0)
		return NULL;
	return p;
}

static void test_resolve_default(void **state)
{
	(void)state;
	struct kelp_err err = {0};
	cleanup_free char *a = resolve(NULL, "web", "/x", &err);
	cleanup_free char *b = resolve("", "web", "/x", &err);
	assert_string_equal(a, "/kelp/web");
	assert_string_equal(b, "/kelp/web");
	assert_null(resolve(NULL, "a/b", "/", &err));
	assert_null(resolve(NULL, "..", "/", &err));
}

static void test_resolve_absolute(void **state)
{
	(void)state;
	struct kelp_err err = {0};
	cleanup_free char *a = resolve("/a//b/", "id", "/own", &err);
	cleanup_free char *b = resolve("/a/./b", "id", "/own", &err);
	assert_string_equal(a, "/a/b");
	assert_string_equal(b, "/a/b");
	assert_null(resolve("/", "id", "/own", &err));
	assert_non_null(strstr(err.msg, "root cgroup"));
	assert_null(resolve("//./", "id", "/own", &err));
	assert_null(resolve("/a/\nb", "id", "/own", &err));
}

static void test_resolve_relative(void **state)
{
	(void)state;
	struct kelp_err err = {0};
	cleanup_free char *a = resolve("c/d", "id", "/x/y", &err);
	cleanup_free char *b = resolve("c/d", "id", "/", &err);
	cleanup_free char *c = resolve("./c", "id", "/x", &err);
	assert_string_equal(a, "/x/y/c/d");
	assert_string_equal(b, "/c/d");
	assert_string_equal(c, "/x/c");
}

static void test_resolve_dotdot_refused(void **state)
{
	(void)state;
	struct kelp_err err = {0};
	assert_null(resolve("../x", "id", "/a/b", &err));
	assert_non_null(strstr(err.msg, "\"..\" is not allowed"));
	assert_null(resolve("a/../../x", "id", "/a/b", &err));
	assert_null(resolve("/a/../b", "id", "/", &err));
	assert_null(resolve("a/..", "id", "/", &err));
	struct kelp_cgroup *cg = NULL;
	assert_int_equal(cgroup_open("x/../../y", "id", &cg, &err), -1);
	assert_null(cg);
	assert_int_equal(cgroup_reopen("/a/../b", &cg, &err), -1);
	assert_int_equal(cgroup_reopen("relative", &cg, &err), -1);
}

static const char proc_hybrid[] = "9:name=systemd:/\n8:pids:/p\n4:memory:/process_api/abc\n3:cpuset:/\n"
				  "1:cpu:/\n0::/unified/path\n";

static void test_own_cgroup(void **state)
{
	(void)state;
	struct cg_hier mem = { .opts = "memory", .mnt_root = "/" };
	struct cg_hier cpu = { .opts = "cpu", .mnt_root = "/" };
	struct cg_hier sysd = { .opts = "name=systemd", .mnt_root = "/" };
	struct cg_hier uni = { .opts = "", .mnt_root = "/", .v2 = true };
	struct cg_hier both = { .opts = "cpuacct,cpu", .mnt_root = "/" };
	struct cg_hier bound = { .opts = "pids", .mnt_root = "/p" };
	struct cg_hier none = { .opts = "freezer", .mnt_root = "/" };
	char *p;
	/* each hierarchy has its own line: the caller sits at a different place in each */
	assert_string_equal(p = cg_own_in(proc_hybrid, &mem), "/process_api/abc");
	free(p);
	assert_string_equal(p = cg_own_in(proc_hybrid, &cpu), "/");
	free(p);
	assert_string_equal(p = cg_own_in(proc_hybrid, &sysd), "/");
	free(p);
	assert_string_equal(p = cg_own_in(proc_hybrid, &uni), "/unified/path");
	free(p);
	/* a combined mount matches whatever order the kernel lists it in */
	assert_string_equal(p = cg_own_in("5:cpu,cpuacct:/c\n", &both), "/c");
	free(p);
	/* a hierarchy mounted from a sub-cgroup shows paths below its root */
	assert_string_equal(p = cg_own_in(proc_hybrid, &bound), "/");
	free(p);
	assert_null(cg_own_in(proc_hybrid, &none));
	assert_null(cg_own_in("0::/only\n", &mem));
}

static void test_strip_root(void **state)
{
	(void)state;
	cleanup_free char *a = cg_strip_root("/a/b/c", "/a/b");
	cleanup_free char *b = cg_strip_root("/a/b", "/a/b");
	cleanup_free char *c = cg_strip_root("/a/bc", "/a/b");
	cleanup_free char *d = cg_strip_root("/x", "/");
	assert_string_equal(a, "/c");
	assert_string_equal(b, "/");
	assert_string_equal(c, "/a/bc");
	assert_string_equal(d, "/x");
}

static void test_list_has(void **state)
{
	(void)state;
	assert_true(cg_list_has("cpu,cpuacct", "cpu"));
	assert_true(cg_list_has("cpu,cpuacct", "cpuacct"));
	assert_false(cg_list_has("cpuacct", "cpu"));
	assert_true(cg_list_has("name=systemd", "name=systemd"));
	assert_false(cg_list_has("", "cpu"));
}

static void test_shares_to_weight(void **state)
{
	(void)state;
	assert_int_equal(cg_shares_to_weight(0), 0);
	assert_int_equal(cg_shares_to_weight(2), 1);
	assert_int_equal(cg_shares_to_weight(1), 1);
	assert_int_equal(cg_shares_to_weight(512), 20);
	assert_int_equal(cg_shares_to_weight(1024), 39);
	assert_int_equal(cg_shares_to_weight(262144), 10000);
	assert_int_equal(cg_shares_to_weight(1000000), 10000);
}

static void test_swap_conversion(void **state)
{
	(void)state;
	struct kelp_err err = {0};
	bool set;
	int64_t v;
	assert_int_equal(cg_swap_to_v2(0, 100, &set, &v, &err), 0);
	assert_false(set);
	assert_int_equal(cg_swap_to_v2(-1, 100, &set, &v, &err), 0);
	assert_true(set);
	assert_int_equal(v, -1);
	assert_int_equal(cg_swap_to_v2(0, -1, &set, &v, &err), 0);
	assert_true(set);
	assert_int_equal(v, -1);
	assert_int_equal(cg_swap_to_v2(300, 100, &set, &v, &err), 0);
	assert_true(set);
	assert_int_equal(v, 200);
	/* swap == limit: no swap at all, which must still be written */
	assert_int_equal(cg_swap_to_v2(100, 100, &set, &v, &err), 0);
	assert_true(set);
	assert_int_equal(v, 0);
	assert_int_equal(cg_swap_to_v2(50, 100, &set, &v, &err), -1);
	assert_non_null(strstr(err.msg, ">= the memory limit"));
	assert_int_equal(cg_swap_to_v2(100, 0, &set, &v, &err), -1);
	assert_int_equal(cg_swap_to_v2(100, -1, &set, &v, &err), -1);
	char buf[32];
	cg_v2_mem_value(-1, buf, sizeof(buf));
	assert_string_equal(buf, "max");
	cg_v2_mem_value(67108864, buf, sizeof(buf));
	assert_string_equal(buf, "67108864");
}

static void test_pids_value(void **state)
{
	(void)state;
	char buf[32];
	assert_false(cg_pids_value(0, buf, sizeof(buf)));
	assert_true(cg_pids_value(-1, buf, sizeof(buf)));
	assert_string_equal(buf, "max");
	assert_true(cg_pids_value(32, buf, sizeof(buf)));
	assert_string_equal(buf, "32");
}

static void test_cpu_max(void **state)
{
	(void)state;
	char buf[64];
	assert_true(cg_cpu_max_value(true, 50000, true, 100000, buf, sizeof(buf)));
	assert_string_equal(buf, "50000 100000");
	assert_true(cg_cpu_max_value(true, -1, true, 100000, buf, sizeof(buf)));
	assert_string_equal(buf, "max 100000");
	assert_true(cg_cpu_max_value(true, 50000, false, 0, buf, sizeof(buf)));
	assert_string_equal(buf, "50000");
	assert_true(cg_cpu_max_value(false, 0, true, 20000, buf, sizeof(buf)));
	assert_string_equal(buf, "max 20000");
	assert_false(cg_cpu_max_value(true, 0, true, 0, buf, sizeof(buf)));
	assert_false(cg_cpu_max_value(false, 0, false, 0, buf, sizeof(buf)));
}

static void test_names(void **state)
{
	(void)state;
	assert_true(cg_hugetlb_size_ok("2MB"));
	assert_true(cg_hugetlb_size_ok("1GB"));
	assert_true(cg_hugetlb_size_ok("64KB"));
	assert_false(cg_hugetlb_size_ok("2M"));
	assert_false(cg_hugetlb_size_ok("MB"));
	assert_false(cg_hugetlb_size_ok("2MB/x"));
	assert_false(cg_hugetlb_size_ok(""));
	assert_true(cg_unified_key_ok("memory.high"));
	assert_true(cg_unified_key_ok("hugetlb.2MB.max"));
	assert_false(cg_unified_key_ok("../memory.high"));
	assert_false(cg_unified_key_ok("a/b"));
	assert_false(cg_unified_key_ok(".."));
	assert_false(cg_unified_key_ok(""));
}

/* ---------------------------------------------------------------- devices */

static void test_device_lines(void **state)
{
	(void)state;
	char buf[64];
	struct spec_device_rule r1 = {true, 'c', 1, 3, "rwm"}, r2 = {true, 'c', 136, -1, "rw"},
				r3 = {false, 'a', -1, -1, ""};
	cg_device_rule_line(&r1, buf, sizeof(buf));
	assert_string_equal(buf, "c 1:3 rwm");
	cg_device_rule_line(&r2, buf, sizeof(buf));
	assert_string_equal(buf, "c 136:* rw");
	cg_device_rule_line(&r3, buf, sizeof(buf));
	assert_string_equal(buf, "a *:* rwm");
	size_t n;
	const struct spec_device_rule *d = cg_default_device_rules(&n);
	assert_int_equal(n, 9);
	assert_int_equal(d[0].major, 1);
	assert_int_equal(d[0].minor, 3);
	assert_int_equal(d[8].major, 136);
	assert_int_equal(d[8].minor, -1);
}

#define PROLOGUE 6

static void assert_exit_with(const struct bpf_insn *p, size_t at, int verdict)
{
	assert_int_equal(p[at].code, BPF_ALU64 | BPF_MOV | BPF_K);
	assert_int_equal(p[at].dst_reg, BPF_REG_0);
	assert_int_equal(p[at].imm, verdict);
	assert_int_equal(p[at + 1].code, BPF_JMP | BPF_EXIT);
}

static void test_bpf_empty(void **state)
{
	(void)state;
	struct kelp_err err = {0};
	struct bpf_insn *p = NULL;
	size_t n = 0;
	assert_int_equal(cg_devices_bpf_build(NULL, 0, &p, &n, &err), 0);
	assert_int_equal(n, PROLOGUE + 2);
	assert_int_equal(p[0].code, BPF_LDX | BPF_MEM | BPF_W);
	assert_int_equal(p[3].code, BPF_ALU | BPF_RSH | BPF_K);
	assert_int_equal(p[3].imm, 16);
	assert_exit_with(p, PROLOGUE, 0);
	free(p);
}

static void test_bpf_defaults(void **state)
{
	(void)state;
	struct kelp_err err = {0};
	struct spec_resources r = {0};
	size_t nr;
	cleanup_free struct spec_device_rule *rules = cg_device_rules(&r, &nr);
	assert_int_equal(nr, 9);
	cleanup_free struct bpf_insn *p = NULL;
	size_t n = 0;
	assert_int_equal(cg_devices_bpf_build(rules, nr, &p, &n, &err), 0);
	/* 8 rules type+major+minor (5 insns), pts type+major (4), default deny (2) */
	assert_int_equal(n, PROLOGUE + 8 * 5 + 4 + 2);
	/* the last rule (pts, 136:*) is tested first */
	const struct bpf_insn *b = p + PROLOGUE;
	assert_int_equal(b[0].code, BPF_JMP | BPF_JNE | BPF_K);
	assert_int_equal(b[0].dst_reg, BPF_REG_2);
	assert_int_equal(b[0].imm, BPF_DEVCG_DEV_CHAR);
	assert_int_equal(b[0].off, 3);
	assert_int_equal(b[1].dst_reg, BPF_REG_4);
	assert_int_equal(b[1].imm, 136);
	assert_int_equal(b[1].off, 2);
	assert_exit_with(b, 2, 1);
	/* then ptmx 5:2 */
	assert_int_equal(b[4].off, 4);
	assert_int_equal(b[5].imm, 5);
	assert_int_equal(b[6].dst_reg, BPF_REG_5);
	assert_int_equal(b[6].imm, 2);
	assert_int_equal(b[6].off, 2);
	assert_exit_with(p, n - 2, 0);
}

static void test_bpf_deny_all_first(void **state)
{
	(void)state;
	struct kelp_err err = {0};
	struct spec_device_rule deny = {false, 'a', -1, -1, "rwm"};
	struct spec_resources r = {.devices = &deny, .n_devices = 1};
	size_t nr;
	cleanup_free struct spec_device_rule *rules = cg_device_rules(&r, &nr);
	cleanup_free struct bpf_insn *p = NULL;
	size_t n = 0;
	assert_int_equal(cg_devices_bpf_build(rules, nr, &p, &n, &err), 0);
	/* the deny-all ends the program: no separate default */
	assert_int_equal(n, PROLOGUE + 8 * 5 + 4 + 2);
	assert_exit_with(p, n - 2, 0);
}

static void test_bpf_allow_all(void **state)
{
	(void)state;
	struct kelp_err err = {0};
	struct spec_device_rule rules[] = {{false, 'c', 1, 3, "rwm"}, {true, 'a', -1, -1, "rwm"}};
	cleanup_free struct bpf_insn *p = NULL;
	size_t n = 0;
	/* allow-all last resets the list: the deny before it can't matter */
	assert_int_equal(cg_devices_bpf_build(rules, 2, &p, &n, &err), 0);
	assert_int_equal(n, PROLOGUE + 2);
	assert_exit_with(p, PROLOGUE, 1);
	free(p);
	p = NULL;
	struct spec_device_rule rules2[] = {{true, 'a', -1, -1, "rwm"}, {false, 'c', 1, 3, "rwm"}};
	assert_int_equal(cg_devices_bpf_build(rules2, 2, &p, &n, &err), 0);
	assert_int_equal(n, PROLOGUE + 5 + 2);
	assert_exit_with(p, PROLOGUE + 3, 0);
	assert_exit_with(p, n - 2, 1);
}

static void test_bpf_partial_access(void **state)
{
	(void)state;
	struct kelp_err err = {0};
	struct spec_device_rule rules[] = {{false, 'b', 8, 0, "w"}, {true, 'c', 10, 200, "rw"}};
	cleanup_free struct bpf_insn *p = NULL;
	size_t n = 0;
	assert_int_equal(cg_devices_bpf_build(rules, 2, &p, &n, &err), 0);
	assert_int_equal(n, PROLOGUE + 8 + 8 + 2);
	const struct bpf_insn *a = p + PROLOGUE; /* allow c 10:200 rw, tested first */
	assert_int_equal(a[0].imm, BPF_DEVCG_DEV_CHAR);
	assert_int_equal(a[0].off, 7);
	assert_int_equal(a[1].code, BPF_ALU | BPF_MOV | BPF_X);
	assert_int_equal(a[2].code, BPF_ALU | BPF_AND | BPF_K);
	assert_int_equal(a[2].imm, ~(BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE));
	assert_int_equal(a[3].code, BPF_JMP | BPF_JNE | BPF_K);
	assert_int_equal(a[3].off, 4);
	assert_exit_with(a, 6, 1);
	const struct bpf_insn *d = a + 8; /* deny b 8:0 w */
	assert_int_equal(d[0].imm, BPF_DEVCG_DEV_BLOCK);
	assert_int_equal(d[2].imm, BPF_DEVCG_ACC_WRITE);
	assert_int_equal(d[3].code, BPF_JMP | BPF_JEQ | BPF_K);
	assert_exit_with(d, 6, 0);
}

static void test_bpf_invalid(void **state)
{
	(void)state;
	struct kelp_err err = {0};
	struct bpf_insn *p = NULL;
	size_t n;
	struct spec_device_rule bad_type = {true, 'u', 1, 3, "rwm"};
	assert_int_equal(cg_devices_bpf_build(&bad_type, 1, &p, &n, &err), -1);
	struct spec_device_rule bad_acc = {true, 'c', 1, 3, "rwx"};
	assert_int_equal(cg_devices_bpf_build(&bad_acc, 1, &p, &n, &err), -1);
	assert_non_null(strstr(err.msg, "rwx"));
	struct spec_device_rule big = {true, 'c', 1LL << 32, 3, "rwm"};
	assert_int_equal(cg_devices_bpf_build(&big, 1, &p, &n, &err), -1);
	assert_null(p);
}

/* The verifier accepts what the builder makes (root only: loading needs CAP_BPF). */
static void test_bpf_verifier(void **state)
{
	(void)state;
	if (geteuid() != 0) {
		print_message("# skip: loading a BPF program needs root\n");
		skip();
	}
	struct kelp_err err = {0};
	struct spec_device_rule rules[] = {{false, 'a', -1, -1, "rwm"}, {true, 'c', 10, 200, "rw"},
					   {false, 'b', 8, -1, "w"}, {true, 'a', 4, -1, "m"}};
	struct spec_resources r = {.devices = rules, .n_devices = ARRAY_SIZE(rules)};
	size_t nr;
	cleanup_free struct spec_device_rule *all = cg_device_rules(&r, &nr);
	for (size_t k = 0; k <= nr; k++) {
		cleanup_free struct bpf_insn *p = NULL;
		size_t n = 0;
		assert_int_equal(cg_devices_bpf_build(all + (nr - k), k, &p, &n, &err), 0);
		union bpf_attr attr;
		memset(&attr, 0, sizeof(attr));
		attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
		attr.insns = (uint64_t)(uintptr_t)p;
		attr.insn_cnt = (uint32_t)n;
		attr.license = (uint64_t)(uintptr_t) "Apache";
		int fd = (int)syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof(attr));
		if (fd < 0)
			fail_msg("BPF_PROG_LOAD of %zu rules (%zu insns): %s", k, n, strerror(errno));
		close(fd);
	}
}

/* ---------------------------------------------------------------- this machine */

/* What mountinfo says, computed apart from cgroup_detect. */
static enum cg_mode mode_from_mountinfo(void)
{
	cleanup_free char *text = NULL;
	assert_int_equal(kelp_read_file_at(AT_FDCWD, "/proc/self/mountinfo", 1 << 24, &text, NULL, NULL), 0);
	const char *root_type = "", *unified_type = "";
	for (char *l = strtok(text, "\n"); l; l = strtok(NULL, "\n")) {
		char mnt[256], type[64];
		const char *dash = strstr(l, " - ");
		if (!dash || sscanf(l, "%*s %*s %*s %*s %255s", mnt) != 1 || sscanf(dash + 3, "%63s", type) != 1)
			continue;
		/* later lines are mounted on top of earlier ones */
		if (strcmp(mnt, "/sys/fs/cgroup") == 0) {
			root_type = strcmp(type, "cgroup2") == 0 ? "cgroup2" : "other";
			unified_type = "";
		} else if (strcmp(mnt, "/sys/fs/cgroup/unified") == 0) {
			unified_type = strcmp(type, "cgroup2") == 0 ? "cgroup2" : "other";
		}
	}
	if (strcmp(root_type, "cgroup2") == 0)
		return CG_V2;
	return strcmp(unified_type, "cgroup2") == 0 ? CG_HYBRID : CG_V1;
}

static void test_detect_machine(void **state)
{
	(void)state;
	struct kelp_err err = {0};
	enum cg_mode m;
	assert_int_equal(cgroup_detect("/sys/fs/cgroup", &m, &err), 0);
	assert_int_equal(m, mode_from_mountinfo());
	assert_int_equal(cgroup_detect("/nonexistent-kelp-cgroup-root", &m, &err), -1);
	assert_non_null(strstr(err.msg, "/nonexistent-kelp-cgroup-root"));
	assert_string_equal(cgroup_mode_name(CG_HYBRID), "hybrid");
}

static void test_open_machine(void **state)
{
	(void)state;
	struct kelp_err err = {0};
	struct kelp_cgroup *cg = NULL;
	assert_int_equal(cgroup_open(NULL, "unit-open", &cg, &err), 0);
	assert_string_equal(cgroup_path(cg), "/kelp/unit-open");
	assert_int_equal(cgroup_mode(cg), mode_from_mountinfo());
	assert_true(cg->n_hier > 0);
	if (cg->mode == CG_HYBRID) {
		assert_true(cg->hier[cg->n_hier - 1].v2);
		assert_string_equal(cg->hier[cg->n_hier - 1].name, "unified");
	}
	if (cg->mode != CG_V2) {
		const struct cg_hier *mem = cg_v1_find(cg, "memory");
		assert_non_null(mem);
		assert_string_equal(mem->mnt, "/sys/fs/cgroup/memory");
		assert_non_null(cg_v1_find(cg, "cpu"));
		for (size_t i = 0; i < cg->n_links; i++)
			assert_null(strchr(cg->links[i].target, '/'));
	} else {
		assert_int_equal(cg->n_hier, 1);
	}
	cgroup_free(cg);

	/* relative: under our own cgroup, in each hierarchy its own line; the saved form brings
	 * every hierarchy's path back */
	cleanup_free char *text = NULL;
	assert_int_equal(kelp_read_file_at(AT_FDCWD, "/proc/self/cgroup", 1 << 20, &text, NULL, &err), 0);
	assert_int_equal(cgroup_open("rel/x", "id", &cg, &err), 0);
	cleanup_free char *saved = cgroup_saved_path(cg);
	struct kelp_cgroup *cg2 = NULL;
	assert_int_equal(cgroup_reopen(saved, &cg2, &err), 0);
	assert_int_equal(cg->n_hier, cg2->n_hier);
	for (size_t i = 0; i < cg->n_hier; i++) {
		cleanup_free char *own = cg_own_in(text, &cg->hier[i]);
		assert_non_null(own);
		cleanup_free char *want = xasprintf("%s/rel/x", strcmp(own, "/") == 0 ? "" : own);
		assert_string_equal(cg_hpath(cg, &cg->hier[i]), want);
		assert_string_equal(cg_hpath(cg2, &cg2->hier[i]), want);
	}
	cgroup_free(cg2);
	cgroup_free(cg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_resolve_default),
		cmocka_unit_test(test_resolve_absolute),
		cmocka_unit_test(test_resolve_relative),
		cmocka_unit_test(test_resolve_dotdot_refused),
		cmocka_unit_test(test_own_cgroup),
		cmocka_unit_test(test_strip_root),
		cmocka_unit_test(test_list_has),
		cmocka_unit_test(test_shares_to_weight),
		cmocka_unit_test(test_swap_conversion),
		cmocka_unit_test(test_pids_value),
		cmocka_unit_test(test_cpu_max),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_device_lines),
		cmocka_unit_test(test_bpf_empty),
		cmocka_unit_test(test_bpf_defaults),
		cmocka_unit_test(test_bpf_deny_all_first),
		cmocka_unit_test(test_bpf_allow_all),
		cmocka_unit_test(test_bpf_partial_access),
		cmocka_unit_test(test_bpf_invalid),
		cmocka_unit_test(test_bpf_verifier),
		cmocka_unit_test(test_detect_machine),
		cmocka_unit_test(test_open_machine),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
