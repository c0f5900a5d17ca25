/* Seccomp: linux.seccomp is compiled into a libseccomp filter in the runtime process (so a bad
 * profile fails before anything is created) and loaded by the container init. */
#include "security.h"

#include <ctype.h>
#include <errno.h>
#include <seccomp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cleanup.h"
#include "log.h"

struct kelp_seccomp {
	scmp_filter_ctx ctx;
	bool notify;
};

static int parse_action(const char *name, bool has_errno, uint32_t errno_ret, const char *path, uint32_t *ret,
			struct kelp_err *err)
{
	static const struct {
		const char *name;
		uint32_t act;
	} plain[] = {
		{ "SCMP_ACT_KILL", SCMP_ACT_KILL },
		{ "SCMP_ACT_KILL_PROCESS", SCMP_ACT_KILL_PROCESS },
		{ "SCMP_ACT_KILL_THREAD", SCMP_ACT_KILL_THREAD },
		{ "SCMP_ACT_TRAP", SCMP_ACT_TRAP },
		{ "SCMP_ACT_ALLOW", SCMP_ACT_ALLOW },
		{ "SCMP_ACT_LOG", SCMP_ACT_LOG },
		{ "SCMP_ACT_NOTIFY", SCMP_ACT_NOTIFY },
	};
	if (!name)
		return kelp_error(err, 0, "%s: required field is missing", path);
	bool is_errno = strcmp(name, "SCMP_ACT_ERRNO") == 0, is_trace = strcmp(name, "SCMP_ACT_TRACE") == 0;
	if (is_errno || is_trace) {
		/* Both default to EPERM as in runc. The value travels in SECCOMP_RET_DATA (16 bits). */
		uint32_t v = has_errno ? errno_ret : EPERM;
		if (v > 0xffff)
			return kelp_error(err, 0, "%s: errno value %u out of range (0..65535)", path, v);
		*ret = is_errno ? SCMP_ACT_ERRNO(v) : SCMP_ACT_TRACE(v);
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(plain); i++) {
		if (strcmp(name, plain[i].name) != 0)
			continue;
		/* The spec: an errno for an action that cannot return one is an error. */
		if (has_errno)
			return kelp_error(err, 0, "%s: %s does not take an errno value", path, name);
		*ret = plain[i].act;
		return 0;
	}
	return kelp_error(err, 0, "%s: unknown action %s", path, name);
}

/* The spec's names; each is resolved through libseccomp by its own name ("SCMP_ARCH_X86_64" ->
 * "x86_64"), so an architecture this libseccomp lacks is told apart from a misspelling. */
const char *const seccomp_action_names[] = {
	"SCMP_ACT_KILL",  "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP", "SCMP_ACT_ERRNO",
	"SCMP_ACT_TRACE", "SCMP_ACT_ALLOW",	   "SCMP_ACT_LOG",	   "SCMP_ACT_NOTIFY", NULL,
};
const char *const seccomp_op_names[] = {
	"SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ", NULL,
};
const char *const seccomp_flag_names[] = {
	"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
#if SCMP_VER_MAJOR > 2 || (SCMP_VER_MAJOR == 2 && SCMP_VER_MINOR >= 6)
	"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
#endif
	NULL,
};

bool seccomp_arch_supported(const char *name)
{
	char lower[32];
	size_t n = 0;
	if (strncmp(name, "SCMP_ARCH_", 10) != 0)
		return false;
	for (const char *p = name + 10; *p && n + 1 < sizeof(lower); p++)
		lower[n++] = (char)tolower((unsigned char)*p);
	lower[n] = '\0';
	return seccomp_arch_resolve_name(lower) != 0;
}

const char *const seccomp_arch_names[] = {
	"SCMP_ARCH_X86",	 "SCMP_ARCH_X86_64",   "SCMP_ARCH_X32",	      "SCMP_ARCH_ARM",
	"SCMP_ARCH_AARCH64",	 "SCMP_ARCH_MIPS",     "SCMP_ARCH_MIPS64",    "SCMP_ARCH_MIPS64N32",
	"SCMP_ARCH_MIPSEL",	 "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC",
	"SCMP_ARCH_PPC64",	 "SCMP_ARCH_PPC64LE",  "SCMP_ARCH_S390",      "SCMP_ARCH_S390X",
	"SCMP_ARCH_PARISC",	 "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64",   "SCMP_ARCH_LOONGARCH64",
	"SCMP_ARCH_M68K",	 "SCMP_ARCH_SH",       "SCMP_ARCH_SHEB", NULL,
};

