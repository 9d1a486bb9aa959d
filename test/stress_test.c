// SPDX-License-Identifier: BSD-2-Clause
/*
 * Eight threads get, hold, put and invalidate overlapping ranges of one
 * cache at once. Invariants checked on every operation: a region served
 * covers the request with the access asked for, and its registration is
 * still registered while referenced. At the end nothing is leaked or
 * deregistered twice and the hit/miss counts add up.
 */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fake_provider.h"
#include "mrcache.h"

#define THREADS 8
#define ARENA_PAGES 256
#define HELD_MAX 4

static struct fake_provider fake;
static struct mrc_cache *cache;
static char *arena;
static size_t page;
static long iterations;
static atomic_ulong total_gets;

struct held {
	struct mrc_region *region;
	uintptr_t start, end;
};

static uint64_t next_random(uint64_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return *state;
}

static void check_region(struct mrc_region *r, uintptr_t start, uintptr_t end,
			 uint32_t access)
{
	uintptr_t rs = (uintptr_t)mrc_region_addr(r);

	ck_assert_uint_le(rs, start);
	ck_assert_uint_ge(rs + mrc_region_length(r), end);
	ck_assert_uint_eq(mrc_region_access(r) & access, access);
	ck_assert_msg(fake_handle_live(&fake, mrc_region_handle(r)),
		      "region served after its registration was dropped");
}

static void take(struct held *h, uint64_t *rnd)
{
	uint64_t first = next_random(rnd) % (ARENA_PAGES - 8);
	uint64_t len = 1 + next_random(rnd) % (4 * page);
	uint32_t access = 1u << (next_random(rnd) % 3);
	char *addr = arena + first * page + next_random(rnd) % page;
	int ret;

	ret = mrc_get(cache, addr, len, access, &h->region);
	ck_assert_msg(ret == 0, "mrc_get: %s", mrc_last_error());
	h->start = (uintptr_t)addr;
	h->end = h->start + len;
	check_region(h->region, h->start, h->end, access);
	atomic_fetch_add_explicit(&total_gets, 1, memory_order_relaxed);
}

static void release(struct held *h)
{
	/* Still registered right up to the put. */
	ck_assert(fake_handle_live(&fake, mrc_region_handle(h->region)));
	ck_assert_int_eq(mrc_put(cache, h->region), 0);
	h->region = NULL;
}

static void *worker(void *arg)
{
	uint64_t rnd = 0x9e3779b97f4a7c15ull * ((uintptr_t)arg + 1);
	struct held held[HELD_MAX] = { 0 };

	for (long i = 0; i < iterations; i++) {
		struct held *h = &held[next_random(&rnd) % HELD_MAX];
		uint64_t dice = next_random(&rnd) % 1000;

		if (h->region)
			release(h);
		else
			take(h, &rnd);
		if (dice < 10) {
			uint64_t p = next_random(&rnd) % ARENA_PAGES;

			ck_assert_int_eq(mrc_invalidate(cache, arena + p * page, page), 0);
		} else if (dice == 10) {
			ck_assert_int_eq(mrc_cache_progress(cache), 0);
		}
	}
	for (int i = 0; i < HELD_MAX; i++)
		if (held[i].region)
			release(&held[i]);
	return NULL;
}

