/* Import for air-gapped nodes: OCI image layout directories, OCI archives (a layout in a tar)
 * and docker-archive tarballs (`docker save`). Archives are extracted with the same safe
 * extractor as layers into a private temp directory; every file named by the input is opened
 * inside that root, and every blob is verified against its digest on the way into the store. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "extract.h"
#include "fs.h"
#include "image.h"
#include "json.h"
#include "ref.h"

#define META_MAX (4 << 20)

static int put_from_root(struct kimg_store *s, int rootfd, const char *path, const char *digest,
			 char ret_digest[KIMG_DIGEST_LEN + 1], struct kelp_err *err)
{
	cleanup_close int fd = kelp_open_in_root(rootfd, path, O_RDONLY, 0, err);
	if (fd < 0)
		return -1;
	if (kimg_blob_put_fd(s, digest, fd, ret_digest, err) < 0)
		return kelp_error_wrap(err, "import %s", path);
	return 0;
}

static int put_layout_blob(struct kimg_store *s, int rootfd, const char *digest, struct kelp_err *err)
{
	cleanup_free char *path = xasprintf("blobs/sha256/%s", kimg_digest_hex(digest));
	return put_from_root(s, rootfd, path, digest, NULL, err);
}

static char **strv_add(char **v, char *s)
{
	size_t n = strv_len(v);
	v = xrealloc(v, (n + 2) * sizeof(*v));
	v[n] = s;
	v[n + 1] = NULL;
	return v;
}

/* A layout's ref.name is a full reference ("docker.io/x/y:1") or only a tag ("1"). */
static int layout_name(const char *ref_name, const char *base, char **ret, struct kelp_err *err)
{
	cleanup_free char *want = NULL;
	const char *last = base ? strrchr(base, '/') : NULL;
	bool base_exact = base && (strchr(base, '@') || strchr(last ? last : base, ':'));
	if (base_exact)
		want = xstrdup(base);
	else if (ref_name && (strchr(ref_name, '/') || strchr(ref_name, '@')))
		want = xstrdup(ref_name);
	else if (base && ref_name)
		want = xasprintf("%s:%s", base, ref_name);
	else if (base)
		want = xstrdup(base);
	else
		return kelp_fail(err, EINVAL, "import: the layout names this image \"%s\", which is only a tag: give a name (--name)",
				 ref_name ? ref_name : "");
	struct kimg_ref r;
	if (kimg_ref_parse(want, &r, err) < 0)
		return -1;
	*ret = xstrdup(r.full);
	kimg_ref_free(&r);
	return 0;
}

static int import_manifest(struct kimg_store *s, int rootfd, const char *name, const char *digest, const char *index,
			   struct kelp_err *err)
{
	if (put_layout_blob(s, rootfd, digest, err) < 0)
		return -1;
	cleanup_free char *buf = NULL;
	size_t len;
	struct kimg_manifest m;
	if (kimg_blob_read(s, digest, META_MAX, &buf, &len, err) < 0 || kimg_manifest_parse(buf, len, NULL, &m, err) < 0)
		return kelp_error_wrap(err, "import %s", name);
	int rc = -1;
	if (m.kind != KIMG_MANIFEST) {
		kelp_fail(err, EINVAL, "import %s: nested index %s", name, digest);
		goto out;
	}
	if (put_layout_blob(s, rootfd, m.config.digest, err) < 0)
		goto out;
	for (size_t i = 0; i < m.n_layers; i++)
		if (put_layout_blob(s, rootfd, m.layers[i].digest, err) < 0)
			goto out;
	rc = kimg_image_commit(s, name, index ? index : digest, digest, index, NULL, err);
out:
	kimg_manifest_free(&m);
	return rc;
}

