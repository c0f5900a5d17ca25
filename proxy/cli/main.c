/* kelp-proxy: Kubernetes Services as nftables rules. Thin: parses the command line and calls
 * the library (proxy/proxy.h). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <malloc.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "model.h"
#include "nft.h"
#include "proxy.h"
#include "watch.h"

static enum kelp_log_format log_format = KELP_LOG_TEXT;

static void usage(FILE *f)
{
	fprintf(f, "usage: kelp-proxy [OPTIONS] sync PATH...\n"
		   "       kelp-proxy [OPTIONS] watch DIR\n"
		   "       kelp-proxy [OPTIONS] show [-o json] [--metrics]\n"
		   "       kelp-proxy [OPTIONS] flush\n"
		   "options:\n"
		   "  --node-name NAME                 this node (default: the hostname)\n"
		   "  --nodeport-addresses CIDR[,...]  node addresses that accept NodePorts (default: every\n"
		   "                                   local address except loopback)\n"
		   "  --cluster-cidr CIDR[,...]        pod CIDRs; traffic from outside them is masqueraded\n"
		   "  --masquerade-all                 masquerade all service traffic\n"
		   "  --state-dir DIR                  default /run/kelp-proxy\n"
		   "  --log-format text|json\n");
}

/* Invalid objects: one line each on stderr (a JSON record with --log-format json). */
static void report(void *ctx, const char *line)
{
	(void)ctx;
	if (log_format == KELP_LOG_JSON)
		log_error("%s", line);
	else
		fprintf(stderr, "%s\n", line);
}

static int parse_cidrs(const char *opt, const char *arg, struct kp_cidr **v, size_t *n)
{
	cleanup_free char *copy = xstrdup(arg);
	char *save = NULL;
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		struct kp_cidr c;
		if (kp_cidr_parse(t, &c) < 0) {
			fprintf(stderr, "kelp-proxy: %s: \"%s\" is not a CIDR\n", opt, t);
			return -1;
		}
		*v = xrealloc(*v, (*n + 1) * sizeof(**v));
		(*v)[(*n)++] = c;
	}
	if (!*n) {
		fprintf(stderr, "kelp-proxy: %s: no CIDR given\n", opt);
		return -1;
	}
	return 0;
}

/* The CIDR lists parse_cidrs allocates, freed on every return of main: show, flush and the
 * option errors returned without freeing them (LeakSanitizer, make asan-test). */
static void free_opts_cidrs(struct kp_opts *o)
{
	free(o->cluster_cidrs);
	free(o->np_cidrs);
}

