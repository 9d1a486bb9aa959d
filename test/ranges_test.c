// SPDX-License-Identifier: BSD-2-Clause
/*
 * The runtime shims' watched ranges (src/shim/ranges.c) with the hooks
 * monitor, natively: a change is reported once with the range as the
 * runtime named it (not rounded), by a synchronous drain or by the drain
 * thread; a range watched again after it changed gets a fresh watch and
 * the old report is skipped; refcounts; forget; lock-free checks racing
 * with watches, unwatches and the drain thread's drops.
 *
 * ranges_test kmod (test/ranges_kmod.sh, with the module): the trim path,
 * when the module's watch slots run out.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cache_check.h"
#include "shim/index.h"
#include "shim/ranges.h"

static size_t page;
static struct mrc_ranges *r;
static void *seen_addr;
static size_t seen_len;
static int seen;

static void changed(void *arg, void *addr, size_t len)
{
	(void)arg;
	seen_addr = addr;
	seen_len = len;
	__atomic_add_fetch(&seen, 1, __ATOMIC_RELEASE);
}

static char *map_pages(size_t n)
{
	char *p = mmap(NULL, n * page, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	ck_assert(p != MAP_FAILED);
	return p;
}

static const char *monitor = "hooks";

static void open_ranges_with(mrc_ranges_fn fn, int thread)
{
	setenv("MRCACHE_MONITOR", monitor, 1);
	ck_assert_int_eq(mrc_ranges_open(&r, fn, NULL, thread), 0);
	ck_assert_str_eq(mrc_ranges_monitor(r), monitor);
	seen = 0;
}

static void open_ranges(int thread)
{
	open_ranges_with(changed, thread);
}

START_TEST(change_reported_once_as_named)
{
	char *p = map_pages(3);

	open_ranges(0);
	ck_assert_int_eq(mrc_ranges_watch(r, p + 100, 2 * page), 0);
	ck_assert_int_eq(mrc_ranges_check(r, p + 100, 2 * page), 1);
	ck_assert_int_eq(mrc_ranges_check(r, p, 2 * page), 0);	/* not watched */
	ck_assert(!mrc_ranges_pending(r));
	ck_assert(mrc_ranges_settled(r));
	ck_assert_int_eq(munmap(p, 3 * page), 0);
	ck_assert(mrc_ranges_pending(r));
	ck_assert(!mrc_ranges_settled(r));
	ck_assert_int_eq(mrc_ranges_check(r, p + 100, 2 * page), -ESTALE);
	ck_assert_int_eq(mrc_ranges_drain(r), 1);
	ck_assert(mrc_ranges_settled(r));
	ck_assert_int_eq(seen, 1);
	ck_assert_ptr_eq(seen_addr, p + 100);
	ck_assert_uint_eq(seen_len, 2 * page);
	ck_assert_int_eq(mrc_ranges_check(r, p + 100, 2 * page), 0);	/* dropped */
	ck_assert_int_eq(mrc_ranges_drain(r), 0);
	mrc_ranges_close(r);
}
END_TEST

/* Watched again after the change: the old watch's report is skipped. */
START_TEST(rewatch_replaces_a_changed_watch)
{
	char *p = map_pages(1);

	open_ranges(0);
	ck_assert_int_eq(mrc_ranges_watch(r, p, page), 0);
	ck_assert_int_eq(munmap(p, page), 0);
	ck_assert(mmap(p, page, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) == p);
	ck_assert_int_eq(mrc_ranges_watch(r, p, page), 0);
	ck_assert_int_eq(mrc_ranges_check(r, p, page), 1);
	mrc_ranges_drain(r);
	ck_assert_int_eq(seen, 0);
	ck_assert_int_eq(mrc_ranges_check(r, p, page), 1);
	munmap(p, page);
	mrc_ranges_close(r);
}
END_TEST

/*
 * While a change is being reported, a check of its range says -ESTALE, not
 * 0: the UCX shim takes 0 for a region UCX has just made and watches it,
 * so a 0 there would let UCX use the stale registration it still holds,
 * the report not being there yet.
 */
