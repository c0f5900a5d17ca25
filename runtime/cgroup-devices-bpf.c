/* Device rules: the defaults every container gets, the v1 "c 1:3 rwm" lines, and for cgroup v2
 * an eBPF program (BPF_PROG_TYPE_CGROUP_DEVICE) that evaluates the same list the way the v1
 * controller would: the last matching rule wins, nothing matching means deny. */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cgroup-internal.h"
#include "cleanup.h"
#include "log.h"

static const struct spec_device_rule default_rules[] = {
	{true, 'c', 1, 3, "rwm"},   /* null */
	{true, 'c', 1, 5, "rwm"},   /* zero */
	{true, 'c', 1, 7, "rwm"},   /* full */
	{true, 'c', 1, 8, "rwm"},   /* random */
	{true, 'c', 1, 9, "rwm"},   /* urandom */
	{true, 'c', 5, 0, "rwm"},   /* tty */
	{true, 'c', 5, 1, "rwm"},   /* console */
	{true, 'c', 5, 2, "rwm"},   /* ptmx */
	{true, 'c', 136, -1, "rwm"}, /* pts */
};

const struct spec_device_rule *cg_default_device_rules(size_t *ret_n)
{
	*ret_n = ARRAY_SIZE(default_rules);
	return default_rules;
}

struct spec_device_rule *cg_device_rules(const struct spec_resources *r, size_t *ret_n)
{
	size_t n = r->n_devices + ARRAY_SIZE(default_rules);
	struct spec_device_rule *v = xcalloc(n, sizeof(*v));
	if (r->n_devices)
		memcpy(v, r->devices, r->n_devices * sizeof(*v));
	memcpy(v + r->n_devices, default_rules, sizeof(default_rules));
	*ret_n = n;
	return v;
}

static const char *access_of(const struct spec_device_rule *d) { return d->access[0] ? d->access : "rwm"; }

void cg_device_rule_line(const struct spec_device_rule *d, char *buf, size_t size)
{
	char maj[24] = "*", min[24] = "*";
	if (d->major >= 0)
		snprintf(maj, sizeof(maj), "%lld", (long long)d->major);
	if (d->minor >= 0)
		snprintf(min, sizeof(min), "%lld", (long long)d->minor);
	snprintf(buf, size, "%c %s:%s %s", d->type ? d->type : 'a', maj, min, access_of(d));
}

/* ---------------------------------------------------------------- program builder */

#define INSN(c, d, s, o, i) ((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})

struct prog {
	struct bpf_insn *v;
	size_t n, cap;
};

static size_t emit(struct prog *p, struct bpf_insn in)
{
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 64;
		p->v = xrealloc(p->v, p->cap * sizeof(*p->v));
	}
	p->v[p->n] = in;
	return p->n++;
}

static int access_mask(const struct spec_device_rule *d, int *ret, struct kelp_err *err)
{
	int m = 0;
	for (const char *c = access_of(d); *c; c++) {
		switch (*c) {
		case 'r':
			m |= BPF_DEVCG_ACC_READ;
			break;
		case 'w':
			m |= BPF_DEVCG_ACC_WRITE;
			break;
		case 'm':
			m |= BPF_DEVCG_ACC_MKNOD;
			break;
		default:
			return kelp_error(err, EINVAL, "device rule access \"%s\": expected letters of \"rwm\"", d->access);
		}
	}
	*ret = m;
	return 0;
}

static int check_num(int64_t v, const char *what, struct kelp_err *err)
{
	/* compared as a 32-bit immediate, so keep it in int32 range */
	if (v < -1 || v > INT32_MAX)
		return kelp_error(err, ERANGE, "device rule %s %lld: out of range", what, (long long)v);
	return 0;
}

int cg_device_rules_check(const struct spec_device_rule *rules, size_t n, struct kelp_err *err)
{
	for (size_t k = 0; k < n; k++) {
		const struct spec_device_rule *d = &rules[k];
		int acc;
		char type = d->type ? d->type : 'a';
		if (type != 'a' && type != 'c' && type != 'b')
			return kelp_error(err, EINVAL, "device rule %zu: type '%c' is not one of a, c, b", k, type);
		if (access_mask(d, &acc, err) < 0 || check_num(d->major, "major", err) < 0 ||
		    check_num(d->minor, "minor", err) < 0)
			return -1;
	}
	return 0;
}

