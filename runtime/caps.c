/* Capabilities: names from config.json become bitmasks in the runtime process, and the
 * container init applies them with prctl (bounding, ambient) and capset (libcap). */
#include "security.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/capability.h>
#include <sys/prctl.h>

#include "cleanup.h"
#include "log.h"

struct kelp_caps {
	uint64_t bounding, effective, inheritable, permitted, ambient;
};

#define CAP_BIT(c) (UINT64_C(1) << (c))

/* Capabilities the running kernel knows: 0 .. n-1 (libcap reads CAP_LAST_CAP at start). The
 * masks are 64 bits wide, which is plenty for today's 41. */
static int kernel_caps(void)
{
	int n = (int)cap_max_bits();
	return n > 64 ? 64 : n;
}

/* "CAP_SYS_ADMIN" for messages, also for numbers libcap has no name for. */
static void cap_name(int cap, char *buf, size_t size)
{
	char *n = cap_to_name((cap_value_t)cap);
	if (!n) {
		snprintf(buf, size, "capability %d", cap);
		return;
	}
	snprintf(buf, size, "%s", n);
	cap_free(n);
	for (char *p = buf; *p; p++)
		*p = (char)toupper((unsigned char)*p);
}

/* "CAP_NET_ADMIN", "cap_net_admin" and "NET_ADMIN" all name the same capability. Anything
 * that is not a name (numbers, which cap_from_name would accept) is refused. */
static int parse_cap(const char *name, cap_value_t *ret)
{
	const char *p = name;
	if (strncasecmp(p, "CAP_", 4) == 0)
		p += 4;
	if (!isalpha((unsigned char)*p))
		return -1;
	char buf[64] = "cap_";
	size_t n = strlen(p);
	if (n + 5 > sizeof(buf))
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (!isalnum(c) && c != '_')
			return -1;
		buf[4 + i] = (char)tolower(c);
	}
	buf[4 + n] = '\0';
	return cap_from_name(buf, ret) < 0 ? -1 : 0;
}

static int parse_set(char **names, const char *set, uint64_t *ret, struct kelp_err *err)
{
	int max = kernel_caps();
	uint64_t mask = 0;
	for (size_t i = 0; names && names[i]; i++) {
		cap_value_t v;
		if (parse_cap(names[i], &v) < 0)
			return kelp_error(err, 0, "process.capabilities.%s: unknown capability %s", set, names[i]);
		if (v < 0 || v >= max) {
			/* A newer libcap than kernel: the name is real but cannot be used here. */
			log_warn("process.capabilities.%s: capability %s is unknown to this kernel, skipped", set,
				 names[i]);
			continue;
		}
		mask |= CAP_BIT(v);
	}
	*ret = mask;
	return 0;
}

int caps_prepare(const struct spec_caps *c, struct kelp_caps **ret, struct kelp_err *err)
{
	cleanup_free struct kelp_caps *k = xcalloc(1, sizeof(*k));
	if (c) {
		if (parse_set(c->bounding, "bounding", &k->bounding, err) < 0 ||
		    parse_set(c->effective, "effective", &k->effective, err) < 0 ||
		    parse_set(c->inheritable, "inheritable", &k->inheritable, err) < 0 ||
		    parse_set(c->permitted, "permitted", &k->permitted, err) < 0 ||
		    parse_set(c->ambient, "ambient", &k->ambient, err) < 0)
			return -1;
	}
	*ret = TAKE_PTR(k);
	return 0;
}

void caps_free(struct kelp_caps *c)
{
	free(c);
}

static uint64_t proc_mask(cap_t cur, cap_flag_t flag)
{
	uint64_t m = 0;
	int max = kernel_caps();
	for (int cap = 0; cap < max; cap++) {
		cap_flag_value_t v = CAP_CLEAR;
		if (cap_get_flag(cur, (cap_value_t)cap, flag, &v) == 0 && v == CAP_SET)
			m |= CAP_BIT(cap);
	}
	return m;
}

static uint64_t bounding_mask(void)
{
	uint64_t m = 0;
	int max = kernel_caps();
	for (int cap = 0; cap < max; cap++)
		if (cap_get_bound((cap_value_t)cap) == 1)
			m |= CAP_BIT(cap);
	return m;
}

static int set_flags(cap_t t, cap_flag_t flag, uint64_t mask)
{
	int max = kernel_caps();
	for (int cap = 0; cap < max; cap++) {
		if (!(mask & CAP_BIT(cap)))
			continue;
		cap_value_t v = (cap_value_t)cap;
		if (cap_set_flag(t, flag, 1, &v, CAP_SET) < 0)
			return -1;
	}
	return 0;
}

/* The spec asks runtimes not to fail for capabilities they cannot grant, only to warn. */
static void warn_ungranted(const char *set, uint64_t wanted, uint64_t granted, const char *why)
{
	uint64_t missing = wanted & ~granted;
	for (int cap = 0; cap < 64; cap++) {
		if (!(missing & CAP_BIT(cap)))
			continue;
		char name[64];
		cap_name(cap, name, sizeof(name));
		log_warn("process.capabilities.%s: cannot grant %s (%s), skipped", set, name, why);
	}
}

/* Make the effective set equal the permitted one (always allowed). After setuid() with
 * PR_SET_KEEPCAPS the kernel empties the effective set, and dropping bounding caps or
 * raising inheritable ones needs CAP_SETPCAP effective. */
