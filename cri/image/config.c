#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "cleanup.h"

void kelpd_config_free(struct kelpd_config *c)
{
	free(c->root);
	free(c->platform);
	for (size_t i = 0; i < c->n_registries; i++) {
		free(c->registries[i].host);
		strv_free(c->registries[i].mirrors);
	}
	free(c->registries);
	memset(c, 0, sizeof(*c));
}

const struct kimg_registry_conf *kelpd_config_registry(const struct kelpd_config *c, const char *host)
{
	for (size_t i = 0; i < c->n_registries; i++)
		if (!strcmp(c->registries[i].host, host))
			return &c->registries[i];
	return NULL;
}

struct ctx {
	yaml_document_t *doc;
	const char *path;
	struct kelp_err *err;
};

static int bad(struct ctx *x, yaml_node_t *n, const char *where, const char *what)
{
	return kelp_fail(x->err, EINVAL, "%s:%lu: %s: %s", x->path, (unsigned long)n->start_mark.line + 1, where, what);
}

static int scalar(struct ctx *x, yaml_node_t *n, const char *where, char **ret)
{
	if (n->type != YAML_SCALAR_NODE)
		return bad(x, n, where, "expected a string");
	free(*ret);
	*ret = strndup((const char *)n->data.scalar.value, n->data.scalar.length);
	if (!*ret)
		abort();
	return 0;
}

static int boolean(struct ctx *x, yaml_node_t *n, const char *where, bool *ret)
{
	cleanup_free char *s = NULL;
	if (scalar(x, n, where, &s) < 0)
		return -1;
	if (!strcmp(s, "true") || !strcmp(s, "yes"))
		*ret = true;
	else if (!strcmp(s, "false") || !strcmp(s, "no"))
		*ret = false;
	else
		return bad(x, n, where, "expected true or false");
	return 0;
}

static int parse_registry(struct ctx *x, const char *host, yaml_node_t *n, struct kimg_registry_conf *r)
{
	cleanup_free char *where = xasprintf("registries.%s", host);
	if (n->type != YAML_MAPPING_NODE)
		return bad(x, n, where, "expected a mapping");
	r->host = xstrdup(host);
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(x->doc, p->key), *v = yaml_document_get_node(x->doc, p->value);
		const char *key = k->type == YAML_SCALAR_NODE ? (const char *)k->data.scalar.value : "";
		cleanup_free char *w = xasprintf("%s.%s", where, key);
		if (!strcmp(key, "plain_http")) {
			if (boolean(x, v, w, &r->plain_http) < 0)
				return -1;
		} else if (!strcmp(key, "mirrors")) {
			if (v->type != YAML_SEQUENCE_NODE)
				return bad(x, v, w, "expected a list of URLs");
			size_t count = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
			r->mirrors = xcalloc(count + 1, sizeof(char *));
			for (size_t i = 0; i < count; i++) {
				yaml_node_t *m = yaml_document_get_node(x->doc, v->data.sequence.items.start[i]);
				if (scalar(x, m, w, &r->mirrors[i]) < 0)
					return -1;
				if (strncmp(r->mirrors[i], "http://", 7) && strncmp(r->mirrors[i], "https://", 8))
					return bad(x, m, w, "a mirror is an http:// or https:// URL");
			}
		} else {
			return bad(x, k, w, "unknown key");
		}
	}
	return 0;
}

static int parse_root(struct ctx *x, yaml_node_t *n, struct kelpd_config *c)
{
	if (n->type != YAML_MAPPING_NODE)
		return bad(x, n, "top level", "expected a mapping");
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(x->doc, p->key), *v = yaml_document_get_node(x->doc, p->value);
		const char *key = k->type == YAML_SCALAR_NODE ? (const char *)k->data.scalar.value : "";
		if (!strcmp(key, "root")) {
			if (scalar(x, v, key, &c->root) < 0)
				return -1;
			if (c->root[0] != '/')
				return bad(x, v, key, "must be an absolute path");
		} else if (!strcmp(key, "platform")) {
			if (scalar(x, v, key, &c->platform) < 0)
				return -1;
			if (!*c->platform) {
				free(c->platform);
				c->platform = NULL;
			}
		} else if (!strcmp(key, "max_concurrent_downloads")) {
			cleanup_free char *s = NULL;
			char *end;
			if (scalar(x, v, key, &s) < 0)
				return -1;
			long l = strtol(s, &end, 10);
			if (*end || l < 1 || l > 64)
				return bad(x, v, key, "expected a number from 1 to 64");
			c->max_downloads = (int)l;
		} else if (!strcmp(key, "registries")) {
			if (v->type != YAML_MAPPING_NODE)
				return bad(x, v, key, "expected a mapping of registry hosts");
			for (yaml_node_pair_t *q = v->data.mapping.pairs.start; q < v->data.mapping.pairs.top; q++) {
				yaml_node_t *hk = yaml_document_get_node(x->doc, q->key);
				cleanup_free char *host = NULL;
				if (scalar(x, hk, "registries", &host) < 0)
					return -1;
				c->registries = xrealloc(c->registries, (c->n_registries + 1) * sizeof(*c->registries));
				struct kimg_registry_conf *r = &c->registries[c->n_registries++];
				memset(r, 0, sizeof(*r));
				if (parse_registry(x, host, yaml_document_get_node(x->doc, q->value), r) < 0)
					return -1;
			}
		} else {
			return bad(x, k, key, "unknown key");
		}
	}
	return 0;
}

int kelpd_config_load(const char *path, bool missing_ok, struct kelpd_config *ret, struct kelp_err *err)
{
	struct kelpd_config c = {.max_downloads = 3};
	cleanup_fclose FILE *f = fopen(path, "re");
	if (!f && !(missing_ok && errno == ENOENT))
		return kelp_error(err, errno, "open %s", path);
	if (f) {
		yaml_parser_t parser;
		yaml_document_t doc;
		if (!yaml_parser_initialize(&parser))
			abort();
		yaml_parser_set_input_file(&parser, f);
		if (!yaml_parser_load(&parser, &doc)) {
			kelp_fail(err, EINVAL, "%s:%lu: %s", path, (unsigned long)parser.problem_mark.line + 1,
				  parser.problem ? parser.problem : "bad YAML");
			yaml_parser_delete(&parser);
			return -1;
		}
		yaml_parser_delete(&parser);
		yaml_node_t *root = yaml_document_get_root_node(&doc);
		struct ctx x = {.doc = &doc, .path = path, .err = err};
		int r = root ? parse_root(&x, root, &c) : 0;
		yaml_document_delete(&doc);
		if (r < 0) {
			kelpd_config_free(&c);
			return -1;
		}
	}
	if (!c.root)
		c.root = xstrdup(KELPD_ROOT_DEFAULT);
	*ret = c;
	return 0;
}
