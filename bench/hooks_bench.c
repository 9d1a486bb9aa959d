// SPDX-License-Identifier: BSD-2-Clause
/*
 * hooks_bench - what the libc hooks cost where no cached region is hit.
 *
 *  munmap: munmap() of 1 and of 256 touched pages (mmap and touching are
 *          outside the timed part), per call.
 *  malloc: a loop of malloc/free of mixed sizes (16 B to 512 KiB, every
 *          8th above glibc's mmap threshold, so free() unmaps), per pair.
 *
 * One mode per process, since hooks stay in libc once installed:
 *   raw      no hooks
 *   mrcache  a cache with MRCACHE_MONITOR=hooks and one cached region
 *            elsewhere (the hooks record; the drain finds nothing to kill)
 *   ucx      UCX's ucm hooks: ucp_init() with its defaults, one
 *            VM_UNMAPPED handler (UCX dlopen'ed, as in hooks_ucx_test)
 *   both     UCX first, then mrcache
 *   idle     mrcache's hooks installed, last cache destroyed
 *   uffd-same   a cache with MRCACHE_MONITOR=uffd, its reader thread on
 *               the benchmark's core
 *   uffd-other  the same, the reader on another core
 *
 * Every mode runs on core 0. Modes with a cache also time munmap() of
 * ranges the cache registered just before ("cached"): the hooks record
 * every munmap alike, the userfaultfd monitor hears only of registered
 * ranges, and then the munmapping thread waits for its reader.
 *
 * Usage: hooks_bench MODE [runs [munmap]] ; prints median, min and max
 * of the runs for each measure (ns per call). "munmap" leaves out the
 * malloc loop (minutes under TCG).
 */
#include <dirent.h>
#include <dlfcn.h>
#include <malloc.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <ucm/api/ucm.h>
#include <ucp/api/ucp.h>

#include "mrcache.h"

static size_t page;
static struct mrc_cache *cache;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int reg(void *ctx, void *addr, size_t len, uint32_t access, void **h)
{
	(void)ctx, (void)len, (void)access;
	*h = addr;
	return 0;
}

static int dereg(void *ctx, void *h)
{
	(void)ctx, (void)h;
	return 0;
}

static int start_mrcache(uint32_t monitor)
{
	struct mrc_provider prov = { "bench", reg, dereg, NULL };
	struct mrc_cache_attr attr = {
		.comp_mask = MRC_ATTR_MONITOR, .monitor = monitor,
	};
	/* Anonymous: the userfaultfd monitor refuses .bss (file-backed in part). */
	char *buf = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct mrc_region *r;

	if (buf == MAP_FAILED || mrc_cache_create(&prov, &attr, &cache) ||
	    mrc_get(cache, buf, 1 << 16, 1, &r)) {
		fprintf(stderr, "mrcache: %s\n", mrc_last_error());
		return -1;
	}
	return mrc_put(cache, r);
}

static void on_event(ucm_event_type_t type, ucm_event_t *ev, void *arg)
{
	(void)type, (void)ev, (void)arg;
}

static int start_ucx(void)
{
	void *lib = dlopen("libucp.so.0", RTLD_NOW | RTLD_GLOBAL);
	ucp_params_t params = {
		.field_mask = UCP_PARAM_FIELD_FEATURES,
		.features = UCP_FEATURE_TAG | UCP_FEATURE_RMA,
	};
	ucs_status_t (*config_read)(const char *, const char *, ucp_config_t **);
	ucs_status_t (*init)(unsigned, unsigned, const ucp_params_t *,
			     const ucp_config_t *, ucp_context_h *);
	ucs_status_t (*set_handler)(int, int, ucm_event_callback_t, void *);
	ucp_config_t *config;
	ucp_context_h ucp;

	if (!lib) {
		fprintf(stderr, "dlopen libucp: %s\n", dlerror());
		return -1;
	}
	config_read = (ucs_status_t (*)(const char *, const char *, ucp_config_t **))
		dlsym(lib, "ucp_config_read");
	init = (ucs_status_t (*)(unsigned, unsigned, const ucp_params_t *,
				 const ucp_config_t *, ucp_context_h *))
		dlsym(lib, "ucp_init_version");
	set_handler = (ucs_status_t (*)(int, int, ucm_event_callback_t, void *))
		dlsym(lib, "ucm_set_event_handler");
	if (!config_read || !init || !set_handler ||
	    config_read(NULL, NULL, &config) != UCS_OK ||
	    init(UCP_API_MAJOR, UCP_API_MINOR, &params, config, &ucp) != UCS_OK ||
	    set_handler(UCM_EVENT_VM_UNMAPPED, 0, on_event, NULL) != UCS_OK)
		return -1;
	return 0;
}

static int pin(pid_t tid, int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(tid, sizeof(set), &set)) {
		perror("sched_setaffinity");
		return -1;
	}
	return 0;
}

/* The userfaultfd reader's thread id, by its name; 0 if none. */
static pid_t uffd_reader(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	pid_t tid = 0;

	while (d && !tid && (e = readdir(d))) {
		char path[320], comm[32] = "";
		FILE *f;

		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		f = fopen(path, "r");
		if (f && fgets(comm, sizeof(comm), f) && !strncmp(comm, "mrc-uffd", 8))
			tid = atoi(e->d_name);
		if (f)
			fclose(f);
	}
	if (d)
		closedir(d);
	return tid;
}

