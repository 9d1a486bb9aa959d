// SPDX-License-Identifier: BSD-2-Clause
/*
 * hit_bench: the cost of a cache hit (get + put of a range already cached),
 * mrcache against UCX's ucs_rcache, in one process, with the same null
 * registration callbacks, so only the caches themselves are measured.
 *
 * For each region count N and thread count T it prints one JSON line:
 *   {"bench":"hit","regions":N,"threads":T,"mrcache_ns":..,"ucx_ns":..,
 *    "ratio":..,...}
 * where *_ns is wall time per operation in each thread (elapsed wall time of
 * a run / operations per thread, median over the repetitions) and ratio is
 * mrcache_ns / ucx_ns. Lines starting with '#' are for people.
 *
 * With T > 1 the same T threads are also timed with a cache each, in the
 * same rounds: thread i gets its own mrcache cache (the first monitor)
 * and its own UCX cache, over regions of its own (the i-th block of N),
 * so nothing is shared in software. One {"bench":"hit_private"} line per
 * N and T gives those times and the shared over private aggregate, rep
 * by rep (median and range; *_cpu: the same per CPU second, which time
 * spent waiting for a core does not skew): what two threads lose by
 * sharing a cache, against what the machine itself gives the same code.
 *
 * At the end come one {"bench":"scaling"} line per N (2-thread aggregate
 * throughput over the 1-thread rate: sharing one cache, *_x, and with a
 * cache each, *_private_x, both over the same 1-thread row; cpu_share_min
 * the lowest CPU share of the rows divided) and one {"bench":"memory"}
 * line (bytes each cache holds per cached region, measured over 65,536
 * regions).
 *
 * Regions are one page each at a stride of two pages in one anonymous
 * mapping, so no two overlap or touch. Every cache gets each region once
 * before timing; a timed operation picks its region with a per-thread
 * xorshift generator seeded by thread index, so both caches see the same
 * sequence. Threads are pinned to distinct cores with hwloc and start
 * together on a barrier.
 *
 * Then the slow paths, one thread, MISS_REGIONS one-page regions (merge
 * off, manual monitor, null callbacks), each operation a get + put:
 *   miss:       every get registers (a fresh cache per repetition);
 *   invalidate: get (a hit), invalidate the region, put (which
 *               deregisters: mrc_invalidate(), ucs_rcache_region_invalidate());
 *   evict:      every get registers and, the cache being bounded to
 *               EVICT_BOUND regions, evicts one;
 *   invalidate_busy: invalidate, while a second thread of the process,
 *               pinned to another core, hits one other region without
 *               pause (with thread refs every deregistration's membarrier
 *               then interrupts a running thread: what it costs there).
 * One {"bench":"miss"|"invalidate"|"evict"|"invalidate_busy"} line each,
 * in wall and in CPU time of the timing thread (mrcache with the first
 * monitor given).
 * Every hit and slow-path line says which references mrcache's hits took,
 * "thread_refs":"on" (the default) or "off" (MRCACHE_THREAD_REFS=0, or no
 * private expedited membarrier: compare-and-swap references).
 *
 * Build: gcc -O2 -std=gnu11 -Wall -Wextra -Werror -I include -I src \
 *          bench/hit_bench.c -L src/.libs -lmrcache \
 *          $(pkg-config --cflags --libs ucx-ucs hwloc) -lpthread
 * Usage: hit_bench [--quick] [--regions 1,1000,65536] [--threads 1,2]
 *                  [--json-only] [--monitor manual|kmod|hooks|uffd[,...]]
 *                  [--slow-only | --no-slow]
 *
 * With several monitors (--monitor kmod,hooks) there is one mrcache cache
 * per monitor, all timed in the same run with their repetitions
 * alternated, and a {"bench":"hit_monitors"} line gives each further
 * monitor's time over the first one's (median and range of the per-round
 * ratios, in wall and in CPU time).
 */
#include <errno.h>
#include <hwloc.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <ucs/memory/rcache.h>

#include "mrcache.h"
#include "threadrefs/mode.h"

#define MAX_LIST	8
#define MAX_THREADS	64
#define MAX_REPS	31
#define MAX_MONITORS	3	/* mrcache caches compared in one run */
#define MAX_CACHES	(MAX_MONITORS + 1)	/* and UCX's, last */
#define MAX_RUNS	(MAX_CACHES + 2)	/* and the private mrcache, UCX */
#define MEMORY_REGIONS	65536
#define MISS_REGIONS	20000
#define EVICT_BOUND	1000
#define BENCH_ACCESS	1u	/* any non-zero provider flag */
#define UCX_PROT	(PROT_READ | PROT_WRITE)

#define unlikely(x)	__builtin_expect(!!(x), 0)

/* ------------------------------------------------------------------ */
/* Options                                                             */
/* ------------------------------------------------------------------ */

struct options {
	unsigned long regions[MAX_LIST];
	int nregions;
	unsigned long threads[MAX_LIST];
	int nthreads;
	int reps;
	double rep_seconds;
	bool json_only;
	/* mrcache's monitors (enum mrc_monitor_kind): one cache each. */
	uint32_t monitors[MAX_MONITORS];
	int nmonitors;
	bool hits, slow;	/* which parts run */
};

/* A bound on regions for both caches (the eviction row); 0: none. */
static unsigned long bench_max_regions;

static int parse_list(const char *arg, unsigned long *out, int *count,
		      unsigned long max)
{
	char *copy = strdup(arg), *save = NULL, *tok;
	int n = 0;

	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		char *end;
		unsigned long v = strtoul(tok, &end, 10);

		if (*end || v == 0 || v > max || n == MAX_LIST) {
			free(copy);
			return -EINVAL;
		}
		out[n++] = v;
	}
	free(copy);
	*count = n;
	return n ? 0 : -EINVAL;
}

static const char *monitor_name(uint32_t monitor)
{
	switch (monitor) {
	case MRC_MONITOR_KMOD:
		return "kmod";
	case MRC_MONITOR_HOOKS:
		return "hooks";
	case MRC_MONITOR_UFFD:
		return "uffd";
	default:
		return "manual";
	}
}

/* "kmod,hooks": the monitors in the order given. */
static int parse_monitors(const char *arg, struct options *o)
{
	static const uint32_t kinds[] = { MRC_MONITOR_MANUAL, MRC_MONITOR_KMOD,
					  MRC_MONITOR_HOOKS, MRC_MONITOR_UFFD };
	const char *p = arg;

	o->nmonitors = 0;
	while (*p) {
		size_t n = strcspn(p, ",");
		int found = 0;

		for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
			const char *name = monitor_name(kinds[k]);

			if (n == strlen(name) && !strncmp(p, name, n) &&
			    o->nmonitors < MAX_MONITORS) {
				o->monitors[o->nmonitors++] = kinds[k];
				found = 1;
			}
		}
		if (!found)
			return -EINVAL;
		p += n + (p[n] == ',');
	}
	return o->nmonitors ? 0 : -EINVAL;
}

