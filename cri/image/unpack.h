/* Layers unpacked once each into <root>/layers/<diffID hex>: extracted into a temp directory
 * while the uncompressed stream is hashed, checked against the diffID, synced, then renamed into
 * place, so a layer directory that exists is complete and verified. */
#pragma once
#include <stdint.h>

#include "error.h"
#include "store.h"

/* Unpack blob (gzip, zstd or plain tar) whose uncompressed digest must be diff_id. Nothing to do
 * when the layer is already there; concurrent unpacks of one layer wait for each other. */
int kimg_unpack_layer(struct kimg_store *s, const char *blob, const char *diff_id, struct kelp_err *err);
/* Absolute path of an unpacked layer (caller frees). */
char *kimg_layer_path(struct kimg_store *s, const char *diff_id);
