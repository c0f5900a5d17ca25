/* kelpd's YAML configuration (config/kelpd.yaml): the store root, the platform to pull, how many
 * layers download at once, and per-registry mirrors and plain-HTTP permission. Kept in its own
 * file so it can move to lib/ when other daemons read YAML. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "error.h"

#define KELPD_CONFIG_DEFAULT "/etc/kelp/kelpd.yaml"
#define KELPD_ROOT_DEFAULT "/var/lib/kelp"

struct kimg_registry_conf {
	char *host;     /* "registry.k8s.io", "127.0.0.1:5000" */
	char **mirrors; /* "https://mirror:5000", "http://127.0.0.1:5001" (NULL-terminated) */
	bool plain_http;
};

struct kelpd_config {
	char *root;
	char *platform; /* NULL: this node */
	int max_downloads;
	struct kimg_registry_conf *registries;
	size_t n_registries;
};

/* Load path; when missing is_ok and the file does not exist, the defaults. */
int kelpd_config_load(const char *path, bool missing_ok, struct kelpd_config *ret, struct kelp_err *err);
void kelpd_config_free(struct kelpd_config *c);
const struct kimg_registry_conf *kelpd_config_registry(const struct kelpd_config *c, const char *host);