static void usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [--quick] [--regions N,N,...] [--threads T,T,...] [--json-only]\n"
		"  --quick      3 short repetitions (CI smoke), default 7 of ~0.2 s\n"
		"  --regions    cached region counts (default 1,1000,65536)\n"
		"  --threads    thread counts sharing one cache (default 1,2); above 1,\n"
		"               also timed with a cache each (the hit_private rows)\n"
		"  --json-only  print only the JSON lines\n"
		"  --slow-only  only the miss, invalidate and evict rows; --no-slow: none\n"
		"  --monitor    mrcache's monitor: manual (default), kmod (/dev/mrcache)\n"
		"               hooks (libc hooks) or uffd (userfaultfd); a list\n"
		"               (kmod,hooks) times one\n"
		"               cache per monitor in the same run, alternated\n", prog);
}

static int parse_options(int argc, char **argv, struct options *o)
{
	*o = (struct options){
		.regions = { 1, 1000, 65536 }, .nregions = 3,
		.threads = { 1, 2 }, .nthreads = 2,
		.reps = 7, .rep_seconds = 0.2,
		.monitors = { MRC_MONITOR_MANUAL }, .nmonitors = 1,
		.hits = true, .slow = true,
	};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--quick")) {
			o->reps = 3;
			o->rep_seconds = 0.03;
		} else if (!strcmp(a, "--json-only")) {
			o->json_only = true;
		} else if (!strcmp(a, "--slow-only")) {
			o->hits = false;
		} else if (!strcmp(a, "--no-slow")) {
			o->slow = false;
		} else if (!strcmp(a, "--regions") && i + 1 < argc) {
			if (parse_list(argv[++i], o->regions, &o->nregions, 1ul << 22))
				goto bad;
		} else if (!strcmp(a, "--monitor") && i + 1 < argc) {
			if (parse_monitors(argv[++i], o))
				goto bad;
		} else if (!strcmp(a, "--threads") && i + 1 < argc) {
			if (parse_list(argv[++i], o->threads, &o->nthreads, MAX_THREADS))
				goto bad;
		} else {
			goto bad;
		}
	}
	return 0;
bad:
	usage(argv[0]);
	return -EINVAL;
}

/* ------------------------------------------------------------------ */
/* The memory the regions live in                                      */
/* ------------------------------------------------------------------ */

static size_t page_size;
static char *arena;		/* region i is one page at arena + 2 * i pages */

