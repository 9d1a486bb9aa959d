// SPDX-License-Identifier: BSD-2-Clause
/*
 * The kernel monitor's ring protocol against a user-space stand-in for the
 * module (fake_kmod.c), so interleavings the module allows can be forced:
 *
 * - An overflow counted after a drain read the overflow counter must not be
 *   missed. The interleaving: the ring is full; the kernel, unmapping X,
 *   bumps X's generation and finds the ring full; a drain consumes the
 *   queued events and reads the old overflow count; the kernel counts the
 *   overflow and munmap returns. X's watch is invalid and posts nothing
 *   more, so only the overflow says X is stale. A gate that compares the
 *   producer index alone (it does not move on an overflow) then serves X.
 *   Forced step by step, then raced with real threads.
 *
 * The real module is checked for its half (the sequence word moves on an
 * overflow) by test/kmod/t_sequence.c, and the library against it by
 * monitor_kmod_test and monitor_verbs_test in the VM.
 */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "cache_check.h"
#include "fake_kmod.h"
#include "fake_provider.h"
#include "mrcache.h"

/* The ring's entries, plus the region that overflows it. */
#define NPAGES (FK_ENTRIES + 1)

static struct fake_provider fake;
static struct mrc_cache *cache;
static char *pages;
static size_t page;

static void setup(void)
{
	struct mrc_provider prov;
	struct mrc_cache_attr attr = {
		.comp_mask = MRC_ATTR_MONITOR | MRC_ATTR_MERGE,
		.monitor = MRC_MONITOR_KMOD,
		.merge = MRC_MERGE_NONE,
	};
	int ret;

	page = (size_t)sysconf(_SC_PAGESIZE);
	fk_reset();
	fake_init(&fake);
	prov = fake_provider(&fake);
	ret = mrc_cache_create(&prov, &attr, &cache);
	ck_assert_msg(ret == 0, "create: %s", mrc_last_error());
	pages = mmap(NULL, NPAGES * page, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(pages, MAP_FAILED);
}

static void teardown(void)
{
	ck_assert_int_eq(mrc_cache_destroy(cache), 0);
	ck_assert_uint_eq(fake.live, 0);
	ck_assert_uint_eq(fake.double_deregs, 0);
	fake_fini(&fake);
	munmap(pages, NPAGES * page);
}

static char *page_at(int i)
{
	return pages + (size_t)i * page;
}

/* Cache page @i idle; returns the registration's handle. */
static void *cache_page(int i)
{
	struct mrc_region *r = cache_get_ok(cache, page_at(i), page, 0);
	void *handle = mrc_region_handle(r);

	cache_put_ok(cache, r);
	return handle;
}

static int watch_of(int i)
{
	int id = fk_watch_at(page_at(i));

	ck_assert_int_ge(id, 0);
	return id;
}

/* Whether a get of page @i still hands out registration @handle. */
static int served_stale(int i, void *handle)
{
	struct mrc_region *r = cache_get_ok(cache, page_at(i), page, 0);
	int stale = mrc_region_handle(r) == handle;

	cache_put_ok(cache, r);
	return stale;
}

START_TEST(overflow_after_drain_is_not_missed)
{
	void *x;
	int i;

	for (i = 0; i < FK_ENTRIES; i++)
		cache_page(i);
	x = cache_page(FK_ENTRIES);
	for (i = 0; i < FK_ENTRIES; i++)
		fk_invalidate(watch_of(i));
	ck_assert_uint_eq(fk_pending(), FK_ENTRIES);

	ck_assert(fk_invalidate_begin(watch_of(FK_ENTRIES)));
	ck_assert_int_eq(mrc_cache_progress(cache), 0);	/* the drain */
	ck_assert_uint_eq(fk_pending(), 0);
	fk_invalidate_end();				/* munmap returns */

	ck_assert_msg(!served_stale(FK_ENTRIES, x),
		      "a hit served the registration of memory that was unmapped");
	ck_assert(!fake_handle_live(&fake, x));
}
END_TEST

/*
 * The same with real threads: a drainer calls mrc_cache_progress() in a
 * loop while the test, as the kernel, fills the ring and unmaps X, then as
 * the application asks for X once the unmap has returned.
 */
static atomic_int stop;

static void *drainer(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop))
		ck_assert_int_eq(mrc_cache_progress(cache), 0);
	return NULL;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int race_round(void)
{
	void *x;
	int i;

	for (i = 0; i < FK_ENTRIES; i++)
		cache_page(i);
	x = cache_page(FK_ENTRIES);
	for (i = 0; i < FK_ENTRIES; i++) {
		int id = fk_watch_at(page_at(i));

		/* The drainer may have dropped it already (an overflow). */
		if (id >= 0)
			fk_invalidate(id);
	}
	fk_invalidate(watch_of(FK_ENTRIES));
	return served_stale(FK_ENTRIES, x);
}

START_TEST(overflow_raced_by_a_drain_thread)
{
	double seconds = getenv("MRCACHE_RACE_SECONDS") ?
			 atof(getenv("MRCACHE_RACE_SECONDS")) : 3.0;
	double end = now_s() + seconds;
	long rounds = 0, stale = 0;
	pthread_t t;

	atomic_store(&stop, 0);
	ck_assert_int_eq(pthread_create(&t, NULL, drainer, NULL), 0);
	while (now_s() < end) {
		stale += race_round();
		rounds++;
	}
	atomic_store(&stop, 1);
	pthread_join(t, NULL);
	fprintf(stderr, "overflow race: %ld rounds, %ld stale hits\n", rounds,
		stale);
	ck_assert_int_gt(rounds, 100);
	ck_assert_msg(stale == 0, "%ld of %ld rounds served an unmapped registration",
		      stale, rounds);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("monitor_ring");
	TCase *tc = tcase_create("overflow");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, overflow_after_drain_is_not_missed);
	tcase_add_test(tc, overflow_raced_by_a_drain_thread);
	suite_add_tcase(s, tc);
	return check_run_suite(s);
}
