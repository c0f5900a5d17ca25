/* Seccomp: profile checking (each action, operator, architecture and flag; errors name the JSON
 * path) and real filters loaded in forked children. */
#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "security.h"

#define NAMES(...) ((char *[]){ __VA_ARGS__, NULL })

static struct spec_seccomp base(char *def)
{
	return (struct spec_seccomp){ .default_action = def };
}

/* Prepare s and expect success; returns the filter. */
static struct kelp_seccomp *prepare_ok(const struct spec_seccomp *s)
{
	struct kelp_err err = { 0 };
	struct kelp_seccomp *f = NULL;
	int r = seccomp_prepare(s, &f, &err);
	if (r < 0)
		fail_msg("seccomp_prepare: %s", err.msg);
	assert_non_null(f);
	return f;
}

/* Prepare s and expect an error containing each of the given strings. */
static void prepare_fails(const struct spec_seccomp *s, const char *want1, const char *want2)
{
	struct kelp_err err = { 0 };
	struct kelp_seccomp *f = NULL;
	assert_int_equal(seccomp_prepare(s, &f, &err), -1);
	assert_null(f);
	if (!strstr(err.msg, want1) || (want2 && !strstr(err.msg, want2)))
		fail_msg("error \"%s\" lacks \"%s\" / \"%s\"", err.msg, want1, want2 ? want2 : "");
}

static const char *const all_actions[] = {
	"SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP", "SCMP_ACT_ERRNO",
	"SCMP_ACT_TRACE", "SCMP_ACT_ALLOW",	  "SCMP_ACT_LOG",	  "SCMP_ACT_NOTIFY",
};

static void test_rule_actions(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(all_actions) / sizeof(all_actions[0]); i++) {
		struct spec_seccomp_syscall sc = { .names = NAMES("getcwd"), .action = (char *)all_actions[i] };
		struct spec_seccomp s = base("SCMP_ACT_ALLOW");
		s.syscalls = &sc;
		s.n_syscalls = 1;
		struct kelp_seccomp *f = prepare_ok(&s);
		assert_int_equal(seccomp_uses_notify(f), strcmp(all_actions[i], "SCMP_ACT_NOTIFY") == 0);
		seccomp_free(f);
	}
}

static void test_default_actions(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(all_actions) / sizeof(all_actions[0]); i++) {
		struct spec_seccomp s = base((char *)all_actions[i]);
		if (strcmp(all_actions[i], "SCMP_ACT_NOTIFY") == 0) {
			prepare_fails(&s, "linux.seccomp.defaultAction", "SCMP_ACT_NOTIFY");
			continue;
		}
		seccomp_free(prepare_ok(&s));
	}
	/* defaultErrnoRet goes with ERRNO and TRACE only. */
	struct spec_seccomp s = base("SCMP_ACT_ERRNO");
	s.has_default_errno_ret = true;
	s.default_errno_ret = 38;
	seccomp_free(prepare_ok(&s));
	s.default_action = "SCMP_ACT_TRACE";
	seccomp_free(prepare_ok(&s));
	s.default_action = "SCMP_ACT_KILL";
	prepare_fails(&s, "linux.seccomp.defaultAction: SCMP_ACT_KILL does not take an errno value", NULL);
}

static void test_unknown_action(void **state)
{
	(void)state;
	struct spec_seccomp s = base("SCMP_ACT_FOO");
	prepare_fails(&s, "linux.seccomp.defaultAction: unknown action SCMP_ACT_FOO", NULL);

	struct spec_seccomp_syscall sc[4] = {
		{ .names = NAMES("getcwd"), .action = "SCMP_ACT_ERRNO" },
		{ .names = NAMES("chmod"), .action = "SCMP_ACT_LOG" },
		{ .names = NAMES("mkdir"), .action = "SCMP_ACT_TRAP" },
		{ .names = NAMES("rmdir"), .action = "SCMP_ACT_FOO" },
	};
	s = base("SCMP_ACT_ALLOW");
	s.syscalls = sc;
	s.n_syscalls = 4;
	prepare_fails(&s, "linux.seccomp.syscalls[3].action: unknown action SCMP_ACT_FOO", NULL);

	/* errnoRet with an action that has none, and one too large for SECCOMP_RET_DATA. */
	sc[3] = (struct spec_seccomp_syscall){
		.names = NAMES("rmdir"), .action = "SCMP_ACT_LOG", .has_errno_ret = true, .errno_ret = 1
	};
	prepare_fails(&s, "linux.seccomp.syscalls[3].action", "does not take an errno");
	sc[3] = (struct spec_seccomp_syscall){
		.names = NAMES("rmdir"), .action = "SCMP_ACT_ERRNO", .has_errno_ret = true, .errno_ret = 70000
	};
	prepare_fails(&s, "linux.seccomp.syscalls[3].action", "70000");
	/* names must not be empty */
	sc[3] = (struct spec_seccomp_syscall){ .names = (char *[]){ NULL }, .action = "SCMP_ACT_ERRNO" };
	prepare_fails(&s, "linux.seccomp.syscalls[3].names", NULL);
}

