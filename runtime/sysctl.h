/* linux.sysctl: only namespaced sysctls, and only for namespaces the container owns; keys and
 * values are checked so that no value can carry a second setting (CVE-2022-0811 class). */
#pragma once
#include "error.h"
#include "spec.h"

/* In the runtime, before anything is created. */
int sysctl_validate(const struct spec *s, struct kelp_err *err);
/* In the container's init, inside its namespaces, before the mounts: writes /proc/sys/... */
int sysctl_apply(const struct spec *s, struct kelp_err *err);
