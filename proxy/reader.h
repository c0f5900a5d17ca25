/* Manifest files read and parsed ahead by worker threads (one per other CPU, at most 4) and by
 * the consumer itself whenever it would wait, handed out in order: at start-up the YAML parse is
 * most of a large sync's time, and files are independent. */
#pragma once
#include <stddef.h>

#include "error.h"
#include "objects.h"

struct kp_reader;

/* files must outlive the reader. */
struct kp_reader *kp_reader_start(char *const *files, size_t n);
/* The same with a given number of worker threads (at most 4; 0: files are parsed by
 * kp_reader_next alone; -1: one per other CPU, as kp_reader_start). */
struct kp_reader *kp_reader_start_workers(char *const *files, size_t n, int workers);
/* The next file in order, as model objects (blocks until it is parsed); *ret is the caller's.
 * -1: that file could not be read or parsed (err). */
int kp_reader_next(struct kp_reader *r, struct kp_fobjs *ret, struct kelp_err *err);
/* Stops the workers, frees what was not handed out. */
void kp_reader_stop(struct kp_reader *r);
