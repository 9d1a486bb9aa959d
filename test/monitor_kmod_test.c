// SPDX-License-Identifier: BSD-2-Clause
/*
 * The kernel monitor end to end: /dev/mrcache must make the cache drop a
 * region when the memory under it changes, whoever changes it, without the
 * application calling mrc_invalidate(). Needs the module (the VM loads it;
 * natively it must be loaded); exits 77 without it.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cache_check.h"
#include "fake_provider.h"
#include "mrcache.h"
#include "threadrefs/mode.h"

static struct fake_provider fake;
static struct mrc_cache *cache;
static size_t page;

static void make_cache(uint32_t progress_thread)
{
	struct mrc_provider prov = fake_provider(&fake);
	struct mrc_cache_attr attr = {
		.comp_mask = MRC_ATTR_MONITOR | MRC_ATTR_PROGRESS_THREAD,
		.monitor = MRC_MONITOR_KMOD,
		.progress_thread = progress_thread,
	};
	int ret = mrc_cache_create(&prov, &attr, &cache);

	ck_assert_msg(ret == 0, "create: %s", mrc_last_error());
}

static void setup(void)
{
	page = (size_t)sysconf(_SC_PAGESIZE);
	fake_init(&fake);
	make_cache(0);
}

static void teardown(void)
{
	fake_teardown(cache, &fake);
}

static char *map_pages(void *hint, size_t pages, int fixed)
{
	char *p = mmap(hint, pages * page, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | (fixed ? MAP_FIXED : 0),
		       -1, 0);

	ck_assert_ptr_ne(p, MAP_FAILED);
	memset(p, 0x5a, pages * page);
	return p;
}

static struct mrc_region *get_ok(void *addr, size_t len)
{
	return cache_get_ok(cache, addr, len, 1);
}

static struct mrc_stats stats(void)
{
	return cache_stats_ok(cache);
}

/* A counter of the module, from /sys/class/misc/mrcache/stats/. */
static long module_stat(const char *name)
{
	char path[128];
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/class/misc/mrcache/stats/%s", name);
	f = fopen(path, "r");
	ck_assert_msg(f, "%s: %s", path, strerror(errno));
	ck_assert_int_eq(fscanf(f, "%ld", &v), 1);
	fclose(f);
	return v;
}

/* Cache a range, leave it idle, and return the registration behind it. */
static size_t cache_idle(void *addr, size_t len)
{
	struct mrc_region *r = get_ok(addr, len);
	size_t handle = (uintptr_t)mrc_region_handle(r);

	ck_assert_int_eq(mrc_put(cache, r), 0);
	ck_assert(fake_handle_live(&fake, (void *)handle));
	return handle;
}

/* The next get of the range must register anew: the old one was dropped. */
static void assert_reregistered(void *addr, size_t len, size_t old_handle)
{
	struct mrc_region *r = get_ok(addr, len);

	ck_assert_uint_ne((uintptr_t)mrc_region_handle(r), old_handle);
	ck_assert(!fake_handle_live(&fake, (void *)old_handle));
	ck_assert_uint_ge(stats().invalidations, 1);
	ck_assert_int_eq(mrc_put(cache, r), 0);
}

START_TEST(kmod_monitor_is_used)
{
	ck_assert_str_eq(stats().monitor, "kmod");
}
END_TEST

START_TEST(munmap_drops_region)
{
	char *p = map_pages(NULL, 4, 0);
	size_t h = cache_idle(p, 4 * page);

	ck_assert_int_eq(munmap(p, 4 * page), 0);
	map_pages(p, 4, 1);	/* same addresses, new pages */
	assert_reregistered(p, 4 * page, h);
	munmap(p, 4 * page);
}
END_TEST

START_TEST(partial_munmap_drops_region)
{
	char *p = map_pages(NULL, 4, 0);
	size_t h = cache_idle(p, 4 * page);

	ck_assert_int_eq(munmap(p + 3 * page, page), 0);
	map_pages(p + 3 * page, 1, 1);
	assert_reregistered(p, page, h);
	munmap(p, 4 * page);
}
END_TEST

START_TEST(madvise_dontneed_drops_region)
{
	char *p = map_pages(NULL, 2, 0);
	size_t h = cache_idle(p, 2 * page);

	ck_assert_int_eq(madvise(p, 2 * page, MADV_DONTNEED), 0);
	assert_reregistered(p, 2 * page, h);
	munmap(p, 2 * page);
}
END_TEST

