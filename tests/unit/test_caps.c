/* Capabilities: name parsing into bitmasks, and the sets a forked child really ends up with. */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "security.h"

/* Mirror of the private struct in runtime/caps.c, so the masks can be checked directly. */
struct kelp_caps {
	uint64_t bounding, effective, inheritable, permitted, ambient;
};

#define NAMES(...) ((char *[]){ __VA_ARGS__, NULL })
#define BIT(c) (UINT64_C(1) << (c))

static struct kelp_caps *prepare_ok(const struct spec_caps *sc)
{
	struct kelp_err err = { 0 };
	struct kelp_caps *c = NULL;
	if (caps_prepare(sc, &c, &err) < 0)
		fail_msg("caps_prepare: %s", err.msg);
	assert_non_null(c);
	return c;
}

static void test_names(void **state)
{
	(void)state;
	struct spec_caps sc = {
		.bounding = NAMES("CAP_KILL", "cap_chown", "NET_ADMIN", "Cap_SetUid", "sys_admin", "CAP_KILL"),
		.effective = NAMES("CAP_NET_BIND_SERVICE"),
		.inheritable = NAMES("audit_write"),
		.permitted = NAMES("CAP_DAC_OVERRIDE", "cap_fowner"),
		.ambient = NAMES("CAP_CHECKPOINT_RESTORE"),
	};
	struct kelp_caps *c = prepare_ok(&sc);
	assert_int_equal(c->bounding, BIT(CAP_KILL) | BIT(CAP_CHOWN) | BIT(CAP_NET_ADMIN) | BIT(CAP_SETUID) |
					      BIT(CAP_SYS_ADMIN));
	assert_int_equal(c->effective, BIT(CAP_NET_BIND_SERVICE));
	assert_int_equal(c->inheritable, BIT(CAP_AUDIT_WRITE));
	assert_int_equal(c->permitted, BIT(CAP_DAC_OVERRIDE) | BIT(CAP_FOWNER));
	/* CAP_CHECKPOINT_RESTORE (40) exists since Linux 5.9 */
	if (cap_max_bits() > 40)
		assert_int_equal(c->ambient, BIT(40));
	caps_free(c);
}

static void test_empty(void **state)
{
	(void)state;
	struct spec_caps sc = { 0 };
	struct kelp_caps *c = prepare_ok(&sc);
	assert_int_equal(c->bounding | c->effective | c->inheritable | c->permitted | c->ambient, 0);
	caps_free(c);
	c = prepare_ok(NULL);
	assert_int_equal(c->bounding | c->effective | c->inheritable | c->permitted | c->ambient, 0);
	caps_free(c);
	caps_free(NULL);
}

static void expect_unknown(struct spec_caps *sc, const char *want)
{
	struct kelp_err err = { 0 };
	struct kelp_caps *c = NULL;
	assert_int_equal(caps_prepare(sc, &c, &err), -1);
	assert_null(c);
	if (strcmp(err.msg, want) != 0)
		fail_msg("got \"%s\", want \"%s\"", err.msg, want);
}

static void test_unknown(void **state)
{
	(void)state;
	struct spec_caps sc = { .bounding = NAMES("CAP_KILL", "CAP_FOO") };
	expect_unknown(&sc, "process.capabilities.bounding: unknown capability CAP_FOO");
	sc = (struct spec_caps){ .permitted = NAMES("CAP_KILL"), .ambient = NAMES("net_raw", "bogus") };
	expect_unknown(&sc, "process.capabilities.ambient: unknown capability bogus");
	/* numbers, empty names and other junk are not names */
	sc = (struct spec_caps){ .effective = NAMES("12") };
	expect_unknown(&sc, "process.capabilities.effective: unknown capability 12");
	sc = (struct spec_caps){ .inheritable = NAMES("CAP_") };
	expect_unknown(&sc, "process.capabilities.inheritable: unknown capability CAP_");
	sc = (struct spec_caps){ .permitted = NAMES("") };
	expect_unknown(&sc, "process.capabilities.permitted: unknown capability ");
	sc = (struct spec_caps){ .bounding = NAMES("CAP_KILL ") };
	expect_unknown(&sc, "process.capabilities.bounding: unknown capability CAP_KILL ");
	sc = (struct spec_caps){ .bounding = NAMES("CAP_ALL") };
	expect_unknown(&sc, "process.capabilities.bounding: unknown capability CAP_ALL");
}

/* Run fn in a forked child; it reports the first failed check as its exit code. */
static void run_child(int (*fn)(void))
{
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(fn());
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("child failed: status %#x (check %d)", status, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

static uint64_t status_mask(const char *key)
{
	FILE *f = fopen("/proc/self/status", "re");
	if (!f)
		return ~UINT64_C(0);
	char line[256];
	uint64_t v = ~UINT64_C(0);
	size_t n = strlen(key);
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, key, n) == 0 && line[n] == ':')
			v = strtoull(line + n + 1, NULL, 16);
	fclose(f);
	return v;
}

static int check_masks(uint64_t bnd, uint64_t eff, uint64_t prm, uint64_t inh, uint64_t amb)
{
	const struct {
		const char *key;
		uint64_t want;
	} w[] = { { "CapBnd", bnd }, { "CapEff", eff }, { "CapPrm", prm }, { "CapInh", inh }, { "CapAmb", amb } };
	for (size_t i = 0; i < 5; i++) {
		uint64_t got = status_mask(w[i].key);
		if (got != w[i].want) {
			fprintf(stderr, "%s: got %#" PRIx64 ", want %#" PRIx64 "\n", w[i].key, got, w[i].want);
			return 20 + (int)i;
		}
	}
	return 0;
}

