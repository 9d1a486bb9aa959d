// SPDX-License-Identifier: BSD-2-Clause
/*
 * xfer_bench: what registration strategy costs per RDMA WRITE.
 *
 * The application sends messages out of a working set of buffers it reuses
 * (K buffers, cycled). Each message goes over a real RC RDMA WRITE between
 * two QPs of this process (test/rdma_pair.c) into a pre-registered target,
 * with the source side registered one of four ways:
 *
 *   static     copy into a pre-registered bounce buffer, write from it
 *   dynamic    ibv_reg_mr, write, ibv_dereg_mr, every message
 *   pipelined  dynamic in chunks: register chunk i+1 while chunk i is on
 *              the wire, deregister each chunk once its write completed
 *   cached     mrc_get, write, mrc_put (mrcache, manual monitor)
 *
 * One timed sample is one message, from "the data is in the application's
 * buffer" to "the write completed". Each cell (mode, size) first sends one
 * message from every buffer untimed except the very first (reported as
 * first_usec: the cold cost), then repeats until its share of the time
 * budget is used up; the median is reported. The target is checked after
 * every cell, so a broken transfer cannot pass as a fast one.
 *
 * Output: one JSON line per cell on stdout, then a summary table whose
 * lines start with '#'.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <infiniband/verbs.h>

#include "mrcache.h"
#include "rdma_pair.h"

#define KiB ((size_t)1024)
#define MiB (KiB * KiB)
#define MAX_SIZES 16
#define MAX_REPS 400
#define MIN_REPS 5
#define SRC_ACCESS IBV_ACCESS_LOCAL_WRITE
#define DST_ACCESS (IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE)

/*
 * The transfer modes, then the parts they are made of, timed without the
 * wire so the figures can be carried over to other hardware: a mode's cost
 * there is roughly its parts plus that hardware's write time.
 */
enum mode {
	MODE_STATIC, MODE_DYNAMIC, MODE_PIPELINED, MODE_CACHED,
	PART_COPY, PART_REG, PART_HIT, NMODES
};
#define NXFER_MODES PART_COPY

static const char *const mode_names[NMODES] = {
	"static", "dynamic", "pipelined", "cached",
	"memcpy", "reg_dereg", "cache_hit",
};

struct options {
	size_t sizes[MAX_SIZES];
	int nsizes;
	int nbufs;		/* working set: buffers cycled */
	size_t chunk;		/* pipelined chunk size */
	double budget_s;	/* whole run, all cells */
	unsigned int modes;	/* bit per enum mode */
};

struct bench {
	struct options opt;
	struct rdma_pair pair;
	struct mrc_cache *cache;
	size_t max_size;
	size_t page;
	unsigned char *arena;	/* the working set, a guard page apart */
	size_t arena_len;
	unsigned char *bufs[64];
	unsigned char *bounce;	/* static mode's registered copy target */
	struct ibv_mr *bounce_mr;
	unsigned char *dst;	/* the peer's pre-registered target */
	struct ibv_mr *dst_mr;
};

struct cell {
	double median_us;
	double min_us;
	double first_us;
	int reps;
};

typedef int (*xfer_fn)(struct bench *b, unsigned char *src, size_t size);

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int write_failed(struct bench *b, const char *what, int ret)
{
	fprintf(stderr, "xfer_bench: %s: %s\n", what, rdma_pair_error(&b->pair));
	return ret;
}

static int xfer_static(struct bench *b, unsigned char *src, size_t size)
{
	int ret;

	memcpy(b->bounce, src, size);
	ret = rdma_pair_write(&b->pair, b->bounce, size, b->bounce_mr->lkey,
			      (uintptr_t)b->dst, b->dst_mr->rkey);
	return ret ? write_failed(b, "static write", ret) : 0;
}

static int reg_failed(const void *addr, size_t len)
{
	int err = errno ? errno : EIO;

	fprintf(stderr, "xfer_bench: ibv_reg_mr(%p, %zu): %s\n", addr, len,
		strerror(err));
	return -err;
}

static int xfer_dynamic(struct bench *b, unsigned char *src, size_t size)
{
	struct ibv_mr *mr;
	int ret;

	errno = 0;
	mr = ibv_reg_mr(b->pair.pd, src, size, SRC_ACCESS);
	if (!mr)
		return reg_failed(src, size);
	ret = rdma_pair_write(&b->pair, src, size, mr->lkey,
			      (uintptr_t)b->dst, b->dst_mr->rkey);
	ibv_dereg_mr(mr);
	return ret ? write_failed(b, "dynamic write", ret) : 0;
}

