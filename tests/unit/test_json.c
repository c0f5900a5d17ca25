/* Unit tests of lib/json.c: the full JSON path in every error, required fields, integer range
 * checks, string arrays and maps, kj_only_keys, optional getters, and the generator. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_util.h"

#include "cleanup.h"
#include "json.h"

/* JSON errors are compared with or without a ": strerror" suffix: whether it belongs there is
 * pinned down by test_json_errors_have_no_strerror_suffix alone, so that one bug fails one test. */
static void check_err_msg(const struct kelp_err *err, const char *want, const char *file, int line)
{
	char alt[KELP_ERR_MSG_MAX + 128];
	snprintf(alt, sizeof(alt), "%s: %s", want, strerror(err->code));
	if (strcmp(err->msg, want) == 0 || (err->code != 0 && strcmp(err->msg, alt) == 0))
		return;
	print_message("# error message\n#   got:  %s\n#   want: %s\n", err->msg, want);
	_fail(file, line);
}
#define assert_err(err, want) check_err_msg(&(err), (want), __FILE__, __LINE__)

/* Parse a document that must be valid; the caller frees root.v. */
static struct kj parse_ok(const char *text)
{
	struct kj root;
	struct kelp_err err = { 0 };
	if (kj_parse(text, strlen(text), "test.json", &root, &err) < 0)
		failf("kj_parse(%s): %s", text, err.msg);
	return root;
}

/* Walk "a.b[2].c" with kj_field / kj_index; each step must exist. */
static struct kj walk(const struct kj *root, const char *path)
{
	struct kj cur = *root, next;
	struct kelp_err err = { 0 };
	char buf[256], *save = NULL;
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *tok = strtok_r(buf, ".", &save); tok; tok = strtok_r(NULL, ".", &save)) {
		char *br = strchr(tok, '[');
		if (br)
			*br = '\0';
		if (*tok) {
			if (kj_field(&cur, tok, &next, &err) != 1)
				failf("walk %s: no field %s (%s)", path, tok, err.msg);
			cur = next;
		}
		while (br) {
			size_t i = strtoul(br + 1, NULL, 10);
			kj_index(&cur, i, &next);
			cur = next;
			br = strchr(br + 1, '[');
		}
	}
	return cur;
}

/* ---- parsing ------------------------------------------------------------------------------ */

static void test_parse_error_names_document(void **state)
{
	(void)state;
	struct kj root;
	struct kelp_err err = { 0 };
	const char *bad = "{\"a\": [1, 2,, 3]}";
	assert_int_equal(kj_parse(bad, strlen(bad), "config.json", &root, &err), -1);
	assert_int_equal(err.code, EINVAL);
	assert_true(strncmp(err.msg, "parse config.json: ", 19) == 0);
	assert_null(strchr(err.msg, '\n')); /* yajl's multi-line message is cut to one line */
}

static void test_parse_rejects_nul_and_trailing_garbage(void **state)
{
	(void)state;
	struct kj root;
	struct kelp_err err = { 0 };
	const char nul[] = "{\"a\":1}\0{\"b\":2}";
	assert_int_equal(kj_parse(nul, sizeof(nul) - 1, "x.json", &root, &err), -1);
	assert_non_null(strstr(err.msg, "NUL"));
	const char *two = "{\"a\":1} {\"b\":2}";
	assert_int_equal(kj_parse(two, strlen(two), "x.json", &root, &err), -1);
	assert_int_equal(kj_parse("", 0, "empty.json", &root, &err), -1);
	assert_true(strncmp(err.msg, "parse empty.json: ", 18) == 0);
}

static void test_parse_uses_len_not_nul(void **state)
{
	(void)state;
	struct kj root;
	struct kelp_err err = { 0 };
	const char *text = "{\"a\":1}GARBAGE";
	assert_int_equal(kj_parse(text, 7, "x.json", &root, &err), 0);
	assert_true(YAJL_IS_OBJECT(root.v));
	assert_string_equal(root.path, "");
	yajl_tree_free(root.v);
}

/* Regression: json.h documents JSON errors as "PATH: expected <type>" (the message a user sees
 * for a bad config.json), with code EINVAL or ERANGE kept for callers. lib/json.c once made them
 * with kelp_error(), which appends ": strerror(code)" ("...got a string: Invalid argument");
 * it now uses kelp_fail(). */