static int map_arena(unsigned long count)
{
	size_t len = 2 * count * page_size;

	/* Never touched: the null callbacks do not look at the memory. */
	arena = mmap(NULL, len, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (arena == MAP_FAILED) {
		fprintf(stderr, "mmap %zu bytes: %s\n", len, strerror(errno));
		return -ENOMEM;
	}
	return 0;
}

static inline char *region_addr(unsigned long i)
{
	return arena + 2 * i * page_size;
}

/* ------------------------------------------------------------------ */
/* The two caches with null registration                               */
/* ------------------------------------------------------------------ */

struct caches {
	struct mrc_cache *mrc[MAX_MONITORS];	/* one per monitor */
	int nmrc;
	ucs_rcache_t *ucx;
	/* Registrations done; compared with the region count after timing. */
	unsigned long mrc_regs;
	unsigned long ucx_regs;
};

/* Both providers count calls; each cache serializes them (its lock). */
static int null_mrc_reg(void *ctx, void *addr, size_t len, uint32_t access,
			void **handle)
{
	(void)addr, (void)len, (void)access;
	((struct caches *)ctx)->mrc_regs++;
	*handle = NULL;
	return 0;
}

static int null_mrc_dereg(void *ctx, void *handle)
{
	(void)ctx, (void)handle;
	return 0;
}

static ucs_status_t null_ucx_reg(void *ctx, ucs_rcache_t *rc, void *arg,
				 ucs_rcache_region_t *region, uint16_t flags)
{
	(void)rc, (void)arg, (void)region, (void)flags;
	((struct caches *)ctx)->ucx_regs++;
	return UCS_OK;
}

static void null_ucx_dereg(void *ctx, ucs_rcache_t *rc,
			   ucs_rcache_region_t *region)
{
	(void)ctx, (void)rc, (void)region;
}

static void null_ucx_dump(void *ctx, ucs_rcache_t *rc,
			  ucs_rcache_region_t *region, char *buf, size_t max)
{
	(void)ctx, (void)rc, (void)region;
	snprintf(buf, max, "null");
}

static const ucs_rcache_ops_t null_ucx_ops = {
	.mem_reg = null_ucx_reg,
	.mem_dereg = null_ucx_dereg,
	.dump_region = null_ucx_dump,
};

static int create_mrc(struct caches *c, uint32_t monitor)
{
	struct mrc_provider provider = {
		.name = "null", .reg = null_mrc_reg, .dereg = null_mrc_dereg,
		.ctx = c,
	};
	/* Distinct regions, no bounds, no pinning limit, no memory hooks. */
	struct mrc_cache_attr attr = {
		.comp_mask = MRC_ATTR_MAX_BYTES | MRC_ATTR_MAX_REGIONS |
			     MRC_ATTR_MERGE | MRC_ATTR_MEMLOCK |
			     MRC_ATTR_CHECK_PFN | MRC_ATTR_MONITOR,
		.merge = MRC_MERGE_NONE,
		.max_regions = bench_max_regions,
		.monitor = monitor,
	};
	int ret = mrc_cache_create(&provider, &attr, &c->mrc[c->nmrc]);

	if (ret)
		fprintf(stderr, "mrc_cache_create (%s monitor): %s (%d)\n",
			monitor_name(monitor), mrc_last_error(), ret);
	else
		c->nmrc++;
	return ret;
}

static int create_ucx(struct caches *c)
{
	/*
	 * ucm_events = 0 registers a handler for no event, so UCM installs
	 * no mmap/munmap hooks; ucm_event_priority is then unused. No bound
	 * on regions or bytes, and no PFN check (UCX's default is off too).
	 */
	ucs_rcache_params_t params = {
		.region_struct_size = sizeof(ucs_rcache_region_t),
		.alignment = page_size,
		.max_alignment = page_size,
		.ucm_events = 0,
		.ucm_event_priority = 0,
		.ops = &null_ucx_ops,
		.context = c,
		.flags = UCS_RCACHE_FLAG_NO_PFN_CHECK,
		.max_regions = bench_max_regions ? bench_max_regions : ULONG_MAX,
		.max_size = SIZE_MAX,
		.max_unreleased = SIZE_MAX,
	};
	ucs_status_t st = ucs_rcache_create(&params, "hit_bench", NULL, &c->ucx);

	if (st != UCS_OK) {
		fprintf(stderr, "ucs_rcache_create: %s\n", ucs_status_string(st));
		return -EIO;
	}
	return 0;
}

/* The first @nmonitors of @o's mrcache caches, then UCX's. */
static int create_caches(struct caches *c, const struct options *o,
			 int nmonitors)
{
	int ret = 0;

	for (int k = 0; !ret && k < nmonitors; k++)
		ret = create_mrc(c, o->monitors[k]);
	return ret ? ret : create_ucx(c);
}

/* Get and put regions [first, first + count) once in @cache, checking each answer. */
static int populate_one_mrc(struct mrc_cache *cache, unsigned long first,
			    unsigned long count)
{
	for (unsigned long i = first; i < first + count; i++) {
		struct mrc_region *r;
		int ret = mrc_get(cache, region_addr(i), page_size, BENCH_ACCESS, &r);

		if (ret || mrc_region_addr(r) != region_addr(i) ||
		    mrc_region_length(r) != page_size) {
			fprintf(stderr, "mrcache populate %lu: %s\n", i,
				ret ? mrc_last_error() : "wrong region");
			return -EIO;
		}
		mrc_put(cache, r);
	}
	return 0;
}

static int populate_mrc(struct caches *c, unsigned long first,
			unsigned long count)
{
	int ret = 0;

	for (int k = 0; !ret && k < c->nmrc; k++)
		ret = populate_one_mrc(c->mrc[k], first, count);
	return ret;
}

static int populate_ucx(struct caches *c, unsigned long first,
			unsigned long count)
{
	for (unsigned long i = first; i < first + count; i++) {
		ucs_rcache_region_t *r;
		ucs_status_t st = ucs_rcache_get(c->ucx, region_addr(i), page_size,
						 UCX_PROT, NULL, &r);

		if (st != UCS_OK ||
		    r->super.start != (uintptr_t)region_addr(i) ||
		    r->super.end != (uintptr_t)region_addr(i) + page_size) {
			fprintf(stderr, "ucx populate %lu: %s\n", i,
				st != UCS_OK ? ucs_status_string(st) : "wrong region");
			return -EIO;
		}
		ucs_rcache_region_put(c->ucx, r);
	}
	return 0;
}

static void destroy_caches(struct caches *c)
{
	for (int k = 0; k < c->nmrc; k++)
		mrc_cache_destroy(c->mrc[k]);
	if (c->ucx)
		ucs_rcache_destroy(c->ucx);
	c->nmrc = 0;
	c->ucx = NULL;
}

/* ------------------------------------------------------------------ */
/* Timed loops                                                         */
/* ------------------------------------------------------------------ */

static inline uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t now_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

/* xorshift64: a few cycles, and the same sequence for both caches. */
static inline uint64_t next_random(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* A uniform index below count without a division (Lemire's reduction). */
static inline unsigned long pick(uint64_t *x, unsigned long count)
{
	return (unsigned long)(((next_random(x) >> 32) * count) >> 32);
}

static uint64_t thread_seed(int thread)
{
	return 0x9e3779b97f4a7c15ull * (uint64_t)(thread + 1);
}

/*
 * One timed configuration. Shared: every thread uses @caches and regions
 * [0, regions). Private: thread i uses @caches[i] (one mrcache cache and
 * one UCX cache of its own) and regions [i * regions, (i + 1) * regions).
 */
struct run {
	struct caches *caches;
	bool private;
	int which;		/* mrcache cache which, or UCX's at nmrc */
	unsigned long regions;
	unsigned long ops;		/* per thread */
	double cpu_share;		/* of the last run_threads() */
	double cpu_ns;			/* CPU ns per op per thread, same run */
	pthread_barrier_t start;
};

struct worker {
	struct run *run;
	int index;
	struct caches *caches;	/* this thread's (run->caches when shared) */
	unsigned long first;	/* its first region */
	pthread_t tid;
	uint64_t t0, t1;	/* wall clock */
	uint64_t c0, c1;	/* this thread's CPU time */
	int error;
};

static int loop_mrc(struct worker *w)
{
	struct mrc_cache *cache = w->caches->mrc[w->run->which];
	unsigned long regions = w->run->regions, ops = w->run->ops;
	unsigned long first = w->first;
	uint64_t x = thread_seed(w->index);

	for (unsigned long i = 0; i < ops; i++) {
		struct mrc_region *r;

		if (unlikely(mrc_get(cache, region_addr(first + pick(&x, regions)),
				     page_size, BENCH_ACCESS, &r)))
			return -EIO;
		mrc_put(cache, r);
	}
	return 0;
}

static int loop_ucx(struct worker *w)
{
	ucs_rcache_t *cache = w->caches->ucx;
	unsigned long regions = w->run->regions, ops = w->run->ops;
	unsigned long first = w->first;
	uint64_t x = thread_seed(w->index);

	for (unsigned long i = 0; i < ops; i++) {
		ucs_rcache_region_t *r;

		if (unlikely(ucs_rcache_get(cache, region_addr(first + pick(&x, regions)),
					    page_size, UCX_PROT, NULL, &r) != UCS_OK))
			return -EIO;
		ucs_rcache_region_put(cache, r);
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Threads                                                             */
/* ------------------------------------------------------------------ */

static hwloc_topology_t topology;
static int ncores;

static int init_topology(void)
{
	if (hwloc_topology_init(&topology) || hwloc_topology_load(topology)) {
		fprintf(stderr, "hwloc: cannot load the topology\n");
		return -EIO;
	}
	ncores = hwloc_get_nbobjs_by_type(topology, HWLOC_OBJ_CORE);
	if (ncores < 1)
		ncores = 1;
	return 0;
}

/* One hardware thread of core (index mod cores): siblings would share a core. */
static void pin_to_core(int index)
{
	hwloc_obj_t core = hwloc_get_obj_by_type(topology, HWLOC_OBJ_CORE,
						 (unsigned int)(index % ncores));
	hwloc_bitmap_t set;

	if (!core)
		return;
	set = hwloc_bitmap_dup(core->cpuset);
	hwloc_bitmap_singlify(set);
	if (hwloc_set_cpubind(topology, set, HWLOC_CPUBIND_THREAD))
		fprintf(stderr, "warning: cannot pin thread %d: %s\n", index,
			strerror(errno));
	hwloc_bitmap_free(set);
}

static bool is_ucx(const struct run *run)
{
	return run->which == run->caches->nmrc;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct run *run = w->run;

	w->caches = run->private ? &run->caches[w->index] : run->caches;
	w->first = run->private ? (unsigned long)w->index * run->regions : 0;
	pin_to_core(w->index);
	pthread_barrier_wait(&w->run->start);
	w->c0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
	w->t0 = now_ns();
	w->error = is_ucx(w->run) ? loop_ucx(w) : loop_mrc(w);
	w->t1 = now_ns();
	w->c1 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
	return NULL;
}

/*
 * Wall time from the first thread's start to the last thread's end, or 0.
 * run->cpu_share: the threads' CPU time over their wall time; below 1 the
 * machine ran something else on our cores, and the figures are inflated.
 */
static uint64_t run_threads(struct run *run, int nthreads)
{
	struct worker w[MAX_THREADS];
	uint64_t first = UINT64_MAX, last = 0, cpu = 0, wall = 0;
	int failed = 0;

	pthread_barrier_init(&run->start, NULL, (unsigned int)nthreads);
	for (int i = 0; i < nthreads; i++) {
		w[i] = (struct worker){ .run = run, .index = i };
		if (pthread_create(&w[i].tid, NULL, worker_main, &w[i])) {
			fprintf(stderr, "pthread_create failed\n");
			exit(1);	/* the barrier would wait forever */
		}
	}
	for (int i = 0; i < nthreads; i++) {
		pthread_join(w[i].tid, NULL);
		failed |= w[i].error;
		cpu += w[i].c1 - w[i].c0;
		wall += w[i].t1 - w[i].t0;
		first = w[i].t0 < first ? w[i].t0 : first;
		last = w[i].t1 > last ? w[i].t1 : last;
	}
	pthread_barrier_destroy(&run->start);
	run->cpu_share = wall ? (double)cpu / (double)wall : 0;
	run->cpu_ns = (double)cpu / nthreads / (double)run->ops;
	if (failed) {
		fprintf(stderr, "%s: a hit failed during the timed loop\n",
			is_ucx(run) ? "ucx" : "mrcache");
		return 0;
	}
	return last > first ? last - first : 1;
}

/* ------------------------------------------------------------------ */
/* One configuration: N regions, T threads                             */
/* ------------------------------------------------------------------ */

struct sample {
	double ns[MAX_REPS];	/* wall ns per operation in each thread */
	double mops[MAX_REPS];	/* aggregate operations per microsecond */
	double cpu[MAX_REPS];	/* CPU time / wall time of the threads */
	double cpu_ns[MAX_REPS];	/* CPU ns per operation in each thread */
	unsigned long ops;
};

/*
 * By run: the shared caches (mrcache's, one per monitor, then UCX's at
 * index nmrc), then, with more than one thread, the private ones (a cache
 * each: mrcache's with the first monitor at PRIV_MRC, UCX's at PRIV_UCX).
 */
#define PRIV_MRC(r)	((r)->nmrc + 1)
#define PRIV_UCX(r)	((r)->nmrc + 2)

struct result {
	unsigned long regions;
	int threads;
	int nmrc;
	bool private;		/* the private runs were timed too */
	double ns[MAX_RUNS], mops[MAX_RUNS], cpu[MAX_RUNS], cpu_ns[MAX_RUNS];
	unsigned long ops[MAX_RUNS];
	/* mrcache cache k's time over cache 0's: median, lowest, highest rep */
	double vs_first[MAX_MONITORS][3];
	double cpu_vs_first[MAX_MONITORS][3];	/* the same in CPU time */
	/*
	 * Shared aggregate over private aggregate, rep by rep: mrcache, UCX;
	 * and the same in CPU time (private CPU ns per op over shared).
	 */
	double vs_private[2][3];
	double cpu_vs_private[2][3];
};

/* Operations per thread that make one repetition last about @seconds. */
static unsigned long calibrate(struct run *run, int nthreads, double seconds)
{
	double ns_per_op = 0;

	run->ops = 1ul << 14;
	for (int i = 0; i < 2; i++) {	/* the first pass only warms up */
		uint64_t wall = run_threads(run, nthreads);

		if (!wall)
			return 0;
		ns_per_op = (double)wall / (double)run->ops;
	}
	if (ns_per_op < 1)
		ns_per_op = 1;
	return (unsigned long)(seconds * 1e9 / ns_per_op) + 1;
}

static int time_one_rep(struct run *run, int nthreads, struct sample *s,
			int rep)
{
	uint64_t wall;

	run->ops = s->ops;
	wall = run_threads(run, nthreads);
	if (!wall)
		return -EIO;
	s->ns[rep] = (double)wall / (double)run->ops;
	s->mops[rep] = (double)run->ops * nthreads * 1e3 / (double)wall;
	s->cpu[rep] = run->cpu_share;
	s->cpu_ns[rep] = run->cpu_ns;
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double min_of(const double *v, int n)
{
	double m = v[0];

	for (int i = 1; i < n; i++)
		m = v[i] < m ? v[i] : m;
	return m;
}

static double max_of(const double *v, int n)
{
	double m = v[0];

	for (int i = 1; i < n; i++)
		m = v[i] > m ? v[i] : m;
	return m;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* @num over @den rep by rep (the same round): median, lowest, highest. */
static void rep_ratios(const double *num, const double *den, int reps,
		       double out[3])
{
	double r[MAX_REPS];

	for (int rep = 0; rep < reps; rep++)
		r[rep] = num[rep] / den[rep];
	out[0] = median(r, reps);	/* sorts r */
	out[1] = r[0];
	out[2] = r[reps - 1];
}

/*
 * Cache @k's time per rep over cache 0's in the same round. Wall time, or
 * (@cpu) the threads' CPU time, which a loaded machine's preemptions do
 * not inflate.
 */
static void ratio_to_first(const struct sample *s, int k, int reps, bool cpu,
			   double out[3])
{
	if (cpu)
		rep_ratios(s[k].cpu_ns, s[0].cpu_ns, reps, out);
	else
		rep_ratios(s[k].ns, s[0].ns, reps, out);
}

/* Shared over private, rep by rep: aggregate rates, then CPU time. */
static void private_ratios(const struct sample *s, int reps,
			   struct result *res)
{
	int u = res->nmrc;

	rep_ratios(s[0].mops, s[PRIV_MRC(res)].mops, reps, res->vs_private[0]);
	rep_ratios(s[u].mops, s[PRIV_UCX(res)].mops, reps, res->vs_private[1]);
	rep_ratios(s[PRIV_MRC(res)].cpu_ns, s[0].cpu_ns, reps,
		   res->cpu_vs_private[0]);
	rep_ratios(s[PRIV_UCX(res)].cpu_ns, s[u].cpu_ns, reps,
		   res->cpu_vs_private[1]);
}

/*
 * The runs of one configuration: the shared caches, then, given @priv
 * (one struct caches per thread), the private mrcache and UCX caches.
 */
static int make_runs(struct run *run, struct caches *c, struct caches *priv,
		     unsigned long regions)
{
	int n = 0;

	for (int k = 0; k <= c->nmrc; k++)
		run[n++] = (struct run){ .caches = c, .which = k, .regions = regions };
	for (int k = 0; priv && k <= priv->nmrc; k++)
		run[n++] = (struct run){ .caches = priv, .private = true,
					 .which = k, .regions = regions };
	return n;
}

/*
 * Repetitions alternate between the runs so drift hits all alike; with
 * @priv the private caches take their turn in the same rounds.
 */
static int measure(struct caches *c, struct caches *priv,
		   unsigned long regions, int nthreads,
		   const struct options *o, struct result *res)
{
	struct run run[MAX_RUNS];
	struct sample s[MAX_RUNS];
	int nruns = make_runs(run, c, priv, regions);

	for (int k = 0; k < nruns; k++) {
		s[k].ops = calibrate(&run[k], nthreads, o->rep_seconds);
		if (!s[k].ops)
			return -EIO;
	}
	for (int rep = 0; rep < o->reps; rep++)
		for (int k = 0; k < nruns; k++)
			if (time_one_rep(&run[k], nthreads, &s[k], rep))
				return -EIO;
	*res = (struct result){ .regions = regions, .threads = nthreads,
				.nmrc = c->nmrc, .private = priv != NULL };
	for (int k = 1; k < c->nmrc; k++) {
		ratio_to_first(s, k, o->reps, false, res->vs_first[k]);
		ratio_to_first(s, k, o->reps, true, res->cpu_vs_first[k]);
	}
	if (priv)
		private_ratios(s, o->reps, res);
	for (int k = 0; k < nruns; k++) {
		res->ns[k] = median(s[k].ns, o->reps);
		res->mops[k] = median(s[k].mops, o->reps);
		res->cpu[k] = median(s[k].cpu, o->reps);
		res->cpu_ns[k] = median(s[k].cpu_ns, o->reps);
		res->ops[k] = s[k].ops;
	}
	return 0;
}

/* The 1-minute load average: other work on a 2-core box skews 2 threads. */
static double load_average(void)
{
	double load = -1;
	FILE *f = fopen("/proc/loadavg", "r");

	if (f) {
		if (fscanf(f, "%lf", &load) != 1)
			load = -1;
		fclose(f);
	}
	return load;
}

static const char *verdict(bool met)
{
	return met ? "met" : "NOT met";
}

/* The caches' references: the library does not say, so as it decides. */
static const char *thread_refs_mode(void)
{
	return mrc_trefs_expected() ? "on" : "off";
}

/* mrcache cache @k (monitor o->monitors[k]) against UCX's. */
static void print_one(const struct result *r, const struct options *o, int k)
{
	int u = r->nmrc;
	double ratio = r->ns[k] / r->ns[u];
	double target = r->threads == 1 ? 0.25 : 0.1;

	printf("{\"bench\":\"hit\",\"thread_refs\":\"%s\",\"monitor\":\"%s\",\"regions\":%lu,\"threads\":%d,"
	       "\"mrcache_ns\":%.2f,\"ucx_ns\":%.2f,\"ratio\":%.3f,"
	       "\"mrcache_mops\":%.2f,\"ucx_mops\":%.2f,\"target_ratio\":%.2f,"
	       "\"reps\":%d,\"mrcache_ops_per_thread\":%lu,\"ucx_ops_per_thread\":%lu,"
	       "\"mrcache_cpu_share\":%.2f,\"ucx_cpu_share\":%.2f,"
	       "\"mrcache_cpu_ns\":%.2f,\"ucx_cpu_ns\":%.2f,\"load1\":%.2f}\n",
	       thread_refs_mode(), monitor_name(o->monitors[k]),
	       r->regions, r->threads, r->ns[k], r->ns[u], ratio,
	       r->mops[k], r->mops[u], target, o->reps,
	       r->ops[k], r->ops[u], r->cpu[k], r->cpu[u],
	       r->cpu_ns[k], r->cpu_ns[u], load_average());
	if (o->json_only)
		return;
	printf("# hit regions=%lu threads=%d monitor=%s: mrcache %.1f ns, ucx %.1f ns per op in each thread; "
	       "ratio %.2f (target <= %.2f: %s",
	       r->regions, r->threads, monitor_name(o->monitors[k]), r->ns[k],
	       r->ns[u], ratio, target, verdict(ratio <= target));
	if (r->threads == 1)
		printf("; stretch <= 0.25: %s", verdict(ratio <= 0.25));
	printf("); aggregate %.1f vs %.1f Mops/s\n", r->mops[k], r->mops[u]);
	if (r->cpu[k] < 0.95 || r->cpu[u] < 0.95)
		printf("#   warning: the threads got only %.0f%% / %.0f%% of their wall time on a CPU; "
		       "other load inflated these figures (CPU time per op: %.1f / %.1f ns)\n",
		       100 * r->cpu[k], 100 * r->cpu[u], r->cpu_ns[k], r->cpu_ns[u]);
}

/* Each further monitor's hit against the first one's, rep by rep. */
static void print_monitors(const struct result *r, const struct options *o)
{
	for (int k = 1; k < r->nmrc; k++) {
		const double *v = r->vs_first[k], *c = r->cpu_vs_first[k];

		printf("{\"bench\":\"hit_monitors\",\"regions\":%lu,\"threads\":%d,"
		       "\"monitor\":\"%s\",\"vs\":\"%s\",\"ratio\":%.3f,"
		       "\"ratio_min\":%.3f,\"ratio_max\":%.3f,\"cpu_ratio\":%.3f,"
		       "\"cpu_ratio_min\":%.3f,\"cpu_ratio_max\":%.3f,\"reps\":%d,"
		       "\"load1\":%.2f}\n",
		       r->regions, r->threads, monitor_name(o->monitors[k]),
		       monitor_name(o->monitors[0]), v[0], v[1], v[2], c[0], c[1],
		       c[2], o->reps, load_average());
		if (!o->json_only)
			printf("# hit regions=%lu threads=%d: %s / %s = %.3f wall (reps %.3f-%.3f), %.3f CPU time (%.3f-%.3f)\n",
			       r->regions, r->threads, monitor_name(o->monitors[k]),
			       monitor_name(o->monitors[0]), v[0], v[1], v[2],
			       c[0], c[1], c[2]);
	}
}

/*
 * The same threads with a cache each over regions of their own (nothing
 * shared in software), timed in the same rounds as the shared caches:
 * what the machine gives this code, against which the shared rows' loss
 * can be read.
 */
static void print_private(const struct result *r, const struct options *o)
{
	int m = PRIV_MRC(r), u = PRIV_UCX(r);
	const double *vm = r->vs_private[0], *vu = r->vs_private[1];
	const double *cm = r->cpu_vs_private[0], *cu = r->cpu_vs_private[1];

	if (!r->private)
		return;
	printf("{\"bench\":\"hit_private\",\"thread_refs\":\"%s\",\"monitor\":\"%s\","
	       "\"regions\":%lu,\"threads\":%d,\"mrcache_ns\":%.2f,\"ucx_ns\":%.2f,"
	       "\"mrcache_mops\":%.2f,\"ucx_mops\":%.2f,"
	       "\"mrcache_shared_vs_private\":%.3f,\"mrcache_shared_vs_private_min\":%.3f,"
	       "\"mrcache_shared_vs_private_max\":%.3f,\"ucx_shared_vs_private\":%.3f,"
	       "\"ucx_shared_vs_private_min\":%.3f,\"ucx_shared_vs_private_max\":%.3f,"
	       "\"mrcache_shared_vs_private_cpu\":%.3f,\"mrcache_shared_vs_private_cpu_min\":%.3f,"
	       "\"mrcache_shared_vs_private_cpu_max\":%.3f,\"ucx_shared_vs_private_cpu\":%.3f,"
	       "\"ucx_shared_vs_private_cpu_min\":%.3f,\"ucx_shared_vs_private_cpu_max\":%.3f,"
	       "\"reps\":%d,\"mrcache_ops_per_thread\":%lu,\"ucx_ops_per_thread\":%lu,"
	       "\"mrcache_cpu_share\":%.2f,\"ucx_cpu_share\":%.2f,"
	       "\"mrcache_cpu_ns\":%.2f,\"ucx_cpu_ns\":%.2f,\"load1\":%.2f}\n",
	       thread_refs_mode(), monitor_name(o->monitors[0]), r->regions,
	       r->threads, r->ns[m], r->ns[u], r->mops[m], r->mops[u],
	       vm[0], vm[1], vm[2], vu[0], vu[1], vu[2], cm[0], cm[1], cm[2],
	       cu[0], cu[1], cu[2], o->reps, r->ops[m],
	       r->ops[u], r->cpu[m], r->cpu[u], r->cpu_ns[m], r->cpu_ns[u],
	       load_average());
	if (o->json_only)
		return;
	printf("# hit regions=%lu threads=%d private (a cache each, own regions): mrcache %.1f ns, "
	       "ucx %.1f ns per op in each thread; aggregate %.1f vs %.1f Mops/s; "
	       "shared / private aggregate: mrcache %.2f (reps %.2f-%.2f), ucx %.2f (%.2f-%.2f); "
	       "per CPU second: mrcache %.2f (%.2f-%.2f), ucx %.2f (%.2f-%.2f)\n",
	       r->regions, r->threads, r->ns[m], r->ns[u], r->mops[m], r->mops[u],
	       vm[0], vm[1], vm[2], vu[0], vu[1], vu[2], cm[0], cm[1], cm[2],
	       cu[0], cu[1], cu[2]);
	if (r->cpu[m] < 0.95 || r->cpu[u] < 0.95)
		printf("#   warning: the threads got only %.0f%% / %.0f%% of their wall time on a CPU\n",
		       100 * r->cpu[m], 100 * r->cpu[u]);
}

static void print_result(const struct result *r, const struct options *o)
{
	for (int k = 0; k < r->nmrc; k++)
		print_one(r, o, k);
	print_monitors(r, o);
	print_private(r, o);
}

/* Any registration after populating means a timed operation missed. */
static int check_no_misses(const struct caches *c, unsigned long regions)
{
	if (c->mrc_regs == regions * (unsigned long)c->nmrc && c->ucx_regs == regions)
		return 0;
	fprintf(stderr, "registrations after timing: mrcache %lu, ucx %lu, expected %lu\n",
		c->mrc_regs, c->ucx_regs, regions);
	return -EIO;
}

/* The most threads of any configuration, 1 when none has more. */
static unsigned long max_threads(const struct options *o)
{
	unsigned long most = 1;

	for (int t = 0; t < o->nthreads; t++)
		most = o->threads[t] > most ? o->threads[t] : most;
	return most;
}

/*
 * The caches of the private runs: thread i's own mrcache (first monitor)
 * and UCX caches, each holding regions [i * regions, (i + 1) * regions).
 */
static int create_private(struct caches *priv, unsigned long n,
			  unsigned long regions, const struct options *o)
{
	int ret = 0;

	for (unsigned long i = 0; !ret && i < n; i++) {
		ret = create_caches(&priv[i], o, 1);
		if (!ret)
			ret = populate_mrc(&priv[i], i * regions, regions);
		if (!ret)
			ret = populate_ucx(&priv[i], i * regions, regions);
	}
	return ret;
}

static int bench_regions(unsigned long regions, const struct options *o,
			 struct result *results, int *nresults)
{
	struct caches c = { 0 }, priv[MAX_THREADS] = { 0 };
	/* No private runs without a configuration of several threads. */
	unsigned long npriv = max_threads(o) > 1 ? max_threads(o) : 0;
	int ret;

	ret = create_caches(&c, o, o->nmonitors);
	if (!ret)
		ret = populate_mrc(&c, 0, regions);
	if (!ret)
		ret = populate_ucx(&c, 0, regions);
	if (!ret)
		ret = create_private(priv, npriv, regions, o);
	for (int t = 0; !ret && t < o->nthreads; t++) {
		struct result *r = &results[(*nresults)++];
		int nthreads = (int)o->threads[t];

		ret = measure(&c, nthreads > 1 ? priv : NULL, regions, nthreads,
			      o, r);
		if (!ret)
			print_result(r, o);
		fflush(stdout);
	}
	if (!ret)
		ret = check_no_misses(&c, regions);
	for (unsigned long i = 0; !ret && i < npriv; i++)
		ret = check_no_misses(&priv[i], regions);
	destroy_caches(&c);
	for (unsigned long i = 0; i < npriv; i++)
		destroy_caches(&priv[i]);
	return ret;
}

/* ------------------------------------------------------------------ */
/* Scaling and memory                                                  */
/* ------------------------------------------------------------------ */

static const struct result *find_result(const struct result *rs, int n,
					unsigned long regions, int threads)
{
	for (int i = 0; i < n; i++)
		if (rs[i].regions == regions && rs[i].threads == threads)
			return &rs[i];
	return NULL;
}

/* The lowest CPU share of the rows a scaling line divides. */
static double lowest_cpu_share(const struct result *one,
			       const struct result *two)
{
	int u = one->nmrc;
	double v[] = { one->cpu[0], one->cpu[u], two->cpu[0], two->cpu[u],
		       two->cpu[PRIV_MRC(two)], two->cpu[PRIV_UCX(two)] };

	return min_of(v, sizeof(v) / sizeof(v[0]));
}

/*
 * 2-thread aggregate over the 1-thread rate, sharing one cache (*_x) and
 * with a cache each (*_private_x, the machine's own ceiling for the same
 * code): both over the same 1-thread row, so their quotient is the shared
 * over private aggregate (measured rep by rep in the hit_private line).
 */
static void print_scaling(const struct result *rs, int n,
			  const struct options *o)
{
	for (int i = 0; i < o->nregions; i++) {
		const struct result *one = find_result(rs, n, o->regions[i], 1);
		const struct result *two = find_result(rs, n, o->regions[i], 2);
		double mx, ux, mpx, upx;

		if (!one || !two)
			continue;
		mx = two->mops[0] / one->mops[0];
		ux = two->mops[one->nmrc] / one->mops[one->nmrc];
		mpx = two->mops[PRIV_MRC(two)] / one->mops[0];
		upx = two->mops[PRIV_UCX(two)] / one->mops[one->nmrc];
		printf("{\"bench\":\"scaling\",\"regions\":%lu,\"mrcache_x\":%.2f,"
		       "\"ucx_x\":%.2f,\"mrcache_private_x\":%.2f,\"ucx_private_x\":%.2f,"
		       "\"cpu_share_min\":%.2f,\"target\":1.8}\n", o->regions[i],
		       mx, ux, mpx, upx, lowest_cpu_share(one, two));
		if (!o->json_only)
			printf("# scaling regions=%lu: 2-thread aggregate / 1-thread rate: "
			       "mrcache %.2fx (target >= 1.8: %s), ucx %.2fx; "
			       "a cache each: mrcache %.2fx, ucx %.2fx\n",
			       o->regions[i], mx, verdict(mx >= 1.8), ux, mpx, upx);
	}
}

struct footprint {
	double heap;	/* bytes malloc has handed out */
	double rss;	/* resident bytes, which also sees private mmaps */
};

static struct footprint footprint_now(void)
{
	struct mallinfo2 mi = mallinfo2();
	struct footprint f = { .heap = (double)(mi.uordblks + mi.hblkhd) };
	unsigned long size = 0, resident = 0;
	FILE *statm = fopen("/proc/self/statm", "r");

	if (statm) {
		if (fscanf(statm, "%lu %lu", &size, &resident) != 2)
			resident = 0;
		fclose(statm);
	}
	f.rss = (double)resident * (double)page_size;
	return f;
}

enum { MRCACHE, UCX };

struct memory_result {
	double rss[2];		/* resident growth per region */
	double heap[2];		/* malloc'd growth per region */
};

/*
 * Bytes per region: the footprint growth while MEMORY_REGIONS regions are
 * added, over their count. The null providers own nothing, so all of it is
 * the cache's. Run before anything else so freed memory that malloc keeps
 * resident cannot hide growth; the mrcache cache stays alive while UCX is
 * measured for the same reason.
 */
static int measure_memory(struct memory_result *m, const struct options *o)
{
	struct footprint before, middle, after;
	struct caches c = { 0 };
	double n = MEMORY_REGIONS;
	int ret;

	ret = create_caches(&c, o, 1);	/* the first monitor's */
	if (ret)
		goto out;
	before = footprint_now();
	ret = populate_mrc(&c, 0, MEMORY_REGIONS);
	middle = footprint_now();
	if (!ret)
		ret = populate_ucx(&c, 0, MEMORY_REGIONS);
	after = footprint_now();
	m->rss[MRCACHE] = (middle.rss - before.rss) / n;
	m->rss[UCX] = (after.rss - middle.rss) / n;
	m->heap[MRCACHE] = (middle.heap - before.heap) / n;
	m->heap[UCX] = (after.heap - middle.heap) / n;
out:
	destroy_caches(&c);
	return ret;
}

static void print_memory(const struct memory_result *m, const struct options *o)
{
	printf("{\"bench\":\"memory\",\"regions\":%d,\"mrcache_bytes\":%.1f,"
	       "\"ucx_bytes\":%.1f,\"mrcache_heap_bytes\":%.1f,\"ucx_heap_bytes\":%.1f,"
	       "\"target\":128}\n", MEMORY_REGIONS, m->rss[MRCACHE], m->rss[UCX],
	       m->heap[MRCACHE], m->heap[UCX]);
	if (o->json_only)
		return;
	printf("# memory per cached region (resident growth over %d regions): "
	       "mrcache %.1f B (target <= 128: %s), ucx %.1f B; "
	       "malloc'd only: mrcache %.1f B, ucx %.1f B\n",
	       MEMORY_REGIONS, m->rss[MRCACHE], verdict(m->rss[MRCACHE] <= 128),
	       m->rss[UCX], m->heap[MRCACHE], m->heap[UCX]);
}

/* ------------------------------------------------------------------ */
/* Slow paths: miss, invalidate, evict                                 */
/* ------------------------------------------------------------------ */

enum slow_kind {
	SLOW_MISS, SLOW_INVALIDATE, SLOW_EVICT, SLOW_INVALIDATE_BUSY, SLOW_KINDS
};
static const char *const slow_names[] = {
	"miss", "invalidate", "evict", "invalidate_busy"
};

static void ucx_invalidated(void *arg)
{
	(void)arg;
}

/* get (+ invalidate) + put of regions [first, first + count). */
static int pass_mrc(struct caches *c, unsigned long first, unsigned long count,
		    bool invalidate)
{
	for (unsigned long i = first; i < first + count; i++) {
		struct mrc_region *r;
		char *a = region_addr(i);

		if (mrc_get(c->mrc[0], a, page_size, BENCH_ACCESS, &r) ||
		    (invalidate && mrc_invalidate(c->mrc[0], a, page_size)) ||
		    mrc_put(c->mrc[0], r)) {
			fprintf(stderr, "mrcache region %lu: %s\n", i, mrc_last_error());
			return -EIO;
		}
	}
	return 0;
}

static int pass_ucx(struct caches *c, unsigned long first, unsigned long count,
		    bool invalidate)
{
	for (unsigned long i = first; i < first + count; i++) {
		ucs_rcache_region_t *r;

		if (ucs_rcache_get(c->ucx, region_addr(i), page_size, UCX_PROT,
				   NULL, &r) != UCS_OK) {
			fprintf(stderr, "ucx region %lu: get failed\n", i);
			return -EIO;
		}
		if (invalidate)
			ucs_rcache_region_invalidate(c->ucx, r, ucx_invalidated, NULL);
		ucs_rcache_region_put(c->ucx, r);
	}
	return 0;
}

static int pass(struct caches *c, int which, unsigned long first,
		unsigned long count, bool invalidate)
{
	return which == MRCACHE ? pass_mrc(c, first, count, invalidate) :
				  pass_ucx(c, first, count, invalidate);
}

/*
 * The other thread of invalidate_busy: get + put of region MISS_REGIONS
 * (outside the timed ones) until told to stop, on the second core.
 */
struct busy {
	struct caches *c;
	int which;
	pthread_t thread;
	bool started;
	unsigned long ops;	/* written by the busy thread only */
	bool stop;
	int error;		/* set by the busy thread when a hit fails */
};

static int busy_hit(struct busy *b)
{
	char *a = region_addr(MISS_REGIONS);

	if (b->which == MRCACHE) {
		struct mrc_region *r;

		return mrc_get(b->c->mrc[0], a, page_size, BENCH_ACCESS, &r) ||
		       mrc_put(b->c->mrc[0], r);
	}
	ucs_rcache_region_t *r;

	if (ucs_rcache_get(b->c->ucx, a, page_size, UCX_PROT, NULL, &r) != UCS_OK)
		return -1;
	ucs_rcache_region_put(b->c->ucx, r);
	return 0;
}

static void *busy_main(void *arg)
{
	struct busy *b = arg;

	pin_to_core(1);
	while (!__atomic_load_n(&b->stop, __ATOMIC_RELAXED)) {
		if (busy_hit(b)) {
			__atomic_store_n(&b->error, -EIO, __ATOMIC_RELAXED);
			break;
		}
		__atomic_store_n(&b->ops, b->ops + 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

/* Start the busy thread and wait for its first hit (a miss: it registers). */
static int busy_start(struct busy *b)
{
	pin_to_core(0);
	if (pthread_create(&b->thread, NULL, busy_main, b))
		return -EAGAIN;
	b->started = true;
	while (__atomic_load_n(&b->ops, __ATOMIC_RELAXED) < 2 &&
	       !__atomic_load_n(&b->error, __ATOMIC_RELAXED))
		sched_yield();
	return 0;
}

static int busy_stop(struct busy *b)
{
	__atomic_store_n(&b->stop, true, __ATOMIC_RELAXED);
	pthread_join(b->thread, NULL);
	if (b->error)
		fprintf(stderr, "invalidate_busy: the busy thread's hit failed\n");
	return b->error;
}

/*
 * One repetition in a fresh cache: the untimed set-up (every region cached
 * for invalidate; the bound filled with other regions for evict), then
 * MISS_REGIONS timed operations. Registrations are checked afterwards.
 */
static int slow_rep(enum slow_kind k, int which, uint32_t monitor, double *ns,
		    double *cpu_ns)
{
	struct caches c = { 0 };
	struct busy busy = { .c = &c, .which = which };
	bool busy_run = k == SLOW_INVALIDATE_BUSY;
	bool invalidate = k == SLOW_INVALIDATE || busy_run;
	unsigned long first = k == SLOW_EVICT ? EVICT_BOUND : 0;
	unsigned long want = MISS_REGIONS + first;
	uint64_t t0, c0;
	int ret;

	bench_max_regions = k == SLOW_EVICT ? EVICT_BOUND : 0;
	ret = which == MRCACHE ? create_mrc(&c, monitor) : create_ucx(&c);
	bench_max_regions = 0;
	if (!ret && k != SLOW_MISS)
		ret = pass(&c, which, 0, k == SLOW_EVICT ? EVICT_BOUND : MISS_REGIONS, false);
	if (!ret && busy_run)
		ret = busy_start(&busy);
	c0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
	t0 = now_ns();
	if (!ret)
		ret = pass(&c, which, first, MISS_REGIONS, invalidate);
	*ns = (double)(now_ns() - t0) / MISS_REGIONS;
	*cpu_ns = (double)(clock_ns(CLOCK_THREAD_CPUTIME_ID) - c0) / MISS_REGIONS;
	if (busy.started && busy_stop(&busy))
		ret = -EIO;
	if (invalidate)
		want = MISS_REGIONS + busy_run;	/* the busy thread's region */
	if (!ret && (which == MRCACHE ? c.mrc_regs : c.ucx_regs) != want) {
		fprintf(stderr, "%s %s: %lu registrations, expected %lu\n",
			slow_names[k], which == MRCACHE ? "mrcache" : "ucx",
			which == MRCACHE ? c.mrc_regs : c.ucx_regs, want);
		ret = -EIO;
	}
	destroy_caches(&c);
	return ret;
}

/*
 * Repetitions alternate between the caches, as for hits. Besides wall
 * time, the main thread's CPU time per operation and its ratio in each
 * round (median and range): on a machine shared with other work, time
 * the thread waited for a core is not counted.
 */
static int bench_slow(enum slow_kind k, const struct options *o)
{
	double ns[2][MAX_REPS], cpu[2][MAX_REPS], cpu_ratio[MAX_REPS];
	double lo[2], hi[2], med[2];

	for (int rep = 0; rep < o->reps; rep++) {
		for (int which = 0; which < 2; which++)
			if (slow_rep(k, which, o->monitors[0], &ns[which][rep],
				     &cpu[which][rep]))
				return -EIO;
		cpu_ratio[rep] = cpu[MRCACHE][rep] / cpu[UCX][rep];
	}
	for (int which = 0; which < 2; which++) {
		lo[which] = min_of(ns[which], o->reps);
		hi[which] = max_of(ns[which], o->reps);
		med[which] = median(ns[which], o->reps);
	}
	printf("{\"bench\":\"%s\",\"regions\":%d,\"thread_refs\":\"%s\","
	       "\"mrcache_ns\":%.1f,\"ucx_ns\":%.1f,\"ratio\":%.3f,"
	       "\"mrcache_min\":%.1f,\"mrcache_max\":%.1f,\"ucx_min\":%.1f,"
	       "\"ucx_max\":%.1f,\"mrcache_cpu_ns\":%.1f,\"ucx_cpu_ns\":%.1f,"
	       "\"cpu_ratio\":%.3f,\"cpu_ratio_min\":%.3f,\"cpu_ratio_max\":%.3f,"
	       "\"reps\":%d,\"load1\":%.2f}\n",
	       slow_names[k], MISS_REGIONS, thread_refs_mode(), med[MRCACHE],
	       med[UCX], med[MRCACHE] / med[UCX], lo[MRCACHE], hi[MRCACHE],
	       lo[UCX], hi[UCX], median(cpu[MRCACHE], o->reps),
	       median(cpu[UCX], o->reps), median(cpu_ratio, o->reps),
	       min_of(cpu_ratio, o->reps), max_of(cpu_ratio, o->reps), o->reps,
	       load_average());
	if (!o->json_only)
		printf("# %s: mrcache %.0f ns (%.0f-%.0f), ucx %.0f ns (%.0f-%.0f) per get+put; ratio %.2f\n",
		       slow_names[k], med[MRCACHE], lo[MRCACHE], hi[MRCACHE],
		       med[UCX], lo[UCX], hi[UCX], med[MRCACHE] / med[UCX]);
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	struct result results[MAX_LIST * MAX_LIST];
	struct memory_result memory = { 0 };
	struct options o;
	unsigned long most = MEMORY_REGIONS;
	int nresults = 0;

	if (most < MISS_REGIONS + EVICT_BOUND)
		most = MISS_REGIONS + EVICT_BOUND;

	if (parse_options(argc, argv, &o))
		return 2;
	page_size = (size_t)sysconf(_SC_PAGESIZE);
	/* Each thread of a private run has regions of its own. */
	for (int i = 0; i < o.nregions; i++)
		if (o.regions[i] * max_threads(&o) > most)
			most = o.regions[i] * max_threads(&o);
	if (init_topology() || map_arena(most))
		return 1;
	if (!o.json_only)
		printf("# hit_bench: %d cores, %d reps of ~%.2f s per cache and configuration\n",
		       ncores, o.reps, o.rep_seconds);
	/* Memory first, while the heap holds nothing freed; printed last. */
	if (o.hits && measure_memory(&memory, &o))
		return 1;
	for (int i = 0; o.hits && i < o.nregions; i++)
		if (bench_regions(o.regions[i], &o, results, &nresults))
			return 1;
	for (int k = 0; o.slow && k < SLOW_KINDS; k++)
		if (bench_slow(k, &o))
			return 1;
	if (o.hits) {
		print_scaling(results, nresults, &o);
		print_memory(&memory, &o);
	}
	hwloc_topology_destroy(topology);
	return 0;
}
