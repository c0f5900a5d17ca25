#include "json.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cleanup.h"

static void child_path(const char *parent, const char *key, char *out)
{
	if (!parent || !*parent)
		snprintf(out, KJ_PATH_MAX, "%s", key);
	else
		snprintf(out, KJ_PATH_MAX, "%s.%s", parent, key);
}

static const char *type_name(yajl_val v)
{
	if (!v)
		return "nothing";
	switch (v->type) {
	case yajl_t_string:
		return "a string";
	case yajl_t_number:
		return "a number";
	case yajl_t_object:
		return "an object";
	case yajl_t_array:
		return "an array";
	case yajl_t_true:
	case yajl_t_false:
		return "a boolean";
	case yajl_t_null:
		return "null";
	default:
		return "an unknown value";
	}
}

static int type_error(const struct kj *n, const char *want, struct kelp_err *err)
{
	return kelp_fail(err, EINVAL, "%s: expected %s, got %s", *n->path ? n->path : "(document)", want,
			  type_name(n->v));
}

/* Where the JSON text escapes a NUL ("\u0000"), or -1: C strings would silently cut there, so
 * "1\u0000x" would read as "1" — such a document is refused instead. */
static long nul_escape_at(const char *buf, size_t len)
{
	for (size_t i = 0; i + 5 < len; i++) {
		if (buf[i] != '\\')
			continue;
		/* an escape: look at what it escapes, then skip it */
		if (buf[i + 1] == 'u' && buf[i + 2] == '0' && buf[i + 3] == '0' && buf[i + 4] == '0' && buf[i + 5] == '0')
			return (long)i;
		i++;
	}
	return -1;
}

/* The opening quote of the string literal that holds position at. */
static long string_start(const char *buf, long at)
{
	for (long i = at - 1; i >= 0; i--) {
		if (buf[i] != '"')
			continue;
		long bs = 0;
		for (long j = i - 1; j >= 0 && buf[j] == '\\'; j--)
			bs++;
		if (bs % 2 == 0)
			return i;
	}
	return -1;
}

/* Name the place of a NUL escape: the key it is the value of, or the key it is in. */
static void nul_context(const char *buf, long at, char *out, size_t size)
{
	long s0 = string_start(buf, at);
	snprintf(out, size, "byte %ld", at);
	if (s0 < 0)
		return;
	long k = s0 - 1;
	while (k >= 0 && (buf[k] == ' ' || buf[k] == '\t' || buf[k] == '\n' || buf[k] == '\r'))
		k--;
	if (k >= 0 && buf[k] == ':') {
		/* a value: name its key */
		long kend = k - 1;
		while (kend >= 0 && buf[kend] != '"')
			kend--;
		long kstart = kend > 0 ? string_start(buf, kend) : -1;
		if (kstart >= 0)
			snprintf(out, size, "the value of \"%.*s\"", (int)(kend - kstart - 1), buf + kstart + 1);
		return;
	}
	snprintf(out, size, "\"%.*s\\u0000...\"", (int)(at - s0 - 1), buf + s0 + 1);
}

int kj_parse(const char *buf, size_t len, const char *what, struct kj *ret_root, struct kelp_err *err)
{
	char ebuf[512];
	/* yajl_tree_parse needs a NUL-terminated string. */
	cleanup_free char *copy = xmalloc(len + 1);
	memcpy(copy, buf, len);
	copy[len] = '\0';
	if (strlen(copy) != len)
		return kelp_fail(err, EINVAL, "parse %s: NUL byte inside the JSON text", what);
	long nul = nul_escape_at(buf, len);
	if (nul >= 0) {
		char where[160];
		nul_context(buf, nul, where, sizeof(where));
		return kelp_fail(err, EINVAL, "parse %s: %s holds a NUL character (\\u0000)", what, where);
	}
	ebuf[0] = '\0';
	yajl_val v = yajl_tree_parse(copy, ebuf, sizeof(ebuf));
	if (!v) {
		/* yajl's message spans lines with a caret; keep the first line. */
		char *nl = strchr(ebuf, '\n');
		if (nl)
			*nl = '\0';
		return kelp_fail(err, EINVAL, "parse %s: %s", what, *ebuf ? ebuf : "invalid JSON");
	}
	ret_root->v = v;
	ret_root->path[0] = '\0';
	return 0;
}