static void test_json_errors_have_no_strerror_suffix(void **state)
{
	(void)state;
	struct kj root = parse_ok("{\"linux\":{\"resources\":{\"devices\":[{},{},{},{\"major\":\"8\"}]}},"
				  "\"big\":4294967296}");
	struct kj major = walk(&root, "linux.resources.devices[3].major"), big = walk(&root, "big"), f;
	struct kelp_err err = { 0 };
	int64_t v;
	uint32_t u;
	char got[3][KELP_ERR_MSG_MAX];
	int code[3];
	kj_int64(&major, &v, &err);
	snprintf(got[0], sizeof(got[0]), "%s", err.msg);
	code[0] = err.code;
	kj_uint32(&big, &u, &err);
	snprintf(got[1], sizeof(got[1]), "%s", err.msg);
	code[1] = err.code;
	kj_required(&root, "process", &f, &err);
	snprintf(got[2], sizeof(got[2]), "%s", err.msg);
	code[2] = err.code;
	yajl_tree_free(root.v);
	assert_int_equal(code[0], EINVAL);
	assert_int_equal(code[1], ERANGE);
	assert_int_equal(code[2], EINVAL);
	if (strcmp(got[0], "linux.resources.devices[3].major: expected an integer, got a string") != 0 ||
	    strcmp(got[1], "big: integer 4294967296 out of range") != 0 ||
	    strcmp(got[2], "process: required field is missing") != 0)
		failf("lib/json.c: JSON errors end in strerror: \"%s\", \"%s\", \"%s\"", got[0],
			 got[1], got[2]);
}

/* ---- paths in errors ---------------------------------------------------------------------- */

static void test_nested_path_with_array_index(void **state)
{
	(void)state;
	struct kj root = parse_ok("{\"linux\":{\"resources\":{\"devices\":["
				  "{\"allow\":false},{\"major\":1},{\"major\":2},{\"major\":\"8\"}]}}}");
	struct kj dev = walk(&root, "linux.resources.devices[3]");
	assert_string_equal(dev.path, "linux.resources.devices[3]");
	struct kj major;
	struct kelp_err err = { 0 };
	assert_int_equal(kj_field(&dev, "major", &major, &err), 1);
	int64_t v = 42;
	assert_int_equal(kj_int64(&major, &v, &err), -1);
	assert_err(err, "linux.resources.devices[3].major: expected an integer, got a string");
	assert_int_equal(err.code, EINVAL);
	assert_int_equal(v, 42); /* untouched on error */
	yajl_tree_free(root.v);
}

static void test_type_errors_name_the_found_type(void **state)
{
	(void)state;
	struct kj root = parse_ok("{\"process\":{\"args\":{},\"terminal\":\"yes\",\"cwd\":7,"
				  "\"env\":null,\"user\":[],\"x\":1.5}}");
	struct kelp_err err = { 0 };
	struct kj p = walk(&root, "process"), f;

	kj_field(&p, "args", &f, &err);
	assert_int_equal(kj_expect_array(&f, &err), -1);
	assert_err(err, "process.args: expected an array, got an object");

	bool b;
	kj_field(&p, "terminal", &f, &err);
	assert_int_equal(kj_bool(&f, &b, &err), -1);
	assert_err(err, "process.terminal: expected a boolean, got a string");

	char *s = NULL;
	kj_field(&p, "cwd", &f, &err);
	assert_int_equal(kj_string(&f, &s, &err), -1);
	assert_err(err, "process.cwd: expected a string, got a number");
	assert_null(s);

	kj_field(&p, "user", &f, &err);
	assert_int_equal(kj_expect_object(&f, &err), -1);
	assert_err(err, "process.user: expected an object, got an array");

	int64_t i;
	kj_field(&p, "x", &f, &err);
	assert_int_equal(kj_int64(&f, &i, &err), -1);
	assert_err(err, "process.x: expected an integer, got a number");
	yajl_tree_free(root.v);
}

