/* Unit tests of lib/error.c: message formatting, errno suffix, wrapping, truncation. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "error.h"

static void test_error_without_code(void **state)
{
	(void)state;
	struct kelp_err err = { 0 };
	assert_int_equal(kelp_error(&err, 0, "bad value %d for %s", 7, "x"), -1);
	assert_string_equal(err.msg, "bad value 7 for x");
	assert_int_equal(err.code, 0);
}

static void test_error_with_code_appends_strerror(void **state)
{
	(void)state;
	struct kelp_err err = { 0 };
	char want[256];
	assert_int_equal(kelp_error(&err, ENOENT, "open %s", "/run/kelp/x"), -1);
	snprintf(want, sizeof(want), "open /run/kelp/x: %s", strerror(ENOENT));
	assert_string_equal(err.msg, want);
	assert_int_equal(err.code, ENOENT);
}

static void test_error_overwrites_previous(void **state)
{
	(void)state;
	struct kelp_err err = { 0 };
	kelp_error(&err, EPERM, "first");
	kelp_error(&err, 0, "second");
	assert_string_equal(err.msg, "second");
	assert_int_equal(err.code, 0);
}

static int verror_helper(struct kelp_err *err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = kelp_verror(err, code, fmt, ap);
	va_end(ap);
	return r;
}

static void test_verror(void **state)
{
	(void)state;
	struct kelp_err err = { 0 };
	char want[256];
	assert_int_equal(verror_helper(&err, EACCES, "write %s=%s", "pids.max", "10"), -1);
	snprintf(want, sizeof(want), "write pids.max=10: %s", strerror(EACCES));
	assert_string_equal(err.msg, want);
	assert_int_equal(err.code, EACCES);
}

static void test_error_null_err_is_fine(void **state)
{
	(void)state;
	assert_int_equal(kelp_error(NULL, EINVAL, "ignored %s", "x"), -1);
	assert_int_equal(kelp_error_wrap(NULL, "ignored"), -1);
	kelp_error_clear(NULL);
}

static void test_wrap_keeps_code_and_prefixes(void **state)
{
	(void)state;
	struct kelp_err err = { 0 };
	char want[256];
	kelp_error(&err, ENOENT, "open %s", "/x");
	assert_int_equal(kelp_error_wrap(&err, "create container %s", "web"), -1);
	snprintf(want, sizeof(want), "create container web: open /x: %s", strerror(ENOENT));
	assert_string_equal(err.msg, want);
	assert_int_equal(err.code, ENOENT);
}

static void test_wrap_twice_nests(void **state)
{
	(void)state;
	struct kelp_err err = { 0 };
	kelp_error(&err, 0, "inner");
	kelp_error_wrap(&err, "middle");
	kelp_error_wrap(&err, "outer %d", 1);
	assert_string_equal(err.msg, "outer 1: middle: inner");
	assert_int_equal(err.code, 0);
}

static void test_wrap_does_not_reinterpret_percent(void **state)
{
	(void)state;
	struct kelp_err err = { 0 };
	kelp_error(&err, 0, "value %s", "100%s%n");
	kelp_error_wrap(&err, "parse");
	assert_string_equal(err.msg, "parse: value 100%s%n");
}

static void test_truncation_is_terminated(void **state)
{
	(void)state;
	struct kelp_err err;
	char big[3 * KELP_ERR_MSG_MAX];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memset(&err, 'Z', sizeof(err));

	kelp_error(&err, EIO, "%s", big);
	assert_int_equal(strlen(err.msg), KELP_ERR_MSG_MAX - 1);
	assert_int_equal(err.code, EIO);

	kelp_error(&err, 0, "short");
	kelp_error_wrap(&err, "%s", big);
	assert_int_equal(strlen(err.msg), KELP_ERR_MSG_MAX - 1);
	assert_true(strncmp(err.msg, "aaaa", 4) == 0);

	/* A message just short of the limit still ends in a terminated (cut) strerror. */
	char almost[KELP_ERR_MSG_MAX];
	memset(almost, 'b', KELP_ERR_MSG_MAX - 5);
	almost[KELP_ERR_MSG_MAX - 5] = '\0';
	kelp_error(&err, ENOENT, "%s", almost);
	assert_int_equal(strlen(err.msg), KELP_ERR_MSG_MAX - 1);
	assert_int_equal(err.code, ENOENT);
}

static void test_wrap_long_prefix_of_long_message(void **state)
{
	(void)state;
	struct kelp_err err = { 0 };
	char big[KELP_ERR_MSG_MAX];
	memset(big, 'm', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	kelp_error(&err, EBUSY, "%s", big);
	kelp_error_wrap(&err, "ctx");
	assert_int_equal(strlen(err.msg), KELP_ERR_MSG_MAX - 1);
	assert_true(strncmp(err.msg, "ctx: mmm", 8) == 0);
	assert_int_equal(err.code, EBUSY);
}

static void test_fail_keeps_code_without_strerror(void **state)
{
	(void)state;
	struct kelp_err err = { 0 };
	assert_int_equal(kelp_fail(&err, ENOENT, "container %s does not exist", "web"), -1);
	assert_string_equal(err.msg, "container web does not exist");
	assert_int_equal(err.code, ENOENT);
	kelp_error_wrap(&err, "delete");
	assert_string_equal(err.msg, "delete: container web does not exist");
	assert_int_equal(err.code, ENOENT);
	assert_int_equal(kelp_fail(&err, 0, "plain"), -1);
	assert_string_equal(err.msg, "plain");
	assert_int_equal(err.code, 0);
	assert_int_equal(kelp_fail(NULL, EEXIST, "ignored"), -1);

	char big[2 * KELP_ERR_MSG_MAX];
	memset(big, 'f', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	kelp_fail(&err, EEXIST, "%s", big);
	assert_int_equal(strlen(err.msg), KELP_ERR_MSG_MAX - 1);
	assert_int_equal(err.code, EEXIST);
}

static void test_clear(void **state)
{
	(void)state;
	struct kelp_err err = { 0 };
	kelp_error(&err, EPERM, "x");
	kelp_error_clear(&err);
	assert_int_equal(err.code, 0);
	assert_string_equal(err.msg, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_error_without_code),
		cmocka_unit_test(test_error_with_code_appends_strerror),
		cmocka_unit_test(test_error_overwrites_previous),
		cmocka_unit_test(test_verror),
		cmocka_unit_test(test_error_null_err_is_fine),
		cmocka_unit_test(test_wrap_keeps_code_and_prefixes),
		cmocka_unit_test(test_wrap_twice_nests),
		cmocka_unit_test(test_wrap_does_not_reinterpret_percent),
		cmocka_unit_test(test_truncation_is_terminated),
		cmocka_unit_test(test_wrap_long_prefix_of_long_message),
		cmocka_unit_test(test_fail_keeps_code_without_strerror),
		cmocka_unit_test(test_clear),
	};
	return cmocka_run_group_tests_name("error", tests, NULL, NULL);
}
