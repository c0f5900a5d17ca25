#include "db.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <unistd.h>

#include "cleanup.h"
#include "store.h"

/* In one IMMEDIATE transaction: it takes the write lock first, so a second process creating
 * the same fresh store waits (busy timeout) instead of failing with "database is locked" when
 * its read of the schema turns into a write. */
static const char schema[] =
	"BEGIN IMMEDIATE;"
	"CREATE TABLE IF NOT EXISTS images(name TEXT PRIMARY KEY, manifest TEXT NOT NULL, config TEXT NOT NULL,"
	" repo_digest TEXT, size INTEGER NOT NULL, created INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS image_blobs(name TEXT NOT NULL REFERENCES images(name) ON DELETE CASCADE,"
	" digest TEXT NOT NULL, PRIMARY KEY(name, digest));"
	"CREATE INDEX IF NOT EXISTS image_blobs_digest ON image_blobs(digest);"
	"CREATE TABLE IF NOT EXISTS image_layers(name TEXT NOT NULL REFERENCES images(name) ON DELETE CASCADE,"
	" idx INTEGER NOT NULL, blob TEXT NOT NULL, diff_id TEXT NOT NULL, media_type TEXT NOT NULL,"
	" size INTEGER NOT NULL, PRIMARY KEY(name, idx));"
	"CREATE INDEX IF NOT EXISTS image_layers_diff ON image_layers(diff_id);"
	"CREATE TABLE IF NOT EXISTS containers(id TEXT PRIMARY KEY, image TEXT NOT NULL, created INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS container_layers(id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,"
	" diff_id TEXT NOT NULL, PRIMARY KEY(id, diff_id));"
	"COMMIT;";

static int db_fail(struct kimg_store *s, struct kelp_err *err, const char *what)
{
	int code = sqlite3_errcode(s->db);
	return kelp_fail(err, code == SQLITE_BUSY ? EBUSY : EIO, "%s/meta.db: %s: %s", s->root, what, sqlite3_errmsg(s->db));
}

int kimg_db_open(struct kimg_store *s, struct kelp_err *err)
{
	cleanup_free char *path = xasprintf("%s/meta.db", s->root);
	int r = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL);
	if (r != SQLITE_OK)
		return kelp_fail(err, EIO, "open %s: %s", path, s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(r));
	/* the CLI and kelpd share the file: wait for the other's transaction instead of failing */
	sqlite3_busy_timeout(s->db, 30000);
	/* Switching a new file to WAL needs it to itself and does not call the busy handler:
	 * retry for as long as the busy timeout would wait. */
	int rc;
	for (int i = 0; (rc = sqlite3_exec(s->db, "PRAGMA journal_mode=WAL;", NULL, NULL, NULL)) == SQLITE_BUSY && i < 3000; i++)
		usleep(10000);
	if (rc != SQLITE_OK)
		return db_fail(s, err, "set WAL journal mode");
	if (sqlite3_exec(s->db, "PRAGMA foreign_keys=ON;", NULL, NULL, NULL) != SQLITE_OK)
		return db_fail(s, err, "enable foreign keys");
	if (sqlite3_exec(s->db, schema, NULL, NULL, NULL) != SQLITE_OK) {
		db_fail(s, err, "create schema");
		sqlite3_exec(s->db, "ROLLBACK;", NULL, NULL, NULL);
		return -1;
	}
	return 0;
}

void kimg_image_free(struct kimg_image *img)
{
	free(img->name);
	free(img->manifest);
	free(img->config);
	free(img->repo_digest);
	for (size_t i = 0; i < img->n_layers; i++) {
		free(img->layers[i].blob);
		free(img->layers[i].diff_id);
		free(img->layers[i].media_type);
	}
	free(img->layers);
	memset(img, 0, sizeof(*img));
}

static void stmt_finalize(sqlite3_stmt **st)
{
	if (*st)
		sqlite3_finalize(*st);
}
#define cleanup_stmt __attribute__((cleanup(stmt_finalize)))

/* Prepare and bind text parameters (NULL binds NULL). */
static int prep(struct kimg_store *s, sqlite3_stmt **st, const char *sql, int n, const char *const *args,
		struct kelp_err *err)
{
	if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK)
		return db_fail(s, err, "prepare");
	for (int i = 0; i < n; i++)
		if (sqlite3_bind_text(*st, i + 1, args[i], -1, SQLITE_TRANSIENT) != SQLITE_OK)
			return db_fail(s, err, "bind");
	return 0;
}

