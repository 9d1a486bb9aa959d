// SPDX-License-Identifier: BSD-2-Clause
/*
 * Region lifetime across threads, and the hint table's bookkeeping.
 *
 * - A put whose trylock fails leaves its region to the lock holder. If the
 *   holder had already drained the deferred list, the region used to wait,
 *   pinned, for the next cache call, which an idle process never makes.
 *   The holder must look again after it unlocks. Forced: the holder is
 *   stopped inside its last deregistration (the provider's dereg hook)
 *   while another thread puts the last reference of a dead region.
 * - Remembering a key whose region moved to another pool index replaces
 *   the old way instead of adding a second one with the same tag (two
 *   matching ways send every hit of that key down the slow path).
 */
#include <check.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cache_check.h"
#include "fake_provider.h"
#include "hints.h"
#include "mrcache.h"

static struct fake_provider fake;
static struct mrc_cache *cache;
static sem_t in_dereg, put_done;
static int hook_armed;

/* Stop the first deregistration until the other thread has put. */
static void dereg_hook(void *arg)
{
	(void)arg;
	if (!__atomic_exchange_n(&hook_armed, 0, __ATOMIC_ACQ_REL))
		return;
	sem_post(&in_dereg);
	sem_wait(&put_done);
}

static void *invalidate_idle(void *addr)
{
	/* Kills the idle region; its deregistration runs at unlock. */
	ck_assert_int_eq(mrc_invalidate(cache, addr, 1), 0);
	return NULL;
}

START_TEST(put_during_holders_last_drain_is_not_left_pinned)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	char *p = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct mrc_cache_attr attr = {
		.comp_mask = MRC_ATTR_MONITOR | MRC_ATTR_MERGE,
		.monitor = MRC_MONITOR_MANUAL, .merge = MRC_MERGE_NONE,
	};
	struct mrc_provider prov;
	struct mrc_region *held;
	void *handle;
	pthread_t t;

	ck_assert_ptr_ne(p, MAP_FAILED);
	fake_init(&fake);
	prov = fake_provider(&fake);
	ck_assert_int_eq(mrc_cache_create(&prov, &attr, &cache), 0);
	held = cache_get_ok(cache, p, page, 0);
	handle = mrc_region_handle(held);
	cache_put_ok(cache, cache_get_ok(cache, p + page, page, 0));
	ck_assert_int_eq(mrc_invalidate(cache, p, page), 0);	/* dead, held */

	sem_init(&in_dereg, 0, 0);
	sem_init(&put_done, 0, 0);
	fake.dereg_hook = dereg_hook;
	hook_armed = 1;
	ck_assert_int_eq(pthread_create(&t, NULL, invalidate_idle, p + page), 0);
	sem_wait(&in_dereg);		/* the holder is in its last drain */
	cache_put_ok(cache, held);	/* trylock fails: left to the holder */
	sem_post(&put_done);
	pthread_join(t, NULL);

	/* No cache call since: the holder must have deregistered it. */
	ck_assert_msg(!fake_handle_live(&fake, handle),
		      "the last put's region is still registered after every thread left the cache");
	ck_assert_uint_eq(fake.live, 0);
	ck_assert_int_eq(mrc_cache_destroy(cache), 0);
	ck_assert_uint_eq(fake.double_deregs, 0);
	fake_fini(&fake);
	munmap(p, 2 * page);
}
END_TEST

/* Ways of @h's set for @key that carry @key's tag. */
static int ways_with_tag(const struct mrc_hints *h, uint64_t key)
{
	uint64_t hash = mrc_hints_hash(key);
	const uint32_t *set = &h->slot[mrc_hints_set(h, hash)];
	int n = 0;

	for (int way = 0; way < MRC_HINT_WAYS; way++)
		n += set[way] >> MRC_HINT_INDEX_BITS == mrc_hints_tag(hash);
	return n;
}

START_TEST(moved_key_replaces_its_hint)
{
	/* One set of four ways: every key lands in it. */
	struct mrc_hints *h = calloc(1, sizeof(*h) + MRC_HINT_WAYS * sizeof(uint32_t));
	uint64_t key = 12345, other = key;

	ck_assert_ptr_nonnull(h);
	h->mask = MRC_HINT_WAYS - 1;
	h->shift = 62;
	/* A second key with a different tag, so the set holds two keys. */
	while (mrc_hints_tag(mrc_hints_hash(++other)) ==
	       mrc_hints_tag(mrc_hints_hash(key)))
		;
	mrc_hints_put(h, key, 7);
	mrc_hints_put(h, other, 8);
	mrc_hints_put(h, key, 9);		/* the key's region moved */
	ck_assert_int_eq(ways_with_tag(h, key), 1);
	ck_assert_uint_eq(h->slot[0] & MRC_HINT_INDEX_MASK, 9 + 1);
	ck_assert_uint_eq(h->slot[1] & MRC_HINT_INDEX_MASK, 8 + 1);
	ck_assert_uint_eq(h->slot[2], 0);
	mrc_hints_put(h, key, 9);		/* the same again: no change */
	ck_assert_int_eq(ways_with_tag(h, key), 1);
	ck_assert_uint_eq(h->slot[1] & MRC_HINT_INDEX_MASK, 8 + 1);
	free(h);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("lifetime");
	TCase *tc = tcase_create("lifetime");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, put_during_holders_last_drain_is_not_left_pinned);
	tcase_add_test(tc, moved_key_replaces_its_hint);
	suite_add_tcase(s, tc);
	return check_run_suite(s);
}