static int state_in_report;

static void check_in_report(void *arg, void *addr, size_t len)
{
	state_in_report = mrc_ranges_check(r, addr, len);
	changed(arg, addr, len);
}

START_TEST(stale_until_reported)
{
	char *p = map_pages(1);

	open_ranges_with(check_in_report, 0);
	ck_assert_int_eq(mrc_ranges_watch(r, p, page), 0);
	ck_assert_int_eq(munmap(p, page), 0);
	ck_assert_int_eq(mrc_ranges_drain(r), 1);
	ck_assert_int_eq(seen, 1);
	ck_assert_int_eq(state_in_report, -ESTALE);
	ck_assert_int_eq(mrc_ranges_check(r, p, page), 0);	/* dropped after */
	mrc_ranges_close(r);
}
END_TEST

START_TEST(unwatch_counts_and_forget)
{
	char *p = map_pages(1);

	open_ranges(0);
	ck_assert_int_eq(mrc_ranges_watch(r, p, page), 0);
	ck_assert_int_eq(mrc_ranges_watch(r, p, page), 0);
	mrc_ranges_unwatch(r, p, page);
	ck_assert_int_eq(mrc_ranges_check(r, p, page), 1);
	mrc_ranges_unwatch(r, p, page);
	ck_assert_int_eq(mrc_ranges_check(r, p, page), 0);
	ck_assert_int_eq(mrc_ranges_watch(r, p, page), 0);
	mrc_ranges_forget(r, p, page);
	ck_assert_int_eq(munmap(p, page), 0);
	mrc_ranges_drain(r);
	ck_assert_int_eq(seen, 0);
	mrc_ranges_close(r);
}
END_TEST

START_TEST(drain_thread_reports)
{
	char *p = map_pages(2);

	open_ranges(1);
	ck_assert_int_eq(mrc_ranges_watch(r, p, 2 * page), 0);
	ck_assert_int_eq(munmap(p, 2 * page), 0);
	for (int i = 0; i < 5000 && !__atomic_load_n(&seen, __ATOMIC_ACQUIRE); i++)
		usleep(1000);
	ck_assert_int_eq(__atomic_load_n(&seen, __ATOMIC_ACQUIRE), 1);
	ck_assert_ptr_eq(seen_addr, p);
	mrc_ranges_close(r);
}
END_TEST

/*
 * The index alone: keys sharing an address differ by length; the table
 * grows past its first size; removals shift later entries back so every
 * remaining key is still found with its own watchpoint.
 */
#define INDEX_KEYS 500

static int index_has(struct mrc_index *x, uintptr_t addr, size_t len)
{
	struct mrc_watchpoint wp;

	if (!mrc_index_find(x, addr, len, &wp))
		return 0;
	ck_assert_uint_eq(wp.generation, len);	/* its own, not a neighbour's */
	ck_assert_uint_eq(wp.start, addr);
	return 1;
}

START_TEST(index_finds_each_key_through_growth_and_removal)
{
	static const uint64_t word;
	struct mrc_index x;
	uintptr_t addr = 0x7f0000001000;

	mrc_index_init(&x);
	for (size_t len = 1; len <= INDEX_KEYS; len++) {
		struct mrc_watchpoint wp = { .start = addr, .end = addr + len,
					     .word = &word, .generation = len };

		ck_assert_int_eq(mrc_index_insert(&x, addr, len, &wp), 0);
	}
	ck_assert(!index_has(&x, addr + 1, 1));
	for (size_t len = 1; len <= INDEX_KEYS; len += 2)
		mrc_index_remove(&x, addr, len);
	for (size_t len = 1; len <= INDEX_KEYS; len++)
		ck_assert_int_eq(index_has(&x, addr, len), len % 2 == 0);
	for (size_t len = 2; len <= INDEX_KEYS; len += 2)
		mrc_index_remove(&x, addr, len);
	for (size_t len = 1; len <= INDEX_KEYS; len++)
		ck_assert(!index_has(&x, addr, len));
	mrc_index_destroy(&x);
}
END_TEST