static int prepare_apply(const struct spec_caps *sc)
{
	struct kelp_err err = { 0 };
	struct kelp_caps *c = NULL;
	if (caps_prepare(sc, &c, &err) < 0) {
		fprintf(stderr, "prepare: %s\n", err.msg);
		return 1;
	}
	int r = 0;
	if (caps_apply_bounding(c, &err) < 0)
		r = 2;
	else if (caps_apply(c, &err) < 0)
		r = 3;
	if (r)
		fprintf(stderr, "apply: %s\n", err.msg);
	caps_free(c);
	return r;
}

static int child_kill_chown(void)
{
	struct spec_caps sc = { .bounding = NAMES("CAP_KILL", "CAP_CHOWN"),
				.effective = NAMES("CAP_KILL", "CAP_CHOWN"),
				.permitted = NAMES("CAP_KILL", "CAP_CHOWN") };
	int r = prepare_apply(&sc);
	if (r)
		return r;
	uint64_t m = BIT(CAP_KILL) | BIT(CAP_CHOWN);
	return check_masks(m, m, m, 0, 0);
}

static void test_apply(void **state)
{
	(void)state;
	run_child(child_kill_chown);
}

static int child_ambient(void)
{
	/* CAP_CHOWN is ambient-only: not permitted nor inheritable, so it is skipped (with a
	 * warning) instead of failing. */
	struct spec_caps sc = { .bounding = NAMES("CAP_KILL", "CAP_CHOWN", "CAP_NET_BIND_SERVICE"),
				.effective = NAMES("CAP_KILL", "CAP_NET_BIND_SERVICE"),
				.permitted = NAMES("CAP_KILL", "CAP_NET_BIND_SERVICE"),
				.inheritable = NAMES("CAP_KILL", "CAP_NET_BIND_SERVICE"),
				.ambient = NAMES("CAP_NET_BIND_SERVICE", "CAP_CHOWN") };
	int r = prepare_apply(&sc);
	if (r)
		return r;
	uint64_t m = BIT(CAP_KILL) | BIT(CAP_NET_BIND_SERVICE);
	return check_masks(m | BIT(CAP_CHOWN), m, m, m, BIT(CAP_NET_BIND_SERVICE));
}

static void test_apply_ambient(void **state)
{
	(void)state;
	run_child(child_ambient);
}

/* The caps the runtime lacks are skipped with a warning, as the spec asks. */
static int child_ungrantable(void)
{
	uint64_t host_bnd = status_mask("CapBnd");
	int missing = -1;
	for (int cap = 0; cap < cap_max_bits() && cap < 64; cap++)
		if (!(host_bnd & BIT(cap))) {
			missing = cap;
			break;
		}
	if (missing < 0)
		return 0; /* nothing to test on this host */
	char *name = cap_to_name(missing);
	struct spec_caps sc = { .bounding = NAMES("CAP_KILL", name),
				.effective = NAMES("CAP_KILL", name),
				.permitted = NAMES("CAP_KILL", name),
				.inheritable = NAMES(name),
				.ambient = NAMES(name) };
	int r = prepare_apply(&sc);
	cap_free(name);
	if (r)
		return r;
	return check_masks(BIT(CAP_KILL), BIT(CAP_KILL), BIT(CAP_KILL), 0, 0);
}

static void test_apply_ungrantable(void **state)
{
	(void)state;
	run_child(child_ungrantable);
}

/* The init changes uid with PR_SET_KEEPCAPS before applying: the kernel then empties the
 * effective set, and dropping the bounding set must still work. */
static int child_after_setuid(void)
{
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0 || setresgid(1000, 1000, 1000) < 0 || setresuid(1000, 1000, 1000) < 0)
		return 10;
	if (status_mask("CapEff") != 0)
		return 11;
	struct spec_caps sc = { .bounding = NAMES("CAP_KILL", "CAP_CHOWN"),
				.effective = NAMES("CAP_KILL"),
				.permitted = NAMES("CAP_KILL", "CAP_CHOWN"),
				.inheritable = NAMES("CAP_CHOWN") };
	int r = prepare_apply(&sc);
	if (r)
		return r;
	if (getuid() != 1000)
		return 12;
	uint64_t m = BIT(CAP_KILL) | BIT(CAP_CHOWN);
	return check_masks(m, BIT(CAP_KILL), m, BIT(CAP_CHOWN), 0);
}

static void test_apply_after_setuid(void **state)
{
	(void)state;
	run_child(child_after_setuid);
}

/* Everything dropped: the usual rootless or unprivileged profile. */
static int child_none(void)
{
	struct spec_caps sc = { 0 };
	int r = prepare_apply(&sc);
	if (r)
		return r;
	return check_masks(0, 0, 0, 0, 0);
}

static void test_apply_none(void **state)
{
	(void)state;
	run_child(child_none);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),		  cmocka_unit_test(test_empty),
		cmocka_unit_test(test_unknown),		  cmocka_unit_test(test_apply),
		cmocka_unit_test(test_apply_ambient),	  cmocka_unit_test(test_apply_ungrantable),
		cmocka_unit_test(test_apply_after_setuid), cmocka_unit_test(test_apply_none),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