static int add_arch(scmp_filter_ctx ctx, const char *name, size_t i, struct kelp_err *err)
{
	bool known = false;
	for (size_t j = 0; seccomp_arch_names[j]; j++)
		known = known || (name && strcmp(name, seccomp_arch_names[j]) == 0);
	if (!known)
		return kelp_error(err, 0, "linux.seccomp.architectures[%zu]: unknown architecture %s", i,
				  name ? name : "(null)");
	char lower[32];
	const char *p = name + strlen("SCMP_ARCH_");
	size_t n = 0;
	for (; p[n] && n + 1 < sizeof(lower); n++)
		lower[n] = (char)tolower((unsigned char)p[n]);
	lower[n] = '\0';
	uint32_t token = seccomp_arch_resolve_name(lower);
	if (token == 0) {
		const struct scmp_version *v = seccomp_version();
		return kelp_error(err, 0,
				  "linux.seccomp.architectures[%zu]: architecture %s is not supported by libseccomp %u.%u.%u",
				  i, name, v ? v->major : 0, v ? v->minor : 0, v ? v->micro : 0);
	}
	int r = seccomp_arch_add(ctx, token);
	if (r == -EEXIST) /* the native one is already there */
		return 0;
	if (r == -EDOM) {
		/* Endianness differs from the native one: libseccomp cannot put both in one filter,
		 * and no process on this machine can make syscalls of that architecture anyway. */
		log_debug("linux.seccomp.architectures[%zu]: %s cannot share a filter with the native architecture, skipped",
			  i, name);
		return 0;
	}
	if (r < 0)
		return kelp_error(err, -r, "linux.seccomp.architectures[%zu]: add %s", i, name);
	return 0;
}

static int set_flag(scmp_filter_ctx ctx, const char *name, size_t i, struct kelp_err *err)
{
	int attr = -1;
	if (!name)
		name = "(null)";
	if (strcmp(name, "SECCOMP_FILTER_FLAG_TSYNC") == 0)
		attr = SCMP_FLTATR_CTL_TSYNC;
	else if (strcmp(name, "SECCOMP_FILTER_FLAG_LOG") == 0)
		attr = SCMP_FLTATR_CTL_LOG;
	else if (strcmp(name, "SECCOMP_FILTER_FLAG_SPEC_ALLOW") == 0)
		attr = SCMP_FLTATR_CTL_SSB;
	else if (strcmp(name, "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV") == 0) {
#if SCMP_VER_MAJOR > 2 || (SCMP_VER_MAJOR == 2 && SCMP_VER_MINOR >= 6)
		attr = SCMP_FLTATR_CTL_WAITKILL;
#else
		/* libseccomp gained the attribute in 2.6; building it by hand would bypass libseccomp. */
		return kelp_error(err, 0, "linux.seccomp.flags[%zu]: %s is not supported by libseccomp %d.%d.%d (needs 2.6)",
				  i, name, SCMP_VER_MAJOR, SCMP_VER_MINOR, SCMP_VER_MICRO);
#endif
	} else
		return kelp_error(err, 0, "linux.seccomp.flags[%zu]: unknown flag %s", i, name);
	int r = seccomp_attr_set(ctx, (enum scmp_filter_attr)attr, 1);
	if (r < 0)
		return kelp_error(err, -r, "linux.seccomp.flags[%zu]: %s", i, name);
	return 0;
}

