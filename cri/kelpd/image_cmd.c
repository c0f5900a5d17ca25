/* `kelpd image pull|import|ls|inspect|rm`: each parses its flags and makes one library call on
 * the same store kelpd serves (flock and SQLite transactions make that safe while it runs). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "image.h"
#include "json.h"
#include "kelpd.h"
#include "pull.h"
#include "ref.h"
#include "unpack.h"

struct cmd_ctx {
	struct kelpd_config cfg;
	struct kimg_store *store;
	struct kimg_platform plat;
};

static int open_ctx(const struct kelpd_opts *o, const char *platform, struct cmd_ctx *x, struct kelp_err *err)
{
	memset(x, 0, sizeof(*x));
	if (kelpd_load_config(o, &x->cfg, err) < 0)
		return -1;
	if (kimg_platform_parse(platform ? platform : x->cfg.platform, &x->plat, err) < 0)
		return -1;
	return kimg_store_open(x->cfg.root, &x->store, err);
}

static void close_ctx(struct cmd_ctx *x)
{
	kimg_store_close(x->store);
	kimg_platform_free(&x->plat);
	kelpd_config_free(&x->cfg);
}

static int report(const char *cmd, struct kelp_err *err)
{
	fprintf(stderr, "kelpd image %s: %s\n", cmd, err->msg);
	return 1;
}

static void progress(void *data, const char *digest, int64_t done, int64_t total)
{
	(void)data;
	if (done == total)
		fprintf(stderr, "%.19s: %lld bytes done\n", digest, (long long)total);
	else
		fprintf(stderr, "%.19s: %lld of %lld bytes\n", digest, (long long)done, (long long)total);
}

static int cmd_pull(const struct kelpd_opts *o, int argc, char **argv)
{
	const char *platform = NULL, *creds = NULL, *token = NULL;
	bool quiet = false;
	static const struct option lo[] = {
		{"platform", required_argument, NULL, 'p'}, {"creds", required_argument, NULL, 'u'},
		{"identity-token", required_argument, NULL, 't'}, {"quiet", no_argument, NULL, 'q'}, {NULL, 0, NULL, 0},
	};
	int c;
	while ((c = getopt_long(argc, argv, "p:u:t:q", lo, NULL)) != -1) {
		switch (c) {
		case 'p': platform = optarg; break;
		case 'u': creds = optarg; break;
		case 't': token = optarg; break;
		case 'q': quiet = true; break;
		default: return 2;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "usage: kelpd image pull [--platform OS/ARCH[/VARIANT]] [--creds USER:PASSWORD] [--identity-token T] REF\n");
		return 2;
	}
	struct kelp_err err = {0};
	struct cmd_ctx x;
	struct kimg_auth auth = {0};
	cleanup_free char *user = NULL;
	if (creds) {
		user = xstrdup(creds);
		char *colon = strchr(user, ':');
		if (!colon) {
			fprintf(stderr, "kelpd image pull: --creds wants USER:PASSWORD\n");
			return 2;
		}
		*colon = '\0';
		auth.username = user;
		auth.password = colon + 1;
	}
	auth.identity_token = token;
	int rc = 0;
	struct kimg_image img = {0};
	struct kimg_pull_opts po = {.config = &x.cfg, .platform = &x.plat, .auth = &auth,
				    .progress = quiet ? NULL : progress};
	if (open_ctx(o, platform, &x, &err) < 0 || kimg_pull(x.store, argv[optind], &po, &img, &err) < 0)
		rc = report("pull", &err);
	else
		printf("%s %s\n", img.name, img.config);
	kimg_image_free(&img);
	close_ctx(&x);
	return rc;
}

static int cmd_import(const struct kelpd_opts *o, int argc, char **argv)
{
	const char *name = NULL, *platform = NULL;
	static const struct option lo[] = {
		{"name", required_argument, NULL, 'n'}, {"platform", required_argument, NULL, 'p'}, {NULL, 0, NULL, 0},
	};
	int c;
	while ((c = getopt_long(argc, argv, "n:p:", lo, NULL)) != -1) {
		switch (c) {
		case 'n': name = optarg; break;
		case 'p': platform = optarg; break;
		default: return 2;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "usage: kelpd image import [--name REF] [--platform P] OCI-LAYOUT-DIR|OCI-ARCHIVE|DOCKER-ARCHIVE\n");
		return 2;
	}
	struct kelp_err err = {0};
	struct cmd_ctx x;
	cleanup_strv char **names = NULL;
	int rc = 0;
	if (open_ctx(o, platform, &x, &err) < 0 || kimg_import(x.store, argv[optind], name, &x.plat, &names, &err) < 0)
		rc = report("import", &err);
	else
		for (char **n = names; *n; n++)
			printf("%s\n", *n);
	close_ctx(&x);
	return rc;
}

static int cmd_ls(const struct kelpd_opts *o, int argc, char **argv)
{
	bool quiet = argc > 1 && (!strcmp(argv[1], "-q") || !strcmp(argv[1], "--quiet"));
	struct kelp_err err = {0};
	struct cmd_ctx x;
	struct kimg_image *v = NULL;
	size_t n = 0;
	int rc = 0;
	if (open_ctx(o, NULL, &x, &err) < 0 || kimg_db_list_images(x.store, &v, &n, &err) < 0) {
		rc = report("ls", &err);
	} else {
		if (!quiet)
			printf("%-60s %-19s %12s\n", "NAME", "ID", "SIZE");
		for (size_t i = 0; i < n; i++) {
			if (quiet)
				printf("%s\n", v[i].name);
			else
				printf("%-60s %.12s %12lld\n", v[i].name, kimg_digest_hex(v[i].config), (long long)v[i].size);
		}
	}
	for (size_t i = 0; i < n; i++)
		kimg_image_free(&v[i]);
	free(v);
	close_ctx(&x);
	return rc;
}

/* A reference as given ("busybox") or already normalised, an id or a digest. */
static char *lookup_key(const char *arg)
{
	struct kimg_ref r;
	if (!kimg_digest_valid(arg) && strspn(arg, "0123456789abcdef") != strlen(arg) && kimg_ref_parse(arg, &r, NULL) == 0) {
		char *s = xstrdup(r.full);
		kimg_ref_free(&r);
		return s;
	}
	return xstrdup(arg);
}

