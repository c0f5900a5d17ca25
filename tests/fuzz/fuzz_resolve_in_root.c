/* libFuzzer target: kelp_open_in_root / kelp_mkdir_in_root / kelp_mkfile_in_root with arbitrary paths against a fixed
 * tree of hostile symlinks (absolute, "..", to a sibling "outside" directory, loops, chains).
 * Property checked on every input, not only "no crash": any fd returned refers to an object
 * inside the root (readlink /proc/self/fd/N), and nothing ever appears in "outside".
 *
 * Input: byte 0 selects the operation and open flags, the rest is the path (cut at a NUL). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "fs.h"

static char base[PATH_MAX];	/* mkdtemp directory holding root/ and outside/ */
static char root_path[PATH_MAX]; /* realpath of base/root */
static char outside_path[PATH_MAX];
static int rootfd = -1;
static unsigned long resets;

static void die(const char *what)
{
	fprintf(stderr, "fuzz_resolve_in_root: %s: %s\n", what, strerror(errno));
	abort();
}

static int rm_one(const char *p, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if ((type == FTW_DP ? rmdir(p) : unlink(p)) < 0)
		die(p);
	return 0;
}

static void rm_tree(const char *p)
{
	if (nftw(p, rm_one, 16, FTW_DEPTH | FTW_PHYS) < 0 && errno != ENOENT)
		die(p);
}

static void xsymlink(const char *target, const char *name)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/%s", root_path, name);
	if (symlink(target, p) < 0)
		die(p);
}

static void xmkdir(const char *name)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/%s", root_path, name);
	if (mkdir(p, 0755) < 0)
		die(p);
}

static void xfile(const char *name)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/%s", root_path, name);
	int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0 || close(fd) < 0)
		die(p);
}

/* The fixed tree; rebuilt from scratch every so often because mkdir/O_CREAT inputs grow it. */
static void build_tree(void)
{
	if (rootfd >= 0)
		close(rootfd);
	rm_tree(root_path);
	if (mkdir(root_path, 0755) < 0)
		die(root_path);
	xmkdir("dir");
	xmkdir("dir/sub");
	xfile("file");
	xfile("dir/sub/file");
	xsymlink("/", "abs");
	xsymlink("../../../../..", "up");
	xsymlink("../outside", "out");
	xsymlink(outside_path, "outabs");
	xsymlink("/etc", "etc");
	xsymlink("loop", "loop");
	xsymlink("chain2", "chain1");
	xsymlink("/chain3", "chain2");
	xsymlink("../..", "chain3");
	xsymlink("/nonexistent/x", "dangling");
	xsymlink("../../outside/new", "dangling-out");
	xsymlink("../../..", "dir/sub/up3");
	xsymlink(".", "dir/self");
	xsymlink("/dir/sub/up3/outside", "dir/deep-out");
	xsymlink("/proc/self/cwd", "proc");
	xsymlink("../file", "dir/tofile");
	rootfd = open(root_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		die(root_path);
}

static void cleanup_all(void)
{
	if (base[0])
		rm_tree(base);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	const char *tmp = getenv("TMPDIR");
	snprintf(base, sizeof(base), "%s/kelp-fuzz-root-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(base))
		die(base);
	char real[PATH_MAX];
	if (!realpath(base, real))
		die(base);
	snprintf(root_path, sizeof(root_path), "%s/root", real);
	snprintf(outside_path, sizeof(outside_path), "%s/outside", real);
	if (mkdir(outside_path, 0755) < 0)
		die(outside_path);
	build_tree();
	atexit(cleanup_all);
	return 0;
}

static void check_inside(int fd, const char *op, const char *path)
{
	char proc[64], got[PATH_MAX];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(proc, got, sizeof(got) - 1);
	if (n < 0)
		die(proc);
	got[n] = '\0';
	size_t rl = strlen(root_path);
	if (strncmp(got, root_path, rl) != 0 || (got[rl] != '\0' && got[rl] != '/')) {
		fprintf(stderr, "ESCAPE: %s(\"%s\") opened %s, outside %s\n", op, path, got, root_path);
		abort();
	}
}

static void check_outside_empty(const char *op, const char *path)
{
	DIR *d = opendir(outside_path);
	if (!d)
		die(outside_path);
	struct dirent *e;
	errno = 0;
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			fprintf(stderr, "ESCAPE: %s(\"%s\") created %s/%s\n", op, path, outside_path, e->d_name);
			abort();
		}
	}
	if (errno)
		die(outside_path);
	closedir(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned long writes;
	if (size < 1 || size > 4096)
		return 0;
	char path[4097];
	memcpy(path, data + 1, size - 1);
	path[size - 1] = '\0';
	uint8_t sel = data[0];
	struct kelp_err err = {0};
	int fd;
	const char *op;
	switch (sel % 6) {
	case 0:
		op = "open_in_root(O_PATH)";
		fd = kelp_open_in_root(rootfd, path, O_PATH, 0, &err);
		break;
	case 1:
		op = "open_in_root(O_RDONLY|O_DIRECTORY)";
		fd = kelp_open_in_root(rootfd, path, O_RDONLY | O_DIRECTORY, 0, &err);
		break;
	case 2:
		op = "open_in_root(O_PATH|O_NOFOLLOW)";
		fd = kelp_open_in_root(rootfd, path, O_PATH | O_NOFOLLOW, 0, &err);
		break;
	case 3:
		op = "open_in_root(O_WRONLY|O_CREAT)";
		fd = kelp_open_in_root(rootfd, path, O_WRONLY | O_CREAT | O_NONBLOCK, 0644, &err);
		writes++;
		break;
	case 4:
		op = "mkfile_in_root";
		fd = kelp_mkfile_in_root(rootfd, path, 0644, &err);
		writes++;
		break;
	default:
		op = "mkdir_in_root";
		fd = kelp_mkdir_in_root(rootfd, path, 0755, &err);
		writes++;
		break;
	}
	if (fd >= 0) {
		check_inside(fd, op, path);
		close(fd);
	}
	check_outside_empty(op, path);
	/* Inputs that create things change the tree later inputs see: reset it regularly so the
	 * fixed hostile tree is what most inputs run against. */
	if (writes >= 64) {
		writes = 0;
		resets++;
		build_tree();
	}
	return 0;
}
