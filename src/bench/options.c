// SPDX-License-Identifier: BSD-2-Clause
/* mrcache-bench's command line, perftest's letters where perftest has one. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "strategy.h"

static const size_t full_sizes[] = {
	4, 64, 1 * KiB, 4 * KiB, 16 * KiB, 64 * KiB, 256 * KiB, 1 * MiB, 4 * MiB,
	16 * MiB, 64 * MiB,
};
static const size_t quick_sizes[] = { 4, 4 * KiB, 64 * KiB, 1 * MiB };
static const int full_wsets[] = { 1, 4, 16, 32, 64 };
static const int quick_wsets[] = { 1, 8 };

static void usage(FILE *f)
{
	fprintf(f,
		"usage: mrcache-bench [options]            loopback: one process, two QPs\n"
		"       mrcache-bench --server [options]   wait for a client\n"
		"       mrcache-bench [options] HOST       client of HOST's server\n"
		"  -d, --ib-dev DEV        RDMA device (default: the first)\n"
		"  -i, --ib-port N         device port (default 1)\n"
		"  -x, --gid-index N       GID index (default: RoCE v2, IPv4-mapped, 127.0.0.1 first)\n"
		"  -p, --port PORT         TCP port of the setup exchange (default 18515)\n"
		"  -q, --quick             smoke run: few sizes and working sets, short cells\n"
		"  -t, --budget SEC        measuring time of all cells (default 120, quick 10)\n"
		"  -s, --sizes LIST        message sizes, K/M suffixes (default 4..64M)\n"
		"  -w, --wsets LIST        working sets in buffers (default 1,4,16,32,64)\n"
		"      --ws-size SIZE      message size of the reuse and churn sweeps (64K)\n"
		"  -K, --churn-every K     replace a buffer every K messages (default 4)\n"
		"      --cache-regions N   every cache's bound on idle regions (16, quick 4)\n"
		"      --chunk SIZE        pipelined chunk (default 256K)\n"
		"  -S, --strategies LIST   prereg,static,dynamic,pipelined,mrc_kmod,mrc_hooks,\n"
		"                          mrc_manual,ucx_rcache,ofi_cache (default: all)\n"
		"      --dirs LIST         source,target (default: both)\n"
		"      --sweeps LIST       size,wset,churn,regcost (default: all)\n"
		"      --cpu N, --numa N   bind to core N / NUMA node N instead of the device's\n"
		"      --json FILE         JSON lines, one per cell ('-': stdout)\n"
		"      --csv FILE          CSV, one row per cell ('-': stdout)\n"
		"      --plot DIR          PNG and SVG plots (gnuplot) and their data in DIR\n"
		"      --progress, --no-progress   progress line on stderr (default: if a tty)\n"
		"Exit: 0 every cell delivered the right bytes (the manual monitor's churn cells\n"
		"excepted), 1 otherwise or on error, 77 no RDMA device.\n");
}

int parse_size(const char *text, size_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(text, &end, 0);
	if (errno || end == text)
		return -EINVAL;
	if (*end == 'k' || *end == 'K')
		v *= KiB, end++;
	else if (*end == 'm' || *end == 'M')
		v *= MiB, end++;
	if (*end || v == 0 || v > 1024 * MiB)
		return -EINVAL;
	*out = (size_t)v;
	return 0;
}

void format_size(char *out, size_t n, size_t size)
{
	if (size >= MiB && size % MiB == 0)
		snprintf(out, n, "%zu MiB", size / MiB);
	else if (size >= KiB && size % KiB == 0)
		snprintf(out, n, "%zu KiB", size / KiB);
	else
		snprintf(out, n, "%zu B", size);
}

static int parse_sizes(char *list, struct options *o)
{
	o->nsizes = 0;
	for (char *t = strtok(list, ","); t; t = strtok(NULL, ",")) {
		if (o->nsizes == MAX_SIZES || parse_size(t, &o->sizes[o->nsizes]))
			return -EINVAL;
		o->nsizes++;
	}
	return o->nsizes ? 0 : -EINVAL;
}

static int parse_wsets(char *list, struct options *o)
{
	o->nwsets = 0;
	for (char *t = strtok(list, ","); t; t = strtok(NULL, ",")) {
		int v = atoi(t);

		if (o->nwsets == MAX_WSETS || v < 1 || v > MAX_BUFS)
			return -EINVAL;
		o->wsets[o->nwsets++] = v;
	}
	return o->nwsets ? 0 : -EINVAL;
}

/* A comma list of names from @names into a bit mask. */
static int parse_names(char *list, const char *const *names, int n, unsigned int *mask)
{
	*mask = 0;
	for (char *t = strtok(list, ","); t; t = strtok(NULL, ",")) {
		int i;

		for (i = 0; i < n && strcmp(t, names[i]); i++)
			;
		if (i == n) {
			fprintf(stderr, "mrcache-bench: unknown name '%s'\n", t);
			return -EINVAL;
		}
		*mask |= 1u << i;
	}
	return *mask ? 0 : -EINVAL;
}

static int parse_int(const char *text, int lo, int hi, int *out)
{
	char *end;
	long v = strtol(text, &end, 0);

	if (end == text || *end || v < lo || v > hi)
		return -EINVAL;
	*out = (int)v;
	return 0;
}