START_TEST(mremap_drops_region)
{
	char *p = map_pages(NULL, 4, 0);
	char *q = map_pages(NULL, 4, 0);
	size_t h = cache_idle(p, 4 * page);

	/* Move q's pages onto p's addresses. */
	ck_assert_ptr_eq(mremap(q, 4 * page, 4 * page,
				MREMAP_MAYMOVE | MREMAP_FIXED, p), p);
	assert_reregistered(p, 4 * page, h);
	munmap(p, 4 * page);
}
END_TEST

START_TEST(brk_shrink_drops_region)
{
	char *top = sbrk(0);
	char *base = (char *)(((uintptr_t)top + page - 1) & ~(page - 1));
	size_t h;

	ck_assert_int_eq(brk(base + 4 * page), 0);
	memset(base, 1, 4 * page);
	h = cache_idle(base, 4 * page);
	ck_assert_int_eq(brk(base), 0);		/* shrink: pages freed */
	ck_assert_int_eq(brk(base + 4 * page), 0);	/* grow: new pages */
	memset(base, 2, 4 * page);
	assert_reregistered(base, 4 * page, h);
	ck_assert_int_eq(brk(top), 0);
}
END_TEST

START_TEST(mprotect_keeps_region)
{
	char *p = map_pages(NULL, 2, 0);
	size_t h = cache_idle(p, 2 * page);
	struct mrc_region *r;

	ck_assert_int_eq(mprotect(p, 2 * page, PROT_READ), 0);
	ck_assert_int_eq(mprotect(p, 2 * page, PROT_READ | PROT_WRITE), 0);
	r = get_ok(p, 2 * page);
	ck_assert_uint_eq((uintptr_t)mrc_region_handle(r), h);
	ck_assert_uint_eq(stats().invalidations, 0);
	ck_assert_int_eq(mrc_put(cache, r), 0);
	munmap(p, 2 * page);
}
END_TEST

START_TEST(referenced_region_dies_at_last_put)
{
	char *p = map_pages(NULL, 2, 0);
	struct mrc_region *old = get_ok(p, 2 * page), *fresh;
	size_t h = (uintptr_t)mrc_region_handle(old);

	ck_assert_int_eq(madvise(p, 2 * page, MADV_DONTNEED), 0);
	fresh = get_ok(p, 2 * page);
	ck_assert_ptr_ne(fresh, old);
	ck_assert(fake_handle_live(&fake, (void *)h));	/* still held */
	ck_assert_int_eq(mrc_put(cache, old), 0);
	ck_assert(!fake_handle_live(&fake, (void *)h));
	ck_assert_int_eq(mrc_put(cache, fresh), 0);
	munmap(p, 2 * page);
}
END_TEST

START_TEST(progress_thread_releases_idle_regions)
{
	char *p = map_pages(NULL, 2, 0);
	size_t h;

	ck_assert_int_eq(mrc_cache_destroy(cache), 0);
	make_cache(1);
	h = cache_idle(p, 2 * page);
	ck_assert_int_eq(munmap(p, 2 * page), 0);
	/* No cache call from here: the progress thread must deregister. */
	for (int i = 0; i < 500 && fake_handle_live(&fake, (void *)h); i++)
		usleep(10000);
	ck_assert(!fake_handle_live(&fake, (void *)h));
}
END_TEST

START_TEST(many_regions_then_unmap_all)
{
	enum { N = 2000 };
	char *p = map_pages(NULL, 2 * N, 0);

	for (int i = 0; i < N; i++)
		cache_idle(p + 2 * i * page, page);
	ck_assert_uint_eq(stats().regions, N);
	ck_assert_int_eq(munmap(p, 2 * N * page), 0);
	ck_assert_int_eq(mrc_cache_progress(cache), 0);
	ck_assert_uint_eq(stats().regions, 0);
	ck_assert_uint_eq(stats().invalidations, N);
}
END_TEST

/*
 * A registration that blocks inside the provider holds the cache lock. A
 * hit on another region must still be served while an unrelated event is
 * pending (the region's watch generation proves it valid), and a region
 * whose memory changed must not be.
 */
struct gate {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int entered;
	int open;
};

static void wait_at_gate(void *arg)
{
	struct gate *g = arg;

	pthread_mutex_lock(&g->lock);
	g->entered = 1;
	pthread_cond_broadcast(&g->cond);
	while (!g->open)
		pthread_cond_wait(&g->cond, &g->lock);
	pthread_mutex_unlock(&g->lock);
}

