/* JSON over yajl: a tree for parsing with typed getters whose errors name the full JSON path of
 * the bad field ("linux.resources.devices[3].major: expected integer"), and small writers over
 * yajl_gen. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "error.h"

#define KJ_PATH_MAX 256

/* A value together with the path that reached it. v is NULL for an absent field. */
struct kj {
	yajl_val v;
	char path[KJ_PATH_MAX];
};

/* Parse a whole document; *ret_root owns the tree (free with yajl_tree_free(ret_root->v)). */
int kj_parse(const char *buf, size_t len, const char *what, struct kj *ret_root, struct kelp_err *err);

/* Type checks; on mismatch fill err with "path: expected <type>". */
int kj_expect_object(const struct kj *n, struct kelp_err *err);
int kj_expect_array(const struct kj *n, struct kelp_err *err);

/* Child lookups. kj_field returns 1 when key is present and not null, 0 when absent or null, -1
 * when n is not an object. ret always gets the child path. */
int kj_field(const struct kj *n, const char *key, struct kj *ret, struct kelp_err *err);
/* As kj_field, but absence is an error: "path.key: required field is missing". */
int kj_required(const struct kj *n, const char *key, struct kj *ret, struct kelp_err *err);
size_t kj_len(const struct kj *arr);
void kj_index(const struct kj *arr, size_t i, struct kj *ret);
/* i-th key/value of an object. */
const char *kj_key_at(const struct kj *obj, size_t i, struct kj *ret);
size_t kj_obj_len(const struct kj *obj);

/* Scalar conversions of a present value. Integers are range-checked against the target type. */
int kj_string(const struct kj *n, char **ret, struct kelp_err *err);
int kj_bool(const struct kj *n, bool *ret, struct kelp_err *err);
int kj_int64(const struct kj *n, int64_t *ret, struct kelp_err *err);
int kj_uint64(const struct kj *n, uint64_t *ret, struct kelp_err *err);
int kj_int32(const struct kj *n, int32_t *ret, struct kelp_err *err);
int kj_uint32(const struct kj *n, uint32_t *ret, struct kelp_err *err);
int kj_double(const struct kj *n, double *ret, struct kelp_err *err);
/* An array of strings, NULL-terminated; *ret_n may be NULL. */
int kj_string_array(const struct kj *n, char ***ret, size_t *ret_n, struct kelp_err *err);
/* An object of string values as two parallel NULL-terminated arrays. */
int kj_string_map(const struct kj *n, char ***ret_keys, char ***ret_values, struct kelp_err *err);

/* Optional field shortcuts: leave *ret unchanged when the key is absent; *ret_present (may be
 * NULL) says whether it was there. */
int kj_opt_string(const struct kj *obj, const char *key, char **ret, struct kelp_err *err);
int kj_opt_bool(const struct kj *obj, const char *key, bool *ret, struct kelp_err *err);
int kj_opt_int64(const struct kj *obj, const char *key, int64_t *ret, bool *ret_present, struct kelp_err *err);
int kj_opt_uint64(const struct kj *obj, const char *key, uint64_t *ret, bool *ret_present, struct kelp_err *err);
int kj_opt_int32(const struct kj *obj, const char *key, int32_t *ret, bool *ret_present, struct kelp_err *err);
int kj_opt_uint32(const struct kj *obj, const char *key, uint32_t *ret, bool *ret_present, struct kelp_err *err);
int kj_opt_string_array(const struct kj *obj, const char *key, char ***ret, size_t *ret_n, struct kelp_err *err);
int kj_req_string(const struct kj *obj, const char *key, char **ret, struct kelp_err *err);

/* Refuse keys of obj not in the NULL-terminated list `known`: "path.key: unknown field". */
int kj_only_keys(const struct kj *obj, const char *const *known, struct kelp_err *err);

/* Writers. kg_new returns a generator (beautify optional); kg_finish copies out the text. */
yajl_gen kg_new(bool beautify);
char *kg_finish(yajl_gen g, size_t *ret_len);
void kg_str(yajl_gen g, const char *s);
void kg_key_str(yajl_gen g, const char *key, const char *value);
void kg_key_int(yajl_gen g, const char *key, long long value);
void kg_key_bool(yajl_gen g, const char *key, bool value);
void kg_key(yajl_gen g, const char *key);