static void set_defaults(struct options *o, int quick)
{
	const size_t *s = quick ? quick_sizes : full_sizes;
	const int *w = quick ? quick_wsets : full_wsets;

	o->nsizes = quick ? 4 : (int)(sizeof(full_sizes) / sizeof(full_sizes[0]));
	memcpy(o->sizes, s, (size_t)o->nsizes * sizeof(*s));
	o->nwsets = quick ? 2 : (int)(sizeof(full_wsets) / sizeof(full_wsets[0]));
	memcpy(o->wsets, w, (size_t)o->nwsets * sizeof(*w));
	o->budget_s = quick ? 10 : 120;
	o->cache_regions = quick ? 4 : 16;
}

static const struct option longs[] = {
	{ "server", no_argument, NULL, 'l' },
	{ "ib-dev", required_argument, NULL, 'd' },
	{ "ib-port", required_argument, NULL, 'i' },
	{ "gid-index", required_argument, NULL, 'x' },
	{ "port", required_argument, NULL, 'p' },
	{ "quick", no_argument, NULL, 'q' },
	{ "budget", required_argument, NULL, 't' },
	{ "sizes", required_argument, NULL, 's' },
	{ "wsets", required_argument, NULL, 'w' },
	{ "ws-size", required_argument, NULL, 'W' },
	{ "churn-every", required_argument, NULL, 'K' },
	{ "cache-regions", required_argument, NULL, 'R' },
	{ "chunk", required_argument, NULL, 'c' },
	{ "strategies", required_argument, NULL, 'S' },
	{ "dirs", required_argument, NULL, 'D' },
	{ "sweeps", required_argument, NULL, 'E' },
	{ "cpu", required_argument, NULL, 'C' },
	{ "numa", required_argument, NULL, 'N' },
	{ "json", required_argument, NULL, 'J' },
	{ "csv", required_argument, NULL, 'V' },
	{ "plot", required_argument, NULL, 'P' },
	{ "progress", no_argument, NULL, 'g' },
	{ "no-progress", no_argument, NULL, 'G' },
	{ "help", no_argument, NULL, 'h' },
	{ 0 },
};

static int parse_one(int c, char *arg, struct options *o)
{
	switch (c) {
	case 'l': o->server = 1; return 0;
	case 'd': o->device = arg; return 0;
	case 'i': return parse_int(arg, 1, 255, &o->ib_port);
	case 'x': return parse_int(arg, 0, 255, &o->gid_index);
	case 'p': o->tcp_port = arg; return 0;
	case 't': o->budget_s = atof(arg); return o->budget_s > 0 && o->budget_s < 86400 ? 0 : -EINVAL;
	case 's': return parse_sizes(arg, o);
	case 'w': return parse_wsets(arg, o);
	case 'W': return parse_size(arg, &o->ws_size);
	case 'K': return parse_int(arg, 1, 1 << 20, &o->churn_every);
	case 'R': return parse_int(arg, 1, 1 << 20, &o->cache_regions);
	case 'c': return parse_size(arg, &o->chunk);
	case 'S': return parse_names(arg, strategy_names, NSTRATEGIES, &o->strategies);
	case 'D': return parse_names(arg, direction_names, NDIRS, &o->dirs);
	case 'E': return parse_names(arg, sweep_names, NSWEEPS, &o->sweeps);
	case 'C': return parse_int(arg, 0, 1 << 16, &o->cpu);
	case 'N': return parse_int(arg, 0, 1 << 16, &o->numa);
	case 'J': o->json = arg; return 0;
	case 'V': o->csv = arg; return 0;
	case 'P': o->plot_dir = arg; return 0;
	case 'g': o->progress = 1; return 0;
	case 'G': o->progress = 0; return 0;
	default: return -EINVAL;
	}
}

int options_parse(int argc, char **argv, struct options *o)
{
	int c, ret = 0;

	*o = (struct options){ .tcp_port = "18515", .ib_port = 1, .gid_index = -1,
			       .ws_size = 64 * KiB, .churn_every = 4, .chunk = 256 * KiB,
			       .strategies = (1u << NSTRATEGIES) - 1, .dirs = (1u << NDIRS) - 1,
			       .sweeps = (1u << NSWEEPS) - 1, .cpu = -1, .numa = -1,
			       .progress = isatty(2) };
	/* --quick changes the defaults the other options then override. */
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "-q") || !strcmp(argv[i], "--quick"))
			o->quick = 1;
	set_defaults(o, o->quick);
	while (!ret && (c = getopt_long(argc, argv, "d:i:x:p:qt:s:w:K:S:h", longs, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			return 1;
		}
		ret = c == 'q' ? 0 : parse_one(c, optarg, o);
		if (ret && c != '?')
			fprintf(stderr, "mrcache-bench: bad value for -%c: '%s'\n", c, optarg ? optarg : "");
	}
	if (!ret && optind < argc)
		o->host = argv[optind++];
	if (ret || optind != argc || (o->server && o->host)) {
		usage(stderr);
		return -EINVAL;
	}
	return 0;
}