/*
 * Checks run lock-free while another thread adds and removes watches (the
 * index grows and shifts) and the drain thread drops fired ones. Two
 * ranges share an address: S = one page, V = two pages. Once the second
 * page is unmapped, no check of V may say valid (a lookup that mixed up
 * the two would), and S, never changed, is never stale and never missed
 * (removals shift the entries around it).
 */
#define RACE_KEYS 300		/* ranges churned per round: the index grows */
#define RACE_ROUNDS 200
#define RACE_CHECKERS 2

static struct {
	char *p;
	int victim_changed;	/* set after V's second page went */
	int stop;
	int stable_stale, stable_missed, stable_valid, victim_valid_after;
} race;

static void *checker_main(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&race.stop, __ATOMIC_ACQUIRE)) {
		int changed = __atomic_load_n(&race.victim_changed,
					      __ATOMIC_ACQUIRE);
		int s = mrc_ranges_check(r, race.p, page);
		int v = mrc_ranges_check(r, race.p, 2 * page);

		if (s == -ESTALE)
			__atomic_add_fetch(&race.stable_stale, 1, __ATOMIC_RELAXED);
		if (s == 0)
			__atomic_add_fetch(&race.stable_missed, 1, __ATOMIC_RELAXED);
		if (s == 1)
			__atomic_add_fetch(&race.stable_valid, 1, __ATOMIC_RELAXED);
		if (changed && v == 1)
			__atomic_add_fetch(&race.victim_valid_after, 1,
					   __ATOMIC_RELAXED);
	}
	return NULL;
}

/* One round: many keys in, a watched page replaced (the drain drops it), keys out. */
static void churn_round(char *base)
{
	for (size_t k = 1; k <= RACE_KEYS; k++)
		ck_assert_int_eq(mrc_ranges_watch(r, base, k), 0);
	ck_assert_int_eq(mrc_ranges_watch(r, base + page, page), 0);
	ck_assert_int_eq(munmap(base + page, page), 0);
	ck_assert(mmap(base + page, page, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) ==
		  base + page);
	for (size_t k = 1; k <= RACE_KEYS; k++)
		mrc_ranges_unwatch(r, base, k);
}

START_TEST(checks_race_with_changes)
{
	pthread_t checkers[RACE_CHECKERS];
	char *p = map_pages(4);

	open_ranges(1);
	race.p = p;
	ck_assert_int_eq(mrc_ranges_watch(r, p, page), 0);
	ck_assert_int_eq(mrc_ranges_watch(r, p, 2 * page), 0);
	for (int i = 0; i < RACE_CHECKERS; i++)
		ck_assert_int_eq(pthread_create(&checkers[i], NULL, checker_main, NULL), 0);
	for (int round = 0; round < RACE_ROUNDS; round++) {
		if (round == RACE_ROUNDS / 2) {
			ck_assert_int_eq(munmap(p + page, page), 0);
			__atomic_store_n(&race.victim_changed, 1, __ATOMIC_RELEASE);
		}
		churn_round(p + 2 * page);
	}
	__atomic_store_n(&race.stop, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < RACE_CHECKERS; i++)
		pthread_join(checkers[i], NULL);
	ck_assert_int_eq(race.stable_stale, 0);
	ck_assert_int_eq(race.stable_missed, 0);	/* found through every shift */
	ck_assert_int_eq(race.victim_valid_after, 0);
	ck_assert_int_gt(race.stable_valid, 0);
	ck_assert_int_eq(mrc_ranges_check(r, p, page), 1);
	ck_assert_int_ne(mrc_ranges_check(r, p, 2 * page), 1);
	mrc_ranges_close(r);
}
END_TEST

/*
 * mrc_ranges_settled() (libfabric's valid() answers from it alone) must
 * not say 1 from the moment a change is seen until its report has run:
 * the drain thread's callback sleeps, so a check that looked only at
 * what is pending would see nothing pending while the report is still
 * under way. Rounds are numbered; a checker that saw round N's munmap
 * return and then a settled answer must also see round N's report done.
 */