static int exec1(struct kimg_store *s, const char *sql, int n, const char *const *args, struct kelp_err *err)
{
	cleanup_stmt sqlite3_stmt *st = NULL;
	if (prep(s, &st, sql, n, args, err) < 0)
		return -1;
	if (sqlite3_step(st) != SQLITE_DONE)
		return db_fail(s, err, sql);
	return 0;
}

static int begin(struct kimg_store *s, struct kelp_err *err)
{
	/* IMMEDIATE takes the write lock now, so the busy timeout applies instead of a late
	 * SQLITE_BUSY on upgrade */
	if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return db_fail(s, err, "begin");
	return 0;
}

static int commit_or_rollback(struct kimg_store *s, int rc, struct kelp_err *err)
{
	if (rc == 0 && sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK)
		return 0;
	if (rc == 0)
		db_fail(s, err, "commit");
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

int kimg_db_put_image(struct kimg_store *s, const struct kimg_image *img, const char *extra, struct kelp_err *err)
{
	if (begin(s, err) < 0)
		return -1;
	int rc = -1;
	cleanup_free char *size = xasprintf("%lld", (long long)img->size);
	cleanup_free char *created = xasprintf("%lld", (long long)time(NULL));
	const char *del[] = {img->name};
	const char *ins[] = {img->name, img->manifest, img->config, img->repo_digest, size, created};
	if (exec1(s, "DELETE FROM images WHERE name = ?", 1, del, err) < 0 ||
	    exec1(s, "INSERT INTO images(name, manifest, config, repo_digest, size, created) VALUES(?,?,?,?,?,?)", 6, ins,
		  err) < 0)
		goto out;
	const char *blobs[] = {img->manifest, img->config, extra};
	for (size_t i = 0; i < ARRAY_SIZE(blobs); i++) {
		const char *a[] = {img->name, blobs[i]};
		if (blobs[i] && exec1(s, "INSERT OR IGNORE INTO image_blobs(name, digest) VALUES(?,?)", 2, a, err) < 0)
			goto out;
	}
	for (size_t i = 0; i < img->n_layers; i++) {
		const struct kimg_layer_rec *l = &img->layers[i];
		cleanup_free char *idx = xasprintf("%zu", i);
		cleanup_free char *lsize = xasprintf("%lld", (long long)l->size);
		const char *a[] = {img->name, l->blob};
		const char *b[] = {img->name, idx, l->blob, l->diff_id, l->media_type, lsize};
		if (exec1(s, "INSERT OR IGNORE INTO image_blobs(name, digest) VALUES(?,?)", 2, a, err) < 0 ||
		    exec1(s, "INSERT INTO image_layers(name, idx, blob, diff_id, media_type, size) VALUES(?,?,?,?,?,?)", 6, b,
			  err) < 0)
			goto out;
	}
	rc = 0;
out:
	return commit_or_rollback(s, rc, err);
}

static char *col_dup(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return t ? xstrdup((const char *)t) : NULL;
}

static int load_layers(struct kimg_store *s, struct kimg_image *img, struct kelp_err *err)
{
	cleanup_stmt sqlite3_stmt *st = NULL;
	const char *a[] = {img->name};
	if (prep(s, &st, "SELECT blob, diff_id, media_type, size FROM image_layers WHERE name = ? ORDER BY idx", 1, a,
		 err) < 0)
		return -1;
	int r;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		img->layers = xrealloc(img->layers, (img->n_layers + 1) * sizeof(*img->layers));
		struct kimg_layer_rec *l = &img->layers[img->n_layers++];
		l->blob = col_dup(st, 0);
		l->diff_id = col_dup(st, 1);
		l->media_type = col_dup(st, 2);
		l->size = sqlite3_column_int64(st, 3);
	}
	if (r != SQLITE_DONE)
		return db_fail(s, err, "read layers");
	return 0;
}

static int query_images(struct kimg_store *s, const char *where, int n, const char *const *args,
			struct kimg_image **ret, size_t *ret_n, struct kelp_err *err)
{
	cleanup_stmt sqlite3_stmt *st = NULL;
	cleanup_free char *sql = xasprintf("SELECT name, manifest, config, repo_digest, size, created FROM images %s ORDER BY name", where);
	if (prep(s, &st, sql, n, args, err) < 0)
		return -1;
	struct kimg_image *v = NULL;
	size_t count = 0;
	int r;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		v = xrealloc(v, (count + 1) * sizeof(*v));
		struct kimg_image *img = &v[count++];
		memset(img, 0, sizeof(*img));
		img->name = col_dup(st, 0);
		img->manifest = col_dup(st, 1);
		img->config = col_dup(st, 2);
		img->repo_digest = col_dup(st, 3);
		img->size = sqlite3_column_int64(st, 4);
		img->created = sqlite3_column_int64(st, 5);
	}
	int rc = 0;
	if (r != SQLITE_DONE)
		rc = db_fail(s, err, "read images");
	for (size_t i = 0; rc == 0 && i < count; i++)
		rc = load_layers(s, &v[i], err);
	if (rc < 0) {
		for (size_t i = 0; i < count; i++)
			kimg_image_free(&v[i]);
		free(v);
		return -1;
	}
	*ret = v;
	*ret_n = count;
	return 0;
}

