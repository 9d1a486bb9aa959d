// SPDX-License-Identifier: BSD-2-Clause
/*
 * Thread refs (MRCACHE_THREAD_REFS=1) under fire: reader threads publish,
 * validate and use regions while killer threads invalidate the same pages
 * over and over, so regions die, are parked or deregistered, and their
 * pool slots are reused for the next registration of the page.
 *
 * The provider is this file's own: lock-free liveness flags the readers
 * check while they hold a region (a registration deregistered under a user
 * is the bug), and a deregistration that leaves a page without any live
 * registration replaces the page's memory (fresh frames) right there,
 * under the cache lock, as an application may once nothing is registered;
 * paranoid mode (check_pfn) compares frames on every hit on top.
 *
 * Readers hold up to three regions at once (slot collisions fall back to
 * the compare-and-swap reference), hand some to a putter thread (puts
 * from another thread), and exit holding one (put by the main thread
 * after the join).
 *
 * MRCACHE_TREFS_SECONDS sets the run time (default 2). The fence itself
 * is shown needed by test/threadrefs_litmus_test.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "cache_check.h"
#include "mrcache.h"

#define PAGES		4
#ifndef READERS
#define READERS		3
#endif
#define KILLERS		1
#define HELD_MAX	3
#define MAX_REGS	(1u << 24)

static atomic_uchar *live;		/* per handle - 1 */
static unsigned char *reg_page;		/* per handle - 1 */
static atomic_uint nregs;
static atomic_uint page_live[PAGES];
static atomic_ulong violations, double_deregs, hits, remote_puts, call_errors;