int kj_expect_object(const struct kj *n, struct kelp_err *err)
{
	if (!YAJL_IS_OBJECT(n->v))
		return type_error(n, "an object", err);
	return 0;
}

int kj_expect_array(const struct kj *n, struct kelp_err *err)
{
	if (!YAJL_IS_ARRAY(n->v))
		return type_error(n, "an array", err);
	return 0;
}

int kj_field(const struct kj *n, const char *key, struct kj *ret, struct kelp_err *err)
{
	child_path(n->path, key, ret->path);
	ret->v = NULL;
	if (kj_expect_object(n, err) < 0)
		return -1;
	for (size_t i = 0; i < n->v->u.object.len; i++) {
		if (strcmp(n->v->u.object.keys[i], key) == 0) {
			yajl_val v = n->v->u.object.values[i];
			if (!v || YAJL_IS_NULL(v))
				return 0;
			ret->v = v;
			return 1;
		}
	}
	return 0;
}

int kj_required(const struct kj *n, const char *key, struct kj *ret, struct kelp_err *err)
{
	int r = kj_field(n, key, ret, err);
	if (r < 0)
		return -1;
	if (r == 0)
		return kelp_fail(err, EINVAL, "%s: required field is missing", ret->path);
	return 1;
}

size_t kj_len(const struct kj *arr)
{
	return YAJL_IS_ARRAY(arr->v) ? arr->v->u.array.len : 0;
}

void kj_index(const struct kj *arr, size_t i, struct kj *ret)
{
	snprintf(ret->path, KJ_PATH_MAX, "%s[%zu]", arr->path, i);
	ret->v = (YAJL_IS_ARRAY(arr->v) && i < arr->v->u.array.len) ? arr->v->u.array.values[i] : NULL;
}

size_t kj_obj_len(const struct kj *obj)
{
	return YAJL_IS_OBJECT(obj->v) ? obj->v->u.object.len : 0;
}

const char *kj_key_at(const struct kj *obj, size_t i, struct kj *ret)
{
	if (!YAJL_IS_OBJECT(obj->v) || i >= obj->v->u.object.len) {
		ret->v = NULL;
		ret->path[0] = '\0';
		return NULL;
	}
	const char *key = obj->v->u.object.keys[i];
	child_path(obj->path, key, ret->path);
	ret->v = obj->v->u.object.values[i];
	return key;
}

int kj_string(const struct kj *n, char **ret, struct kelp_err *err)
{
	if (!YAJL_IS_STRING(n->v))
		return type_error(n, "a string", err);
	free(*ret);
	*ret = xstrdup(n->v->u.string);
	return 0;
}

int kj_bool(const struct kj *n, bool *ret, struct kelp_err *err)
{
	if (YAJL_IS_TRUE(n->v))
		*ret = true;
	else if (YAJL_IS_FALSE(n->v))
		*ret = false;
	else
		return type_error(n, "a boolean", err);
	return 0;
}

int kj_int64(const struct kj *n, int64_t *ret, struct kelp_err *err)
{
	if (YAJL_IS_NUMBER(n->v) && !YAJL_IS_INTEGER(n->v) && n->v->u.number.r && !strpbrk(n->v->u.number.r, ".eE")) {
		/* yajl's own integer parser overflows on INT64_MIN; read the text */
		errno = 0;
		char *end;
		long long v = strtoll(n->v->u.number.r, &end, 10);
		if (errno == 0 && *end == '\0') {
			*ret = v;
			return 0;
		}
	}
	if (!YAJL_IS_NUMBER(n->v) || !YAJL_IS_INTEGER(n->v)) {
		if (YAJL_IS_NUMBER(n->v) && n->v->u.number.r && !strpbrk(n->v->u.number.r, ".eE"))
			return kelp_fail(err, ERANGE, "%s: integer %s out of range", n->path, n->v->u.number.r);
		return type_error(n, "an integer", err);
	}
	*ret = YAJL_GET_INTEGER(n->v);
	return 0;
}