int kimg_db_list_images(struct kimg_store *s, struct kimg_image **ret, size_t *ret_n, struct kelp_err *err)
{
	return query_images(s, "", 0, NULL, ret, ret_n, err);
}

int kimg_db_find_image(struct kimg_store *s, const char *key, struct kimg_image *ret, struct kelp_err *err)
{
	struct kimg_image *v = NULL;
	size_t n = 0;
	const char *a[] = {key};
	if (query_images(s, "WHERE name = ?1 OR config = ?1 OR repo_digest = ?1", 1, a, &v, &n, err) < 0)
		return -1;
	if (n == 0 && strlen(key) >= 6 && strspn(key, "0123456789abcdef") == strlen(key)) {
		cleanup_free char *pat = xasprintf("sha256:%s*", key);
		const char *b[] = {pat};
		if (query_images(s, "WHERE config GLOB ?1", 1, b, &v, &n, err) < 0)
			return -1;
	}
	if (n == 0) {
		free(v);
		return kelp_fail(err, ENOENT, "image %s: not in the store", key);
	}
	/* an id can name several references of one image: any of them will do, the first is kept */
	*ret = v[0];
	for (size_t i = 1; i < n; i++)
		kimg_image_free(&v[i]);
	free(v);
	return 0;
}

int kimg_db_delete_image(struct kimg_store *s, const char *name, struct kelp_err *err)
{
	const char *a[] = {name};
	if (begin(s, err) < 0)
		return -1;
	int rc = exec1(s, "DELETE FROM images WHERE name = ?", 1, a, err);
	return commit_or_rollback(s, rc, err);
}

static int count(struct kimg_store *s, const char *sql, const char *arg, int64_t *ret, struct kelp_err *err)
{
	cleanup_stmt sqlite3_stmt *st = NULL;
	const char *a[] = {arg};
	if (prep(s, &st, sql, 1, a, err) < 0)
		return -1;
	if (sqlite3_step(st) != SQLITE_ROW)
		return db_fail(s, err, "count");
	*ret = sqlite3_column_int64(st, 0);
	return 0;
}

int kimg_db_blob_refs(struct kimg_store *s, const char *digest, int64_t *ret, struct kelp_err *err)
{
	return count(s, "SELECT COUNT(*) FROM image_blobs WHERE digest = ?", digest, ret, err);
}

int kimg_db_layer_refs(struct kimg_store *s, const char *diff_id, int64_t *ret, struct kelp_err *err)
{
	return count(s,
		     "SELECT (SELECT COUNT(*) FROM image_layers WHERE diff_id = ?1) + "
		     "(SELECT COUNT(*) FROM container_layers WHERE diff_id = ?1)",
		     diff_id, ret, err);
}

int kimg_db_put_container(struct kimg_store *s, const char *id, const char *image, char *const *diff_ids,
			  struct kelp_err *err)
{
	if (begin(s, err) < 0)
		return -1;
	int rc = -1;
	cleanup_free char *created = xasprintf("%lld", (long long)time(NULL));
	const char *a[] = {id, image, created};
	if (exec1(s, "INSERT INTO containers(id, image, created) VALUES(?,?,?)", 3, a, err) < 0)
		goto out;
	for (char *const *d = diff_ids; *d; d++) {
		const char *b[] = {id, *d};
		if (exec1(s, "INSERT OR IGNORE INTO container_layers(id, diff_id) VALUES(?,?)", 2, b, err) < 0)
			goto out;
	}
	rc = 0;
out:
	return commit_or_rollback(s, rc, err);
}

int kimg_db_delete_container(struct kimg_store *s, const char *id, struct kelp_err *err)
{
	const char *a[] = {id};
	if (begin(s, err) < 0)
		return -1;
	int rc = exec1(s, "DELETE FROM containers WHERE id = ?", 1, a, err);
	return commit_or_rollback(s, rc, err);
}