int cg_devices_bpf_build(const struct spec_device_rule *rules, size_t n, struct bpf_insn **ret, size_t *ret_n,
			 struct kelp_err *err)
{
	if (cg_device_rules_check(rules, n, err) < 0)
		return -1;
	const int all = BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE | BPF_DEVCG_ACC_MKNOD;
	struct prog p = {0};
	/* r2 = device type, r3 = requested access, r4 = major, r5 = minor */
	emit(&p, INSN(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_2, BPF_REG_1, offsetof(struct bpf_cgroup_dev_ctx, access_type), 0));
	emit(&p, INSN(BPF_ALU | BPF_AND | BPF_K, BPF_REG_2, 0, 0, 0xffff));
	emit(&p, INSN(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_3, BPF_REG_1, offsetof(struct bpf_cgroup_dev_ctx, access_type), 0));
	emit(&p, INSN(BPF_ALU | BPF_RSH | BPF_K, BPF_REG_3, 0, 0, 16));
	emit(&p, INSN(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_4, BPF_REG_1, offsetof(struct bpf_cgroup_dev_ctx, major), 0));
	emit(&p, INSN(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_5, BPF_REG_1, offsetof(struct bpf_cgroup_dev_ctx, minor), 0));

	bool terminal = false;
	/* Last match wins: test the rules from the last one back, first hit returns. */
	for (size_t k = n; k-- > 0 && !terminal;) {
		const struct spec_device_rule *d = &rules[k];
		int acc = 0;
		char type = d->type ? d->type : 'a';
		access_mask(d, &acc, NULL);
		/* As in v1, an "a" rule for every device resets the whole list: nothing before it
		 * can matter. */
		if (type == 'a' && d->major < 0 && d->minor < 0) {
			emit(&p, INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, d->allow ? 1 : 0));
			emit(&p, INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
			terminal = true;
			break;
		}
		size_t jumps[8], nj = 0;
		if (type != 'a')
			jumps[nj++] = emit(&p, INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_2, 0, 0,
						    type == 'c' ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK));
		if (acc != all) {
			emit(&p, INSN(BPF_ALU | BPF_MOV | BPF_X, BPF_REG_1, BPF_REG_3, 0, 0));
			if (d->allow) {
				/* allow only when every requested bit is allowed */
				emit(&p, INSN(BPF_ALU | BPF_AND | BPF_K, BPF_REG_1, 0, 0, ~acc));
				jumps[nj++] = emit(&p, INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_1, 0, 0, 0));
			} else {
				/* deny when any requested bit is denied */
				emit(&p, INSN(BPF_ALU | BPF_AND | BPF_K, BPF_REG_1, 0, 0, acc));
				jumps[nj++] = emit(&p, INSN(BPF_JMP | BPF_JEQ | BPF_K, BPF_REG_1, 0, 0, 0));
			}
		}
		if (d->major >= 0)
			jumps[nj++] = emit(&p, INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_4, 0, 0, (int32_t)d->major));
		if (d->minor >= 0)
			jumps[nj++] = emit(&p, INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_5, 0, 0, (int32_t)d->minor));
		emit(&p, INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, d->allow ? 1 : 0));
		emit(&p, INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
		for (size_t j = 0; j < nj; j++)
			p.v[jumps[j]].off = (int16_t)(p.n - jumps[j] - 1);
	}
	if (!terminal) {
		emit(&p, INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0));
		emit(&p, INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
	}
	if (p.n > 4096) {
		free(p.v);
		return kelp_error(err, E2BIG, "device rules: %zu rules make a program too large", n);
	}
	*ret = p.v;
	*ret_n = p.n;
	return 0;
}

/* ---------------------------------------------------------------- load and attach */

static int sys_bpf(int cmd, union bpf_attr *attr)
{
	int rc;
	do
		rc = (int)syscall(SYS_bpf, cmd, attr, sizeof(*attr));
	while (rc < 0 && errno == EINTR);
	return rc;
}