int kj_uint64(const struct kj *n, uint64_t *ret, struct kelp_err *err)
{
	if (YAJL_IS_NUMBER(n->v) && !YAJL_IS_INTEGER(n->v)) {
		/* yajl stores integers in long long; larger unsigned values arrive only as text. */
		const char *r = n->v->u.number.r;
		if (r && *r && strspn(r, "0123456789") == strlen(r)) {
			errno = 0;
			char *end;
			unsigned long long u = strtoull(r, &end, 10);
			if (errno == 0 && *end == '\0') {
				*ret = u;
				return 0;
			}
			return kelp_fail(err, ERANGE, "%s: integer %s out of range", n->path, r);
		}
	}
	int64_t v;
	if (kj_int64(n, &v, err) < 0)
		return -1;
	if (v < 0)
		return kelp_fail(err, ERANGE, "%s: expected a non-negative integer, got %lld", n->path,
				  (long long)v);
	*ret = (uint64_t)v;
	return 0;
}

int kj_int32(const struct kj *n, int32_t *ret, struct kelp_err *err)
{
	int64_t v;
	if (kj_int64(n, &v, err) < 0)
		return -1;
	if (v < INT32_MIN || v > INT32_MAX)
		return kelp_fail(err, ERANGE, "%s: integer %lld out of range", n->path, (long long)v);
	*ret = (int32_t)v;
	return 0;
}

int kj_uint32(const struct kj *n, uint32_t *ret, struct kelp_err *err)
{
	uint64_t v;
	if (kj_uint64(n, &v, err) < 0)
		return -1;
	if (v > UINT32_MAX)
		return kelp_fail(err, ERANGE, "%s: integer %llu out of range", n->path, (unsigned long long)v);
	*ret = (uint32_t)v;
	return 0;
}

int kj_double(const struct kj *n, double *ret, struct kelp_err *err)
{
	if (!YAJL_IS_NUMBER(n->v) || !YAJL_IS_DOUBLE(n->v))
		return type_error(n, "a number", err);
	*ret = YAJL_GET_DOUBLE(n->v);
	return 0;
}

int kj_string_array(const struct kj *n, char ***ret, size_t *ret_n, struct kelp_err *err)
{
	if (kj_expect_array(n, err) < 0)
		return -1;
	size_t len = kj_len(n);
	cleanup_strv char **out = xcalloc(len + 1, sizeof(char *));
	for (size_t i = 0; i < len; i++) {
		struct kj e;
		kj_index(n, i, &e);
		if (kj_string(&e, &out[i], err) < 0)
			return -1;
	}
	strv_free(*ret);
	*ret = TAKE_PTR(out);
	if (ret_n)
		*ret_n = len;
	return 0;
}

int kj_string_map(const struct kj *n, char ***ret_keys, char ***ret_values, struct kelp_err *err)
{
	if (kj_expect_object(n, err) < 0)
		return -1;
	size_t len = kj_obj_len(n);
	cleanup_strv char **keys = xcalloc(len + 1, sizeof(char *));
	cleanup_strv char **values = xcalloc(len + 1, sizeof(char *));
	for (size_t i = 0; i < len; i++) {
		struct kj e;
		const char *k = kj_key_at(n, i, &e);
		if (kj_string(&e, &values[i], err) < 0)
			return -1;
		keys[i] = xstrdup(k);
	}
	strv_free(*ret_keys);
	strv_free(*ret_values);
	*ret_keys = TAKE_PTR(keys);
	*ret_values = TAKE_PTR(values);
	return 0;
}

