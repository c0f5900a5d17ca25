#include "image.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "cleanup.h"
#include "fs.h"
#include "log.h"
#include "unpack.h"

#define SMALL_BLOB_MAX (4 << 20)

int kimg_image_commit(struct kimg_store *s, const char *name, const char *repo_digest, const char *manifest,
		      const char *index, struct kimg_image *ret, struct kelp_err *err)
{
	cleanup_free char *mbuf = NULL, *cbuf = NULL;
	size_t mlen, clen;
	struct kimg_manifest m = {0};
	struct kimg_config c = {0};
	struct kimg_image img = {0};
	int rc = -1;
	if (kimg_blob_read(s, manifest, SMALL_BLOB_MAX, &mbuf, &mlen, err) < 0 ||
	    kimg_manifest_parse(mbuf, mlen, NULL, &m, err) < 0) {
		kelp_error_wrap(err, "image %s: manifest %s", name, manifest);
		goto out;
	}
	if (m.kind != KIMG_MANIFEST) {
		kelp_fail(err, EINVAL, "image %s: %s is an index, not a manifest", name, manifest);
		goto out;
	}
	if (kimg_blob_read(s, m.config.digest, SMALL_BLOB_MAX, &cbuf, &clen, err) < 0 ||
	    kimg_config_parse(cbuf, clen, &c, err) < 0) {
		kelp_error_wrap(err, "image %s: config %s", name, m.config.digest);
		goto out;
	}
	if (c.n_diff_ids != m.n_layers) {
		kelp_fail(err, EINVAL, "image %s: the manifest has %zu layers, the config %zu diffIDs", name, m.n_layers,
			  c.n_diff_ids);
		goto out;
	}
	img.name = xstrdup(name);
	img.manifest = xstrdup(manifest);
	img.config = xstrdup(m.config.digest);
	img.repo_digest = xstrdup(repo_digest ? repo_digest : manifest);
	img.size = (int64_t)mlen + (int64_t)clen;
	img.layers = xcalloc(m.n_layers, sizeof(*img.layers));
	img.n_layers = m.n_layers;
	for (size_t i = 0; i < m.n_layers; i++) {
		struct kimg_layer_rec *l = &img.layers[i];
		l->blob = xstrdup(m.layers[i].digest);
		l->diff_id = xstrdup(c.diff_ids[i]);
		l->media_type = xstrdup(m.layers[i].media_type);
		l->size = m.layers[i].size;
		img.size += l->size;
		if (kimg_unpack_layer(s, l->blob, l->diff_id, err) < 0) {
			kelp_error_wrap(err, "image %s", name);
			goto out;
		}
	}
	if (kimg_db_put_image(s, &img, index, err) < 0)
		goto out;
	log_debug("image %s: stored (manifest %s, %zu layers)", name, manifest, img.n_layers);
	if (ret) {
		*ret = img;
		memset(&img, 0, sizeof(img));
	}
	rc = 0;
out:
	kimg_image_free(&img);
	kimg_manifest_free(&m);
	kimg_config_free(&c);
	return rc;
}

int kimg_image_remove(struct kimg_store *s, const char *key, struct kelp_err *err)
{
	struct kimg_image img;
	if (kimg_db_find_image(s, key, &img, err) < 0)
		return -1;
	int rc = kimg_db_delete_image(s, img.name, err);
	kimg_image_free(&img);
	if (rc < 0)
		return -1;
	return kimg_store_gc(s, err);
}

static int sweep(struct kimg_store *s, int dirfd, const char *what, bool is_layer, struct kelp_err *err)
{
	/* a new open file, not a dup: a dup would share (and leave at the end) the offset */
	int dup = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dup < 0)
		return kelp_error(err, errno, "gc %s", what);
	cleanup_closedir DIR *d = fdopendir(dup);
	if (!d) {
		close(dup);
		return kelp_error(err, errno, "gc %s", what);
	}
	struct dirent *de;
	while ((errno = 0, de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		cleanup_free char *digest = xasprintf("sha256:%s", de->d_name);
		int64_t refs = 1;
		if (kimg_digest_valid(digest) &&
		    (is_layer ? kimg_db_layer_refs(s, digest, &refs, err) : kimg_db_blob_refs(s, digest, &refs, err)) < 0)
			return -1;
		if (kimg_digest_valid(digest) && refs > 0)
			continue;
		if (kelp_rm_rf_at(dirfd, de->d_name, err) < 0)
			return kelp_error_wrap(err, "gc %s", what);
		log_debug("gc: removed %s %s", what, de->d_name);
	}
	if (errno)
		return kelp_error(err, errno, "gc: read %s", what);
	return 0;
}

static int gc_locked(struct kimg_store *s, struct kelp_err *err)
{
	if (sweep(s, s->blobsfd, "blob", false, err) < 0 || sweep(s, s->layersfd, "layer", true, err) < 0)
		return -1;
	/* what killed pulls and unpacks left behind, and the per-blob lock files: nobody is
	 * writing now, and every writer takes the store lock before a per-blob lock */
	int dirs[] = {s->ingestfd, s->tmpfd};
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		int dup = openat(dirs[i], ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		cleanup_closedir DIR *d = dup >= 0 ? fdopendir(dup) : NULL;
		if (!d) {
			if (dup >= 0)
				close(dup);
			return kelp_error(err, errno, "gc: open leftovers");
		}
		struct dirent *de;
		while ((de = readdir(d)))
			if (de->d_name[0] != '.' && kelp_rm_rf_at(dirs[i], de->d_name, err) < 0)
				return kelp_error_wrap(err, "gc leftovers");
	}
	return 0;
}

int kimg_store_gc(struct kimg_store *s, struct kelp_err *err)
{
	/* exclusive: no pull or import is between writing its blobs and recording its image */
	cleanup_close int lock = kimg_store_lock(s, true, err);
	if (lock < 0)
		return -1;
	return gc_locked(s, err);
}

int kimg_store_gc_try(struct kimg_store *s, struct kelp_err *err)
{
	cleanup_close int lock = openat(s->rootfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (lock < 0)
		return kelp_error(err, errno, "open %s/lock", s->root);
	if (flock(lock, LOCK_EX | LOCK_NB) < 0)
		return kelp_error(err, errno, "lock store %s", s->root);
	return gc_locked(s, err);
}