struct blocked_get {
	void *addr;
	struct mrc_region *region;
	int ret;
};

static void *get_in_thread(void *arg)
{
	struct blocked_get *b = arg;

	struct mrc_region *r = NULL;

	b->ret = mrc_get(cache, b->addr, page, 1, &r);
	__atomic_store_n(&b->region, r, __ATOMIC_RELEASE);
	return NULL;
}

START_TEST(hit_proves_itself_while_lock_is_held)
{
	struct gate g = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0 };
	char *p = map_pages(NULL, 8, 0);
	struct blocked_get b = { .addr = p + 6 * page };
	struct blocked_get b2 = { .addr = p + 2 * page };
	struct mrc_region *r;
	size_t kept, gone;
	pthread_t t, t2;

	kept = cache_idle(p, page);
	gone = cache_idle(p + 2 * page, page);
	fake.reg_hook = wait_at_gate;
	fake.reg_hook_arg = &g;
	ck_assert_int_eq(pthread_create(&t, NULL, get_in_thread, &b), 0);
	pthread_mutex_lock(&g.lock);
	while (!g.entered)
		pthread_cond_wait(&g.cond, &g.lock);
	pthread_mutex_unlock(&g.lock);

	/* The other thread holds the cache lock inside the provider. */
	ck_assert_int_eq(madvise(p + 2 * page, page, MADV_DONTNEED), 0);
	r = get_ok(p, page);
	ck_assert_uint_eq((uintptr_t)mrc_region_handle(r), kept);
	ck_assert_int_eq(mrc_put(cache, r), 0);
	ck_assert(!b.region);	/* still blocked: the hit did not wait */

	/*
	 * The changed region fails its watch check on the same lock-free
	 * path, so its get must wait for the lock, drain, and register anew.
	 */
	ck_assert_int_eq(pthread_create(&t2, NULL, get_in_thread, &b2), 0);
	usleep(100000);
	ck_assert_msg(!__atomic_load_n(&b2.region, __ATOMIC_ACQUIRE),
		      "a get of changed memory returned while the lock was held");

	pthread_mutex_lock(&g.lock);
	g.open = 1;
	pthread_cond_broadcast(&g.cond);
	pthread_mutex_unlock(&g.lock);
	pthread_join(t, NULL);
	pthread_join(t2, NULL);
	fake.reg_hook = NULL;
	ck_assert_int_eq(b.ret, 0);
	ck_assert_int_eq(mrc_put(cache, b.region), 0);
	ck_assert_int_eq(b2.ret, 0);
	ck_assert_uint_ne((uintptr_t)mrc_region_handle(b2.region), gone);
	ck_assert_int_eq(mrc_put(cache, b2.region), 0);
	assert_reregistered(p + 2 * page, page, gone);
	munmap(p, 8 * page);
}
END_TEST

/*
 * Two runtimes in one process, each with its own cache and so its own
 * /dev/mrcache file: both see the same munmap, neither disturbs the other.
 */
/* The library's mapping of /dev/mrcache, from /proc/self/maps. */
static char *ring_mapping(size_t *len)
{
	unsigned long start = 0, end = 0;
	char line[512];
	FILE *f = fopen("/proc/self/maps", "r");

	ck_assert_ptr_nonnull(f);
	while (!start && fgets(line, sizeof(line), f))
		if (strstr(line, "/dev/mrcache"))
			ck_assert_int_eq(sscanf(line, "%lx-%lx", &start, &end), 2);
	fclose(f);
	ck_assert_msg(start, "the library has no /dev/mrcache mapping");
	*len = end - start;
	return (char *)start;
}

/*
 * A forked child does not inherit the ring (VM_DONTCOPY), so the address
 * may hold the child's own memory by the time it destroys its copy of the
 * cache; that must not unmap it.
 */