/*
 * Chunk i+1 is registered while chunk i's write is in flight; a chunk is
 * deregistered only after its write completed (completions of one QP
 * arrive in order, so waiting for one means the oldest is done).
 */
static int xfer_pipelined(struct bench *b, unsigned char *src, size_t size)
{
	size_t chunk = b->opt.chunk < size ? b->opt.chunk : size;
	size_t nchunks = (size + chunk - 1) / chunk;
	struct ibv_mr *mrs[2] = { NULL, NULL };
	int ret = 0;

	for (size_t i = 0; i < nchunks && !ret; i++) {
		size_t off = i * chunk;
		size_t len = size - off < chunk ? size - off : chunk;
		struct ibv_mr *mr;

		errno = 0;
		mr = ibv_reg_mr(b->pair.pd, src + off, len, SRC_ACCESS);
		if (!mr) {
			ret = reg_failed(src + off, len);
			break;
		}
		mrs[i % 2] = mr;
		ret = rdma_pair_post_write(&b->pair, src + off, len, mr->lkey,
					   (uintptr_t)(b->dst + off), b->dst_mr->rkey);
		if (ret) {
			ret = write_failed(b, "pipelined post", ret);
			break;
		}
		if (i > 0) {
			ret = rdma_pair_wait(&b->pair, 1);
			ibv_dereg_mr(mrs[(i - 1) % 2]);
			mrs[(i - 1) % 2] = NULL;
			if (ret)
				ret = write_failed(b, "pipelined write", ret);
		}
	}
	if (b->pair.outstanding) {
		int r = rdma_pair_wait(&b->pair, b->pair.outstanding);

		if (r && !ret)
			ret = write_failed(b, "pipelined write", r);
	}
	for (int i = 0; i < 2; i++)
		if (mrs[i])
			ibv_dereg_mr(mrs[i]);
	return ret;
}

static int cache_get(struct bench *b, unsigned char *src, size_t size,
		     struct mrc_region **r)
{
	int ret = mrc_get(b->cache, src, size, SRC_ACCESS, r);

	if (ret)
		fprintf(stderr, "xfer_bench: mrc_get(%p, %zu): %s\n", (void *)src,
			size, mrc_last_error());
	return ret;
}

static int xfer_cached(struct bench *b, unsigned char *src, size_t size)
{
	struct mrc_region *r;
	int ret;

	ret = cache_get(b, src, size, &r);
	if (ret)
		return ret;
	ret = rdma_pair_write(&b->pair, src, size, mrc_region_lkey(r),
			      (uintptr_t)b->dst, b->dst_mr->rkey);
	mrc_put(b->cache, r);
	return ret ? write_failed(b, "cached write", ret) : 0;
}

static int part_copy(struct bench *b, unsigned char *src, size_t size)
{
	memcpy(b->bounce, src, size);
	/* Keep the compiler from dropping a copy nobody reads. */
	__asm__ __volatile__("" : : "r"(b->bounce) : "memory");
	return 0;
}

static int part_reg(struct bench *b, unsigned char *src, size_t size)
{
	struct ibv_mr *mr;

	errno = 0;
	mr = ibv_reg_mr(b->pair.pd, src, size, SRC_ACCESS);
	if (!mr)
		return reg_failed(src, size);
	ibv_dereg_mr(mr);
	return 0;
}

static int part_hit(struct bench *b, unsigned char *src, size_t size)
{
	struct mrc_region *r;
	int ret;

	ret = cache_get(b, src, size, &r);
	return ret ? ret : mrc_put(b->cache, r);
}