static void test_unknown_syscall_skipped(void **state)
{
	(void)state;
	struct spec_seccomp_syscall sc = { .names = NAMES("no_such_syscall_xyz", "getcwd", "socketcall"),
					   .action = "SCMP_ACT_ERRNO" };
	struct spec_seccomp s = base("SCMP_ACT_ALLOW");
	s.syscalls = &sc;
	s.n_syscalls = 1;
	seccomp_free(prepare_ok(&s));
	/* No listener is wanted when no notify rule made it in. */
	sc.action = "SCMP_ACT_NOTIFY";
	sc.names = NAMES("no_such_syscall_xyz");
	struct kelp_seccomp *nf = prepare_ok(&s);
	assert_false(seccomp_uses_notify(nf));
	seccomp_free(nf);
	/* A rule equal to the default action is dropped rather than refused. */
	sc.action = "SCMP_ACT_ALLOW";
	seccomp_free(prepare_ok(&s));
	/* NULL profile: nothing to do */
	struct kelp_err err = { 0 };
	struct kelp_seccomp *f = (void *)1;
	assert_int_equal(seccomp_prepare(NULL, &f, &err), 0);
	assert_null(f);
	int fd = 5;
	assert_int_equal(seccomp_filter_load(NULL, &fd, &err), 0);
	assert_int_equal(fd, -1);
}

static void test_ops(void **state)
{
	(void)state;
	static const char *const ops[] = { "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE",	       "SCMP_CMP_EQ",
					   "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ" };
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		struct spec_seccomp_arg a[2] = { { .index = 0, .value = 1, .value_two = 1, .op = (char *)ops[i] },
						 { .index = 2, .value = 7, .op = "SCMP_CMP_EQ" } };
		struct spec_seccomp_syscall sc = { .names = NAMES("personality", "read"), .action = "SCMP_ACT_ERRNO",
						   .args = a, .n_args = 2 };
		struct spec_seccomp s = base("SCMP_ACT_ALLOW");
		s.syscalls = &sc;
		s.n_syscalls = 1;
		seccomp_free(prepare_ok(&s));
	}
	struct spec_seccomp_arg a[2] = { { .index = 0, .value = 1, .op = "SCMP_CMP_EQ" },
					 { .index = 1, .value = 1, .op = "SCMP_CMP_FOO" } };
	struct spec_seccomp_syscall sc[2] = {
		{ .names = NAMES("getcwd"), .action = "SCMP_ACT_ERRNO" },
		{ .names = NAMES("personality"), .action = "SCMP_ACT_ERRNO", .args = a, .n_args = 2 },
	};
	struct spec_seccomp s = base("SCMP_ACT_ALLOW");
	s.syscalls = sc;
	s.n_syscalls = 2;
	prepare_fails(&s, "linux.seccomp.syscalls[1].args[1].op: unknown operator SCMP_CMP_FOO", NULL);
	a[1] = (struct spec_seccomp_arg){ .index = 6, .value = 1, .op = "SCMP_CMP_EQ" };
	prepare_fails(&s, "linux.seccomp.syscalls[1].args[1].index", "6");
}

