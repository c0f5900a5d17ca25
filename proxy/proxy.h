/* kelp-proxy's engine: Services and EndpointSlices in, nftables transactions out. It keeps what
 * it programmed (the objects, their target ids, shared reference counts), so a change sends
 * only the difference; a full sync replaces the tables in one transaction. The CLI and, later,
 * the node agent drive it. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "error.h"
#include "nft.h"
#include "nft.h"
#include "rules.h"

struct kp_engine;

/* An invalid object or file: one line "FILE (document N): KIND NS/NAME: FIELD: what". */
typedef void (*kp_report_fn)(void *ctx, const char *line);

struct kp_metrics {
	uint64_t syncs_full, syncs_partial, sync_errors, duration_count;
	double duration_sum, last_duration;
	uint64_t last_messages;
};

/* nft NULL: batches are built and counted but never sent (unit tests). */
struct kp_engine *kp_engine_new(const struct kp_opts *opts, struct nft *nft, kp_report_fn report, void *ctx);
void kp_engine_free(struct kp_engine *e);

/* The counters of a previous state file (absent: zero); they continue. */
int kp_engine_load_metrics(struct kp_engine *e, const char *dir, struct kelp_err *err);
/* The objects of a previous state file: the last good versions that refused objects keep. */
int kp_engine_load_state(struct kp_engine *e, const char *dir, struct kelp_err *err);
int kp_engine_write_state(struct kp_engine *e, const char *dir, struct kelp_err *err);

/* Start-up: replace every kelp-proxy table with the ruleset of paths (files or directories), in
 * one transaction. A refused object, or the objects of a file that cannot be read, keep their
 * last good version from the state file in state_dir (may be NULL). Returns 0 (all applied), 1 (some object refused), -1 (nothing applied: err). */
int kp_engine_full_sync(struct kp_engine *e, char *const *paths, size_t n_paths, const char *state_dir,
			struct kelp_err *err);
/* One file of a watched directory was written (removed = false) or removed: apply the
 * difference in one transaction. Same results. */
int kp_engine_file_changed(struct kp_engine *e, const char *path, bool removed, struct kelp_err *err);

const struct kp_metrics *kp_engine_metrics(const struct kp_engine *e);
/* Object messages of the last batch (excluding BEGIN/END). */
size_t kp_engine_last_messages(const struct kp_engine *e);
size_t kp_engine_n_services(const struct kp_engine *e);
size_t kp_engine_n_endpoints(const struct kp_engine *e);

/* Delete both tables (absent ones too) and the conntrack entries of the service addresses
 * known from the state in dir; remove the state file. */
int kp_flush(struct nft *nft, const char *state_dir, struct kelp_err *err);

/* show: the state file as a table, JSON or Prometheus metrics, to out. */
enum kp_show_format { KP_SHOW_TABLE, KP_SHOW_JSON, KP_SHOW_METRICS };
int kp_show(const char *state_dir, enum kp_show_format fmt, FILE *out, struct kelp_err *err);

/* Stale UDP conntrack entries (conntrack.c). */
struct kp_ct_target {
	uint8_t fam;
	uint8_t ip[16];
	uint16_t port;  /* network order; 0: any */
	bool node_port; /* any local address: DNATed entries to this port (proto) */
	uint8_t proto;
};
/* Delete UDP entries DNATed to one of eps (reply source), and entries whose original
 * destination is one of svcs (any protocol when all_protos). */
int kp_conntrack_delete(const struct kp_ct_target *eps, size_t n_eps, const struct kp_ct_target *svcs, size_t n_svcs,
			bool all_protos, struct kelp_err *err);