static int cmd_inspect(const struct kelpd_opts *o, int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: kelpd image inspect REF|ID\n");
		return 2;
	}
	struct kelp_err err = {0};
	struct cmd_ctx x;
	struct kimg_image img = {0};
	cleanup_free char *key = lookup_key(argv[1]);
	int rc = 0;
	if (open_ctx(o, NULL, &x, &err) < 0 || kimg_db_find_image(x.store, key, &img, &err) < 0) {
		rc = report("inspect", &err);
	} else {
		yajl_gen g = kg_new(true);
		yajl_gen_map_open(g);
		kg_key_str(g, "name", img.name);
		kg_key_str(g, "id", img.config);
		kg_key_str(g, "manifest", img.manifest);
		kg_key_str(g, "repoDigest", img.repo_digest);
		kg_key_int(g, "size", (long long)img.size);
		kg_key_int(g, "created", (long long)img.created);
		kg_key(g, "layers");
		yajl_gen_array_open(g);
		for (size_t i = 0; i < img.n_layers; i++) {
			int64_t refs = 0;
			kimg_db_layer_refs(x.store, img.layers[i].diff_id, &refs, NULL);
			cleanup_free char *path = kimg_layer_path(x.store, img.layers[i].diff_id);
			yajl_gen_map_open(g);
			kg_key_str(g, "digest", img.layers[i].blob);
			kg_key_str(g, "diffID", img.layers[i].diff_id);
			kg_key_str(g, "mediaType", img.layers[i].media_type);
			kg_key_int(g, "size", (long long)img.layers[i].size);
			kg_key_str(g, "path", path);
			kg_key_int(g, "refs", (long long)refs);
			yajl_gen_map_close(g);
		}
		yajl_gen_array_close(g);
		yajl_gen_map_close(g);
		size_t len;
		cleanup_free char *out = kg_finish(g, &len);
		fwrite(out, 1, len, stdout);
		if (len && out[len - 1] != '\n')
			putchar('\n');
	}
	kimg_image_free(&img);
	close_ctx(&x);
	return rc;
}

static int cmd_rm(const struct kelpd_opts *o, int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: kelpd image rm REF|ID...\n");
		return 2;
	}
	struct kelp_err err = {0};
	struct cmd_ctx x;
	int rc = 0;
	if (open_ctx(o, NULL, &x, &err) < 0) {
		rc = report("rm", &err);
	} else {
		for (int i = 1; i < argc; i++) {
			cleanup_free char *key = lookup_key(argv[i]);
			if (kimg_image_remove(x.store, key, &err) < 0)
				rc = report("rm", &err);
			else
				printf("%s\n", key);
		}
	}
	close_ctx(&x);
	return rc;
}

int kelpd_image_main(const struct kelpd_opts *o, int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(const struct kelpd_opts *, int, char **);
	} cmds[] = {
		{"pull", cmd_pull}, {"import", cmd_import}, {"ls", cmd_ls}, {"list", cmd_ls},
		{"inspect", cmd_inspect}, {"rm", cmd_rm}, {"remove", cmd_rm},
	};
	if (argc >= 2)
		for (size_t i = 0; i < ARRAY_SIZE(cmds); i++)
			if (!strcmp(argv[1], cmds[i].name)) {
				optind = 1;
				return cmds[i].fn(o, argc - 1, argv + 1);
			}
	fprintf(stderr, "usage: kelpd image pull|import|ls|inspect|rm ...\n");
	return 2;
}