static int import_layout(struct kimg_store *s, int rootfd, const char *base, const struct kimg_platform *plat,
			 char ***names, struct kelp_err *err)
{
	cleanup_free char *buf = NULL;
	size_t len;
	if (kelp_read_file_at(rootfd, "oci-layout", META_MAX, &buf, &len, NULL) < 0)
		return kelp_fail(err, EINVAL, "import: no oci-layout file: not an OCI image layout");
	free(buf);
	buf = NULL;
	struct kimg_manifest top;
	if (kelp_read_file_at(rootfd, "index.json", META_MAX, &buf, &len, err) < 0 ||
	    kimg_manifest_parse(buf, len, MT_OCI_INDEX, &top, err) < 0)
		return kelp_error_wrap(err, "import: index.json");
	int rc = -1;
	if (top.kind != KIMG_INDEX || top.n_entries == 0) {
		kelp_fail(err, EINVAL, "import: index.json lists no images");
		goto out;
	}
	if (base && top.n_entries > 1 && !top.entries[0].ref_name) {
		kelp_fail(err, EINVAL, "import: index.json lists %zu images without names; --name fits only one", top.n_entries);
		goto out;
	}
	for (size_t i = 0; i < top.n_entries; i++) {
		const struct kimg_desc *d = &top.entries[i];
		cleanup_free char *name = NULL;
		if (layout_name(d->ref_name, base, &name, err) < 0)
			goto out;
		const char *manifest = d->digest, *index = NULL;
		struct kimg_manifest sub = {0};
		cleanup_free char *sbuf = NULL;
		size_t slen;
		if (!strcmp(d->media_type, MT_OCI_INDEX) || !strcmp(d->media_type, MT_DOCKER_LIST)) {
			size_t pick;
			if (put_layout_blob(s, rootfd, d->digest, err) < 0 ||
			    kimg_blob_read(s, d->digest, META_MAX, &sbuf, &slen, err) < 0 ||
			    kimg_manifest_parse(sbuf, slen, NULL, &sub, err) < 0 || kimg_platform_select(&sub, plat, &pick, err) < 0) {
				kimg_manifest_free(&sub);
				kelp_error_wrap(err, "import %s", name);
				goto out;
			}
			index = d->digest;
			manifest = sub.entries[pick].digest;
		}
		int r = import_manifest(s, rootfd, name, manifest, index, err);
		kimg_manifest_free(&sub);
		if (r < 0)
			goto out;
		*names = strv_add(*names, TAKE_PTR(name));
	}
	rc = 0;
out:
	kimg_manifest_free(&top);
	return rc;
}

static int import_docker(struct kimg_store *s, int rootfd, const char *base, char ***names, struct kelp_err *err)
{
	cleanup_free char *buf = NULL;
	size_t len;
	struct kj root;
	if (kelp_read_file_at(rootfd, "manifest.json", META_MAX, &buf, &len, err) < 0 ||
	    kj_parse(buf, len, "manifest.json", &root, err) < 0 || kj_expect_array(&root, err) < 0)
		return kelp_error_wrap(err, "import docker-archive");
	int rc = -1;
	for (size_t i = 0; i < kj_len(&root); i++) {
		struct kj e, layers;
		kj_index(&root, i, &e);
		cleanup_free char *config = NULL;
		cleanup_strv char **tags = NULL;
		char cdigest[KIMG_DIGEST_LEN + 1];
		if (kj_req_string(&e, "Config", &config, err) < 0 || kj_opt_string_array(&e, "RepoTags", &tags, NULL, err) < 0 ||
		    kj_required(&e, "Layers", &layers, err) < 0 || kj_expect_array(&layers, err) < 0 ||
		    put_from_root(s, rootfd, config, NULL, cdigest, err) < 0)
			goto out;
		struct stat st;
		if (fstatat(s->blobsfd, kimg_digest_hex(cdigest), &st, 0) < 0) {
			kelp_error(err, errno, "import: config %s", cdigest);
			goto out;
		}
		/* docker-archive has no manifest: write the OCI one it stands for */
		yajl_gen g = kg_new(false);
		yajl_gen_map_open(g);
		kg_key_int(g, "schemaVersion", 2);
		kg_key_str(g, "mediaType", MT_OCI_MANIFEST);
		kg_key(g, "config");
		yajl_gen_map_open(g);
		kg_key_str(g, "mediaType", MT_OCI_CONFIG);
		kg_key_str(g, "digest", cdigest);
		kg_key_int(g, "size", (long long)st.st_size);
		yajl_gen_map_close(g);
		kg_key(g, "layers");
		yajl_gen_array_open(g);
		bool ok = true;
		for (size_t j = 0; j < kj_len(&layers); j++) {
			struct kj l;
			cleanup_free char *lpath = NULL;
			char ldigest[KIMG_DIGEST_LEN + 1];
			kj_index(&layers, j, &l);
			if (kj_string(&l, &lpath, err) < 0 || put_from_root(s, rootfd, lpath, NULL, ldigest, err) < 0 ||
			    fstatat(s->blobsfd, kimg_digest_hex(ldigest), &st, 0) < 0) {
				ok = false;
				break;
			}
			yajl_gen_map_open(g);
			kg_key_str(g, "mediaType", MT_OCI_LAYER);
			kg_key_str(g, "digest", ldigest);
			kg_key_int(g, "size", (long long)st.st_size);
			yajl_gen_map_close(g);
		}
		yajl_gen_array_close(g);
		yajl_gen_map_close(g);
		size_t mlen;
		cleanup_free char *mjson = kg_finish(g, &mlen);
		char mdigest[KIMG_DIGEST_LEN + 1];
		if (!ok || kimg_blob_put(s, NULL, mjson, mlen, mdigest, err) < 0)
			goto out;
		char **want = tags;
		char *fallback[] = {(char *)base, NULL};
		char *by_id[] = {cdigest, NULL};
		if (!tags || !tags[0])
			want = fallback;
		if (!want[0])
			want = by_id; /* untagged: the image is known by its id */
		for (char **t = want; *t; t++) {
			cleanup_free char *name = NULL;
			if (kimg_digest_valid(*t)) {
				name = xstrdup(*t);
			} else {
				struct kimg_ref r;
				if (kimg_ref_parse(*t, &r, err) < 0)
					goto out;
				name = xstrdup(r.full);
				kimg_ref_free(&r);
			}
			if (kimg_image_commit(s, name, mdigest, mdigest, NULL, NULL, err) < 0)
				goto out;
			*names = strv_add(*names, TAKE_PTR(name));
		}
	}
	rc = 0;
out:
	yajl_tree_free(root.v);
	return rc;
}

