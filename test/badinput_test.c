// SPDX-License-Identifier: BSD-2-Clause
/*
 * Bad input, against the counting fake provider: each case must fail with
 * the right errno and a message that says what was wrong, and leave the
 * caches as they were: nothing registered, nothing lost, nothing leaked
 * (the fake provider's live counts and the statistics are compared).
 *
 * - a length that does not wrap but ends past any user address space;
 * - mrc_invalidate() with a NULL address or a wrapping range;
 * - a region of one cache given to another cache's mrc_put();
 * - every call on a cache after mrc_cache_destroy() (run under ASan: the
 *   check itself must read no freed memory);
 * - mrc_cache_create() with every combination of invalid attributes.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cache_check.h"
#include "fake_provider.h"
#include "mrcache.h"

static struct fake_provider fake, fake2;
static struct mrc_cache *cache;
static char *arena;
static size_t page;

#define ARENA_PAGES 16
#define P(i) (arena + (size_t)(i) * page)

/* A failing call: its errno, and a message naming @what. */
#define assert_fails(call, err, what)					\
	do {								\
		int ret_ = (call);					\
		ck_assert_msg(ret_ == -(err), "%s = %d, expected %d (%s)", \
			      #call, ret_, -(err), mrc_last_error());	\
		ck_assert_msg(strstr(mrc_last_error(), (what)) != NULL,	\
			      "%s: message \"%s\" does not mention \"%s\"", \
			      #call, mrc_last_error(), (what));		\
	} while (0)

static struct mrc_cache *make_cache(struct fake_provider *f)
{
	struct mrc_provider prov = fake_provider(f);
	struct mrc_cache_attr attr = {
		.comp_mask = MRC_ATTR_MONITOR | MRC_ATTR_MEMLOCK,
		.monitor = MRC_MONITOR_MANUAL,
	};
	struct mrc_cache *c = NULL;
	int ret = mrc_cache_create(&prov, &attr, &c);

	ck_assert_msg(ret == 0, "mrc_cache_create: %s", mrc_last_error());
	return c;
}

static void setup(void)
{
	page = (size_t)sysconf(_SC_PAGESIZE);
	arena = mmap(NULL, ARENA_PAGES * page, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(arena, MAP_FAILED);
	fake_init(&fake);
	fake_init(&fake2);
	cache = make_cache(&fake);
}

static void teardown(void)
{
	if (cache)
		ck_assert_int_eq(mrc_cache_destroy(cache), 0);
	ck_assert_uint_eq(fake.live, 0);
	ck_assert_uint_eq(fake2.live, 0);
	ck_assert_uint_eq(fake.double_deregs, 0);
	ck_assert_uint_eq(fake2.double_deregs, 0);
	fake_fini(&fake);
	fake_fini(&fake2);
	munmap(arena, ARENA_PAGES * page);
}

/* The counters a failed call must not move (hits move on lookups). */
static void assert_same_stats(const struct mrc_stats *a, struct mrc_cache *c)
{
	struct mrc_stats now = cache_stats_ok(c);
	const struct mrc_stats *b = &now;

	ck_assert_uint_eq(a->misses, b->misses);
	ck_assert_uint_eq(a->regions, b->regions);
	ck_assert_uint_eq(a->bytes_pinned, b->bytes_pinned);
	ck_assert_uint_eq(a->reg_calls, b->reg_calls);
	ck_assert_uint_eq(a->dereg_calls, b->dereg_calls);
	ck_assert_uint_eq(a->invalidations, b->invalidations);
	ck_assert_uint_eq(a->evictions, b->evictions);
}

START_TEST(length_past_the_address_space)
{
	struct mrc_region *r = NULL, *held;
	struct mrc_stats before;

	held = cache_get_ok(cache, P(0), page, 1);
	before = cache_stats_ok(cache);
	/* No wrap, but no architecture has user addresses up there. */
	assert_fails(mrc_get(cache, P(1), (size_t)1 << 60, 1, &r), EINVAL,
		     "address space");
	ck_assert_ptr_null(r);
	/* The bytes do not wrap; rounded up to a page they would. */
	assert_fails(mrc_get(cache, P(1), UINTPTR_MAX - (uintptr_t)P(1), 1, &r),
		     EINVAL, "wraps");
	assert_same_stats(&before, cache);
	ck_assert_uint_eq(fake.count, 1);	/* the provider never saw them */
	ck_assert_uint_eq(fake.live, 1);
	cache_put_ok(cache, held);
}
END_TEST

START_TEST(invalidate_null_or_wrapping)
{
	struct mrc_region *r = cache_get_ok(cache, P(0), page, 1);
	struct mrc_stats before;

	cache_put_ok(cache, r);
	before = cache_stats_ok(cache);
	assert_fails(mrc_invalidate(cache, NULL, 2 * page), EINVAL, "NULL");
	assert_fails(mrc_invalidate(cache, (void *)(UINTPTR_MAX - 10), 100),
		     EINVAL, "wraps");
	assert_fails(mrc_invalidate(cache, P(0), SIZE_MAX), EINVAL, "wraps");
	assert_same_stats(&before, cache);
	ck_assert_uint_eq(fake.live, 1);
	/* Still cached: the failed calls dropped nothing. */
	ck_assert_ptr_eq(cache_get_ok(cache, P(0), page, 1), r);
	cache_put_ok(cache, r);
	/* Up to the very top of the address space is not a wrap. */
	ck_assert_int_eq(mrc_invalidate(cache, P(0), UINTPTR_MAX - (uintptr_t)P(0)), 0);
	ck_assert_uint_eq(fake.live, 0);
}
END_TEST

START_TEST(region_of_another_cache)
{
	struct mrc_cache *other = make_cache(&fake2);
	struct mrc_region *mine, *theirs;
	struct mrc_stats before, other_before;

	mine = cache_get_ok(cache, P(0), page, 1);
	theirs = cache_get_ok(other, P(0), page, 1);
	before = cache_stats_ok(cache);
	other_before = cache_stats_ok(other);
	assert_fails(mrc_put(other, mine), EINVAL, "not a region of this cache");
	assert_fails(mrc_put(cache, theirs), EINVAL, "not a region of this cache");
	/* A pointer that is no region at all. */
	assert_fails(mrc_put(cache, (struct mrc_region *)P(3)), EINVAL,
		     "not a region of this cache");
	assert_same_stats(&before, cache);
	assert_same_stats(&other_before, other);
	/* Both references are intact: each goes back to its own cache once. */
	ck_assert_int_eq(mrc_cache_destroy(cache), -EBUSY);
	ck_assert_int_eq(mrc_cache_destroy(other), -EBUSY);
	cache_put_ok(cache, mine);
	cache_put_ok(other, theirs);
	assert_fails(mrc_put(cache, mine), EINVAL, "put twice");
	ck_assert_uint_eq(fake.live, 1);
	ck_assert_uint_eq(fake2.live, 1);
	ck_assert_int_eq(mrc_cache_destroy(other), 0);
	ck_assert_uint_eq(fake2.live, 0);
	ck_assert_uint_eq(fake.live, 1);
}
END_TEST

/* Every entry point of a destroyed cache fails, naming the destruction. */
static void assert_all_refused(struct mrc_cache *dead, struct mrc_region *r)
{
	struct mrc_region *out = NULL;
	struct mrc_stats s;

	assert_fails(mrc_put(dead, r), EINVAL, "destroyed");
	assert_fails(mrc_get(dead, P(0), page, 1, &out), EINVAL, "destroyed");
	assert_fails(mrc_get(dead, P(5), page, 0, &out), EINVAL, "destroyed");
	ck_assert_ptr_null(out);
	assert_fails(mrc_invalidate(dead, P(0), page), EINVAL, "destroyed");
	assert_fails(mrc_cache_progress(dead), EINVAL, "destroyed");
	assert_fails(mrc_cache_stats(dead, &s), EINVAL, "destroyed");
	assert_fails(mrc_cache_destroy(dead), EINVAL, "destroyed");
}

START_TEST(calls_after_destroy)
{
	struct mrc_region *r = cache_get_ok(cache, P(0), page, 1);
	struct mrc_cache *dead = cache;

	cache_put_ok(cache, r);
	ck_assert_int_eq(mrc_cache_destroy(cache), 0);
	cache = NULL;
	ck_assert_uint_eq(fake.live, 0);
	assert_all_refused(dead, r);
	/* A new cache is not confused with the old one. */
	cache = make_cache(&fake);
	cache_put_ok(cache, cache_get_ok(cache, P(0), page, 1));
	assert_all_refused(dead, r);
	ck_assert_uint_eq(fake.live, 1);
	ck_assert_uint_eq(fake.double_deregs, 0);
}
END_TEST

START_TEST(calls_after_destroy_in_forked_child)
{
	struct mrc_region *r = cache_get_ok(cache, P(0), page, 1);
	int status;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct mrc_region *out = NULL;
		int ok = mrc_cache_destroy(cache) == 0 &&
			 mrc_put(cache, r) == -EINVAL &&
			 strstr(mrc_last_error(), "destroyed") &&
			 mrc_get(cache, P(0), page, 1, &out) == -EINVAL &&
			 mrc_cache_destroy(cache) == -EINVAL &&
			 fake.deregs == 0;
		_exit(ok ? 0 : 1);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	cache_put_ok(cache, r);		/* the parent's cache is untouched */
}
END_TEST

/*
 * mrc_cache_create() with bad attributes. Each entry is one way an
 * attribute struct can be wrong; every non-empty combination of them must
 * be refused with EINVAL and a message naming one of the culprits, and
 * create nothing.
 */
struct bad_attr {
	const char *name;	/* in the message */
	void (*apply)(struct mrc_cache_attr *a);
};

static void unknown_bit(struct mrc_cache_attr *a) { a->comp_mask |= 1ull << 40; }
static void bad_merge(struct mrc_cache_attr *a) { a->comp_mask |= MRC_ATTR_MERGE; a->merge = 3; }
static void bad_monitor(struct mrc_cache_attr *a) { a->comp_mask |= MRC_ATTR_MONITOR; a->monitor = 99; }
static void bad_memlock(struct mrc_cache_attr *a) { a->comp_mask |= MRC_ATTR_MEMLOCK; a->memlock = 2; }
static void bad_print(struct mrc_cache_attr *a) { a->comp_mask |= MRC_ATTR_PRINT_STATS; a->print_stats = 7; }
static void bad_progress(struct mrc_cache_attr *a) { a->comp_mask |= MRC_ATTR_PROGRESS_THREAD; a->progress_thread = 2; }
static void bad_reserved(struct mrc_cache_attr *a) { a->reserved = 1; }

static const struct bad_attr bad_attrs[] = {
	{ "comp_mask", unknown_bit },
	{ "merge", bad_merge },
	{ "monitor", bad_monitor },
	{ "memlock", bad_memlock },
	{ "print_stats", bad_print },
	{ "progress_thread", bad_progress },
	{ "reserved", bad_reserved },
};
#define NBAD (sizeof(bad_attrs) / sizeof(bad_attrs[0]))

static void assert_create_refused(const struct mrc_cache_attr *attr,
				  unsigned int combo)
{
	struct mrc_provider prov = fake_provider(&fake);
	struct mrc_cache *c = (struct mrc_cache *)&c;	/* must stay untouched */
	const char *msg;
	int ret, named = 0;

	ret = mrc_cache_create(&prov, attr, &c);
	msg = mrc_last_error();
	ck_assert_msg(ret == -EINVAL, "combination %#x: create = %d (%s)", combo,
		      ret, msg);
	ck_assert_ptr_eq(c, (struct mrc_cache *)&c);
	for (size_t i = 0; i < NBAD; i++)
		if ((combo & (1u << i)) && strstr(msg, bad_attrs[i].name))
			named = 1;
	ck_assert_msg(named, "combination %#x: \"%s\" names none of the bad fields",
		      combo, msg);
	ck_assert_msg(strstr(msg, "mrc_cache_attr"), "\"%s\" does not say where", msg);
}

START_TEST(create_with_invalid_attributes)
{
	for (unsigned int combo = 1; combo < (1u << NBAD); combo++) {
		struct mrc_cache_attr attr = { 0 };

		for (size_t i = 0; i < NBAD; i++)
			if (combo & (1u << i))
				bad_attrs[i].apply(&attr);
		assert_create_refused(&attr, combo);
	}
	ck_assert_uint_eq(fake.count, 0);
}
END_TEST

/* Settings each valid alone but contradictory together. */
START_TEST(create_with_contradictory_attributes)
{
	struct mrc_cache_attr attr = {
		.comp_mask = MRC_ATTR_MONITOR | MRC_ATTR_PROGRESS_THREAD,
		.monitor = MRC_MONITOR_MANUAL, .progress_thread = 1,
	};
	struct mrc_provider prov = fake_provider(&fake);
	struct mrc_provider no_dereg = { .name = "half", .reg = prov.reg };
	struct mrc_cache *c = NULL;

	assert_fails(mrc_cache_create(&prov, &attr, &c), EINVAL, "progress_thread");
	ck_assert_ptr_null(c);
	assert_fails(mrc_cache_create(&no_dereg, NULL, &c), EINVAL, "dereg");
	assert_fails(mrc_cache_create(NULL, NULL, &c), EINVAL, "provider");
	assert_fails(mrc_cache_create(&prov, NULL, NULL), EINVAL, "NULL");
	assert_fails(mrc_cache_create_verbs(NULL, 0, NULL, &c), EINVAL,
		     "protection domain");
	ck_assert_ptr_null(c);
	ck_assert_uint_eq(fake.count, 0);
}
END_TEST

static Suite *badinput_suite(void)
{
	Suite *s = suite_create("badinput");
	TCase *tc = tcase_create("fake");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, length_past_the_address_space);
	tcase_add_test(tc, invalidate_null_or_wrapping);
	tcase_add_test(tc, region_of_another_cache);
	tcase_add_test(tc, calls_after_destroy);
	tcase_add_test(tc, calls_after_destroy_in_forked_child);
	tcase_add_test(tc, create_with_invalid_attributes);
	tcase_add_test(tc, create_with_contradictory_attributes);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run_suite(badinput_suite());
}