START_TEST(destroy_in_child_keeps_child_memory)
{
	size_t len;
	char *ring = ring_mapping(&len);
	int status;
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (!pid) {
		char *p = mmap(ring, len, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
			       -1, 0);

		if (p != ring)
			_exit(2);	/* the child has the ring mapped */
		memset(p, 0x77, len);
		if (mrc_cache_destroy(cache))
			_exit(3);
		/* Faults (SIGSEGV) if destroy unmapped it. */
		_exit(p[len - 1] == 0x77 ? 0 : 4);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "child: %s %d", WIFEXITED(status) ? "exit" : "signal",
		      WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
}
END_TEST

START_TEST(two_caches_in_one_process)
{
	struct fake_provider other_fake;
	struct mrc_provider prov;
	struct mrc_cache_attr attr = {
		.comp_mask = MRC_ATTR_MONITOR, .monitor = MRC_MONITOR_KMOD,
	};
	struct mrc_cache *other;
	struct mrc_region *r;
	/* A gap between p and q, so no cache merges their regions. */
	char *p = map_pages(NULL, 12, 0);
	char *q = p + 8 * page;
	size_t h;

	fake_init(&other_fake);
	prov = fake_provider(&other_fake);
	ck_assert_int_eq(mrc_cache_create(&prov, &attr, &other), 0);
	h = cache_idle(p, 4 * page);
	ck_assert_int_eq(mrc_get(other, p, 4 * page, 1, &r), 0);
	ck_assert_int_eq(mrc_put(other, r), 0);
	ck_assert_int_eq(mrc_get(other, q, 4 * page, 1, &r), 0);
	ck_assert_int_eq(mrc_put(other, r), 0);

	ck_assert_int_eq(munmap(p, 4 * page), 0);
	map_pages(p, 4, 1);
	assert_reregistered(p, 4 * page, h);
	ck_assert_int_eq(mrc_cache_progress(other), 0);
	ck_assert_uint_eq(cache_stats_ok(other).invalidations, 1);
	ck_assert_uint_eq(other_fake.live, 1);	/* q's region is untouched */
	ck_assert_int_eq(mrc_cache_destroy(other), 0);
	ck_assert_uint_eq(other_fake.live, 0);
	fake_fini(&other_fake);
	munmap(p, 12 * page);
}
END_TEST

/*
 * The range changes while the provider registers it: the pages pinned may
 * be the old ones, so the registration must not be cached. The hook
 * replaces the range's pages from inside the provider (under the cache
 * lock) for the first @times calls.
 */
struct remap_during_reg {
	char *addr;
	size_t len;
	int times;
};

static void remap_hook(void *arg)
{
	struct remap_during_reg *m = arg;

	if (m->times-- <= 0)
		return;
	ck_assert_int_eq(munmap(m->addr, m->len), 0);
	map_pages(m->addr, m->len / page, 1);
}

START_TEST(registration_raced_by_a_remap_is_retried)
{
	char *p = map_pages(NULL, 2, 0);
	struct remap_during_reg m = { p, 2 * page, 1 };
	struct mrc_region *r;
	struct mrc_stats s;

	fake.reg_hook = remap_hook;
	fake.reg_hook_arg = &m;
	r = get_ok(p, 2 * page);
	s = stats();
	ck_assert_uint_eq(s.reg_calls, 2);	/* the raced one, then the fresh one */
	ck_assert_uint_eq(fake.live, 1);
	ck_assert_ptr_eq(fake_reg_of(&fake, r), &fake.regs[fake.count - 1]);
	ck_assert_int_eq(mrc_put(cache, r), 0);
	r = get_ok(p, 2 * page);		/* cached: a hit */
	ck_assert_uint_eq(stats().reg_calls, 2);
	ck_assert_int_eq(mrc_put(cache, r), 0);
	fake.reg_hook = NULL;
	munmap(p, 2 * page);
}
END_TEST

START_TEST(registration_that_always_races_fails_with_eagain)
{
	char *p = map_pages(NULL, 2, 0);
	struct remap_during_reg m = { p, 2 * page, 1000 };
	long watches = module_stat("watches");
	struct mrc_region *r = NULL;
	int ret;

	fake.reg_hook = remap_hook;
	fake.reg_hook_arg = &m;
	ret = mrc_get(cache, p, 2 * page, 1, &r);
	fake.reg_hook = NULL;
	ck_assert_int_eq(ret, -EAGAIN);
	ck_assert_msg(strstr(mrc_last_error(), "kept changing"), "%s",
		      mrc_last_error());
	ck_assert_ptr_null(r);
	ck_assert_uint_eq(fake.live, 0);
	ck_assert_uint_eq(stats().regions, 0);
	ck_assert_int_eq(module_stat("watches"), watches);
	munmap(p, 2 * page);
}
END_TEST

/*
 * Destroy a cache while its progress thread is busy draining the events
 * of a mass unmap: nothing leaks, nothing is deregistered twice, every
 * watch goes (the fixture's teardown checks the provider).
 */
START_TEST(destroy_while_progress_thread_drains)
{
	enum { N = 64, ROUNDS = 20 };
	long watches = module_stat("watches");

	ck_assert_int_eq(mrc_cache_destroy(cache), 0);
	for (int round = 0; round < ROUNDS; round++) {
		char *p = map_pages(NULL, 2 * N, 0);

		make_cache(1);
		for (int i = 0; i < N; i++)
			cache_idle(p + 2 * i * page, page);
		ck_assert_int_eq(munmap(p, 2 * N * page), 0);
		ck_assert_int_eq(mrc_cache_destroy(cache), 0);
		ck_assert_uint_eq(fake.live, 0);
	}
	cache = NULL;
	ck_assert_int_eq(module_stat("watches"), watches);
}
END_TEST

/*
 * Getters and a remapper race on 64 ranges. A range's rwlock keeps a
 * getter's get, use and put apart from its remap (as an application's own
 * synchronization would), so any hit after a remap must see the new pages:
 * paranoid mode (MRCACHE_CHECK_PFN) aborts on a hit whose frames changed.
 * The kernel monitor is what must make that true, including when a hit
 * proves itself by watch generation while another thread holds the lock.
 */
#define RACE_RANGES 64
#define RACE_PAGES 2
#define RACE_GETS_PER_REMAP 8

struct race {
	char *base;
	pthread_rwlock_t lock[RACE_RANGES];
	atomic_int stop;
	atomic_long gets;
	atomic_long remaps;
};

static char *race_range(struct race *rc, int i)
{
	return rc->base + (size_t)i * (RACE_PAGES + 1) * page;
}

static void *race_getter(void *arg)
{
	struct race *rc = arg;
	unsigned int seed = (unsigned int)(uintptr_t)pthread_self();

	while (!atomic_load(&rc->stop)) {
		int i = rand_r(&seed) % RACE_RANGES;
		struct mrc_region *r;
		int ret;

		pthread_rwlock_rdlock(&rc->lock[i]);
		ret = mrc_get(cache, race_range(rc, i), RACE_PAGES * page, 1, &r);
		ck_assert_msg(ret == 0, "get: %d, %s (module: %ld callbacks)", ret,
			      mrc_last_error(), module_stat("callbacks"));
		ck_assert_int_eq(mrc_put(cache, r), 0);
		pthread_rwlock_unlock(&rc->lock[i]);
		atomic_fetch_add(&rc->gets, 1);
	}
	return NULL;
}

static void *race_remapper(void *arg)
{
	struct race *rc = arg;
	unsigned int seed = 12345;

	while (!atomic_load(&rc->stop)) {
		int i = rand_r(&seed) % RACE_RANGES;
		char *p = race_range(rc, i), *fresh;
		long gets = atomic_load(&rc->gets);

		/*
		 * One remap per RACE_GETS_PER_REMAP gets at most: a remap is
		 * cheap now, and more of them would only turn gets into
		 * misses and slow the case down (under TSan past its timeout).
		 */
		while (atomic_load(&rc->gets) < gets + RACE_GETS_PER_REMAP &&
		       !atomic_load(&rc->stop))
			sched_yield();
		pthread_rwlock_wrlock(&rc->lock[i]);
		/*
		 * Fault new pages in while the old ones are alive (so they
		 * cannot reuse the old frames), then move them over the old
		 * ones in one call. Never unmap first and map at the address
		 * after: another thread's mmap (a sanitizer's, a stack) may
		 * take the hole in between, and MAP_FIXED would replace it.
		 */
		fresh = map_pages(NULL, RACE_PAGES, 0);
		ck_assert_ptr_eq(mremap(fresh, RACE_PAGES * page, RACE_PAGES * page,
					MREMAP_MAYMOVE | MREMAP_FIXED, p), p);
		pthread_rwlock_unlock(&rc->lock[i]);
		atomic_fetch_add(&rc->remaps, 1);
	}
	return NULL;
}

/*
 * Run until enough happened rather than for a set time: under TCG on a busy
 * machine three seconds can be a few hundred gets. Bounded by the test's
 * timeout.
 */
static void race_until_enough(struct race *rc)
{
	struct timespec tenth = { 0, 100000000 };

	while (atomic_load(&rc->gets) < 2000 || atomic_load(&rc->remaps) < 100)
		nanosleep(&tenth, NULL);
}

START_TEST(concurrent_remaps_never_serve_stale_pages)
{
	struct race rc = { 0 };
	pthread_t getters[3], remapper;
	struct mrc_stats s;

	if (geteuid() != 0) {
		cannot_run_here("race test: needs root for /proc/self/pagemap frames");
		return;
	}
	ck_assert_int_eq(mrc_cache_destroy(cache), 0);
	setenv("MRCACHE_CHECK_PFN", "2", 1);
	make_cache(0);
	unsetenv("MRCACHE_CHECK_PFN");
	rc.base = map_pages(NULL, RACE_RANGES * (RACE_PAGES + 1), 0);
	for (int i = 0; i < RACE_RANGES; i++)
		pthread_rwlock_init(&rc.lock[i], NULL);
	for (int t = 0; t < 3; t++)
		ck_assert_int_eq(pthread_create(&getters[t], NULL, race_getter, &rc), 0);
	ck_assert_int_eq(pthread_create(&remapper, NULL, race_remapper, &rc), 0);
	race_until_enough(&rc);
	atomic_store(&rc.stop, 1);
	for (int t = 0; t < 3; t++)
		pthread_join(getters[t], NULL);
	pthread_join(remapper, NULL);
	s = stats();
	fprintf(stderr, "race: %ld gets, %ld remaps, %lu invalidations, %lu misses\n",
		atomic_load(&rc.gets), atomic_load(&rc.remaps),
		(unsigned long)s.invalidations, (unsigned long)s.misses);
	ck_assert_uint_gt(s.invalidations, 0);
	ck_assert_uint_gt(atomic_load(&rc.gets), 1000);
	munmap(rc.base, RACE_RANGES * (RACE_PAGES + 1) * page);
}
END_TEST

/*
 * The run's references: thread refs by default. Without private expedited
 * membarrier they would fall back to the compare-and-swap, and the cases
 * below would test it twice and thread refs never: refuse that.
 */
static void setup_run_refs(void)
{
	ck_assert_msg(mrc_trefs_env_off(getenv("MRCACHE_THREAD_REFS")) ||
		      mrc_trefs_membarrier_ok(),
		      "no private expedited membarrier: thread refs would be off");
	setup();
}

/*
 * Compare-and-swap references (MRCACHE_THREAD_REFS=0), pinned: the cases
 * where regions die while hits take and drop references, the race above
 * among them, once more on the fallback path, which a kernel without
 * membarrier and every opted-out program use.
 */
static void setup_cas_refs(void)
{
	setenv("MRCACHE_THREAD_REFS", "0", 1);
	setup();
}

static TCase *cas_refs_cases(void)
{
	const TTest *const tests[] = {
		munmap_drops_region, referenced_region_dies_at_last_put,
		many_regions_then_unmap_all, hit_proves_itself_while_lock_is_held,
		destroy_while_progress_thread_drains,
		concurrent_remaps_never_serve_stale_pages,
	};
	TCase *tc = tcase_create("cas_refs");

	tcase_add_checked_fixture(tc, setup_cas_refs, teardown);
	tcase_set_timeout(tc, 60);
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
		tcase_add_test(tc, tests[i]);
	return tc;
}

int main(void)
{
	Suite *s = suite_create("monitor_kmod");
	TCase *tc = tcase_create("events");
	SRunner *sr;
	int failed;

	if (access("/dev/mrcache", R_OK | W_OK)) {
		fprintf(stderr, "monitor_kmod_test: /dev/mrcache unavailable (%s): skipped\n",
			strerror(errno));
		return 77;
	}
	tcase_add_checked_fixture(tc, setup_run_refs, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, kmod_monitor_is_used);
	tcase_add_test(tc, munmap_drops_region);
	tcase_add_test(tc, partial_munmap_drops_region);
	tcase_add_test(tc, madvise_dontneed_drops_region);
	tcase_add_test(tc, mremap_drops_region);
	tcase_add_test(tc, brk_shrink_drops_region);
	tcase_add_test(tc, mprotect_keeps_region);
	tcase_add_test(tc, referenced_region_dies_at_last_put);
	tcase_add_test(tc, progress_thread_releases_idle_regions);
	tcase_add_test(tc, many_regions_then_unmap_all);
	tcase_add_test(tc, hit_proves_itself_while_lock_is_held);
	tcase_add_test(tc, two_caches_in_one_process);
	tcase_add_test(tc, destroy_in_child_keeps_child_memory);
	tcase_add_test(tc, registration_raced_by_a_remap_is_retried);
	tcase_add_test(tc, registration_that_always_races_fails_with_eagain);
	tcase_add_test(tc, destroy_while_progress_thread_drains);
	tcase_add_test(tc, concurrent_remaps_never_serve_stale_pages);
	suite_add_tcase(s, tc);
	suite_add_tcase(s, cas_refs_cases());
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