static void test_arches(void **state)
{
	(void)state;
	/* What libseccomp 2.5 knows must load; newer ones may be refused, but by name. */
	static const char *const have[] = {
		"SCMP_ARCH_X86",    "SCMP_ARCH_X86_64",	 "SCMP_ARCH_X32",	"SCMP_ARCH_ARM",
		"SCMP_ARCH_AARCH64", "SCMP_ARCH_MIPS",	 "SCMP_ARCH_MIPS64",	"SCMP_ARCH_MIPS64N32",
		"SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC",
		"SCMP_ARCH_PPC64",  "SCMP_ARCH_PPC64LE",  "SCMP_ARCH_S390",	"SCMP_ARCH_S390X",
		"SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64",
	};
	for (size_t i = 0; i < sizeof(have) / sizeof(have[0]); i++) {
		struct spec_seccomp_syscall sc = { .names = NAMES("getcwd", "open"), .action = "SCMP_ACT_ERRNO" };
		struct spec_seccomp s = base("SCMP_ACT_ALLOW");
		s.architectures = (char *[]){ "SCMP_ARCH_X86_64", (char *)have[i], NULL };
		s.syscalls = &sc;
		s.n_syscalls = 1;
		seccomp_free(prepare_ok(&s));
	}
	static const char *const newer[] = { "SCMP_ARCH_LOONGARCH64", "SCMP_ARCH_M68K", "SCMP_ARCH_SH",
					     "SCMP_ARCH_SHEB" };
	for (size_t i = 0; i < sizeof(newer) / sizeof(newer[0]); i++) {
		struct spec_seccomp s = base("SCMP_ACT_ALLOW");
		s.architectures = (char *[]){ (char *)newer[i], NULL };
		struct kelp_err err = { 0 };
		struct kelp_seccomp *f = NULL;
		if (seccomp_prepare(&s, &f, &err) == 0) {
			seccomp_free(f);
			continue;
		}
		if (!strstr(err.msg, "linux.seccomp.architectures[0]: architecture") || !strstr(err.msg, newer[i]) ||
		    !strstr(err.msg, "not supported by libseccomp"))
			fail_msg("unexpected error: %s", err.msg);
	}
	struct spec_seccomp s = base("SCMP_ACT_ALLOW");
	s.architectures = (char *[]){ "SCMP_ARCH_X86", "SCMP_ARCH_FOO", NULL };
	prepare_fails(&s, "linux.seccomp.architectures[1]: unknown architecture SCMP_ARCH_FOO", NULL);
	s.architectures = (char *[]){ "x86_64", NULL };
	prepare_fails(&s, "linux.seccomp.architectures[0]: unknown architecture x86_64", NULL);
}

static void test_flags(void **state)
{
	(void)state;
	static const char *const flags[] = { "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
					     "SECCOMP_FILTER_FLAG_SPEC_ALLOW" };
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		struct spec_seccomp s = base("SCMP_ACT_ALLOW");
		s.flags = (char *[]){ (char *)flags[i], NULL };
		seccomp_free(prepare_ok(&s));
	}
	struct spec_seccomp s = base("SCMP_ACT_ALLOW");
	s.flags = (char *[]){ "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", NULL };
#if SCMP_VER_MAJOR > 2 || (SCMP_VER_MAJOR == 2 && SCMP_VER_MINOR >= 6)
	seccomp_free(prepare_ok(&s));
#else
	prepare_fails(&s, "linux.seccomp.flags[0]: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV is not supported by libseccomp",
		      NULL);
#endif
	s.flags = (char *[]){ "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_FOO", NULL };
	prepare_fails(&s, "linux.seccomp.flags[1]: unknown flag SECCOMP_FILTER_FLAG_FOO", NULL);
}

/* Run fn in a forked child and return its wait status. The child leaves with _exit so no
 * atexit work (cmocka, LeakSanitizer) runs under the filter. */