static int load_prog(const struct bpf_insn *insns, size_t n, struct kelp_err *err)
{
	union bpf_attr attr;
	memset(&attr, 0, sizeof(attr));
	attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
	attr.insns = (uint64_t)(uintptr_t)insns;
	attr.insn_cnt = (uint32_t)n;
	attr.license = (uint64_t)(uintptr_t) "Apache";
	memcpy(attr.prog_name, "kelp_devices", sizeof("kelp_devices"));
	int fd = sys_bpf(BPF_PROG_LOAD, &attr);
	if (fd >= 0)
		return fd;
	int saved = errno;
	/* Load again with the verifier log so the error says what it refused. */
	char log[4096] = "";
	attr.log_buf = (uint64_t)(uintptr_t)log;
	attr.log_size = sizeof(log);
	attr.log_level = 1;
	fd = sys_bpf(BPF_PROG_LOAD, &attr);
	if (fd >= 0)
		return fd;
	size_t l = strnlen(log, sizeof(log) - 1);
	while (l > 0 && log[l - 1] == '\n')
		log[--l] = '\0';
	const char *last = strrchr(log, '\n');
	return kelp_error(err, saved, "load device eBPF program (%zu instructions)%s%s", n, l ? ": verifier: " : "",
			  l ? (last ? last + 1 : log) : "");
}

int cg_devices_bpf_apply(const char *dir, const struct spec_device_rule *rules, size_t n, struct kelp_err *err)
{
	cleanup_free struct bpf_insn *insns = NULL;
	size_t ni = 0;
	if (cg_devices_bpf_build(rules, n, &insns, &ni, err) < 0)
		return -1;
	cleanup_close int cgfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cgfd < 0)
		return kelp_error(err, errno, "open %s", dir);

	/* The programs attached before (an update) are detached once the new one is in place,
	 * so there is no moment without a policy. */
	uint32_t old[64];
	union bpf_attr q;
	memset(&q, 0, sizeof(q));
	q.query.target_fd = (uint32_t)cgfd;
	q.query.attach_type = BPF_CGROUP_DEVICE;
	q.query.prog_ids = (uint64_t)(uintptr_t)old;
	q.query.prog_cnt = ARRAY_SIZE(old);
	uint32_t n_old = 0;
	if (sys_bpf(BPF_PROG_QUERY, &q) == 0)
		n_old = q.query.prog_cnt < ARRAY_SIZE(old) ? q.query.prog_cnt : ARRAY_SIZE(old);
	else
		log_debug("query device programs of %s: %s", dir, strerror(errno));

	cleanup_close int prog = load_prog(insns, ni, err);
	if (prog < 0)
		return kelp_error_wrap(err, "devices of %s", dir);
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.target_fd = (uint32_t)cgfd;
	a.attach_bpf_fd = (uint32_t)prog;
	a.attach_type = BPF_CGROUP_DEVICE;
	a.attach_flags = BPF_F_ALLOW_MULTI;
	if (sys_bpf(BPF_PROG_ATTACH, &a) < 0)
		return kelp_error(err, errno, "attach device eBPF program to %s", dir);

	for (uint32_t i = 0; i < n_old; i++) {
		union bpf_attr g;
		memset(&g, 0, sizeof(g));
		g.prog_id = old[i];
		cleanup_close int ofd = sys_bpf(BPF_PROG_GET_FD_BY_ID, &g);
		if (ofd < 0) {
			if (errno == ENOENT)
				continue;
			return kelp_error(err, errno, "get device eBPF program %u of %s", old[i], dir);
		}
		union bpf_attr d;
		memset(&d, 0, sizeof(d));
		d.target_fd = (uint32_t)cgfd;
		d.attach_bpf_fd = (uint32_t)ofd;
		d.attach_type = BPF_CGROUP_DEVICE;
		if (sys_bpf(BPF_PROG_DETACH, &d) < 0 && errno != ENOENT)
			return kelp_error(err, errno, "detach old device eBPF program %u from %s", old[i], dir);
	}
	log_debug("cgroup: %s: device eBPF program of %zu instructions attached", dir, ni);
	return 0;
}