#define OPT_GETTER(name, type, conv)                                                               \
	int name(const struct kj *obj, const char *key, type *ret, bool *ret_present, struct kelp_err *err) \
	{                                                                                          \
		struct kj f;                                                                       \
		int r = kj_field(obj, key, &f, err);                                               \
		if (ret_present)                                                                   \
			*ret_present = r > 0;                                                      \
		if (r <= 0)                                                                        \
			return r;                                                                  \
		return conv(&f, ret, err);                                                         \
	}

OPT_GETTER(kj_opt_int64, int64_t, kj_int64)
OPT_GETTER(kj_opt_uint64, uint64_t, kj_uint64)
OPT_GETTER(kj_opt_int32, int32_t, kj_int32)
OPT_GETTER(kj_opt_uint32, uint32_t, kj_uint32)

int kj_opt_string(const struct kj *obj, const char *key, char **ret, struct kelp_err *err)
{
	struct kj f;
	int r = kj_field(obj, key, &f, err);
	if (r <= 0)
		return r;
	return kj_string(&f, ret, err);
}

int kj_req_string(const struct kj *obj, const char *key, char **ret, struct kelp_err *err)
{
	struct kj f;
	if (kj_required(obj, key, &f, err) < 0)
		return -1;
	return kj_string(&f, ret, err);
}

int kj_opt_bool(const struct kj *obj, const char *key, bool *ret, struct kelp_err *err)
{
	struct kj f;
	int r = kj_field(obj, key, &f, err);
	if (r <= 0)
		return r;
	return kj_bool(&f, ret, err);
}

int kj_opt_string_array(const struct kj *obj, const char *key, char ***ret, size_t *ret_n, struct kelp_err *err)
{
	struct kj f;
	int r = kj_field(obj, key, &f, err);
	if (r <= 0)
		return r;
	return kj_string_array(&f, ret, ret_n, err);
}

int kj_only_keys(const struct kj *obj, const char *const *known, struct kelp_err *err)
{
	if (kj_expect_object(obj, err) < 0)
		return -1;
	for (size_t i = 0; i < obj->v->u.object.len; i++) {
		const char *k = obj->v->u.object.keys[i];
		bool found = false;
		for (const char *const *p = known; *p; p++)
			if (strcmp(*p, k) == 0) {
				found = true;
				break;
			}
		if (!found) {
			char path[KJ_PATH_MAX];
			child_path(obj->path, k, path);
			return kelp_fail(err, EINVAL, "%s: unknown field", path);
		}
	}
	return 0;
}

yajl_gen kg_new(bool beautify)
{
	yajl_gen g = yajl_gen_alloc(NULL);
	if (!g)
		abort();
	yajl_gen_config(g, yajl_gen_beautify, beautify ? 1 : 0);
	yajl_gen_config(g, yajl_gen_validate_utf8, 1);
	return g;
}

char *kg_finish(yajl_gen g, size_t *ret_len)
{
	const unsigned char *buf;
	size_t len;
	yajl_gen_get_buf(g, &buf, &len);
	char *out = xmalloc(len + 1);
	memcpy(out, buf, len);
	out[len] = '\0';
	if (ret_len)
		*ret_len = len;
	yajl_gen_free(g);
	return out;
}

void kg_str(yajl_gen g, const char *s)
{
	if (!s) {
		yajl_gen_null(g);
		return;
	}
	if (yajl_gen_string(g, (const unsigned char *)s, strlen(s)) != yajl_gen_status_ok) {
		/* invalid UTF-8 from a caller: write a placeholder rather than a broken document */
		yajl_gen_string(g, (const unsigned char *)"?", 1);
	}
}

void kg_key(yajl_gen g, const char *key)
{
	kg_str(g, key);
}

void kg_key_str(yajl_gen g, const char *key, const char *value)
{
	kg_str(g, key);
	kg_str(g, value);
}

void kg_key_int(yajl_gen g, const char *key, long long value)
{
	kg_str(g, key);
	yajl_gen_integer(g, value);
}

void kg_key_bool(yajl_gen g, const char *key, bool value)
{
	kg_str(g, key);
	yajl_gen_bool(g, value);
}