static int in_child(int (*fn)(void *), void *arg)
{
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(fn(arg));
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

static void expect_exit0(int status)
{
	if (!WIFEXITED(status))
		fail_msg("child did not exit: status %#x (signal %d)", status, WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	if (WEXITSTATUS(status) != 0)
		fail_msg("child failed at check %d", WEXITSTATUS(status));
}

static int load_in_child(const struct spec_seccomp *s, int *notify_fd)
{
	struct kelp_err err = { 0 };
	struct kelp_seccomp *f = NULL;
	if (seccomp_prepare(s, &f, &err) < 0) {
		fprintf(stderr, "prepare: %s\n", err.msg);
		return -1;
	}
	int fd = -1;
	int r = seccomp_filter_load(f, &fd, &err);
	seccomp_free(f);
	if (r < 0) {
		fprintf(stderr, "load: %s\n", err.msg);
		return -1;
	}
	if (notify_fd)
		*notify_fd = fd;
	return 0;
}

/* errno of a raw syscall that is expected to fail, or 0 if it succeeded */
#define SYSCALL_ERRNO(...) (syscall(__VA_ARGS__) < 0 ? errno : 0)

static int child_errno_rules(void *arg)
{
	(void)arg;
	struct spec_seccomp_syscall sc[2] = {
		{ .names = NAMES("getcwd"), .action = "SCMP_ACT_ERRNO", .has_errno_ret = true, .errno_ret = ENOSYS },
		{ .names = NAMES("mkdir", "no_such_syscall_xyz"), .action = "SCMP_ACT_ERRNO" }, /* EPERM */
	};
	struct spec_seccomp s = base("SCMP_ACT_ALLOW");
	s.architectures = NAMES("SCMP_ARCH_X86", "SCMP_ARCH_X32");
	s.syscalls = sc;
	s.n_syscalls = 2;
	if (load_in_child(&s, NULL) < 0)
		return 1;
	char buf[256];
	if (SYSCALL_ERRNO(SYS_getcwd, buf, sizeof(buf)) != ENOSYS)
		return 2;
	/* glibc's mkdir() uses mkdirat; the rule is for mkdir itself */
	if (SYSCALL_ERRNO(SYS_mkdir, "/nonexistent-dir/x", 0700) != EPERM)
		return 3;
	if (SYSCALL_ERRNO(SYS_mkdirat, AT_FDCWD, "/nonexistent-dir/x", 0700) != ENOENT)
		return 4;
	if (getpid() <= 0)
		return 5;
	/* no_new_privs is left to the runtime */
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 0)
		return 6;
	return 0;
}

static void test_load_errno(void **state)
{
	(void)state;
	expect_exit0(in_child(child_errno_rules, NULL));
}

static int child_arg_rules(void *arg)
{
	(void)arg;
	/* personality(0xffffffff) only queries, personality(0) sets the default persona: both
	 * harmless. close() on fds that are not open fails with EBADF unless a rule matches. */
	struct spec_seccomp_arg pa[1] = { { .index = 0, .value = 0xffffffff, .op = "SCMP_CMP_EQ" } };
	struct spec_seccomp_arg ma[1] = {
		{ .index = 0, .value = 0xff00, .value_two = 0x1200, .op = "SCMP_CMP_MASKED_EQ" }
	};
	/* two conditions on one argument: each is its own rule, so they OR */
	struct spec_seccomp_arg oa[2] = { { .index = 0, .value = 0x50000, .op = "SCMP_CMP_GT" },
					  { .index = 0, .value = 0x40000, .op = "SCMP_CMP_EQ" } };
	/* conditions on different arguments AND */
	struct spec_seccomp_arg da[2] = { { .index = 0, .value = 0x7000, .op = "SCMP_CMP_EQ" },
					  { .index = 1, .value = 5, .op = "SCMP_CMP_LT" } };
	struct spec_seccomp_syscall sc[4] = {
		{ .names = NAMES("personality"), .action = "SCMP_ACT_ERRNO", .has_errno_ret = true, .errno_ret = EINVAL,
		  .args = pa, .n_args = 1 },
		{ .names = NAMES("close"), .action = "SCMP_ACT_ERRNO", .has_errno_ret = true, .errno_ret = EACCES,
		  .args = ma, .n_args = 1 },
		{ .names = NAMES("close"), .action = "SCMP_ACT_ERRNO", .has_errno_ret = true, .errno_ret = EXDEV,
		  .args = oa, .n_args = 2 },
		{ .names = NAMES("dup2"), .action = "SCMP_ACT_ERRNO", .has_errno_ret = true, .errno_ret = ENOTTY,
		  .args = da, .n_args = 2 },
	};
	struct spec_seccomp s = base("SCMP_ACT_ALLOW");
	s.syscalls = sc;
	s.n_syscalls = 4;
	if (load_in_child(&s, NULL) < 0)
		return 1;
	if (SYSCALL_ERRNO(SYS_personality, 0xffffffffUL) != EINVAL)
		return 2;
	if (SYSCALL_ERRNO(SYS_personality, 0UL) != 0)
		return 3;
	if (SYSCALL_ERRNO(SYS_close, 0x1234) != EACCES)
		return 4;
	if (SYSCALL_ERRNO(SYS_close, 0x3434) != EBADF)
		return 5;
	if (SYSCALL_ERRNO(SYS_close, 0x60000) != EXDEV || SYSCALL_ERRNO(SYS_close, 0x40000) != EXDEV)
		return 6;
	if (SYSCALL_ERRNO(SYS_close, 0x45000) != EBADF)
		return 7;
	if (SYSCALL_ERRNO(SYS_dup2, 0x7000, 3) != ENOTTY)
		return 8;
	if (SYSCALL_ERRNO(SYS_dup2, 0x7000, 6) != EBADF || SYSCALL_ERRNO(SYS_dup2, 0x7001, 3) != EBADF)
		return 9;
	return 0;
}

static void test_load_args(void **state)
{
	(void)state;
	expect_exit0(in_child(child_arg_rules, NULL));
}

static int child_kill(void *arg)
{
	/* No core file for the expected SIGSYS. */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	struct spec_seccomp s = base((char *)arg);
	if (load_in_child(&s, NULL) < 0)
		return 1;
	getppid();
	return 2;
}

static void test_load_kill(void **state)
{
	(void)state;
	static const char *const acts[] = { "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP" };
	for (size_t i = 0; i < sizeof(acts) / sizeof(acts[0]); i++) {
		int status = in_child(child_kill, (void *)acts[i]);
		if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGSYS)
			fail_msg("%s: expected SIGSYS, got status %#x", acts[i], status);
	}
}

