/* Safe file operations: paths from input resolve inside a root (openat2 RESOLVE_IN_ROOT), writes
 * that must survive a crash go through temp + fsync + rename + fsync(dir). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"

/* openat2 with `resolve` flags (RESOLVE_IN_ROOT, RESOLVE_NO_SYMLINKS, ...). O_CLOEXEC is always
 * added. `what` names the object in errors. Returns the fd or -1. */
int kelp_openat2(int dirfd, const char *path, int flags, mode_t mode, uint64_t resolve, struct kelp_err *err);

/* Open path as if rootfd were "/": "..", absolute paths and symlinks never leave it. */
int kelp_open_in_root(int rootfd, const char *path, int flags, mode_t mode, struct kelp_err *err);

/* Create every missing directory of path inside rootfd (each component resolved in root) and
 * return an O_PATH fd of the last one. */
int kelp_mkdir_in_root(int rootfd, const char *path, mode_t mode, struct kelp_err *err);

/* Create (if missing) an empty regular file at path inside rootfd, parents included, and return
 * an O_PATH fd of it. */
int kelp_mkfile_in_root(int rootfd, const char *path, mode_t mode, struct kelp_err *err);

/* Write buf to dirfd/name atomically: O_EXCL temp file in the same directory, write, fsync,
 * renameat, fsync the directory. The temp file is removed on failure. */
int kelp_atomic_write(int dirfd, const char *name, const void *buf, size_t len, mode_t mode, struct kelp_err *err);
/* The same without the directory fsync, for a file whose rename a later kelp_atomic_write in
 * the same directory makes durable (one directory fsync covers both). */
/* Replace dirfd/name so that readers see the old or the new content, never a part, without
 * paying for durability (pid files: meaningless after a crash anyway). */
int kelp_atomic_replace(int dirfd, const char *name, const void *buf, size_t len, mode_t mode, struct kelp_err *err);
int kelp_atomic_write_nodirsync(int dirfd, const char *name, const void *buf, size_t len, mode_t mode,
				struct kelp_err *err);

/* Read a whole file (at most max bytes) into a NUL-terminated buffer. */
int kelp_read_file_at(int dirfd, const char *path, size_t max, char **ret, size_t *ret_len, struct kelp_err *err);
int kelp_read_fd(int fd, size_t max, char **ret, size_t *ret_len, struct kelp_err *err);

/* Write all of buf, retrying short writes and EINTR. */
int kelp_write_all(int fd, const void *buf, size_t len);
/* Write a short string to an existing file (cgroup and /proc knobs). */
int kelp_write_file_at(int dirfd, const char *path, const char *value, struct kelp_err *err);

/* Remove dirfd/name recursively without crossing into other mounts or following symlinks.
 * A missing name is not an error. */
int kelp_rm_rf_at(int dirfd, const char *name, struct kelp_err *err);

/* Mark every fd >= from close-on-exec (close_range, falling back to /proc/self/fd). */
int kelp_cloexec_from(int from);
/* Close every fd >= from. */
int kelp_close_fds_from(int from);
/* Close every fd >= from except those in keep[0..n) (negative entries are ignored). */
int kelp_close_fds_except(int from, const int *keep, size_t n);

/* A component-safe name: non-empty, no '/', not "." or "..", no control characters. */
bool kelp_name_is_safe(const char *name);
