/* Capabilities (libcap) and seccomp (libseccomp). Each is prepared in the runtime process,
 * where a bad name is reported before anything is created, and applied in the container's
 * init just before exec. */
#pragma once
#include <stdbool.h>

#include "error.h"
#include "spec.h"

struct kelp_caps; /* the five sets as bitmasks */

/* Names like "CAP_NET_ADMIN" (case-insensitive, "CAP_" optional as runc allows). An unknown
 * name fails: "process.capabilities.bounding: unknown capability CAP_FOO". A capability this
 * kernel does not know is skipped with a warning, as runc does. */
int caps_prepare(const struct spec_caps *c, struct kelp_caps **ret, struct kelp_err *err);
void caps_free(struct kelp_caps *c);
/* In the container init, after setuid: drop the bounding set to `bounding`, then set
 * effective/permitted/inheritable with capset, then raise ambient. Must be called while the
 * process still holds CAP_SETPCAP (prctl PR_SET_KEEPCAPS was set before changing uid). */
int caps_apply_bounding(const struct kelp_caps *c, struct kelp_err *err);
int caps_apply(const struct kelp_caps *c, struct kelp_err *err);

struct kelp_seccomp; /* a compiled filter */

/* Build the filter (actions, errno values, syscalls with argument filters, architectures,
 * flags). Unknown syscall names are skipped (as runc does, so one profile fits several
 * kernels); an unknown action, operator, architecture or flag is an error naming it. */
int seccomp_prepare(const struct spec_seccomp *s, struct kelp_seccomp **ret, struct kelp_err *err);
void seccomp_free(struct kelp_seccomp *f);
/* Whether the filter uses SCMP_ACT_NOTIFY (then a listener fd comes back from load). */
bool seccomp_uses_notify(const struct kelp_seccomp *f);
/* Load into the calling process. ret_notify_fd gets the listener fd when notify is used, else -1.
 * (Not "seccomp_load": libseccomp owns that name.) */
int seccomp_filter_load(struct kelp_seccomp *f, int *ret_notify_fd, struct kelp_err *err);

/* What `features` reports: the names this build accepts (NULL-terminated). */
extern const char *const seccomp_action_names[], *const seccomp_op_names[], *const seccomp_flag_names[],
	*const seccomp_arch_names[];
/* Whether this libseccomp knows the architecture (spec name, "SCMP_ARCH_X86_64"). */
bool seccomp_arch_supported(const char *name);
/* Every capability name this kernel has ("CAP_CHOWN", ...), NULL-terminated; caller frees. */
char **caps_known_names(void);