int kimg_import(struct kimg_store *s, const char *path, const char *base_name, const struct kimg_platform *plat,
		char ***ret_names, struct kelp_err *err)
{
	cleanup_free char *base = NULL;
	if (base_name) {
		struct kimg_ref r;
		if (kimg_ref_parse(base_name, &r, err) < 0)
			return -1;
		/* "x" takes its tags from the layout; "x:1" or "x@sha256:..." is the name itself */
		const char *last = strrchr(base_name, '/');
		bool exact = r.digest || strchr(last ? last : base_name, ':');
		base = xstrdup(exact ? r.full : r.name);
		kimg_ref_free(&r);
	}
	cleanup_close int lock = kimg_store_lock(s, false, err);
	if (lock < 0)
		return -1;
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return kelp_error(err, errno, "import %s", path);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return kelp_error(err, errno, "import %s", path);
	char **names = NULL;
	int rc = -1;
	char tmp[64] = "";
	cleanup_close int rootfd = -1;
	if (S_ISDIR(st.st_mode)) {
		rootfd = TAKE_FD(fd);
	} else {
		snprintf(tmp, sizeof(tmp), "import-%d-%lx", (int)getpid(), (unsigned long)random());
		if (mkdirat(s->tmpfd, tmp, 0700) < 0) {
			kelp_error(err, errno, "import %s: create temp directory", path);
			goto out;
		}
		rootfd = openat(s->tmpfd, tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
		if (rootfd < 0) {
			kelp_error(err, errno, "import %s: open temp directory", path);
			goto out;
		}
		if (kimg_extract_fd(fd, rootfd, err) < 0) {
			kelp_error_wrap(err, "import %s", path);
			goto out;
		}
	}
	if (faccessat(rootfd, "manifest.json", F_OK, AT_SYMLINK_NOFOLLOW) == 0)
		rc = import_docker(s, rootfd, base, &names, err);
	else
		rc = import_layout(s, rootfd, base, plat, &names, err);
	if (rc < 0)
		kelp_error_wrap(err, "import %s", path);
out:
	if (tmp[0]) {
		struct kelp_err ignored;
		kelp_rm_rf_at(s->tmpfd, tmp, &ignored);
	}
	if (rc < 0) {
		strv_free(names);
		/* the store as it was: drop what this import wrote, unless a pull is running */
		close(lock);
		lock = -1;
		struct kelp_err ignored;
		kimg_store_gc_try(s, &ignored);
		return -1;
	}
	*ret_names = names;
	return 0;
}
