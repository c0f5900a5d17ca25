/* The engine's inside, shared by its files (engine.c: the model and the difference, sync.c:
 * reading inputs, state.c: the state file). */
#pragma once
#include <stdarg.h>
#include <stdint.h>
#include <string.h>

#include "elems.h"
#include "hmap.h"
#include "model.h"
#include "proxy.h"

#define KP_STATE_SHARDS 64

struct svcrec {
	struct kp_service *svc; /* NULL when only slices are known */
	char *svc_file;
	struct kp_slice **slices; /* owned by their slicerecs */
	size_t n_slices;
	uint32_t n_elems; /* elements programmed for it */
	bool affected;    /* during a run */
};

struct slicerec {
	struct kp_slice *sl;
	char *file;
};

/* The keys ("S ns/name", "E ns/name") of the objects a file holds. */
struct filerec {
	char **keys;
};

/* A last good object from the state file. */
struct prevobj {
	struct kp_service *svc;
	struct kp_slice *sl;
	char *file;
};

/* One object replaced or deleted (svc and sl NULL). */
struct change {
	bool is_svc;
	char *key; /* "ns/name"; key, file and where belong to the run's list of changes */
	char *file;
	char *where; /* for messages: "FILE (document N): KIND NS/NAME" */
	struct kp_service *svc;
	struct kp_slice *sl;
	/* undo */
	bool applied, refused;
	struct kp_service *old_svc;
	struct kp_slice *old_sl;
	char *old_file;
};

struct kp_engine {
	struct kp_opts opts;
	struct nft *nft;
	kp_report_fn report;
	void *report_ctx;
	struct hmap svcs;    /* "ns/name" -> svcrec */
	struct hmap slices;  /* "ns/name" -> slicerec */
	struct hmap files;   /* path -> filerec */
	struct hmap owners;  /* element id key (service-ips, external-ips, nodeports) -> svcrec */
	struct acount hairpin; /* endpoint address -> services' ports using it */
	struct hmap groups;  /* struct kp_group -> count */
	struct hmap prev;    /* "S ns/name" / "E ns/name" -> prevobj */
	struct kp_metrics m;
	uint64_t errors_this_sync;
	size_t total_elems;
	bool dry_run;
	/* state shards (state.c) whose services changed since they were last written; all of
	 * them until the first write of this process */
	uint8_t state_dirty[KP_STATE_SHARDS / 8];
	bool state_written;
	const char *run_state_dir; /* during a full sync: where the state goes (may be NULL) */
};

/* The state's services are spread over KP_STATE_SHARDS files by a hash of "ns/name" (slices
 * go with their service), so that a change rewrites only the shards of the services it touched. */
unsigned kp_state_shard(const char *svc_key, size_t len);
static inline void kp_state_touch(struct kp_engine *e, const char *svc_key)
{
	unsigned s = kp_state_shard(svc_key, strlen(svc_key));
	e->state_dirty[s / 8] |= (uint8_t)(1u << (s % 8));
}

/* A full sync's state shards written while the kernel commits: begin after the batch is built
 * (the model then is what the commit makes), end with publish = whether the commit succeeded.
 * NULL from begin: nothing started, kp_engine_write_state writes them afterwards. */
struct kp_state_write;
struct kp_state_write *kp_state_begin(struct kp_engine *e, const char *dir);
int kp_state_end(struct kp_state_write *w, bool publish, struct kelp_err *err);

void kp_report(struct kp_engine *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void kp_change_free(struct change *c);
/* Apply changes in one transaction (full: replace the tables). Refused changes are reported.
 * Returns 0, or -1 when the commit failed (nothing changed). */
int kp_engine_run(struct kp_engine *e, struct change *ch, size_t n, bool full, double t0, struct kelp_err *err);