static int start_uffd(int reader_cpu)
{
	pid_t tid;

	if (start_mrcache(MRC_MONITOR_UFFD))
		return -1;
	tid = uffd_reader();
	if (!tid) {
		fprintf(stderr, "no mrc-uffd thread\n");
		return -1;
	}
	return pin(tid, reader_cpu);
}

/* Register [p, p + len) in the cache and leave it cached, idle. */
static void cache_range(char *p, size_t len)
{
	struct mrc_region *r;

	if (mrc_get(cache, p, len, 1, &r) || mrc_put(cache, r)) {
		fprintf(stderr, "mrcache: %s\n", mrc_last_error());
		exit(1);
	}
}

/*
 * ns per munmap() of @pages touched pages, over @n calls; @cached: each
 * range is registered in the cache first.
 */
static double time_munmap(size_t pages, int n, int cached)
{
	char **p = calloc((size_t)n, sizeof(*p));
	uint64_t t0;

	for (int i = 0; i < n; i++) {
		p[i] = mmap(NULL, pages * page, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		for (size_t j = 0; j < pages; j++)
			p[i][j * page] = 1;
		if (cached)
			cache_range(p[i], pages * page);
	}
	t0 = now_ns();
	for (int i = 0; i < n; i++)
		munmap(p[i], pages * page);
	t0 = now_ns() - t0;
	free(p);
	/* Drain what the munmaps reported before the next round. */
	if (cached)
		mrc_cache_progress(cache);
	return (double)t0 / n;
}

/* ns per malloc/free pair of mixed sizes. */
static double time_malloc(int n)
{
	enum { LIVE = 64 };
	void *live[LIVE] = { 0 };
	uint32_t x = 12345;
	uint64_t t0 = now_ns();

	for (int i = 0; i < n; i++) {
		int slot = i % LIVE;
		size_t size;

		x = x * 1103515245u + 12345u;
		size = (i % 8 == 7) ? (256u << 10) + (x % (256u << 10))
				    : 16 + (x >> 8) % 8192;
		free(live[slot]);
		live[slot] = malloc(size);
		((char *)live[slot])[0] = 1;
	}
	t0 = now_ns() - t0;
	for (int i = 0; i < LIVE; i++)
		free(live[i]);
	return (double)t0 / n;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void report(const char *mode, const char *what, double *v, int runs)
{
	qsort(v, (size_t)runs, sizeof(*v), cmp);
	printf("%-8s %-16s median %8.0f ns  min %8.0f  max %8.0f  (%d runs)\n",
	       mode, what, v[runs / 2], v[0], v[runs - 1], runs);
}

static int start(const char *mode)
{
	if (!strcmp(mode, "raw"))
		return 0;
	if (!strcmp(mode, "mrcache"))
		return start_mrcache(MRC_MONITOR_HOOKS);
	if (!strcmp(mode, "ucx"))
		return start_ucx();
	if (!strcmp(mode, "both"))
		return start_ucx() || start_mrcache(MRC_MONITOR_HOOKS);
	if (!strcmp(mode, "uffd-same"))
		return start_uffd(0);
	if (!strcmp(mode, "uffd-other"))
		return start_uffd(1);
	if (!strcmp(mode, "idle")) {
		if (start_mrcache(MRC_MONITOR_HOOKS))
			return -1;
		mrc_cache_destroy(cache);
		cache = NULL;
		return 0;
	}
	fprintf(stderr, "usage: hooks_bench raw|mrcache|ucx|both|idle|uffd-same|uffd-other [runs]\n");
	return -1;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "raw";
	int runs = argc > 2 ? atoi(argv[2]) : 11;
	int with_malloc = !(argc > 3 && !strcmp(argv[3], "munmap"));
	double *a = calloc((size_t)runs, sizeof(double));
	double *b = calloc((size_t)runs, sizeof(double));
	double *c = calloc((size_t)runs, sizeof(double));
	double *d = calloc((size_t)runs, sizeof(double));
	double *e = calloc((size_t)runs, sizeof(double));

	page = (size_t)sysconf(_SC_PAGESIZE);
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);	/* no dynamic raise */
	/* Before any thread starts: the reader is pinned by start(). */
	if (runs < 1 || pin(0, 0) || start(mode))
		return 1;
	for (int r = 0; r < runs; r++) {
		a[r] = time_munmap(1, 4000, 0);
		b[r] = time_munmap(256, 100, 0);
		c[r] = with_malloc ? time_malloc(200000) : 0;
		if (cache) {
			d[r] = time_munmap(1, 2000, 1);
			e[r] = time_munmap(256, 100, 1);
		}
	}
	report(mode, "munmap 1 page", a, runs);
	report(mode, "munmap 256 pages", b, runs);
	if (with_malloc)
		report(mode, "malloc/free pair", c, runs);
	if (cache) {
		report(mode, "munmap 1 cached", d, runs);
		report(mode, "munmap 256 cached", e, runs);
	}
	if (cache)
		mrc_cache_destroy(cache);
	return 0;
}
