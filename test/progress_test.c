// SPDX-License-Identifier: BSD-2-Clause
/*
 * The progress thread without the kernel module, with the fake provider:
 * the idle bound releases a registration nobody uses (manual and hooks
 * monitors), never one in use or used within the bound, and with the
 * hooks monitor the thread drains an munmap for a process that makes no
 * further cache call. Also the settings that go with it.
 *
 * Nothing here calls the cache while waiting: the provider's own count of
 * live registrations is what is watched, so only the thread can have
 * released them.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "cache_check.h"
#include "fake_provider.h"
#include "mrcache.h"

#define IDLE_MS 200
#define WAIT_MS 10000	/* TCG and sanitizers: generous, never reached when right */

static struct fake_provider fake;
static struct mrc_cache *cache;
static char *buf;
static size_t page;

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static size_t live(void)
{
	return fake_read(&fake, &fake.live);
}

/* Wait until the provider has @n live registrations; returns when, or 0. */
static uint64_t wait_live(size_t n)
{
	uint64_t start = now_ms();

	while (live() != n) {
		if (now_ms() - start > WAIT_MS)
			return 0;
		sleep_ms(5);
	}
	return now_ms();
}

static void make(uint32_t monitor, uint64_t idle_ms)
{
	struct mrc_provider prov = fake_provider(&fake);
	struct mrc_cache_attr attr = {
		.comp_mask = MRC_ATTR_MONITOR | MRC_ATTR_PROGRESS_THREAD |
			     MRC_ATTR_IDLE_TIMEOUT,
		.monitor = monitor,
		.progress_thread = 1,
		.idle_timeout_ms = idle_ms,
	};
	int ret = mrc_cache_create(&prov, &attr, &cache);

	ck_assert_msg(ret == 0, "mrc_cache_create: %s", mrc_last_error());
}