static int parse_op(const char *name, enum scmp_compare *ret)
{
	static const struct {
		const char *name;
		enum scmp_compare op;
	} ops[] = {
		{ "SCMP_CMP_NE", SCMP_CMP_NE }, { "SCMP_CMP_LT", SCMP_CMP_LT },
		{ "SCMP_CMP_LE", SCMP_CMP_LE }, { "SCMP_CMP_EQ", SCMP_CMP_EQ },
		{ "SCMP_CMP_GE", SCMP_CMP_GE }, { "SCMP_CMP_GT", SCMP_CMP_GT },
		{ "SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ },
	};
	for (size_t i = 0; name && i < ARRAY_SIZE(ops); i++) {
		if (strcmp(name, ops[i].name) == 0) {
			*ret = ops[i].op;
			return 0;
		}
	}
	return -1;
}

/* One syscalls[] entry. Conditions are ANDed in one rule, except that libseccomp cannot AND
 * two conditions on the same argument: then, as runc does, each becomes its own rule. */
static int add_syscalls(scmp_filter_ctx ctx, const struct spec_seccomp_syscall *sc, size_t i, uint32_t def_act,
			bool *notify, struct kelp_err *err)
{
	char path[64];
	snprintf(path, sizeof(path), "linux.seccomp.syscalls[%zu].action", i);
	uint32_t act;
	if (parse_action(sc->action, sc->has_errno_ret, sc->errno_ret, path, &act, err) < 0)
		return -1;
	if (!sc->names || !sc->names[0])
		return kelp_error(err, 0, "linux.seccomp.syscalls[%zu].names: must contain at least one entry", i);

	unsigned per_index[6] = { 0 };
	cleanup_free struct scmp_arg_cmp *all = xcalloc(sc->n_args ? sc->n_args : 1, sizeof(*all));
	bool split = false;
	for (size_t j = 0; j < sc->n_args; j++) {
		const struct spec_seccomp_arg *a = &sc->args[j];
		enum scmp_compare op;
		if (a->index >= ARRAY_SIZE(per_index))
			return kelp_error(err, 0, "linux.seccomp.syscalls[%zu].args[%zu].index: %u out of range (0..5)", i,
					  j, a->index);
		if (parse_op(a->op, &op) < 0)
			return kelp_error(err, 0, "linux.seccomp.syscalls[%zu].args[%zu].op: unknown operator %s", i, j,
					  a->op ? a->op : "(null)");
		/* For MASKED_EQ value is the mask and valueTwo the datum, in libseccomp's own order. */
		all[j] = (struct scmp_arg_cmp){ .arg = a->index, .op = op, .datum_a = a->value, .datum_b = a->value_two };
		if (++per_index[a->index] > 1)
			split = true;
	}

	/* libseccomp refuses a rule whose action is the default one; it would change nothing. */
	if (act == def_act) {
		log_debug("linux.seccomp.syscalls[%zu]: action is the default action, skipped", i);
		return 0;
	}

	for (size_t k = 0; sc->names[k]; k++) {
		const char *name = sc->names[k];
		int nr = seccomp_syscall_resolve_name(name);
		if (nr == __NR_SCMP_ERROR) {
			/* One profile serves many kernels and architectures (runc does the same). */
			log_debug("linux.seccomp.syscalls[%zu]: unknown syscall %s, skipped", i, name);
			continue;
		}
		int r = 0;
		if (!split)
			r = seccomp_rule_add_array(ctx, act, nr, (unsigned)sc->n_args, sc->n_args ? all : NULL);
		else
			for (size_t j = 0; j < sc->n_args && r >= 0; j++)
				r = seccomp_rule_add_array(ctx, act, nr, 1, &all[j]);
		if (r < 0)
			return kelp_error(err, -r, "linux.seccomp.syscalls[%zu]: add rule for %s", i, name);
		/* Only a rule that made it in asks for a listener at load time. */
		if (act == SCMP_ACT_NOTIFY)
			*notify = true;
	}
	return 0;
}

int seccomp_prepare(const struct spec_seccomp *s, struct kelp_seccomp **ret, struct kelp_err *err)
{
	*ret = NULL;
	if (!s)
		return 0;
	uint32_t def_act;
	if (parse_action(s->default_action, s->has_default_errno_ret, s->default_errno_ret,
			 "linux.seccomp.defaultAction", &def_act, err) < 0)
		return -1;
	/* As in runc: with NOTIFY as the default, the init would block on its own next syscall
	 * (sending the listener fd) with nobody to answer. */
	if (def_act == SCMP_ACT_NOTIFY)
		return kelp_error(err, 0, "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action");

	struct kelp_seccomp *f = xcalloc(1, sizeof(*f));
	f->ctx = seccomp_init(def_act);
	if (!f->ctx) {
		free(f);
		return kelp_error(err, EINVAL, "linux.seccomp: create the filter");
	}
	int r;
	/* The runtime sets no_new_privs itself from process.noNewPrivileges; libseccomp would
	 * otherwise set it on load. Raw errnos make load failures readable. */
	if ((r = seccomp_attr_set(f->ctx, SCMP_FLTATR_CTL_NNP, 0)) < 0) {
		kelp_error(err, -r, "linux.seccomp: clear the no_new_privs attribute");
		goto fail;
	}
	if (seccomp_attr_set(f->ctx, SCMP_FLTATR_API_SYSRAWRC, 1) < 0)
		log_debug("linux.seccomp: libseccomp cannot report raw errno values");

	for (size_t i = 0; s->architectures && s->architectures[i]; i++)
		if (add_arch(f->ctx, s->architectures[i], i, err) < 0)
			goto fail;
	for (size_t i = 0; s->flags && s->flags[i]; i++)
		if (set_flag(f->ctx, s->flags[i], i, err) < 0)
			goto fail;
	for (size_t i = 0; i < s->n_syscalls; i++)
		if (add_syscalls(f->ctx, &s->syscalls[i], i, def_act, &f->notify, err) < 0)
			goto fail;
	*ret = f;
	return 0;
fail:
	seccomp_free(f);
	return -1;
}

void seccomp_free(struct kelp_seccomp *f)
{
	if (!f)
		return;
	if (f->ctx)
		seccomp_release(f->ctx);
	free(f);
}

bool seccomp_uses_notify(const struct kelp_seccomp *f)
{
	return f && f->notify;
}

int seccomp_filter_load(struct kelp_seccomp *f, int *ret_notify_fd, struct kelp_err *err)
{
	if (ret_notify_fd)
		*ret_notify_fd = -1;
	if (!f)
		return 0;
	int r = seccomp_load(f->ctx);
	if (r < 0)
		return kelp_error(err, -r, "load the seccomp filter");
	if (f->notify && ret_notify_fd) {
		int fd = seccomp_notify_fd(f->ctx);
		if (fd < 0)
			return kelp_error(err, fd == -1 ? EBADF : -fd, "get the seccomp listener fd");
		*ret_notify_fd = fd;
	}
	return 0;
}
