#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "cli.h"
#include "fs.h"

enum {
	OPT_RESOURCES = 'r',
	OPT_MEMORY = 0x100,
	OPT_MEMORY_SWAP,
	OPT_MEMORY_RESERVATION,
	OPT_KMEM,
	OPT_KMEM_TCP,
	OPT_CPU_SHARE,
	OPT_CPU_QUOTA,
	OPT_CPU_PERIOD,
	OPT_CPU_RT_PERIOD,
	OPT_CPU_RT_RUNTIME,
	OPT_CPU_IDLE,
	OPT_CPUSET_CPUS,
	OPT_CPUSET_MEMS,
	OPT_PIDS,
	OPT_BLKIO,
	OPT_L3,
	OPT_MEMBW,
};

static const struct option update_opts[] = {
	{ "resources", required_argument, NULL, OPT_RESOURCES },
	{ "memory", required_argument, NULL, OPT_MEMORY },
	{ "memory-swap", required_argument, NULL, OPT_MEMORY_SWAP },
	{ "memory-reservation", required_argument, NULL, OPT_MEMORY_RESERVATION },
	{ "kernel-memory", required_argument, NULL, OPT_KMEM },
	{ "kernel-memory-tcp", required_argument, NULL, OPT_KMEM_TCP },
	{ "cpu-share", required_argument, NULL, OPT_CPU_SHARE },
	{ "cpu-quota", required_argument, NULL, OPT_CPU_QUOTA },
	{ "cpu-period", required_argument, NULL, OPT_CPU_PERIOD },
	{ "cpu-rt-period", required_argument, NULL, OPT_CPU_RT_PERIOD },
	{ "cpu-rt-runtime", required_argument, NULL, OPT_CPU_RT_RUNTIME },
	{ "cpu-idle", required_argument, NULL, OPT_CPU_IDLE },
	{ "cpuset-cpus", required_argument, NULL, OPT_CPUSET_CPUS },
	{ "cpuset-mems", required_argument, NULL, OPT_CPUSET_MEMS },
	{ "pids-limit", required_argument, NULL, OPT_PIDS },
	{ "blkio-weight", required_argument, NULL, OPT_BLKIO },
	{ "l3-cache-schema", required_argument, NULL, OPT_L3 },
	{ "mem-bw-schema", required_argument, NULL, OPT_MEMBW },
	{ 0 },
};

/* "512m", "1g", "1024", "-1": bytes, binary suffixes as runc (docker's RAMInBytes). */
static int parse_bytes(const char *s, int64_t *ret)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s)
		return -1;
	if (v == -1 && !*end) {
		*ret = -1;
		return 0;
	}
	long long mul = 1;
	switch (tolower((unsigned char)*end)) {
	case '\0':
		break;
	case 'k':
		mul = 1LL << 10;
		break;
	case 'm':
		mul = 1LL << 20;
		break;
	case 'g':
		mul = 1LL << 30;
		break;
	case 't':
		mul = 1LL << 40;
		break;
	default:
		return -1;
	}
	if (*end && end[1] && !(tolower((unsigned char)end[1]) == 'b' && !end[2]))
		return -1;
	if (v < 0 || v > INT64_MAX / mul)
		return -1;
	*ret = v * mul;
	return 0;
}

static int parse_i64(const char *s, int64_t *ret)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end)
		return -1;
	*ret = v;
	return 0;
}

static int read_resources(const char *path, struct spec_resources *r, struct kelp_err *err)
{
	cleanup_free char *buf = NULL;
	size_t len;
	if (strcmp(path, "-") == 0) {
		if (kelp_read_fd(STDIN_FILENO, 4 << 20, &buf, &len, err) < 0)
			return kelp_error_wrap(err, "--resources from stdin");
	} else if (kelp_read_file_at(AT_FDCWD, path, 4 << 20, &buf, &len, err) < 0) {
		return kelp_error_wrap(err, "--resources");
	}
	return spec_parse_resources(buf, len, strcmp(path, "-") == 0 ? "resources (stdin)" : path, r, err);
}