/* check's assertions write to a pipe each time: hot loops count instead. */
#define CHECK_OK(call)							\
	do {								\
		if ((call) != 0 && atomic_fetch_add(&call_errors, 1) == 0) \
			fprintf(stderr, "%s failed: %s\n", #call, mrc_last_error()); \
	} while (0)
static char *arena;
static size_t page;
static struct mrc_cache *cache;
static atomic_int stop, readers_done;
static _Atomic(struct mrc_region *) mailbox;

static unsigned int page_of(const void *addr)
{
	return (unsigned int)(((const char *)addr - arena) / page);
}

static int t_reg(void *ctx, void *addr, size_t len, uint32_t access,
		 void **handle)
{
	unsigned int h = atomic_fetch_add(&nregs, 1);

	(void)ctx, (void)len, (void)access;
	if (h >= MAX_REGS)
		return -ENOMEM;
	reg_page[h] = (unsigned char)page_of(addr);
	atomic_store(&live[h], 1);
	atomic_fetch_add(&page_live[reg_page[h]], 1);
	*handle = (void *)(uintptr_t)(h + 1);
	return 0;
}

/* New frames for a page nothing is registered over any more. */
static void replace_page(unsigned int p)
{
	char *at = arena + (size_t)p * page;

	if (mmap(at, page, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != at)
		abort();
	at[0] = (char)p;
}

/* Under the cache lock, as every registration: page_live is exact. */
static int t_dereg(void *ctx, void *handle)
{
	unsigned int h = (unsigned int)((uintptr_t)handle - 1);

	(void)ctx;
	if (!atomic_exchange(&live[h], 0)) {
		atomic_fetch_add(&double_deregs, 1);
		return 0;
	}
	if (atomic_fetch_sub(&page_live[reg_page[h]], 1) == 1)
		replace_page(reg_page[h]);
	return 0;
}

static uint64_t next_random(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

struct held {
	struct mrc_region *region;
	void *handle;		/* as it was when the get returned */
	char *addr;
};

/*
 * Use a held region: it must still be the registration the get returned
 * (a region deregistered and reused for the next registration of the page
 * shows as another handle) and that registration must still be live.
 */
static void use(const struct held *h)
{
	if (mrc_region_handle(h->region) != h->handle ||
	    mrc_region_addr(h->region) != h->addr ||
	    !atomic_load(&live[(uintptr_t)h->handle - 1]))
		atomic_fetch_add(&violations, 1);
	((volatile char *)h->addr)[1];
}

static void release(struct held *h, uint64_t *rnd)
{
	struct mrc_region *expected = NULL;

	use(h);
	if (next_random(rnd) % 16 == 0 &&
	    atomic_compare_exchange_strong(&mailbox, &expected, h->region)) {
		h->region = NULL;
		return;		/* the putter puts it */
	}
	CHECK_OK(mrc_put(cache, h->region));
	h->region = NULL;
}

static void take(struct held *h, uint64_t *rnd)
{
	h->addr = arena + (next_random(rnd) % PAGES) * page;
	CHECK_OK(mrc_get(cache, h->addr, page, 1, &h->region));
	h->handle = mrc_region_handle(h->region);
	use(h);
}

static void *reader(void *arg)
{
	uint64_t rnd = 0x9e3779b97f4a7c15ull * ((uintptr_t)arg + 1);
	struct held held[HELD_MAX] = { 0 }, *last;
	unsigned long n = 0;

	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		struct held *h = &held[next_random(&rnd) % HELD_MAX];

		if (h->region) {
			release(h, &rnd);
		} else {
			take(h, &rnd);
			n++;
		}
	}
	atomic_fetch_add(&hits, n);
	for (int i = 1; i < HELD_MAX; i++)
		if (held[i].region)
			release(&held[i], &rnd);
	if (!held[0].region)
		return NULL;
	last = malloc(sizeof(*last));
	ck_assert_ptr_nonnull(last);
	*last = held[0];
	return last;		/* exits holding it: main puts it */
}

static void *killer(void *arg)
{
	uint64_t rnd = 0x2545f4914f6cdd1dull * ((uintptr_t)arg + 1);

	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		unsigned int p = (unsigned int)(next_random(&rnd) % PAGES);

		CHECK_OK(mrc_invalidate(cache, arena + p * page, page));
	}
	return NULL;
}

static void *putter(void *arg)
{
	(void)arg;
	/* Readers' last releases may still post: stop after they are gone. */
	while (!atomic_load(&readers_done) || atomic_load(&mailbox)) {
		struct mrc_region *r = atomic_exchange(&mailbox, NULL);

		if (!r) {
			sched_yield();
			continue;
		}
		CHECK_OK(mrc_put(cache, r));
		atomic_fetch_add(&remote_puts, 1);
	}
	return NULL;
}

static double run_seconds(void)
{
	const char *env = getenv("MRCACHE_TREFS_SECONDS");

	return env ? atof(env) : 2.0;
}

static void run_threads(void)
{
	pthread_t r[READERS], k[KILLERS], p;
	struct timespec ts = { 0 };
	double secs = run_seconds();

	atomic_store(&stop, 0);
	atomic_store(&readers_done, 0);
	for (long i = 0; i < READERS; i++)
		ck_assert_int_eq(pthread_create(&r[i], NULL, reader, (void *)i), 0);
	for (long i = 0; i < KILLERS; i++)
		ck_assert_int_eq(pthread_create(&k[i], NULL, killer, (void *)i), 0);
	ck_assert_int_eq(pthread_create(&p, NULL, putter, NULL), 0);
	ts.tv_sec = (time_t)secs;
	ts.tv_nsec = (long)((secs - (double)ts.tv_sec) * 1e9);
	nanosleep(&ts, NULL);
	atomic_store(&stop, 1);
	for (int i = 0; i < READERS; i++) {
		struct held *held;

		pthread_join(r[i], (void **)&held);
		if (held) {
			use(held);	/* its thread is gone: still registered */
			ck_assert_int_eq(mrc_put(cache, held->region), 0);
			free(held);
		}
	}
	for (int i = 0; i < KILLERS; i++)
		pthread_join(k[i], NULL);
	atomic_store(&readers_done, 1);
	pthread_join(p, NULL);
}

START_TEST(slots_never_hold_a_deregistered_region)
{
	struct mrc_provider prov = {
		.name = "threadrefs_test", .reg = t_reg, .dereg = t_dereg,
	};
	struct mrc_cache_attr attr = {
		.comp_mask = MRC_ATTR_MONITOR | MRC_ATTR_MERGE | MRC_ATTR_CHECK_PFN,
		.monitor = MRC_MONITOR_MANUAL, .merge = MRC_MERGE_NONE,
		.check_pfn = 1,
	};
	struct mrc_stats s;
	unsigned int leaked = 0;

	ck_assert_int_eq(mrc_cache_create(&prov, &attr, &cache), 0);
	run_threads();
	ck_assert_int_eq(mrc_cache_stats(cache, &s), 0);
	fprintf(stderr, "threadrefs: %lu gets (%lu hits counted), %lu misses, %lu invalidations, %lu remote puts, %u registrations, %lu used after deregistration\n",
		(unsigned long)atomic_load(&hits), (unsigned long)s.hits,
		(unsigned long)s.misses, (unsigned long)s.invalidations,
		(unsigned long)atomic_load(&remote_puts), atomic_load(&nregs),
		(unsigned long)atomic_load(&violations));
	ck_assert_uint_eq(atomic_load(&call_errors), 0);
	ck_assert_msg(atomic_load(&violations) == 0,
		      "%lu times a thread used a region after its registration was deregistered",
		      (unsigned long)atomic_load(&violations));
	ck_assert_uint_eq(s.hits + s.misses, atomic_load(&hits));
	ck_assert_uint_eq(atomic_load(&double_deregs), 0);
	ck_assert_uint_gt(s.invalidations, 0);
	ck_assert_uint_gt(atomic_load(&remote_puts), 0);
	ck_assert_int_eq(mrc_cache_destroy(cache), 0);
	for (unsigned int h = 0; h < atomic_load(&nregs); h++)
		leaked += atomic_load(&live[h]);
	ck_assert_msg(!leaked, "%u registrations leaked", leaked);
}
END_TEST

/*
 * Handovers: a region got through the owner's slot and put by another
 * thread (doc/design.md, "Puts from another thread"). The owner stays
 * alive and makes no further call unless told: whatever has to happen
 * must happen without it. The owner's steps are run by the owner thread
 * between barriers; main makes the other thread's moves.
 */
struct owner {
	char *addr;
	struct mrc_region *r;		/* handed to main */
	void *handle;
	int second_ref;			/* also hold a counted reference */
	int get_again;			/* get again after main's put */
	pthread_barrier_t step;
};

static void owner_get(struct owner *o, struct mrc_region **r)
{
	CHECK_OK(mrc_get(cache, o->addr, page, 1, r));
	if (mrc_region_handle(*r) != o->handle)
		atomic_fetch_add(&violations, 1);
}

static void *owner(void *arg)
{
	struct owner *o = arg;
	struct mrc_region *again = NULL;

	/* Bind and register, then the slot hit that is handed over. */
	CHECK_OK(mrc_get(cache, o->addr, page, 1, &o->r));
	o->handle = mrc_region_handle(o->r);
	CHECK_OK(mrc_put(cache, o->r));
	owner_get(o, &o->r);
	if (o->second_ref)	/* the slot is taken: a counted reference */
		owner_get(o, &again);
	pthread_barrier_wait(&o->step);	/* 1: handed over */
	pthread_barrier_wait(&o->step);	/* 2: main may have put it */
	if (o->get_again)
		owner_get(o, &again);
	pthread_barrier_wait(&o->step);	/* 3: main invalidates, looks */
	pthread_barrier_wait(&o->step);	/* 4 */
	if (again) {
		if (!atomic_load(&live[(uintptr_t)o->handle - 1]))
			atomic_fetch_add(&violations, 1);
		CHECK_OK(mrc_put(cache, again));
	}
	pthread_barrier_wait(&o->step);	/* 5: main looks again */
	pthread_barrier_wait(&o->step);	/* 6: idle until then */
	return NULL;	/* exits: puts left for it are made now */
}

static int registered(const struct owner *o)
{
	return atomic_load(&live[(uintptr_t)o->handle - 1]);
}

static void handover_cache(void)
{
	struct mrc_provider prov = {
		.name = "threadrefs_test", .reg = t_reg, .dereg = t_dereg,
	};
	struct mrc_cache_attr attr = {
		.comp_mask = MRC_ATTR_MONITOR | MRC_ATTR_MERGE,
		.monitor = MRC_MONITOR_MANUAL, .merge = MRC_MERGE_NONE,
	};

	ck_assert_int_eq(mrc_cache_create(&prov, &attr, &cache), 0);
}

/*
 * Run the owner through its steps; main puts the handed region before
 * (@put_first) or after its invalidation of the page. Says whether the
 * registration was still there after main's moves and after the owner's.
 */
static void handover(struct owner *o, int put_first, int *after_main,
		     int *after_owner)
{
	pthread_t t;

	o->addr = arena;
	pthread_barrier_init(&o->step, NULL, 2);
	handover_cache();
	ck_assert_int_eq(pthread_create(&t, NULL, owner, o), 0);
	pthread_barrier_wait(&o->step);		/* 1 */
	if (put_first)
		ck_assert_int_eq(mrc_put(cache, o->r), 0);
	pthread_barrier_wait(&o->step);		/* 2 */
	pthread_barrier_wait(&o->step);		/* 3 */
	ck_assert_int_eq(mrc_invalidate(cache, o->addr, page), 0);
	if (!put_first)
		ck_assert_int_eq(mrc_put(cache, o->r), 0);
	*after_main = registered(o);
	pthread_barrier_wait(&o->step);		/* 4 */
	pthread_barrier_wait(&o->step);		/* 5 */
	*after_owner = registered(o);
	pthread_barrier_wait(&o->step);		/* 6 */
	pthread_join(t, NULL);
	pthread_barrier_destroy(&o->step);
	ck_assert_int_eq(mrc_cache_destroy(cache), 0);
	ck_assert(!registered(o));
	ck_assert_uint_eq(atomic_load(&call_errors), 0);
	ck_assert_uint_eq(atomic_load(&violations), 0);
	ck_assert_uint_eq(atomic_load(&double_deregs), 0);
}

/*
 * The handovers, one per path: each says whether the owner still holds a
 * reference after main's put and the invalidation (then the registration
 * must stay until the owner's own put) or not (then it must be gone with
 * the owner making no call: otherwise it stays pinned until the owner
 * calls the cache again or exits).
 */
static const struct handover_case {
	const char *what;
	int put_first, second_ref, get_again;
	int owner_holds;
} handovers[] = {
	{ "dead and parked for the owner's slot, then put by main", 0, 0, 0, 0 },
	{ "put by main, then dead", 1, 0, 0, 0 },
	{ "the owner keeps a second (counted) reference", 1, 1, 0, 1 },
	{ "the owner gets it again after main's put", 1, 0, 1, 1 },
};

START_TEST(handover_keeps_exactly_the_owners_references)
{
	const struct handover_case *c = &handovers[_i];
	struct owner o = { .second_ref = c->second_ref, .get_again = c->get_again };
	int after_main, after_owner;

	handover(&o, c->put_first, &after_main, &after_owner);
	ck_assert_msg(after_main == c->owner_holds, "%s: %s after main's moves",
		      c->what, after_main ? "still registered" : "deregistered");
	ck_assert_msg(!after_owner, "%s: still registered after the owner's put",
		      c->what);
}
END_TEST

int main(void)
{
	Suite *s;
	TCase *tc;

	/* The protocol under test. */
	setenv("MRCACHE_THREAD_REFS", "1", 1);
	page = (size_t)sysconf(_SC_PAGESIZE);
	arena = mmap(NULL, PAGES * page, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	live = calloc(MAX_REGS, sizeof(*live));
	reg_page = calloc(MAX_REGS, 1);
	if (arena == MAP_FAILED || !live || !reg_page)
		return 1;
	/* Present pages: paranoid mode reads absent ones as frame 0 and gives up. */
	memset(arena, 1, PAGES * page);
	s = suite_create("threadrefs");
	tc = tcase_create("threadrefs");
	tcase_set_timeout(tc, 60 + run_seconds() * 2);
	tcase_add_test(tc, slots_never_hold_a_deregistered_region);
	suite_add_tcase(s, tc);
	tc = tcase_create("handover");
	tcase_add_loop_test(tc, handover_keeps_exactly_the_owners_references, 0,
			    sizeof(handovers) / sizeof(handovers[0]));
	suite_add_tcase(s, tc);
	return check_run_suite_nofork(s);
}