static void setup(void)
{
	page = (size_t)sysconf(_SC_PAGESIZE);
	buf = mmap(NULL, 8 * page, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(buf, MAP_FAILED);
	fake_init(&fake);
	cache = NULL;
}

static void teardown(void)
{
	fake_teardown(cache, &fake);
	if (buf)
		munmap(buf, 8 * page);
	unsetenv("MRCACHE_IDLE_TIMEOUT");
}

/*
 * Released after the bound, not before. "Not before" is checked only
 * while less than the bound has passed on the test's own clock, so a
 * descheduled test cannot make it fail.
 */
static void assert_released_after_bound(uint64_t put_at)
{
	uint64_t released;

	sleep_ms(IDLE_MS / 2);
	if (now_ms() - put_at < IDLE_MS)
		ck_assert_msg(live() == 1, "released %llu ms after the put, bound %d ms",
			      (unsigned long long)(now_ms() - put_at), IDLE_MS);
	released = wait_live(0);
	ck_assert_msg(released, "an idle registration stayed for %d ms with a %d ms idle bound",
		      WAIT_MS, IDLE_MS);
	ck_assert_uint_ge(released - put_at, IDLE_MS);
}

static void idle_released(uint32_t monitor)
{
	struct mrc_stats s;
	uint64_t put_at;

	make(monitor, IDLE_MS);
	cache_put_ok(cache, cache_get_ok(cache, buf, page, 0));
	put_at = now_ms();
	assert_released_after_bound(put_at);
	s = cache_stats_ok(cache);
	ck_assert_uint_eq(s.evictions, 1);
	ck_assert_uint_eq(s.dereg_calls, 1);
	ck_assert_uint_eq(s.regions, 0);
}

START_TEST(idle_region_released_manual)
{
	idle_released(MRC_MONITOR_MANUAL);
}
END_TEST

START_TEST(idle_region_released_hooks)
{
	idle_released(MRC_MONITOR_HOOKS);
}
END_TEST

/* A region held by the program is never released, however long. */
START_TEST(held_region_stays)
{
	struct mrc_region *r;
	uint64_t put_at;

	make(MRC_MONITOR_MANUAL, IDLE_MS);
	r = cache_get_ok(cache, buf, page, 0);
	sleep_ms(4 * IDLE_MS);
	ck_assert_uint_eq(live(), 1);
	cache_put_ok(cache, r);
	put_at = now_ms();
	assert_released_after_bound(put_at);
}
END_TEST

/* A region hit more often than the bound stays registered: no re-registration. */
START_TEST(used_region_stays)
{
	uint64_t put_at = 0, gap = 0;

	make(MRC_MONITOR_MANUAL, IDLE_MS);
	for (int i = 0; i < 16; i++) {
		uint64_t t = now_ms();

		if (put_at && t - put_at > gap)
			gap = t - put_at;
		cache_put_ok(cache, cache_get_ok(cache, buf, page, 0));
		put_at = now_ms();
		sleep_ms(IDLE_MS / 4);
	}
	/* Only a test descheduled for the whole bound may see a second one. */
	if (gap < IDLE_MS)
		ck_assert_uint_eq(fake.count, 1);
	assert_released_after_bound(put_at);
}
END_TEST

/*
 * With the hooks and no idle bound, the thread drains an munmap that no
 * cache call follows: the registration of the unmapped pages goes.
 */
START_TEST(hooks_thread_drains_munmap)
{
	make(MRC_MONITOR_HOOKS, 0);
	cache_put_ok(cache, cache_get_ok(cache, buf, 2 * page, 0));
	ck_assert_uint_eq(live(), 1);
	ck_assert_int_eq(munmap(buf, 8 * page), 0);
	buf = NULL;
	ck_assert_msg(wait_live(0), "the progress thread left an unmapped registration for %d ms",
		      WAIT_MS);
	ck_assert_uint_eq(cache_stats_ok(cache).invalidations, 1);
}
END_TEST

/* MRCACHE_IDLE_TIMEOUT alone starts the thread that enforces it. */
START_TEST(environment_idle_bound_starts_thread)
{
	struct mrc_provider prov = fake_provider(&fake);
	struct mrc_cache_attr attr = {
		.comp_mask = MRC_ATTR_MONITOR, .monitor = MRC_MONITOR_MANUAL,
	};

	setenv("MRCACHE_IDLE_TIMEOUT", "200ms", 1);
	ck_assert_int_eq(mrc_cache_create(&prov, &attr, &cache), 0);
	cache_put_ok(cache, cache_get_ok(cache, buf, page, 0));
	assert_released_after_bound(now_ms());
}
END_TEST

static int create_with(struct mrc_cache_attr *attr)
{
	return fake_create_status(&fake, attr);
}

START_TEST(bad_settings_refused)
{
	struct mrc_cache_attr attr = {
		.comp_mask = MRC_ATTR_PROGRESS_THREAD | MRC_ATTR_IDLE_TIMEOUT,
		.progress_thread = 0, .idle_timeout_ms = 1000,
	};
	static const char *const bad[] = { "soon", "-1", "10x", "25d", "1e3",
					   "3000000000ms", "" };

	ck_assert_int_eq(create_with(&attr), -EINVAL);
	ck_assert_ptr_nonnull(strstr(mrc_last_error(), "idle_timeout_ms"));
	attr.progress_thread = 1;
	attr.idle_timeout_ms = 25ull * 24 * 3600 * 1000;
	ck_assert_int_eq(create_with(&attr), -EINVAL);
	ck_assert_ptr_nonnull(strstr(mrc_last_error(), "24 days"));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		setenv("MRCACHE_IDLE_TIMEOUT", bad[i], 1);
		ck_assert_msg(create_with(NULL) == -EINVAL, "accepted MRCACHE_IDLE_TIMEOUT=\"%s\"",
			      bad[i]);
		ck_assert_ptr_nonnull(strstr(mrc_last_error(), "MRCACHE_IDLE_TIMEOUT"));
	}
	setenv("MRCACHE_IDLE_TIMEOUT", "inf", 1);
	ck_assert_int_eq(create_with(NULL), 0);
}
END_TEST

int main(void)
{
	const TTest *const tests[] = {
		idle_region_released_manual, idle_region_released_hooks,
		held_region_stays, used_region_stays,
		hooks_thread_drains_munmap,
		environment_idle_bound_starts_thread, bad_settings_refused,
	};
	Suite *s = suite_create("progress");
	TCase *tc = tcase_create("progress");

	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, setup, teardown);
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
		tcase_add_test(tc, tests[i]);
	suite_add_tcase(s, tc);
	return check_run_suite(s);
}