#define SETTLE_ROUNDS 20
#define SETTLE_CHECKERS 2

static struct {
	int changed_round, reported_round, stop;
	int early, settled;
} settle;

static void changed_slowly(void *arg, void *addr, size_t len)
{
	(void)arg;
	(void)addr;
	(void)len;
	usleep(20000);
	__atomic_add_fetch(&settle.reported_round, 1, __ATOMIC_RELEASE);
}

static void *settle_checker_main(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&settle.stop, __ATOMIC_ACQUIRE)) {
		int changed = __atomic_load_n(&settle.changed_round,
					      __ATOMIC_ACQUIRE);

		if (!mrc_ranges_settled(r))
			continue;
		__atomic_add_fetch(&settle.settled, 1, __ATOMIC_RELAXED);
		if (__atomic_load_n(&settle.reported_round, __ATOMIC_ACQUIRE) <
		    changed)
			__atomic_add_fetch(&settle.early, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

START_TEST(settled_waits_for_the_report)
{
	pthread_t checkers[SETTLE_CHECKERS];

	open_ranges_with(changed_slowly, 1);
	for (int i = 0; i < SETTLE_CHECKERS; i++)
		ck_assert_int_eq(pthread_create(&checkers[i], NULL,
						settle_checker_main, NULL), 0);
	for (int round = 1; round <= SETTLE_ROUNDS; round++) {
		char *p = map_pages(1);

		ck_assert_int_eq(mrc_ranges_watch(r, p, page), 0);
		ck_assert_int_eq(munmap(p, page), 0);
		__atomic_store_n(&settle.changed_round, round, __ATOMIC_RELEASE);
		while (__atomic_load_n(&settle.reported_round, __ATOMIC_ACQUIRE) < round)
			usleep(1000);
	}
	__atomic_store_n(&settle.stop, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < SETTLE_CHECKERS; i++)
		pthread_join(checkers[i], NULL);
	ck_assert_int_eq(settle.early, 0);
	ck_assert_int_gt(settle.settled, 0);
	for (int i = 0; i < 5000 && !mrc_ranges_settled(r); i++)
		usleep(1000);	/* the drain returns after its last report */
	ck_assert(mrc_ranges_settled(r));
	mrc_ranges_close(r);
}
END_TEST

/*
 * Trimming (kmod: the module's watch slots run out). libfabric never
 * unwatches host memory, so when the monitor is full the oldest quarter
 * of the watches is reported as changed (the runtime drops those
 * registrations) and dropped, which makes room.
 */
#define TRIM_MAX_PAGES (1u << 17)	/* the module's slots, at most */

static pthread_mutex_t reported_lock = PTHREAD_MUTEX_INITIALIZER;
static void **reported;
static size_t nreported;

static void record(void *arg, void *addr, size_t len)
{
	ck_assert_uint_eq(len, page);
	pthread_mutex_lock(&reported_lock);
	if (nreported < TRIM_MAX_PAGES)
		reported[nreported++] = addr;
	pthread_mutex_unlock(&reported_lock);
	changed(arg, addr, len);
}

static int count_reported(void *addr)
{
	int n = 0;

	for (size_t i = 0; i < nreported; i++)
		n += reported[i] == addr;
	return n;
}

/* Untouched memory for one watch per page: address space, no RAM. */
static char *map_unbacked(size_t pages)
{
	char *p = mmap(NULL, pages * page, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	ck_assert(p != MAP_FAILED);
	return p;
}

/* Watch page after page until the module is full; return how many fit. */
static size_t fill(char *p)
{
	size_t n = 0;
	int ret;

	reported = calloc(TRIM_MAX_PAGES, sizeof(*reported));
	ck_assert_ptr_nonnull(reported);
	nreported = 0;
	while (n < TRIM_MAX_PAGES && !(ret = mrc_ranges_watch(r, p + n * page, page)))
		n++;
	ck_assert_int_eq(ret, -ENOSPC);
	ck_assert_uint_gt(n, 4);
	return n;
}

START_TEST(trim_reports_and_drops_the_oldest)
{
	char *p = map_unbacked(TRIM_MAX_PAGES + 1);
	size_t n, k;

	open_ranges_with(record, 0);
	n = fill(p);
	ck_assert(mrc_ranges_pending(r));
	ck_assert_int_eq(mrc_ranges_drain(r), (int)(n / 4 + 1));
	k = nreported;
	ck_assert_uint_eq(k, n / 4 + 1);
	for (size_t i = 0; i < k; i++) {
		ck_assert_ptr_eq(reported[i], p + i * page);	/* oldest first */
		ck_assert_int_eq(mrc_ranges_check(r, p + i * page, page), 0);
	}
	for (size_t i = k; i < n; i++)
		ck_assert_int_eq(mrc_ranges_check(r, p + i * page, page), 1);
	ck_assert(!mrc_ranges_pending(r));
	/* Room again: what did not fit is watched now. */
	ck_assert_int_eq(mrc_ranges_watch(r, p + n * page, page), 0);
	/*
	 * A trimmed range is not reported again; a kept one once. (Its
	 * neighbours may be too: in the guest, unmapping one page of the
	 * mapping invalidated every watched page of it.)
	 */
	nreported = 0;
	ck_assert_int_eq(munmap(p, page), 0);
	ck_assert_int_eq(munmap(p + k * page, page), 0);
	ck_assert_int_ge(mrc_ranges_drain(r), 1);
	ck_assert_int_eq(count_reported(p + k * page), 1);
	for (size_t i = 0; i < k; i++)
		ck_assert_int_eq(count_reported(p + i * page), 0);
	ck_assert_int_eq(mrc_ranges_check(r, p + k * page, page), 0);
	mrc_ranges_close(r);
	munmap(p, (TRIM_MAX_PAGES + 1) * page);
	free(reported);
}
END_TEST

START_TEST(drain_thread_trims)
{
	char *p = map_unbacked(TRIM_MAX_PAGES + 1);
	size_t n;

	open_ranges_with(record, 1);
	n = fill(p);
	for (int i = 0; i < 5000 && __atomic_load_n(&seen, __ATOMIC_ACQUIRE) <
	     (int)(n / 4 + 1); i++)
		usleep(1000);
	ck_assert_int_eq(__atomic_load_n(&seen, __ATOMIC_ACQUIRE), n / 4 + 1);
	pthread_mutex_lock(&reported_lock);
	ck_assert_ptr_eq(reported[0], p);
	pthread_mutex_unlock(&reported_lock);
	ck_assert_int_eq(mrc_ranges_watch(r, p + n * page, page), 0);
	mrc_ranges_close(r);
	munmap(p, (TRIM_MAX_PAGES + 1) * page);
	free(reported);
}
END_TEST

int main(int argc, char **argv)
{
	Suite *s = suite_create("ranges");
	TCase *tc = tcase_create("ranges");

	page = sysconf(_SC_PAGESIZE);
	tcase_set_timeout(tc, 60);
	if (argc > 1 && !strcmp(argv[1], "kmod")) {
		monitor = "kmod";
		if (access("/dev/mrcache", R_OK | W_OK)) {
			/* 77: the VM harness turns it into a failure where it must run. */
			fprintf(stderr, "ranges_test kmod: no /dev/mrcache here\n");
			return 77;
		}
		tcase_add_test(tc, trim_reports_and_drops_the_oldest);
		tcase_add_test(tc, drain_thread_trims);
		suite_add_tcase(s, tc);
		return check_run_suite(s);
	}
	tcase_add_test(tc, change_reported_once_as_named);
	tcase_add_test(tc, rewatch_replaces_a_changed_watch);
	tcase_add_test(tc, stale_until_reported);
	tcase_add_test(tc, unwatch_counts_and_forget);
	tcase_add_test(tc, drain_thread_reports);
	tcase_add_test(tc, index_finds_each_key_through_growth_and_removal);
	tcase_add_test(tc, checks_race_with_changes);
	tcase_add_test(tc, settled_waits_for_the_report);
	suite_add_tcase(s, tc);
	return check_run_suite(s);
}
