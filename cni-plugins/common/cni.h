/* The CNI exec protocol (spec 1.1) shared by every kelp plugin: environment and stdin parsing,
 * version negotiation, the error JSON with the spec's codes, and the dispatch to a plugin's
 * ADD / DEL / CHECK / STATUS / GC handlers. A plugin's main() is one cni_main() call. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "json.h"
#include "result.h"

/* The spec's reserved error codes; 999 is libcni's "internal error" for everything else. */
enum {
	CNI_ERR_VERSION = 1,
	CNI_ERR_FIELD = 2,
	CNI_ERR_UNKNOWN_CONTAINER = 3,
	CNI_ERR_ENV = 4,
	CNI_ERR_IO = 5,
	CNI_ERR_DECODE = 6,
	CNI_ERR_CONFIG = 7,
	CNI_ERR_TRY_AGAIN = 11,
	CNI_ERR_UNAVAILABLE = 50,
	CNI_ERR_LIMITED = 51,
	/* kelp's own: the attachment (interface or allocation) already exists */
	CNI_ERR_EXISTS = 100,
	CNI_ERR_INTERNAL = 999,
};

/* An error on its way to the caller: the CNI code plus kelp's errno + message. */
struct cni_err {
	int code;
	struct kelp_err k;
};

int cni_fail(struct cni_err *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The message gets ": strerror(errnum)" appended. */
int cni_syserr(struct cni_err *err, int code, int errnum, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Adopt a kelp error (from lib/) under a CNI code; code 0 keeps the one already set. */
int cni_wrap(struct cni_err *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

enum cni_cmd { CNI_ADD, CNI_DEL, CNI_CHECK, CNI_STATUS, CNI_GC, CNI_VERSION };

/* One invocation: environment, the stdin config and what every plugin reads from it. */
struct cni_req {
	enum cni_cmd cmd;
	const char *command; /* CNI_COMMAND as given */
	const char *containerid, *netns, *ifname, *args, *path;
	char *const *env; /* the environment, passed on to delegates */
	char *stdin_buf; /* the config exactly as received, passed on to delegates */
	size_t stdin_len;
	struct kj conf; /* parsed stdin (the root object) */
	char *version;  /* negotiated cniVersion */
	char *name, *type;
	bool has_prev;
	struct cni_result prev;
	struct kj runtime_config; /* .v NULL when absent */
	/* GC: cni.dev/valid-attachments */
	size_t n_valid;
	char **valid_ids, **valid_ifnames;
};

struct cni_plugin {
	const char *name;
	bool ipam; /* an IPAM plugin: ADD results carry no interfaces */
	int (*add)(struct cni_req *req, struct cni_result *ret, struct cni_err *err);
	int (*del)(struct cni_req *req, struct cni_err *err);
	int (*check)(struct cni_req *req, struct cni_err *err);
	int (*status)(struct cni_req *req, struct cni_err *err);
	int (*gc)(struct cni_req *req, struct cni_err *err);
	/* Extra argv verbs (kelp-vxlan sync); NULL when the plugin has none. Returns an exit code. */
	int (*cli)(int argc, char **argv);
};

/* Run one CNI invocation from the process environment and stdin; returns the exit status. */
int cni_main(int argc, char **argv, const struct cni_plugin *p);

/* kelp-host-local, where a plugin links it in (kelp-bridge does): delegating IPAM to it then
 * runs in process instead of one exec per call, with the same protocol and results. */
extern const struct cni_plugin kelp_host_local_plugin __attribute__((weak));

/* The same on explicit inputs (unit tests): env is a NULL-terminated KEY=VALUE array, output
 * goes to out_fd. */
int cni_run(const struct cni_plugin *p, char *const *env, const char *in, size_t in_len, int out_fd);

extern const char *const cni_supported_versions[];
/* Compare "a.b.c" versions: <0, 0, >0. Unparsable ones sort first. */
int cni_version_cmp(const char *a, const char *b);
bool cni_version_supported(const char *v);

/* Interface names the kernel accepts: 1..15 bytes, no '/', ':' or whitespace, not "." or "..". */
bool cni_ifname_valid(const char *name);
/* Container ids as the spec defines them: [A-Za-z0-9][A-Za-z0-9_.-]*. */
bool cni_containerid_valid(const char *id);

/* Open a network namespace file (CNI_NETNS) and check it is one: ENOENT becomes code 3. */
int cni_netns_open(const char *path, struct cni_err *err);

/* Run the delegated plugin `type` (found on CNI_PATH) with the request's environment, command
 * `cmd` and the request's stdin; parse its ADD result into ret (may be NULL for other commands).
 * A delegate's error JSON is passed on with its code. */
int cni_delegate(const struct cni_req *req, const char *type, const char *cmd, struct cni_result *ret,
		 struct cni_err *err);
/* The same with another config on the delegate's stdin. */
int cni_delegate_conf(const struct cni_req *req, const char *type, const char *cmd, const char *conf, size_t len,
		      struct cni_result *ret, struct cni_err *err);

/* Write a parsed JSON value back as text (for configs derived from the one received). */
void cni_gen_value(yajl_gen g, yajl_val v);