static void test_document_level_error(void **state)
{
	(void)state;
	struct kj root = parse_ok("[1,2]");
	struct kelp_err err = { 0 };
	struct kj f;
	assert_int_equal(kj_expect_object(&root, &err), -1);
	assert_err(err, "(document): expected an object, got an array");
	/* a lookup in a non-object fails and names the non-object */
	assert_int_equal(kj_field(&root, "a", &f, &err), -1);
	assert_err(err, "(document): expected an object, got an array");
	struct kj e;
	kj_index(&root, 1, &e);
	assert_string_equal(e.path, "[1]");
	kj_index(&root, 5, &e);
	assert_null(e.v);
	assert_string_equal(e.path, "[5]");
	yajl_tree_free(root.v);
}

static void test_nested_arrays_and_objects_path(void **state)
{
	(void)state;
	struct kj root = parse_ok("{\"a\":[[{\"b\":{\"c\":[true, \"no\"]}}]]}");
	struct kj c1 = walk(&root, "a[0][0].b.c[1]");
	assert_string_equal(c1.path, "a[0][0].b.c[1]");
	struct kelp_err err = { 0 };
	bool b;
	assert_int_equal(kj_bool(&c1, &b, &err), -1);
	assert_err(err, "a[0][0].b.c[1]: expected a boolean, got a string");
	yajl_tree_free(root.v);
}