static const xfer_fn xfer_fns[NMODES] = {
	xfer_static, xfer_dynamic, xfer_pipelined, xfer_cached,
	part_copy, part_reg, part_hit,
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The application produced new data in this buffer. */
static void touch(unsigned char *buf, size_t size, int rep)
{
	buf[0] = (unsigned char)rep;
	buf[size - 1] = (unsigned char)(rep >> 8);
}

static int timed(struct bench *b, enum mode m, unsigned char *src,
		 size_t size, double *us)
{
	uint64_t t0 = now_ns();
	int ret = xfer_fns[m](b, src, size);

	*us = (double)(now_ns() - t0) / 1000.0;
	return ret;
}

static int run_cell(struct bench *b, enum mode m, size_t size,
		    double budget_s, struct cell *out)
{
	static double samples[MAX_REPS];
	uint64_t stop;
	unsigned char *last = NULL;
	double us;
	int n = 0, ret;

	/* One untimed pass over the working set; its first message is cold. */
	for (int i = 0; i < b->opt.nbufs; i++) {
		touch(b->bufs[i], size, i);
		ret = timed(b, m, b->bufs[i], size, &us);
		if (ret)
			return ret;
		if (i == 0)
			out->first_us = us;
	}
	stop = now_ns() + (uint64_t)(budget_s * 1e9);
	while (n < MAX_REPS && (n < MIN_REPS || now_ns() < stop)) {
		last = b->bufs[n % b->opt.nbufs];
		touch(last, size, n);
		ret = timed(b, m, last, size, &samples[n]);
		if (ret)
			return ret;
		n++;
	}
	if (m < NXFER_MODES && memcmp(b->dst, last, size)) {
		fprintf(stderr, "xfer_bench: %s %zu B: the target does not hold the last message\n",
			mode_names[m], size);
		return -EIO;
	}
	qsort(samples, (size_t)n, sizeof(samples[0]), cmp_double);
	out->reps = n;
	out->min_us = samples[0];
	out->median_us = n % 2 ? samples[n / 2]
			       : (samples[n / 2 - 1] + samples[n / 2]) / 2;
	return 0;
}

static void print_json(enum mode m, size_t size, const struct bench *b,
		       const struct cell *c)
{
	printf("{\"bench\":\"%s\",\"mode\":\"%s\",\"size\":%zu,\"usec\":%.2f,"
	       "\"MBps\":%.1f,\"min_usec\":%.2f,\"first_usec\":%.2f,"
	       "\"reps\":%d,\"working_set\":%d,\"device\":\"%s\"}\n",
	       m < NXFER_MODES ? "xfer" : "xfer_part", mode_names[m], size, c->median_us, (double)size / c->median_us,
	       c->min_us, c->first_us, c->reps, b->opt.nbufs, b->pair.device);
	fflush(stdout);
}

static void format_size(char *out, size_t n, size_t size)
{
	if (size >= MiB && size % MiB == 0)
		snprintf(out, n, "%zu MiB", size / MiB);
	else if (size >= KiB && size % KiB == 0)
		snprintf(out, n, "%zu KiB", size / KiB);
	else
		snprintf(out, n, "%zu B", size);
}

static int any_mode(const struct options *o, int first, int last)
{
	for (int m = first; m < last; m++)
		if (o->modes & (1u << m))
			return 1;
	return 0;
}

/* One table of modes [first, last): median usec (MB/s) per size. */
static void print_table(const struct bench *b, struct cell cells[][NMODES],
			int first, int last)
{
	const struct options *o = &b->opt;
	char sz[32];

	printf("# %-8s", "size");
	for (int m = first; m < last; m++)
		if (o->modes & (1u << m))
			printf(" %20s", mode_names[m]);
	printf("\n");
	for (int s = 0; s < o->nsizes; s++) {
		format_size(sz, sizeof(sz), o->sizes[s]);
		printf("# %-8s", sz);
		for (int m = first; m < last; m++) {
			const struct cell *c = &cells[s][m];
			char v[32];

			if (!(o->modes & (1u << m)))
				continue;
			snprintf(v, sizeof(v), "%.1f (%.0f)", c->median_us,
				 (double)o->sizes[s] / c->median_us);
			printf(" %20s", v);
		}
		printf("\n");
	}
}

static void print_summary(const struct bench *b, struct cell cells[][NMODES])
{
	const struct options *o = &b->opt;

	printf("#\n# xfer_bench on %s: median usec per message (MB/s), working set %d buffers, pipeline chunk %zu KiB\n#\n",
	       b->pair.device, o->nbufs, o->chunk / KiB);
	if (any_mode(o, 0, NXFER_MODES))
		print_table(b, cells, 0, NXFER_MODES);
	if (any_mode(o, NXFER_MODES, NMODES)) {
		printf("#\n# parts without the wire (a mode on other hardware is about its parts plus that hardware's write time):\n");
		print_table(b, cells, NXFER_MODES, NMODES);
	}
}

static void print_cache_stats(struct bench *b)
{
	struct mrc_stats s;

	if (!b->cache || mrc_cache_stats(b->cache, &s))
		return;
	printf("# mrcache: %llu hits, %llu misses, %llu merges, %llu ibv_reg_mr, %llu evictions, peak %llu B pinned\n",
	       (unsigned long long)s.hits, (unsigned long long)s.misses,
	       (unsigned long long)s.merges, (unsigned long long)s.reg_calls,
	       (unsigned long long)s.evictions,
	       (unsigned long long)s.peak_bytes_pinned);
}

static void *map_touched(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	/* Fault every page in now: the benchmark is about registration. */
	memset(p, 0x5a, len);
	return p;
}

static int setup_memory(struct bench *b)
{
	size_t stride = (b->max_size + 2 * b->page - 1) & ~(b->page - 1);

	b->arena_len = stride * (size_t)b->opt.nbufs;
	b->arena = map_touched(b->arena_len);
	b->bounce = map_touched(b->max_size);
	b->dst = map_touched(b->max_size);
	if (!b->arena || !b->bounce || !b->dst) {
		fprintf(stderr, "xfer_bench: out of memory for %d x %zu B\n",
			b->opt.nbufs, b->max_size);
		return -ENOMEM;
	}
	/* A guard page apart, so the cache cannot merge them into one. */
	for (int i = 0; i < b->opt.nbufs; i++)
		b->bufs[i] = b->arena + (size_t)i * stride;
	errno = 0;
	b->bounce_mr = ibv_reg_mr(b->pair.pd, b->bounce, b->max_size, SRC_ACCESS);
	if (!b->bounce_mr)
		return reg_failed(b->bounce, b->max_size);
	b->dst_mr = ibv_reg_mr(b->pair.pd, b->dst, b->max_size, DST_ACCESS);
	if (!b->dst_mr)
		return reg_failed(b->dst, b->max_size);
	return 0;
}

static int setup(struct bench *b)
{
	struct mrc_cache_attr attr = {
		.comp_mask = MRC_ATTR_MONITOR,
		.monitor = MRC_MONITOR_MANUAL,
	};
	int ret;

	b->page = (size_t)sysconf(_SC_PAGESIZE);
	ret = rdma_pair_open(&b->pair);
	if (ret) {
		fprintf(stderr, "xfer_bench: %s\n", rdma_pair_error(&b->pair));
		return ret;
	}
	ret = setup_memory(b);
	if (ret)
		return ret;
	ret = mrc_cache_create_verbs(b->pair.pd, SRC_ACCESS, &attr, &b->cache);
	if (ret)
		fprintf(stderr, "xfer_bench: mrc_cache_create_verbs: %s\n",
			mrc_last_error());
	return ret;
}

static void teardown(struct bench *b)
{
	if (b->cache && mrc_cache_destroy(b->cache))
		fprintf(stderr, "xfer_bench: mrc_cache_destroy: %s\n", mrc_last_error());
	if (b->bounce_mr)
		ibv_dereg_mr(b->bounce_mr);
	if (b->dst_mr)
		ibv_dereg_mr(b->dst_mr);
	rdma_pair_close(&b->pair);
	if (b->arena)
		munmap(b->arena, b->arena_len);
	if (b->bounce)
		munmap(b->bounce, b->max_size);
	if (b->dst)
		munmap(b->dst, b->max_size);
}

static void warn_memlock(const struct bench *b)
{
	size_t need = b->arena_len + 2 * b->max_size;
	struct rlimit rl;

	if (!getrlimit(RLIMIT_MEMLOCK, &rl) && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < need)
		printf("# note: RLIMIT_MEMLOCK %llu B < %zu B of buffers: without CAP_IPC_LOCK the cache will evict and figures suffer\n",
		       (unsigned long long)rl.rlim_cur, need);
}

static int run(struct bench *b)
{
	static struct cell cells[MAX_SIZES][NMODES];
	double weight = 0, cell_budget;
	int ret;

	/* The parts need no wire: a quarter of a transfer cell's time will do. */
	for (int m = 0; m < NMODES; m++)
		if (b->opt.modes & (1u << m))
			weight += m < NXFER_MODES ? 1.0 : 0.25;
	cell_budget = b->opt.budget_s / (weight * b->opt.nsizes);
	warn_memlock(b);
	for (int s = 0; s < b->opt.nsizes; s++) {
		for (int m = 0; m < NMODES; m++) {
			if (!(b->opt.modes & (1u << m)))
				continue;
			ret = run_cell(b, (enum mode)m, b->opt.sizes[s],
				       m < NXFER_MODES ? cell_budget : cell_budget / 4,
				       &cells[s][m]);
			if (ret)
				return ret;
			print_json((enum mode)m, b->opt.sizes[s], b, &cells[s][m]);
		}
	}
	print_summary(b, cells);
	print_cache_stats(b);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: xfer_bench [--quick] [--budget SEC] [--sizes S,S,...] [--bufs K]\n"
		"                  [--chunk BYTES] [--modes MODE,...]\n"
		"Compares registration strategies over RC RDMA WRITEs between two QPs of one\n"
		"process (device: MRCACHE_TEST_DEVICE or the first one).\n"
		"  --quick       about 6 s of measuring instead of 40\n"
		"  --budget SEC  measuring time for all cells together\n"
		"  --sizes       message sizes, K/M suffixes (default 4K,16K,64K,256K,1M,4M)\n"
		"  --bufs K      application buffers cycled (default 4, at most 64)\n"
		"  --chunk B     pipelined chunk size (default 128K)\n"
		"  --modes       transfers static,dynamic,pipelined,cached and parts\n"
		"                memcpy,reg_dereg,cache_hit (default: all)\n"
		"Exit: 0 done, 1 failure, 77 no RDMA device.\n");
}

