/* Allocations on disk, in the reference host-local's layout so either plugin can read them:
 * <dataDir>/<network>/<ip> holds "<containerid>\r\n<ifname>", last_reserved_ip.<set> the last
 * address handed out per range set, and every change happens under flock(<dir>/lock). */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "cni.h"
#include "ip.h"

struct hl_store {
	int dirfd;
	int lockfd;
	bool created; /* this open made the directory */
	char *path;
};

/* Open (create: make the directory) and lock the network's directory. ENOENT in err->k.code
 * when !create and it does not exist. */
int hl_store_open(const char *dir, bool create, struct hl_store *ret, struct cni_err *err);
void hl_store_close(struct hl_store *s);
/* Close, and remove the directory again when this open made it (a failed first ADD). */
void hl_store_close_undo(struct hl_store *s);

/* Claim ip for id/ifname; 0 done, 1 already taken, -1 error. Crash-safe: the file appears
 * complete or not at all (O_TMPFILE + linkat). */
int hl_store_reserve(struct hl_store *s, const struct cni_ip *ip, const char *id, const char *ifname,
		     struct cni_err *err);
int hl_store_release_ip(struct hl_store *s, const struct cni_ip *ip, struct cni_err *err);

struct hl_alloc {
	struct cni_ip ip;
	char *id, *ifname;
};
/* Every allocation in the directory. */
int hl_store_list(struct hl_store *s, struct hl_alloc **ret, size_t *ret_n, struct cni_err *err);
void hl_allocs_free(struct hl_alloc *a, size_t n);

int hl_store_last(struct hl_store *s, size_t set, struct cni_ip *ret); /* 0 found, -1 none */
int hl_store_set_last(struct hl_store *s, size_t set, const struct cni_ip *ip, struct cni_err *err);