int main(int argc, char **argv)
{
	enum { O_NODE = 256, O_NP, O_CC, O_MASQ, O_STATE, O_LOGF, O_METRICS, O_HELP };
	static const struct option opts[] = {
		{"node-name", required_argument, NULL, O_NODE},
		{"nodeport-addresses", required_argument, NULL, O_NP},
		{"cluster-cidr", required_argument, NULL, O_CC},
		{"masquerade-all", no_argument, NULL, O_MASQ},
		{"state-dir", required_argument, NULL, O_STATE},
		{"log-format", required_argument, NULL, O_LOGF},
		{"metrics", no_argument, NULL, O_METRICS},
		{"output", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, O_HELP},
		{0},
	};
	/* A fixed mmap threshold: large buffers (the batch, the state text) go back to the system
	 * when freed instead of raising glibc's dynamic threshold and staying in the heap. It is
	 * above lib/kube_manifest's 256 KiB arena chunk: at 128 KiB every file read was an mmap and
	 * a munmap (a TLB shootdown IPI, page faults on the fresh pages): half the start-up sync's
	 * time at 10,000 files. The top of the heap is trimmed past 1 MiB (and explicitly after a sync). */
	mallopt(M_MMAP_THRESHOLD, 1024 * 1024);
	mallopt(M_TRIM_THRESHOLD, 1024 * 1024);
	struct kp_opts o __attribute__((cleanup(free_opts_cidrs))) = {0};
	char hostname[256] = "";
	const char *state_dir = "/run/kelp-proxy", *output = NULL;
	bool metrics = false;
	int c;
	while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		switch (c) {
		case O_NODE:
			o.node = optarg;
			break;
		case O_NP:
			if (parse_cidrs("--nodeport-addresses", optarg, &o.np_cidrs, &o.n_np_cidrs) < 0)
				return 2;
			break;
		case O_CC:
			if (parse_cidrs("--cluster-cidr", optarg, &o.cluster_cidrs, &o.n_cluster_cidrs) < 0)
				return 2;
			break;
		case O_MASQ:
			o.masq_all = true;
			break;
		case O_STATE:
			state_dir = optarg;
			break;
		case O_LOGF:
			if (kelp_log_parse_format(optarg, &log_format) < 0) {
				fprintf(stderr, "kelp-proxy: --log-format: \"%s\" is not text or json\n", optarg);
				return 2;
			}
			break;
		case O_METRICS:
			metrics = true;
			break;
		case 'o':
			output = optarg;
			break;
		case 'h':
		case O_HELP:
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	struct kelp_err err = {0};
	if (kelp_log_init(NULL, log_format, false, &err) < 0) {
		fprintf(stderr, "kelp-proxy: %s\n", err.msg);
		return 2;
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	const char *verb = argv[optind++];
	if (!o.node) {
		if (gethostname(hostname, sizeof(hostname) - 1) < 0) {
			log_error("gethostname: %s", strerror(errno));
			return 2;
		}
		o.node = hostname;
	}

	if (!strcmp(verb, "show")) {
		if (optind != argc || (output && strcmp(output, "json") && strcmp(output, "table"))) {
			usage(stderr);
			return 2;
		}
		enum kp_show_format f = metrics ? KP_SHOW_METRICS : output && !strcmp(output, "json") ? KP_SHOW_JSON : KP_SHOW_TABLE;
		if (kp_show(state_dir, f, stdout, &err) < 0) {
			log_error("show: %s", err.msg);
			return 2;
		}
		return 0;
	}
	if (output || metrics) {
		fprintf(stderr, "kelp-proxy: -o and --metrics are options of show\n");
		return 2;
	}
	bool sync = !strcmp(verb, "sync"), watch = !strcmp(verb, "watch"), flush = !strcmp(verb, "flush");
	if ((!sync && !watch && !flush) || (sync && optind >= argc) || (watch && argc - optind != 1) ||
	    (flush && optind != argc)) {
		usage(stderr);
		return 2;
	}
	struct nft *nft;
	if (nft_open(-1, &nft, &err) < 0) {
		log_error("%s", err.msg);
		return 2;
	}
	if (flush) {
		int r = kp_flush(nft, state_dir, &err);
		nft_close(nft);
		if (r < 0) {
			log_error("flush: %s", err.msg);
			return 2;
		}
		return 0;
	}
	struct kp_watch w = {.ifd = -1, .sfd = -1};
	if (watch && kp_watch_open(argv[optind], &w, &err) < 0) {
		log_error("%s", err.msg);
		nft_close(nft);
		return 2;
	}
	struct kp_engine *e = kp_engine_new(&o, nft, report, NULL);
	int rc = 2;
	if (kp_engine_load_metrics(e, state_dir, &err) < 0)
		log_warn("previous counters ignored: %s", err.msg);
	int r = kp_engine_full_sync(e, argv + optind, (size_t)(argc - optind), state_dir, &err);
	if (r < 0) {
		log_error("sync: %s (nothing changed)", err.msg);
		goto out;
	}
	struct timespec ts0, ts1;
	clock_gettime(CLOCK_MONOTONIC, &ts0);
	if (kp_engine_write_state(e, state_dir, &err) < 0) {
		log_error("%s", err.msg);
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &ts1);
	if (getenv("KELP_PROXY_TIMING")) {
		struct mallinfo2 mi = mallinfo2();
		fprintf(stderr, "kelp-proxy: state written in %.3f s; heap in use %zu KiB of %zu KiB\n",
			(double)(ts1.tv_sec - ts0.tv_sec) + (double)(ts1.tv_nsec - ts0.tv_nsec) / 1e9, mi.uordblks >> 10,
			mi.arena >> 10);
	}
	rc = r;
	malloc_trim(0);
	if (watch) {
		rc = kp_watch_loop(&w, e, state_dir, &err) < 0 ? 2 : 0;
		if (rc)
			log_error("watch: %s", err.msg);
	}
out:
	kp_watch_close(&w);
	kp_engine_free(e);
	nft_close(nft);
	return rc;
}
