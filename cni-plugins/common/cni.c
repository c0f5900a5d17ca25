#include "cni.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "fs.h"

extern char **environ;

const char *const cni_supported_versions[] = {"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0", NULL};

int cni_fail(struct cni_err *err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	kelp_verror(&err->k, 0, fmt, ap);
	va_end(ap);
	err->code = code;
	return -1;
}

int cni_syserr(struct cni_err *err, int code, int errnum, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	kelp_verror(&err->k, errnum, fmt, ap);
	va_end(ap);
	err->code = code;
	return -1;
}

int cni_wrap(struct cni_err *err, int code, const char *fmt, ...)
{
	char prefix[KELP_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	kelp_error_wrap(&err->k, "%s", prefix);
	if (code)
		err->code = code;
	return -1;
}

static int parse_ver(const char *v, int out[3])
{
	if (!v)
		return -1;
	int n = 0;
	if (sscanf(v, "%d.%d.%d%n", &out[0], &out[1], &out[2], &n) != 3 || v[n] != '\0')
		return -1;
	return 0;
}

int cni_version_cmp(const char *a, const char *b)
{
	int x[3], y[3];
	int ea = parse_ver(a, x), eb = parse_ver(b, y);
	if (ea < 0 || eb < 0)
		return ea - eb;
	for (int i = 0; i < 3; i++)
		if (x[i] != y[i])
			return x[i] < y[i] ? -1 : 1;
	return 0;
}

bool cni_version_supported(const char *v)
{
	for (const char *const *s = cni_supported_versions; *s; s++)
		if (v && strcmp(*s, v) == 0)
			return true;
	return false;
}

bool cni_ifname_valid(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	if (n == 0 || n > 15 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return false;
	for (const char *p = name; *p; p++)
		if (*p == '/' || *p == ':' || *p <= ' ' || *p == 0x7f)
			return false;
	return true;
}

static bool is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool cni_containerid_valid(const char *id)
{
	if (!id || !is_alnum(*id))
		return false;
	for (const char *p = id + 1; *p; p++)
		if (!is_alnum(*p) && *p != '_' && *p != '.' && *p != '-')
			return false;
	return true;
}

static const char *env_get(char *const *env, const char *key)
{
	size_t n = strlen(key);
	for (; env && *env; env++)
		if (strncmp(*env, key, n) == 0 && (*env)[n] == '=')
			return *env + n + 1;
	return NULL;
}

static void write_error(int fd, const char *version, const struct cni_err *err)
{
	yajl_gen g = kg_new(false);
	yajl_gen_map_open(g);
	kg_key_str(g, "cniVersion", version && cni_version_supported(version) ? version : "1.1.0");
	kg_key_int(g, "code", err->code ? err->code : CNI_ERR_INTERNAL);
	kg_key_str(g, "msg", err->k.msg);
	yajl_gen_map_close(g);
	size_t len;
	cleanup_free char *out = kg_finish(g, &len);
	out[len] = '\n';
	kelp_write_all(fd, out, len + 1);
}

static void req_free(struct cni_req *req)
{
	if (req->conf.v)
		yajl_tree_free(req->conf.v);
	free(req->version);
	free(req->name);
	free(req->type);
	if (req->has_prev)
		cni_result_free(&req->prev);
	strv_free(req->valid_ids);
	strv_free(req->valid_ifnames);
}

static const struct {
	const char *name;
	enum cni_cmd cmd;
} commands[] = {{"ADD", CNI_ADD},	{"DEL", CNI_DEL}, {"CHECK", CNI_CHECK},
		{"STATUS", CNI_STATUS}, {"GC", CNI_GC},	  {"VERSION", CNI_VERSION}};

/* Read what every plugin needs from the config; version problems are code 1, shape code 7. */
static int parse_conf(struct cni_req *req, struct cni_err *err)
{
	struct kj f;
	if (req->stdin_len == 0)
		return cni_fail(err, CNI_ERR_DECODE, "no network configuration on stdin");
	if (kj_parse(req->stdin_buf, req->stdin_len, "network configuration", &req->conf, &err->k) < 0) {
		err->code = CNI_ERR_DECODE;
		return -1;
	}
	if (kj_expect_object(&req->conf, &err->k) < 0) {
		err->code = CNI_ERR_DECODE;
		return -1;
	}
	if (kj_opt_string(&req->conf, "cniVersion", &req->version, &err->k) < 0)
		return err->code = CNI_ERR_DECODE, -1;
	if (!req->version) {
		/* A config carrying only spec 1.1's cniVersions: take the newest version we share. */
		cleanup_strv char **vs = NULL;
		if (kj_opt_string_array(&req->conf, "cniVersions", &vs, NULL, &err->k) < 0)
			return err->code = CNI_ERR_DECODE, -1;
		for (char **v = vs; v && *v; v++)
			if (cni_version_supported(*v) && (!req->version || cni_version_cmp(*v, req->version) > 0)) {
				free(req->version);
				req->version = xstrdup(*v);
			}
		if (!req->version && req->cmd == CNI_VERSION)
			req->version = xstrdup("1.1.0");
		if (!req->version)
			return cni_fail(err, CNI_ERR_VERSION, "cniVersion: required field is missing");
	}
	if (req->cmd == CNI_VERSION)
		return 0;
	if (!cni_version_supported(req->version))
		return cni_fail(err, CNI_ERR_VERSION, "cniVersion: unsupported version \"%s\" (supported: 0.3.0 0.3.1 0.4.0 1.0.0 1.1.0)",
				req->version);
	if (req->cmd == CNI_CHECK && cni_version_cmp(req->version, "0.4.0") < 0)
		return cni_fail(err, CNI_ERR_VERSION, "CHECK needs cniVersion 0.4.0 or later, config has %s", req->version);
	if ((req->cmd == CNI_STATUS || req->cmd == CNI_GC) && cni_version_cmp(req->version, "1.1.0") < 0)
		return cni_fail(err, CNI_ERR_VERSION, "%s needs cniVersion 1.1.0 or later, config has %s", req->command,
				req->version);
	if (kj_req_string(&req->conf, "name", &req->name, &err->k) < 0 ||
	    kj_req_string(&req->conf, "type", &req->type, &err->k) < 0)
		return err->code = CNI_ERR_CONFIG, -1;
	if (!kelp_name_is_safe(req->name))
		return cni_fail(err, CNI_ERR_CONFIG, "name: \"%s\" is not a valid network name", req->name);
	int r = kj_field(&req->conf, "prevResult", &f, &err->k);
	if (r > 0) {
		if (cni_result_parse(&f, &req->prev, &err->k) < 0)
			return err->code = CNI_ERR_DECODE, -1;
		req->has_prev = true;
	}
	if (kj_field(&req->conf, "runtimeConfig", &req->runtime_config, &err->k) > 0 &&
	    kj_expect_object(&req->runtime_config, &err->k) < 0)
		return err->code = CNI_ERR_CONFIG, -1;
	if (req->cmd == CNI_GC && kj_field(&req->conf, "cni.dev/valid-attachments", &f, &err->k) > 0) {
		if (kj_expect_array(&f, &err->k) < 0)
			return err->code = CNI_ERR_CONFIG, -1;
		size_t n = kj_len(&f);
		req->valid_ids = xcalloc(n + 1, sizeof(char *));
		req->valid_ifnames = xcalloc(n + 1, sizeof(char *));
		for (size_t i = 0; i < n; i++) {
			struct kj it;
			kj_index(&f, i, &it);
			if (kj_expect_object(&it, &err->k) < 0 ||
			    kj_req_string(&it, "containerID", &req->valid_ids[i], &err->k) < 0 ||
			    kj_req_string(&it, "ifname", &req->valid_ifnames[i], &err->k) < 0)
				return err->code = CNI_ERR_CONFIG, -1;
			req->n_valid++;
		}
	}
	return 0;
}

static int check_env(struct cni_req *req, struct cni_err *err)
{
	/* VERSION ignores the rest of the environment (libcni sends "dummy" values) */
	if (req->cmd == CNI_VERSION)
		return 0;
	bool attach = req->cmd == CNI_ADD || req->cmd == CNI_DEL || req->cmd == CNI_CHECK;
	if (attach) {
		if (!req->containerid || !*req->containerid)
			return cni_fail(err, CNI_ERR_ENV, "CNI_CONTAINERID is required for %s", req->command);
		if (!cni_containerid_valid(req->containerid))
			return cni_fail(err, CNI_ERR_ENV, "CNI_CONTAINERID \"%s\" is not a valid container id", req->containerid);
		if (!req->ifname || !*req->ifname)
			return cni_fail(err, CNI_ERR_ENV, "CNI_IFNAME is required for %s", req->command);
		if (!cni_ifname_valid(req->ifname))
			return cni_fail(err, CNI_ERR_ENV, "CNI_IFNAME \"%s\" is not a valid interface name (1-15 bytes, no '/', ':' or spaces)",
					req->ifname);
	}
	if ((req->cmd == CNI_ADD || req->cmd == CNI_CHECK) && (!req->netns || !*req->netns))
		return cni_fail(err, CNI_ERR_ENV, "CNI_NETNS is required for %s", req->command);
	if (req->netns && *req->netns && req->netns[0] != '/')
		return cni_fail(err, CNI_ERR_ENV, "CNI_NETNS \"%s\" is not an absolute path", req->netns);
	return 0;
}

static int version_out(const struct cni_req *req, int out_fd)
{
	yajl_gen g = kg_new(false);
	yajl_gen_map_open(g);
	kg_key_str(g, "cniVersion", req->version);
	kg_key(g, "supportedVersions");
	yajl_gen_array_open(g);
	for (const char *const *s = cni_supported_versions; *s; s++)
		kg_str(g, *s);
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
	size_t len;
	cleanup_free char *out = kg_finish(g, &len);
	out[len] = '\n';
	return kelp_write_all(out_fd, out, len + 1) < 0 ? -1 : 0;
}

static bool conf_flag(const struct cni_req *req, const char *key)
{
	bool v = false;
	struct kelp_err ignored;
	if (kj_opt_bool(&req->conf, key, &v, &ignored) < 0)
		return false;
	return v;
}

static int dispatch(const struct cni_plugin *p, struct cni_req *req, int out_fd, struct cni_err *err)
{
	if (check_env(req, err) < 0 || parse_conf(req, err) < 0)
		return -1;
	switch (req->cmd) {
	case CNI_VERSION:
		return version_out(req, out_fd);
	case CNI_ADD: {
		struct cni_result res;
		cni_result_init(&res);
		if (p->add(req, &res, err) < 0) {
			cni_result_free(&res);
			return -1;
		}
		size_t len;
		cleanup_free char *out = cni_result_json(&res, req->version, &len);
		cni_result_free(&res);
		out[len] = '\n';
		if (kelp_write_all(out_fd, out, len + 1) < 0)
			return cni_syserr(err, CNI_ERR_IO, errno, "write the result");
		return 0;
	}
	case CNI_DEL:
		return p->del(req, err);
	case CNI_CHECK:
		/* spec 1.1: an administrator's disableCheck means the network is not to be checked */
		if (conf_flag(req, "disableCheck"))
			return 0;
		return p->check(req, err);
	case CNI_STATUS:
		return p->status(req, err);
	case CNI_GC:
		if (conf_flag(req, "disableGC"))
			return 0;
		return p->gc(req, err);
	}
	return cni_fail(err, CNI_ERR_ENV, "CNI_COMMAND: unknown command");
}

int cni_run(const struct cni_plugin *p, char *const *env, const char *in, size_t in_len, int out_fd)
{
	struct cni_req req = {0};
	struct cni_err err = {0};
	req.env = env;
	req.command = env_get(env, "CNI_COMMAND");
	req.containerid = env_get(env, "CNI_CONTAINERID");
	req.netns = env_get(env, "CNI_NETNS");
	req.ifname = env_get(env, "CNI_IFNAME");
	req.args = env_get(env, "CNI_ARGS");
	req.path = env_get(env, "CNI_PATH");
	req.stdin_buf = (char *)in;
	req.stdin_len = in_len;
	int rc = -1;
	bool known = false;
	for (size_t i = 0; req.command && i < ARRAY_SIZE(commands); i++)
		if (strcmp(req.command, commands[i].name) == 0) {
			req.cmd = commands[i].cmd;
			known = true;
		}
	if (!req.command || !*req.command)
		cni_fail(&err, CNI_ERR_ENV, "CNI_COMMAND is not set (one of ADD DEL CHECK STATUS GC VERSION)");
	else if (!known)
		cni_fail(&err, CNI_ERR_ENV, "CNI_COMMAND \"%s\" is not one of ADD DEL CHECK STATUS GC VERSION", req.command);
	else
		rc = dispatch(p, &req, out_fd, &err);
	if (rc < 0) {
		write_error(out_fd, req.version, &err);
		fprintf(stderr, "%s: %s\n", p->name, err.k.msg);
	}
	req_free(&req);
	return rc < 0 ? 1 : 0;
}

int cni_main(int argc, char **argv, const struct cni_plugin *p)
{
	if (argc > 1 && p->cli)
		return p->cli(argc, argv);
	cleanup_free char *in = NULL;
	size_t len = 0;
	struct kelp_err kerr;
	const char *cmd = getenv("CNI_COMMAND");
	/* VERSION may come with nothing on stdin; every other command needs a config. */
	if (kelp_read_fd(STDIN_FILENO, 1 << 24, &in, &len, &kerr) < 0) {
		if (!cmd || strcmp(cmd, "VERSION") != 0) {
			struct cni_err err = {.code = CNI_ERR_IO, .k = kerr};
			kelp_error_wrap(&err.k, "read the network configuration from stdin");
			write_error(STDOUT_FILENO, NULL, &err);
			return 1;
		}
		len = 0;
	}
	if (len == 0 && cmd && strcmp(cmd, "VERSION") == 0) {
		free(in);
		in = xstrdup("{}");
		len = 2;
	}
	return cni_run(p, environ, in ? in : "", len, STDOUT_FILENO);
}