static void test_long_paths_are_truncated_safely(void **state)
{
	(void)state;
	char key[400];
	memset(key, 'k', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	char doc[1024];
	snprintf(doc, sizeof(doc), "{\"%s\":{\"%s\":\"s\"}}", key, key);
	struct kj root = parse_ok(doc), a, b;
	struct kelp_err err = { 0 };
	assert_int_equal(kj_field(&root, key, &a, &err), 1);
	assert_int_equal(kj_field(&a, key, &b, &err), 1);
	assert_int_equal(strlen(b.path), KJ_PATH_MAX - 1);
	int64_t v;
	assert_int_equal(kj_int64(&b, &v, &err), -1);
	assert_true(strlen(err.msg) < KELP_ERR_MSG_MAX);
	yajl_tree_free(root.v);
}

/* ---- required fields ---------------------------------------------------------------------- */

static void test_required_field_missing(void **state)
{
	(void)state;
	struct kj root = parse_ok("{\"process\":{\"args\":[\"sh\"],\"cwd\":null,\"user\":{}}}");
	struct kj p = walk(&root, "process"), f;
	struct kelp_err err = { 0 };

	assert_int_equal(kj_required(&p, "args", &f, &err), 1);
	assert_string_equal(f.path, "process.args");

	assert_int_equal(kj_required(&p, "env", &f, &err), -1);
	assert_err(err, "process.env: required field is missing");
	assert_int_equal(err.code, EINVAL);

	/* null is the same as absent */
	assert_int_equal(kj_required(&p, "cwd", &f, &err), -1);
	assert_err(err, "process.cwd: required field is missing");

	struct kj user = walk(&root, "process.user");
	char *s = NULL;
	assert_int_equal(kj_req_string(&user, "username", &s, &err), -1);
	assert_err(err, "process.user.username: required field is missing");
	assert_null(s);
	yajl_tree_free(root.v);
}

static void test_req_string_type_error(void **state)
{
	(void)state;
	struct kj root = parse_ok("{\"root\":{\"path\":12}}");
	struct kj r = walk(&root, "root");
	struct kelp_err err = { 0 };
	char *s = NULL;
	assert_int_equal(kj_req_string(&r, "path", &s, &err), -1);
	assert_err(err, "root.path: expected a string, got a number");
	yajl_tree_free(root.v);
}

static void test_field_absent_present_null(void **state)
{
	(void)state;
	struct kj root = parse_ok("{\"a\":1,\"n\":null}");
	struct kj f;
	struct kelp_err err = { 0 };
	assert_int_equal(kj_field(&root, "a", &f, &err), 1);
	assert_string_equal(f.path, "a");
	assert_int_equal(kj_field(&root, "n", &f, &err), 0);
	assert_null(f.v);
	assert_int_equal(kj_field(&root, "zz", &f, &err), 0);
	assert_null(f.v);
	assert_string_equal(f.path, "zz");
	yajl_tree_free(root.v);
}

/* ---- integers and ranges ------------------------------------------------------------------ */

struct range_case {
	const char *json;
	int ok;           /* 1: converts; 0: fails */
	const char *msg;  /* expected message when it fails ("v: ..."), NULL to skip the check */
	long long sval;   /* expected value for signed */
	unsigned long long uval;
};

static struct kj value_of(const char *num, struct kj *root)
{
	char doc[256];
	snprintf(doc, sizeof(doc), "{\"v\":%s}", num);
	*root = parse_ok(doc);
	struct kj f;
	struct kelp_err err = { 0 };
	if (kj_field(root, "v", &f, &err) != 1)
		failf("no v in %s", doc);
	return f;
}

static void test_uint32_range(void **state)
{
	(void)state;
	static const struct range_case cases[] = {
		{ "0", 1, NULL, 0, 0 },
		{ "4294967295", 1, NULL, 0, 4294967295ULL },
		{ "4294967296", 0, "v: integer 4294967296 out of range", 0, 0 },
		{ "-1", 0, "v: expected a non-negative integer, got -1", 0, 0 },
		{ "-4294967296", 0, "v: expected a non-negative integer, got -4294967296", 0, 0 },
		{ "18446744073709551615", 0, "v: integer 18446744073709551615 out of range", 0, 0 },
		{ "99999999999999999999999", 0, "v: integer 99999999999999999999999 out of range", 0, 0 },
		{ "1.0", 0, "v: expected an integer, got a number", 0, 0 },
		{ "1e3", 0, "v: expected an integer, got a number", 0, 0 },
		{ "\"7\"", 0, "v: expected an integer, got a string", 0, 0 },
		{ "true", 0, "v: expected an integer, got a boolean", 0, 0 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct kj root, f = value_of(cases[i].json, &root);
		struct kelp_err err = { 0 };
		uint32_t v = 12345;
		int r = kj_uint32(&f, &v, &err);
		if (cases[i].ok) {
			if (r != 0)
				failf("uint32 %s: unexpected error %s", cases[i].json, err.msg);
			assert_int_equal(v, cases[i].uval);
		} else {
			if (r != -1)
				failf("uint32 %s: accepted as %u", cases[i].json, v);
			assert_int_equal(v, 12345);
			if (cases[i].msg)
				assert_err(err, cases[i].msg);
		}
		yajl_tree_free(root.v);
	}
}

static void test_uint32_range_codes(void **state)
{
	(void)state;
	struct kj root, f = value_of("4294967296", &root);
	struct kelp_err err = { 0 };
	uint32_t v;
	assert_int_equal(kj_uint32(&f, &v, &err), -1);
	assert_int_equal(err.code, ERANGE);
	yajl_tree_free(root.v);
	f = value_of("-3", &root);
	assert_int_equal(kj_uint32(&f, &v, &err), -1);
	assert_int_equal(err.code, ERANGE);
	yajl_tree_free(root.v);
	f = value_of("\"3\"", &root);
	assert_int_equal(kj_uint32(&f, &v, &err), -1);
	assert_int_equal(err.code, EINVAL);
	yajl_tree_free(root.v);
}

static void test_int32_range(void **state)
{
	(void)state;
	static const struct range_case cases[] = {
		{ "2147483647", 1, NULL, 2147483647LL, 0 },
		{ "-2147483648", 1, NULL, -2147483648LL, 0 },
		{ "2147483648", 0, "v: integer 2147483648 out of range", 0, 0 },
		{ "-2147483649", 0, "v: integer -2147483649 out of range", 0, 0 },
		{ "-9223372036854775809", 0, "v: integer -9223372036854775809 out of range", 0, 0 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct kj root, f = value_of(cases[i].json, &root);
		struct kelp_err err = { 0 };
		int32_t v = 7;
		int r = kj_int32(&f, &v, &err);
		if (cases[i].ok) {
			if (r != 0)
				failf("int32 %s: unexpected error %s", cases[i].json, err.msg);
			assert_int_equal(v, cases[i].sval);
		} else {
			if (r != -1)
				failf("int32 %s: accepted as %d", cases[i].json, v);
			assert_int_equal(v, 7);
			assert_err(err, cases[i].msg);
			assert_int_equal(err.code, ERANGE);
		}
		yajl_tree_free(root.v);
	}
}

static void test_int64_and_uint64_limits(void **state)
{
	(void)state;
	struct kelp_err err = { 0 };
	struct kj root, f;
	int64_t s;
	uint64_t u;

	f = value_of("9223372036854775807", &root);
	assert_int_equal(kj_int64(&f, &s, &err), 0);
	assert_true(s == INT64_MAX);
	assert_int_equal(kj_uint64(&f, &u, &err), 0);
	assert_true(u == (uint64_t)INT64_MAX);
	yajl_tree_free(root.v);

	f = value_of("9223372036854775808", &root);
	assert_int_equal(kj_int64(&f, &s, &err), -1);
	assert_err(err, "v: integer 9223372036854775808 out of range");
	assert_int_equal(err.code, ERANGE);
	assert_int_equal(kj_uint64(&f, &u, &err), 0);
	assert_true(u == 9223372036854775808ULL);
	yajl_tree_free(root.v);

	f = value_of("18446744073709551615", &root);
	assert_int_equal(kj_uint64(&f, &u, &err), 0);
	assert_true(u == UINT64_MAX);
	yajl_tree_free(root.v);

	f = value_of("18446744073709551616", &root);
	u = 5;
	assert_int_equal(kj_uint64(&f, &u, &err), -1);
	assert_err(err, "v: integer 18446744073709551616 out of range");
	assert_int_equal(err.code, ERANGE);
	assert_true(u == 5);
	yajl_tree_free(root.v);

	f = value_of("-1", &root);
	assert_int_equal(kj_uint64(&f, &u, &err), -1);
	assert_err(err, "v: expected a non-negative integer, got -1");
	yajl_tree_free(root.v);

	f = value_of("-0", &root);
	assert_int_equal(kj_uint64(&f, &u, &err), 0);
	assert_true(u == 0);
	yajl_tree_free(root.v);
}

/* LIB BUG (reported): INT64_MIN is a valid int64 but kj_int64 refuses it, because yajl's
 * integer parser overflows on it and kj_int64 then reports "out of range" instead of reading
 * the number's text itself (strtoll). The same input through kj_int32 is rightly refused. */
static void test_int64_min_is_accepted(void **state)
{
	(void)state;
	struct kelp_err err = { 0 };
	struct kj root, f = value_of("-9223372036854775808", &root);
	int64_t s = 0;
	int r = kj_int64(&f, &s, &err);
	yajl_tree_free(root.v);
	if (r != 0)
		failf("LIB BUG lib/json.c kj_int64: -9223372036854775808 (INT64_MIN) refused: %s", err.msg);
	assert_true(s == INT64_MIN);
}

static void test_opt_integers(void **state)
{
	(void)state;
	struct kj root = parse_ok("{\"a\":5,\"n\":null,\"big\":4294967296}");
	struct kelp_err err = { 0 };
	uint32_t u = 99;
	bool present = true;
	assert_int_equal(kj_opt_uint32(&root, "missing", &u, &present, &err), 0);
	assert_false(present);
	assert_int_equal(u, 99);
	assert_int_equal(kj_opt_uint32(&root, "n", &u, &present, &err), 0);
	assert_false(present);
	assert_int_equal(u, 99);
	assert_int_equal(kj_opt_uint32(&root, "a", &u, &present, &err), 0);
	assert_true(present);
	assert_int_equal(u, 5);
	assert_int_equal(kj_opt_uint32(&root, "big", &u, NULL, &err), -1);
	assert_err(err, "big: integer 4294967296 out of range");
	assert_int_equal(u, 5);
	int64_t s = 1;
	assert_int_equal(kj_opt_int64(&root, "a", &s, NULL, &err), 0);
	assert_int_equal(s, 5);
	int32_t s32 = 1;
	assert_int_equal(kj_opt_int32(&root, "missing", &s32, NULL, &err), 0);
	assert_int_equal(s32, 1);
	uint64_t u64 = 1;
	assert_int_equal(kj_opt_uint64(&root, "big", &u64, &present, &err), 0);
	assert_true(present);
	assert_true(u64 == 4294967296ULL);
	yajl_tree_free(root.v);
}

static void test_double_and_bool(void **state)
{
	(void)state;
	struct kj root = parse_ok("{\"d\":1.5,\"i\":3,\"t\":true,\"f\":false,\"s\":\"1\"}");
	struct kelp_err err = { 0 };
	struct kj f;
	double d = 0;
	kj_field(&root, "d", &f, &err);
	assert_int_equal(kj_double(&f, &d, &err), 0);
	assert_true(d == 1.5);
	kj_field(&root, "i", &f, &err);
	assert_int_equal(kj_double(&f, &d, &err), 0);
	assert_true(d == 3.0);
	kj_field(&root, "s", &f, &err);
	assert_int_equal(kj_double(&f, &d, &err), -1);
	assert_err(err, "s: expected a number, got a string");

	bool b = false;
	assert_true(kj_opt_bool(&root, "t", &b, &err) >= 0);
	assert_true(b);
	assert_true(kj_opt_bool(&root, "f", &b, &err) >= 0);
	assert_false(b);
	b = true;
	assert_int_equal(kj_opt_bool(&root, "missing", &b, &err), 0);
	assert_true(b);
	assert_int_equal(kj_opt_bool(&root, "s", &b, &err), -1);
	assert_err(err, "s: expected a boolean, got a string");
	yajl_tree_free(root.v);
}

/* ---- strings ------------------------------------------------------------------------------ */

static void test_strings_and_opt_string(void **state)
{
	(void)state;
	struct kj root = parse_ok("{\"s\":\"h\\u00e9llo \\\"q\\\"\\n\",\"e\":\"\"}");
	struct kelp_err err = { 0 };
	char *s = xstrdup("old");
	assert_true(kj_opt_string(&root, "s", &s, &err) >= 0);
	assert_string_equal(s, "h\xc3\xa9llo \"q\"\n");
	assert_int_equal(kj_opt_string(&root, "missing", &s, &err), 0);
	assert_string_equal(s, "h\xc3\xa9llo \"q\"\n");
	assert_true(kj_opt_string(&root, "e", &s, &err) >= 0);
	assert_string_equal(s, "");
	free(s);
	yajl_tree_free(root.v);
}

static void test_string_array(void **state)
{
	(void)state;
	struct kj root = parse_ok("{\"args\":[\"sh\",\"-c\",\"echo hi\"],\"empty\":[],"
				  "\"bad\":[\"a\",\"b\",3],\"obj\":{}}");
	struct kelp_err err = { 0 };
	char **v = NULL;
	size_t n = 99;

	assert_true(kj_opt_string_array(&root, "args", &v, &n, &err) >= 0);
	assert_int_equal(n, 3);
	assert_string_equal(v[0], "sh");
	assert_string_equal(v[1], "-c");
	assert_string_equal(v[2], "echo hi");
	assert_null(v[3]);

	/* absent: untouched */
	assert_int_equal(kj_opt_string_array(&root, "missing", &v, &n, &err), 0);
	assert_int_equal(n, 3);
	assert_string_equal(v[0], "sh");

	/* a bad element names its index and leaves the old array in place */
	assert_int_equal(kj_opt_string_array(&root, "bad", &v, &n, &err), -1);
	assert_err(err, "bad[2]: expected a string, got a number");
	assert_int_equal(n, 3);
	assert_string_equal(v[2], "echo hi");

	struct kj f;
	kj_field(&root, "obj", &f, &err);
	assert_int_equal(kj_string_array(&f, &v, NULL, &err), -1);
	assert_err(err, "obj: expected an array, got an object");

	/* replacing frees the old array (checked by ASan) */
	kj_field(&root, "empty", &f, &err);
	assert_int_equal(kj_string_array(&f, &v, &n, &err), 0);
	assert_int_equal(n, 0);
	assert_non_null(v);
	assert_null(v[0]);
	strv_free(v);
	yajl_tree_free(root.v);
}

static void test_string_map(void **state)
{
	(void)state;
	struct kj root = parse_ok("{\"annotations\":{\"a\":\"1\",\"b.c/d\":\"\",\"e\":\"x y\"},"
				  "\"sysctl\":{\"net.ipv4.ip_forward\":1},\"empty\":{},\"arr\":[]}");
	struct kelp_err err = { 0 };
	struct kj f;
	char **keys = NULL, **vals = NULL;

	kj_field(&root, "annotations", &f, &err);
	assert_int_equal(kj_string_map(&f, &keys, &vals, &err), 0);
	assert_string_equal(keys[0], "a");
	assert_string_equal(vals[0], "1");
	assert_string_equal(keys[1], "b.c/d");
	assert_string_equal(vals[1], "");
	assert_string_equal(keys[2], "e");
	assert_string_equal(vals[2], "x y");
	assert_null(keys[3]);
	assert_null(vals[3]);

	kj_field(&root, "sysctl", &f, &err);
	assert_int_equal(kj_string_map(&f, &keys, &vals, &err), -1);
	assert_err(err, "sysctl.net.ipv4.ip_forward: expected a string, got a number");
	assert_string_equal(keys[0], "a"); /* untouched on error */

	kj_field(&root, "arr", &f, &err);
	assert_int_equal(kj_string_map(&f, &keys, &vals, &err), -1);
	assert_err(err, "arr: expected an object, got an array");

	kj_field(&root, "empty", &f, &err);
	assert_int_equal(kj_string_map(&f, &keys, &vals, &err), 0);
	assert_null(keys[0]);
	assert_null(vals[0]);
	strv_free(keys);
	strv_free(vals);
	yajl_tree_free(root.v);
}

static void test_key_at(void **state)
{
	(void)state;
	struct kj root = parse_ok("{\"hooks\":{\"prestart\":[],\"poststop\":[1]}}");
	struct kj h = walk(&root, "hooks"), e;
	assert_int_equal(kj_obj_len(&h), 2);
	assert_string_equal(kj_key_at(&h, 0, &e), "prestart");
	assert_string_equal(e.path, "hooks.prestart");
	assert_string_equal(kj_key_at(&h, 1, &e), "poststop");
	assert_int_equal(kj_len(&e), 1);
	assert_null(kj_key_at(&h, 2, &e));
	assert_null(e.v);
	assert_int_equal(kj_len(&h), 0); /* not an array */
	yajl_tree_free(root.v);
}

/* ---- kj_only_keys ------------------------------------------------------------------------- */

static void test_only_keys(void **state)
{
	(void)state;
	static const char *const known[] = { "type", "path", NULL };
	struct kj root = parse_ok("{\"linux\":{\"namespaces\":[{\"type\":\"pid\"},"
				  "{\"type\":\"net\",\"path\":\"/x\"},{\"type\":\"ipc\",\"bogus\":1}]}}");
	struct kelp_err err = { 0 };
	struct kj ns = walk(&root, "linux.namespaces"), e;
	kj_index(&ns, 0, &e);
	assert_int_equal(kj_only_keys(&e, known, &err), 0);
	kj_index(&ns, 1, &e);
	assert_int_equal(kj_only_keys(&e, known, &err), 0);
	kj_index(&ns, 2, &e);
	assert_int_equal(kj_only_keys(&e, known, &err), -1);
	assert_err(err, "linux.namespaces[2].bogus: unknown field");
	assert_int_equal(err.code, EINVAL);
	assert_int_equal(kj_only_keys(&ns, known, &err), -1);
	assert_err(err, "linux.namespaces: expected an object, got an array");
	static const char *const none[] = { NULL };
	struct kj empty = parse_ok("{}");
	assert_int_equal(kj_only_keys(&empty, none, &err), 0);
	yajl_tree_free(empty.v);
	yajl_tree_free(root.v);
}

/* ---- generator ---------------------------------------------------------------------------- */

static void test_generator_compact(void **state)
{
	(void)state;
	yajl_gen g = kg_new(false);
	yajl_gen_map_open(g);
	kg_key_str(g, "ociVersion", "1.0.2");
	kg_key_str(g, "id", "web");
	kg_key_int(g, "pid", 4242);
	kg_key_int(g, "neg", -9223372036854775807LL - 1);
	kg_key_bool(g, "ok", true);
	kg_key_bool(g, "no", false);
	kg_key_str(g, "none", NULL);
	kg_key(g, "list");
	yajl_gen_array_open(g);
	kg_str(g, "a");
	kg_str(g, "b");
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
	size_t len = 0;
	char *out = kg_finish(g, &len);
	assert_string_equal(out, "{\"ociVersion\":\"1.0.2\",\"id\":\"web\",\"pid\":4242,"
				 "\"neg\":-9223372036854775808,\"ok\":true,\"no\":false,\"none\":null,"
				 "\"list\":[\"a\",\"b\"]}");
	assert_int_equal(len, strlen(out));
	free(out);
}

static void test_generator_escapes_roundtrip(void **state)
{
	(void)state;
	const char *nasty = "quote\" backslash\\ nl\n tab\t ctl\x01\x1f slash/ utf8 \xc3\xa9\xe2\x82\xac";
	yajl_gen g = kg_new(false);
	yajl_gen_map_open(g);
	kg_key_str(g, nasty, nasty);
	yajl_gen_map_close(g);
	char *out = kg_finish(g, NULL);
	assert_null(strchr(out, '\n'));
	struct kj root = parse_ok(out), f;
	struct kelp_err err = { 0 };
	assert_int_equal(kj_field(&root, nasty, &f, &err), 1);
	char *s = NULL;
	assert_int_equal(kj_string(&f, &s, &err), 0);
	assert_string_equal(s, nasty);
	free(s);
	free(out);
	yajl_tree_free(root.v);
}

static void test_generator_invalid_utf8_stays_valid(void **state)
{
	(void)state;
	yajl_gen g = kg_new(false);
	yajl_gen_map_open(g);
	kg_key_str(g, "bad", "\xff\xfe");
	kg_key_str(g, "after", "x");
	yajl_gen_map_close(g);
	char *out = kg_finish(g, NULL);
	assert_string_equal(out, "{\"bad\":\"?\",\"after\":\"x\"}");
	free(out);
}

static void test_generator_beautify_parses(void **state)
{
	(void)state;
	yajl_gen g = kg_new(true);
	yajl_gen_map_open(g);
	kg_key_str(g, "status", "running");
	kg_key(g, "annotations");
	yajl_gen_map_open(g);
	kg_key_str(g, "k", "v");
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	char *out = kg_finish(g, NULL);
	assert_non_null(strchr(out, '\n'));
	struct kj root = parse_ok(out);
	struct kj k = walk(&root, "annotations.k");
	char *s = NULL;
	struct kelp_err err = { 0 };
	assert_int_equal(kj_string(&k, &s, &err), 0);
	assert_string_equal(s, "v");
	free(s);
	free(out);
	yajl_tree_free(root.v);
}

/* A NUL escape would cut a C string short ("1\u0000x" read as "1"): refused, while an escaped
 * backslash followed by "u0000" is ordinary text. */
static void test_nul_escape_refused(void **state)
{
	(void)state;
	struct kj root;
	struct kelp_err err = { 0 };
	const char bad[] = "{\"a\": \"1\\u0000kernel.core_pattern=x\"}";
	assert_int_equal(kj_parse(bad, strlen(bad), "doc", &root, &err), -1);
	assert_non_null(strstr(err.msg, "NUL character"));
	const char ok[] = "{\"a\": \"C:\\\\u0000\"}";
	assert_int_equal(kj_parse(ok, strlen(ok), "doc", &root, &err), 0);
	assert_string_equal(YAJL_GET_STRING(root.v->u.object.values[0]), "C:\\u0000");
	yajl_tree_free(root.v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_error_names_document),
		cmocka_unit_test(test_parse_rejects_nul_and_trailing_garbage),
		cmocka_unit_test(test_parse_uses_len_not_nul),
		cmocka_unit_test(test_json_errors_have_no_strerror_suffix),
		cmocka_unit_test(test_nested_path_with_array_index),
		cmocka_unit_test(test_type_errors_name_the_found_type),
		cmocka_unit_test(test_document_level_error),
		cmocka_unit_test(test_nested_arrays_and_objects_path),
		cmocka_unit_test(test_long_paths_are_truncated_safely),
		cmocka_unit_test(test_required_field_missing),
		cmocka_unit_test(test_req_string_type_error),
		cmocka_unit_test(test_field_absent_present_null),
		cmocka_unit_test(test_uint32_range),
		cmocka_unit_test(test_uint32_range_codes),
		cmocka_unit_test(test_int32_range),
		cmocka_unit_test(test_int64_and_uint64_limits),
		cmocka_unit_test(test_int64_min_is_accepted),
		cmocka_unit_test(test_opt_integers),
		cmocka_unit_test(test_double_and_bool),
		cmocka_unit_test(test_strings_and_opt_string),
		cmocka_unit_test(test_string_array),
		cmocka_unit_test(test_string_map),
		cmocka_unit_test(test_key_at),
		cmocka_unit_test(test_only_keys),
		cmocka_unit_test(test_generator_compact),
		cmocka_unit_test(test_generator_escapes_roundtrip),
		cmocka_unit_test(test_generator_invalid_utf8_stays_valid),
		cmocka_unit_test(test_generator_beautify_parses),
		cmocka_unit_test(test_nul_escape_refused),
	};
	return cmocka_run_group_tests_name("json", tests, NULL, NULL);
}
