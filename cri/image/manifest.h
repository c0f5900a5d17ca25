/* Manifests of every kind in use: OCI index and manifest, Docker manifest list and schema 2,
 * the image config (diffIDs), and platform selection. Errors name the JSON path. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define MT_OCI_LAYER "application/vnd.oci.image.layer.v1.tar"
#define MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
/* What a registry client sends in Accept. */
#define MT_ACCEPT MT_OCI_INDEX ", " MT_DOCKER_LIST ", " MT_OCI_MANIFEST ", " MT_DOCKER_MANIFEST

struct kimg_platform {
	char *os, *arch, *variant; /* variant may be NULL */
};

struct kimg_desc {
	char *media_type;
	char *digest;
	int64_t size;
	struct kimg_platform platform; /* index entries only */
	char *ref_name;                /* org.opencontainers.image.ref.name (OCI layouts) */
};

enum kimg_manifest_kind { KIMG_INDEX, KIMG_MANIFEST };

struct kimg_manifest {
	enum kimg_manifest_kind kind;
	char *media_type;
	struct kimg_desc config;   /* manifests */
	struct kimg_desc *layers;  /* manifests */
	size_t n_layers;
	struct kimg_desc *entries; /* indexes */
	size_t n_entries;
};

struct kimg_config {
	char *os, *arch, *variant;
	char **diff_ids; /* NULL-terminated */
	size_t n_diff_ids;
};

/* content_type is the HTTP Content-Type (may be NULL); the document's own mediaType wins. */
int kimg_manifest_parse(const char *buf, size_t len, const char *content_type, struct kimg_manifest *ret,
			struct kelp_err *err);
void kimg_manifest_free(struct kimg_manifest *m);
int kimg_config_parse(const char *buf, size_t len, struct kimg_config *ret, struct kelp_err *err);
void kimg_config_free(struct kimg_config *c);

/* Parse "os/arch[/variant]"; NULL or "" is this node's platform. */
int kimg_platform_parse(const char *s, struct kimg_platform *ret, struct kelp_err *err);
void kimg_platform_free(struct kimg_platform *p);
/* The entry of index that best fits want, or an error listing what the index has. */
int kimg_platform_select(const struct kimg_manifest *index, const struct kimg_platform *want, size_t *ret_i,
			 struct kelp_err *err);
bool kimg_layer_type_ok(const char *media_type);