static int cmd_update(struct cli *cli, int argc, char **argv)
{
	struct spec_resources r = { 0 };
	const char *file = NULL;
	struct {
		int opt;
		const char *val;
	} flags[32];
	size_t nf = 0;
	int c;
	while ((c = getopt_long_only(argc, argv, "+r:", update_opts, NULL)) != -1) {
		if (c == OPT_RESOURCES) {
			file = optarg;
		} else if (c >= OPT_MEMORY && c <= OPT_MEMBW && nf < 32) {
			flags[nf].opt = c;
			flags[nf++].val = optarg;
		} else {
			return cli_usage(&verb_update, "unknown option");
		}
	}
	if (optind != argc - 1)
		return cli_usage(&verb_update, "expected exactly one container id");
	struct kelp_err err = { 0 };
	if (file && read_resources(file, &r, &err) < 0)
		return cli_fail(&err);
	/* flags override the file, as with runc */
	int rc = 0;
	for (size_t i = 0; i < nf && rc == 0; i++) {
		const char *v = flags[i].val;
		int64_t n = 0;
		bool ok = true;
		switch (flags[i].opt) {
		case OPT_MEMORY:
			ok = parse_bytes(v, &n) == 0;
			r.has_memory = r.memory.has_limit = true;
			r.memory.limit = n;
			break;
		case OPT_MEMORY_SWAP:
			ok = parse_bytes(v, &n) == 0;
			r.has_memory = r.memory.has_swap = true;
			r.memory.swap = n;
			break;
		case OPT_MEMORY_RESERVATION:
			ok = parse_bytes(v, &n) == 0;
			r.has_memory = r.memory.has_reservation = true;
			r.memory.reservation = n;
			break;
		case OPT_KMEM:
			ok = parse_bytes(v, &n) == 0;
			r.has_memory = r.memory.has_kernel = true;
			r.memory.kernel = n;
			break;
		case OPT_KMEM_TCP:
			ok = parse_bytes(v, &n) == 0;
			r.has_memory = r.memory.has_kernel_tcp = true;
			r.memory.kernel_tcp = n;
			break;
		case OPT_CPU_SHARE:
			ok = parse_i64(v, &n) == 0 && n >= 0;
			r.has_cpu = r.cpu.has_shares = true;
			r.cpu.shares = (uint64_t)n;
			break;
		case OPT_CPU_QUOTA:
			ok = parse_i64(v, &n) == 0;
			r.has_cpu = r.cpu.has_quota = true;
			r.cpu.quota = n;
			break;
		case OPT_CPU_PERIOD:
			ok = parse_i64(v, &n) == 0 && n >= 0;
			r.has_cpu = r.cpu.has_period = true;
			r.cpu.period = (uint64_t)n;
			break;
		case OPT_CPU_RT_PERIOD:
			ok = parse_i64(v, &n) == 0 && n >= 0;
			r.has_cpu = r.cpu.has_rt_period = true;
			r.cpu.rt_period = (uint64_t)n;
			break;
		case OPT_CPU_RT_RUNTIME:
			ok = parse_i64(v, &n) == 0;
			r.has_cpu = r.cpu.has_rt_runtime = true;
			r.cpu.rt_runtime = n;
			break;
		case OPT_CPU_IDLE:
			ok = parse_i64(v, &n) == 0;
			r.has_cpu = r.cpu.has_idle = true;
			r.cpu.idle = n;
			break;
		case OPT_CPUSET_CPUS:
			r.has_cpu = true;
			free(r.cpu.cpus);
			r.cpu.cpus = xstrdup(v);
			break;
		case OPT_CPUSET_MEMS:
			r.has_cpu = true;
			free(r.cpu.mems);
			r.cpu.mems = xstrdup(v);
			break;
		case OPT_PIDS:
			ok = parse_i64(v, &n) == 0;
			r.has_pids = r.pids.has_limit = true;
			r.pids.limit = n;
			break;
		case OPT_BLKIO:
			kelp_fail(&err, ENOTSUP, "--blkio-weight: this kernel's blkio controller has no blkio.weight");
			rc = cli_fail(&err);
			break;
		case OPT_L3:
		case OPT_MEMBW:
			kelp_fail(&err, ENOTSUP, "Intel RDT is not available on this machine (no resctrl)");
			rc = cli_fail(&err);
			break;
		}
		if (!ok) {
			spec_resources_free(&r);
			return cli_usage(&verb_update, "invalid value '%s' for %s", v, update_opts[flags[i].opt - OPT_MEMORY + 1].name);
		}
	}
	if (rc == 0 && kelp_update(&cli->rt, argv[optind], &r, &err) < 0)
		rc = cli_fail(&err);
	spec_resources_free(&r);
	return rc;
}

const struct verb verb_update = {
	"update",
	"[--resources FILE|-] [--memory N] [--memory-swap N] [--memory-reservation N] [--cpu-share N] "
	"[--cpu-quota N] [--cpu-period N] [--cpuset-cpus LIST] [--cpuset-mems LIST] [--pids-limit N] ID",
	cmd_update
};