static int raise_effective(cap_t cur)
{
	uint64_t perm = proc_mask(cur, CAP_PERMITTED);
	if (proc_mask(cur, CAP_EFFECTIVE) == perm)
		return 0;
	cap_t t = cap_dup(cur);
	if (!t)
		return -1;
	int r = -1;
	if (cap_clear_flag(t, CAP_EFFECTIVE) == 0 && set_flags(t, CAP_EFFECTIVE, perm) == 0)
		r = cap_set_proc(t);
	cap_free(t);
	return r;
}

int caps_apply_bounding(const struct kelp_caps *c, struct kelp_err *err)
{
	cap_t saved = cap_get_proc();
	if (!saved)
		return kelp_error(err, errno, "read the process capabilities");
	if (raise_effective(saved) < 0)
		log_debug("raise the effective capabilities: %s", strerror(errno));

	int rc = 0, max = kernel_caps();
	uint64_t have = 0;
	for (int cap = 0; cap < max; cap++) {
		int r = cap_get_bound((cap_value_t)cap);
		if (r <= 0)
			continue; /* already gone; dropping again would need CAP_SETPCAP for nothing */
		have |= CAP_BIT(cap);
		if (c->bounding & CAP_BIT(cap))
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
			char name[64];
			cap_name(cap, name, sizeof(name));
			rc = kelp_error(err, errno, "drop %s from the bounding set", name);
			break;
		}
	}
	if (rc == 0)
		warn_ungranted("bounding", c->bounding, have, "not in the runtime's bounding set");

	/* Put the effective set back: caps_apply sets the final one. Only reached when the drop
	 * loop is done, so the permitted set is unchanged and this cannot fail for lack of caps. */
	if (cap_set_proc(saved) < 0)
		log_debug("restore the effective capabilities: %s", strerror(errno));
	cap_free(saved);
	return rc;
}

int caps_apply(const struct kelp_caps *c, struct kelp_err *err)
{
	cap_t cur = cap_get_proc();
	if (!cur)
		return kelp_error(err, errno, "read the process capabilities");
	if (raise_effective(cur) < 0)
		log_debug("raise the effective capabilities: %s", strerror(errno));
	uint64_t cur_perm = proc_mask(cur, CAP_PERMITTED), cur_inh = proc_mask(cur, CAP_INHERITABLE);
	cap_free(cur);
	uint64_t bset = bounding_mask();

	/* What capset(2) lets us reach: permitted can only shrink; effective must be a subset of
	 * it; inheritable is limited by the bounding set, and without CAP_SETPCAP also by the
	 * old inheritable + permitted sets. */
	uint64_t perm = c->permitted & cur_perm;
	uint64_t eff = c->effective & perm;
	uint64_t inh_ok = cur_inh | bset;
	if (!(cur_perm & CAP_BIT(CAP_SETPCAP)))
		inh_ok &= cur_inh | cur_perm;
	uint64_t inh = c->inheritable & inh_ok;
	/* One warning per capability: an effective or ambient one whose permitted or inheritable
	 * half was already refused is not reported again. */
	uint64_t refused = (c->permitted & ~perm) | (c->inheritable & ~inh);
	warn_ungranted("permitted", c->permitted, perm, "not held by the runtime");
	warn_ungranted("inheritable", c->inheritable, inh, "not allowed by the bounding set");
	warn_ungranted("effective", c->effective & ~refused, eff, "not in the permitted set");

	cap_t t = cap_init();
	if (!t)
		return kelp_error(err, errno, "allocate capabilities");
	int r = 0;
	if (set_flags(t, CAP_PERMITTED, perm) < 0 || set_flags(t, CAP_EFFECTIVE, eff) < 0 ||
	    set_flags(t, CAP_INHERITABLE, inh) < 0)
		r = kelp_error(err, errno, "build capability sets");
	else if (cap_set_proc(t) < 0)
		r = kelp_error(err, errno,
			       "set capabilities (effective %#" PRIx64 ", permitted %#" PRIx64
			       ", inheritable %#" PRIx64 ")",
			       eff, perm, inh);
	cap_free(t);
	if (r < 0)
		return r;

	/* Start from an empty ambient set; a kernel older than 4.3 has none (EINVAL), which only
	 * matters if ambient capabilities were asked for. */
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && (errno != EINVAL || c->ambient))
		return kelp_error(err, errno, "clear the ambient capabilities");

	/* The kernel only raises an ambient cap that is both permitted and inheritable. Like runc
	 * and crun we do not fail for the others (the spec says warn), but a refusal of a cap that
	 * meets that rule (securebits lock) is an error. */
	uint64_t amb = c->ambient & perm & inh;
	warn_ungranted("ambient", c->ambient & ~refused, amb, "not both permitted and inheritable");
	for (int cap = 0; cap < 64; cap++) {
		if (!(amb & CAP_BIT(cap)))
			continue;
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0) {
			char name[64];
			cap_name(cap, name, sizeof(name));
			return kelp_error(err, errno, "raise ambient capability %s", name);
		}
	}
	return 0;
}

char **caps_known_names(void)
{
	int n = kernel_caps();
	char **out = xcalloc((size_t)n + 1, sizeof(char *));
	for (int c = 0; c < n; c++) {
		char buf[64];
		cap_name(c, buf, sizeof(buf));
		out[c] = xstrdup(buf);
	}
	return out;
}