static int parse_size(const char *text, size_t *out)
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

static int parse_sizes(char *list, struct options *o)
{
	o->nsizes = 0;
	for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
		if (o->nsizes == MAX_SIZES || parse_size(tok, &o->sizes[o->nsizes]))
			return -EINVAL;
		o->nsizes++;
	}
	return o->nsizes ? 0 : -EINVAL;
}

static int parse_modes(char *list, struct options *o)
{
	o->modes = 0;
	for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
		int m;

		for (m = 0; m < NMODES; m++)
			if (!strcmp(tok, mode_names[m]))
				break;
		if (m == NMODES)
			return -EINVAL;
		o->modes |= 1u << m;
	}
	return o->modes ? 0 : -EINVAL;
}

static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longs[] = {
		{ "quick", no_argument, NULL, 'q' },
		{ "budget", required_argument, NULL, 'b' },
		{ "sizes", required_argument, NULL, 's' },
		{ "bufs", required_argument, NULL, 'k' },
		{ "chunk", required_argument, NULL, 'c' },
		{ "modes", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	static const size_t default_sizes[] = {
		4 * KiB, 16 * KiB, 64 * KiB, 256 * KiB, 1 * MiB, 4 * MiB,
	};
	int c, bad = 0;

	*o = (struct options){ .nbufs = 4, .chunk = 128 * KiB, .budget_s = 40,
			       .modes = (1u << NMODES) - 1,
			       .nsizes = sizeof(default_sizes) / sizeof(default_sizes[0]) };
	memcpy(o->sizes, default_sizes, sizeof(default_sizes));
	while (!bad && (c = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
		switch (c) {
		case 'q':
			o->budget_s = 6;
			break;
		case 'b':
			o->budget_s = atof(optarg);
			bad = !(o->budget_s > 0 && o->budget_s < 3600);
			break;
		case 's':
			bad = parse_sizes(optarg, o) != 0;
			break;
		case 'k':
			o->nbufs = atoi(optarg);
			bad = o->nbufs < 1 || o->nbufs > 64;
			break;
		case 'c':
			bad = parse_size(optarg, &o->chunk) != 0;
			break;
		case 'm':
			bad = parse_modes(optarg, o) != 0;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			bad = 1;
		}
	}
	if (bad || optind != argc) {
		usage(stderr);
		return -EINVAL;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct bench b = { 0 };
	int ret;

	if (parse_options(argc, argv, &b.opt))
		return 1;
	for (int s = 0; s < b.opt.nsizes; s++)
		if (b.opt.sizes[s] > b.max_size)
			b.max_size = b.opt.sizes[s];
	ret = setup(&b);
	if (!ret)
		ret = run(&b);
	teardown(&b);
	if (ret == -ENODEV) {
		fprintf(stderr, "xfer_bench: SKIP: no RDMA device\n");
		return 77;
	}
	return ret ? 1 : 0;
}