START_TEST(eight_threads_keep_invariants)
{
	struct mrc_provider prov = fake_provider(&fake);
	struct mrc_cache_attr attr = {
		.comp_mask = MRC_ATTR_MAX_REGIONS, .max_regions = 24,
	};
	pthread_t threads[THREADS];
	struct mrc_stats s;

	ck_assert_int_eq(mrc_cache_create(&prov, &attr, &cache), 0);
	for (long t = 0; t < THREADS; t++)
		ck_assert_int_eq(pthread_create(&threads[t], NULL, worker, (void *)t), 0);
	for (int t = 0; t < THREADS; t++)
		pthread_join(threads[t], NULL);

	ck_assert_int_eq(mrc_cache_stats(cache, &s), 0);
	fprintf(stderr, "stress: %lu gets, %lu hits, %lu misses, %lu merges, %lu evictions, %lu invalidations\n",
		(unsigned long)atomic_load(&total_gets), (unsigned long)s.hits,
		(unsigned long)s.misses, (unsigned long)s.merges,
		(unsigned long)s.evictions, (unsigned long)s.invalidations);
	ck_assert_uint_eq(s.hits + s.misses, atomic_load(&total_gets));
	ck_assert_uint_eq(s.regions, fake.live);
	ck_assert_uint_gt(s.invalidations, 0);
	ck_assert_uint_gt(s.evictions, 0);
	ck_assert_int_eq(mrc_cache_destroy(cache), 0);
	ck_assert_uint_eq(fake.live, 0);
	ck_assert_uint_eq(fake.double_deregs, 0);
	ck_assert_uint_eq(fake.count, fake.deregs);
}
END_TEST

/*
 * Hits racing with growth: threads register ever more distinct pages (no
 * bound), so the hint table and the region pool's chunk array are replaced
 * while other threads read them without the lock.
 */
#define GROWTH_PAGES 6000

static char *growth_arena;

static void *grower(void *arg)
{
	uint64_t rnd = 0x2545f4914f6cdd1dull * ((uintptr_t)arg + 1);

	for (long i = 0; i < iterations; i++) {
		uint64_t limit = 1 + (uint64_t)i * GROWTH_PAGES / iterations;
		uint64_t p = next_random(&rnd) % limit;
		char *addr = growth_arena + 2 * p * page;
		struct mrc_region *r;

		ck_assert_int_eq(mrc_get(cache, addr, page, 1, &r), 0);
		check_region(r, (uintptr_t)addr, (uintptr_t)addr + page, 1);
		ck_assert_int_eq(mrc_put(cache, r), 0);
		atomic_fetch_add_explicit(&total_gets, 1, memory_order_relaxed);
	}
	return NULL;
}

START_TEST(hits_race_with_index_growth)
{
	struct mrc_provider prov = fake_provider(&fake);
	struct mrc_cache_attr attr = {
		.comp_mask = MRC_ATTR_MERGE, .merge = MRC_MERGE_NONE,
	};
	pthread_t threads[4];
	struct mrc_stats s;

	atomic_store(&total_gets, 0);
	ck_assert_int_eq(mrc_cache_create(&prov, &attr, &cache), 0);
	for (long t = 0; t < 4; t++)
		ck_assert_int_eq(pthread_create(&threads[t], NULL, grower, (void *)t), 0);
	for (int t = 0; t < 4; t++)
		pthread_join(threads[t], NULL);
	ck_assert_int_eq(mrc_cache_stats(cache, &s), 0);
	ck_assert_uint_eq(s.hits + s.misses, atomic_load(&total_gets));
	ck_assert_uint_gt(s.regions, 1024);	/* the hint table grew */
	ck_assert_int_eq(mrc_cache_destroy(cache), 0);
	ck_assert_uint_eq(fake.live, 0);
	ck_assert_uint_eq(fake.double_deregs, 0);
}
END_TEST

int main(void)
{
	const char *env = getenv("MRCACHE_STRESS_ITERS");
	SRunner *sr;
	Suite *s;
	TCase *tc;
	int failed;

	page = (size_t)sysconf(_SC_PAGESIZE);
	iterations = env ? atol(env) : 100000;
	arena = mmap(NULL, ARENA_PAGES * page, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	growth_arena = mmap(NULL, 2 * GROWTH_PAGES * page, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (arena == MAP_FAILED || growth_arena == MAP_FAILED)
		return 1;
	fake_init(&fake);
	/* Both tests share the fake provider: room for every registration. */
	if (fake_reserve(&fake, (size_t)iterations * (THREADS + 4) + 16))
		return 1;
	s = suite_create("stress");
	tc = tcase_create("threads");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, eight_threads_keep_invariants);
	tcase_add_test(tc, hits_race_with_index_growth);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
