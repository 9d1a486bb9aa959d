// SPDX-License-Identifier: BSD-2-Clause
/*
 * Who writes a thread's record (MRCACHE_THREAD_REFS=1): a put of a region
 * another thread got through its slot is left in that thread's record
 * alone. The records of threads that do not hold the region are neither
 * written (not even their lock word, which shares a record with lines
 * their owner stores to at every hit) nor waited for.
 *
 * Built from the library's sources: main holds a bystander's record lock
 * itself, as the bystander does while it takes the puts left for it, and
 * the put of the owner's region must finish all the same. A put that
 * locked every record on its way to the owner's waits here until the
 * bystander's lock is let go, and the case fails. (That records keep the
 * words other threads write off the owner's lines is a static assertion
 * in threadrefs.h.)
 */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cache.h"
#include "cache_check.h"
#include "mrcache.h"

/* A put that waits for the bystander longer than this is one that locked it. */
#define PUT_WAIT_NS	(2 * 1000000000ull)

static size_t page;
static char *arena;		/* page 0 the owner's, page 1 the bystander's */
static struct mrc_cache *cache;

static int null_reg(void *ctx, void *addr, size_t len, uint32_t access,
		    void **handle)
{
	(void)ctx, (void)addr, (void)len, (void)access;
	*handle = NULL;
	return 0;
}

static int null_dereg(void *ctx, void *handle)
{
	(void)ctx, (void)handle;
	return 0;
}

/*
 * A thread bound to the cache, holding what it got until told to exit.
 * It asserts nothing itself (check's assertions belong to main): main
 * looks at @failed and @record.
 */
struct holder {
	char *addr;
	int through_slot;		/* hold the region in a slot */
	struct mrc_region *r;		/* what it holds, if through_slot */
	struct mrc_tref *record;
	int failed;			/* a call failed, or no slot holds @r */
	pthread_barrier_t step;
};

static void *holder(void *arg)
{
	struct holder *h = arg;
	struct mrc_region *r;

	/* The first get binds and registers (a counted reference). */
	h->failed = mrc_get(cache, h->addr, page, 1, &r) || mrc_put(cache, r);
	if (!h->failed && h->through_slot)
		h->failed = mrc_get(cache, h->addr, page, 1, &h->r) ||
			    mrc_tref_self->slot[mrc_tref_slot_of(h->r)] !=
			    (uintptr_t)h->r;
	h->record = mrc_tref_self;
	pthread_barrier_wait(&h->step);	/* 1: bound, holding */
	pthread_barrier_wait(&h->step);	/* 2: exit (serving what was left) */
	return NULL;
}

static void start(struct holder *h, pthread_t *t)
{
	pthread_barrier_init(&h->step, NULL, 2);
	ck_assert_int_eq(pthread_create(t, NULL, holder, h), 0);
	pthread_barrier_wait(&h->step);
	ck_assert_msg(!h->failed && h->record, "%s: %s", h->through_slot ?
		      "the owner's get did not go through its slot" :
		      "the bystander's get failed", mrc_last_error());
}

static void finish(struct holder *h, pthread_t t)
{
	pthread_barrier_wait(&h->step);
	pthread_join(t, NULL);
	pthread_barrier_destroy(&h->step);
}

struct remote_put {
	struct mrc_region *r;
	int ret;
	atomic_int done;
};

static void *put_remote(void *arg)
{
	struct remote_put *p = arg;

	p->ret = mrc_put(cache, p->r);
	atomic_store(&p->done, 1);
	return NULL;
}

/* Wait up to PUT_WAIT_NS for @p's put to return. */
static int put_returned(struct remote_put *p)
{
	uint64_t until = mrc_now_ns() + PUT_WAIT_NS;

	while (!atomic_load(&p->done) && mrc_now_ns() < until)
		usleep(1000);
	return atomic_load(&p->done);
}

/* Left in the owner's record, in the region's box; nothing elsewhere. */
static void assert_left_for(const struct holder *owner,
			    const struct holder *bystander)
{
	ck_assert_ptr_eq(owner->record->request[mrc_tref_slot_of(owner->r)],
			 owner->r);
	for (unsigned int i = 0; i < MRC_TREF_SLOTS; i++)
		ck_assert_ptr_null(bystander->record->request[i]);
	ck_assert_uint_eq(bystander->record->requests, 0);
}

START_TEST(a_put_left_for_one_thread_leaves_the_others_alone)
{
	struct mrc_provider prov = { .name = "null", .reg = null_reg,
				     .dereg = null_dereg };
	struct mrc_cache_attr attr = {
		.comp_mask = MRC_ATTR_MONITOR | MRC_ATTR_MERGE,
		.monitor = MRC_MONITOR_MANUAL, .merge = MRC_MERGE_NONE,
	};
	struct holder owner = { .addr = arena, .through_slot = 1 };
	struct holder bystander = { .addr = arena + page };
	struct remote_put p = { 0 };
	pthread_t to, tb, tp;
	int returned;

	ck_assert_int_eq(mrc_cache_create(&prov, &attr, &cache), 0);
	start(&owner, &to);
	/* Claimed after the owner's: a put from main meets it first. */
	start(&bystander, &tb);
	ck_assert_ptr_eq(mrc_trefs_records, bystander.record);

	/* The bystander busy with its own puts: its record's lock is held. */
	__atomic_store_n(&bystander.record->lock, 1, __ATOMIC_RELEASE);
	p.r = owner.r;
	ck_assert_int_eq(pthread_create(&tp, NULL, put_remote, &p), 0);
	returned = put_returned(&p);
	__atomic_store_n(&bystander.record->lock, 0, __ATOMIC_RELEASE);
	pthread_join(tp, NULL);
	ck_assert_msg(returned, "a put of the owner's region waited %llu s for a bystander's record",
		      PUT_WAIT_NS / 1000000000ull);
	ck_assert_int_eq(p.ret, 0);

	assert_left_for(&owner, &bystander);
	finish(&bystander, tb);
	finish(&owner, to);
	ck_assert_int_eq(mrc_cache_destroy(cache), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("threadrefs_records");
	TCase *tc = tcase_create("records");

	setenv("MRCACHE_THREAD_REFS", "1", 1);
	page = (size_t)sysconf(_SC_PAGESIZE);
	arena = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (arena == MAP_FAILED)
		return 1;
	if (!mrc_trefs_available()) {
		fprintf(stderr, "membarrier(PRIVATE_EXPEDITED) is not available: thread refs cannot be on\n");
		return 1;
	}
	tcase_add_test(tc, a_put_left_for_one_thread_leaves_the_others_alone);
	suite_add_tcase(s, tc);
	return check_run_suite_nofork(s);
}
