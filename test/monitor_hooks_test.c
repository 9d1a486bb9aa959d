// SPDX-License-Identifier: BSD-2-Clause
/*
 * The hooks monitor natively, with the fake provider: every libc call that
 * changes a mapping drops a cached registration of it before the call
 * returns, including the calls glibc makes itself from free() and
 * malloc_trim(), and the calls of a library loaded with dlopen() after
 * the hooks went in. The same scenario table run with the manual monitor must
 * serve the stale registration every time: that proves each scenario can
 * fail.
 *
 * Then what a hook must survive: firing on a thread that holds the cache
 * lock (the provider's deregistration unmapping memory), in a signal
 * handler, on many threads at once, with no cache at all, and a record
 * that overflows. The scenario table and the hard cases shared with
 * monitor_uffd_test are in monitor_cases.h.
 *
 * MRCACHE_HOOKS_TEST_ITERS sets the length of the thread and signal tests
 * (default 2000 rounds; CI uses the default, 100000 is a longer soak).
 */
#include <check.h>
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <unistd.h>

#include "monitor_cases.h"

static void setup_hooks(void)
{
	setup_common();
	make_cache(MRC_MONITOR_HOOKS);
}

static void setup_manual(void)
{
	setup_common();
	make_cache(MRC_MONITOR_MANUAL);
}

START_TEST(hooks_drop_stale)
{
	const struct scenario *s = &scenarios[_i];

	if (skipped(s))
		return;
	check_dropped(s, "hooks");
}
END_TEST

START_TEST(manual_serves_stale)
{
	const struct scenario *s = &scenarios[_i];

	if (skipped(s))
		return;
	ck_assert_msg(s->run(), "manual: the scenario '%s' cannot fail", s->name);
}
END_TEST

static void zap_populated(char *buf, size_t pages)
{
	ck_assert_int_eq(madvise(buf, pages * page, MADV_DONTNEED), 0);
	memset(buf, 1, (pages - 1) * page);	/* populate for the next zap */
}

START_TEST(registration_races_madvise)
{
	/* 32 MiB: a zap of several milliseconds. */
	race(zap_populated, (32u << 20) / page, iters() / 20);
}
END_TEST

/*
 * With the last cache gone the hooks stay in libc but do nothing; calls
 * still work and keep their errno; a new cache sees changes again.
 */
START_TEST(no_cache_then_new_cache)
{
	char *p;

	ck_assert_int_eq(mrc_cache_destroy(cache), 0);
	cache = NULL;
	for (int i = 0; i < 100; i++) {
		p = map_pages(2);
		ck_assert_int_eq(madvise(p, 2 * page, MADV_DONTNEED), 0);
		ck_assert_int_eq(munmap(p, 2 * page), 0);
	}
	errno = 0;
	ck_assert_int_eq(munmap((void *)1, page), -1);
	ck_assert_int_eq(errno, EINVAL);
	make_cache(MRC_MONITOR_HOOKS);
	errno = 0;
	ck_assert_int_eq(munmap((void *)1, page), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert(!sc_munmap());
}
END_TEST

START_TEST(record_overflow)
{
	check_overflow(0);
}
END_TEST

/*
 * shmdt drops what the segment covered and nothing else. The segment (4
 * pages, split in three mappings by an mprotect, as the kernel's shmdt
 * expects) lies in a reservation followed by a PROT_NONE gap and an
 * anonymous neighbour. Its last piece must be dropped (the range reaches
 * past the first mapping), the neighbour must stay cached (the range was
 * everything from the address up before).
 */
START_TEST(shmdt_drops_exactly_the_segment)
{
	int id = shmget(IPC_PRIVATE, 4 * page, IPC_CREAT | 0600);
	char *area = mmap(NULL, 9 * page, PROT_NONE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *seg, *nb;
	void *h_last, *h_nb;

	ck_assert_int_ge(id, 0);
	ck_assert_ptr_ne(area, MAP_FAILED);
	seg = shmat(id, area, SHM_REMAP);
	ck_assert_ptr_eq(seg, area);
	shmctl(id, IPC_RMID, NULL);	/* IPC_STAT cannot tell the size now */
	nb = map_at(area + 5 * page, 4, MAP_FIXED);	/* our reservation */
	memset(seg, 1, 4 * page);
	ck_assert_int_eq(mprotect(seg + page, page, PROT_READ), 0);
	h_last = cached(seg + 3 * page, page);
	h_nb = cached(nb, 4 * page);
	ck_assert_int_eq(shmdt(seg), 0);
	remap(seg + 3 * page, 1);
	ck_assert_msg(!served_again(seg + 3 * page, page, h_last),
		      "the segment's last piece was not dropped by shmdt");
	ck_assert_msg(served_again(nb, 4 * page, h_nb),
		      "shmdt dropped the neighbour beyond the segment");
	ck_assert_uint_eq(cache_stats_ok(cache).invalidations, 1);
	munmap(area, 9 * page);
}
END_TEST

/* Without the module, AUTO takes the hooks. */
START_TEST(auto_takes_hooks)
{
	struct mrc_stats s;

	if (access("/dev/mrcache", F_OK) == 0)
		return;
	ck_assert_int_eq(mrc_cache_destroy(cache), 0);
	cache = NULL;
	make_cache(MRC_MONITOR_AUTO);
	s = cache_stats_ok(cache);
	ck_assert_str_eq(s.monitor, "hooks");
	ck_assert(!sc_munmap());
}
END_TEST

static Suite *hooks_suite(void)
{
	Suite *s = suite_create("monitor_hooks");
	const TTest *own[] = {
		registration_races_madvise, no_cache_then_new_cache,
		record_overflow, shmdt_drops_exactly_the_segment,
		auto_takes_hooks,
	};

	add_table_case(s, "hooks", setup_hooks, hooks_drop_stale);
	add_table_case(s, "manual", setup_manual, manual_serves_stale);
	add_hard_cases(s, setup_hooks, own, sizeof(own) / sizeof(own[0]));
	return s;
}

int main(void)
{
	return check_run_suite(hooks_suite());
}