static int child_notify(void *arg)
{
	(void)arg;
	struct spec_seccomp_syscall sc = { .names = NAMES("getppid"), .action = "SCMP_ACT_NOTIFY" };
	struct spec_seccomp s = base("SCMP_ACT_ALLOW");
	s.syscalls = &sc;
	s.n_syscalls = 1;
	int fd = -1;
	if (load_in_child(&s, &fd) < 0)
		return 1;
	if (fd < 0)
		return 2;
	/* The grandchild inherits the filter; this process answers its getppid(). */
	pid_t pid = fork();
	if (pid < 0)
		return 3;
	if (pid == 0)
		_exit(syscall(SYS_getppid) == 4242 ? 0 : 1);
	struct seccomp_notif *req = NULL;
	struct seccomp_notif_resp *resp = NULL;
	if (seccomp_notify_alloc(&req, &resp) < 0)
		return 4;
	int rc = 0;
	if (seccomp_notify_receive(fd, req) < 0)
		rc = 5;
	else if (req->data.nr != SYS_getppid || req->pid != (uint32_t)pid)
		rc = 6;
	if (rc == 0) {
		resp->id = req->id;
		resp->val = 4242;
		resp->error = 0;
		resp->flags = 0;
		if (seccomp_notify_respond(fd, resp) < 0)
			rc = 7;
	}
	seccomp_notify_free(req, resp);
	int status;
	if (waitpid(pid, &status, 0) != pid)
		return 8;
	if (rc == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
		rc = 9;
	return rc;
}

static void test_load_notify(void **state)
{
	(void)state;
	expect_exit0(in_child(child_notify, NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rule_actions),	 cmocka_unit_test(test_default_actions),
		cmocka_unit_test(test_unknown_action),	 cmocka_unit_test(test_unknown_syscall_skipped),
		cmocka_unit_test(test_ops),		 cmocka_unit_test(test_arches),
		cmocka_unit_test(test_flags),		 cmocka_unit_test(test_load_errno),
		cmocka_unit_test(test_load_args),	 cmocka_unit_test(test_load_kill),
		cmocka_unit_test(test_load_notify),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
