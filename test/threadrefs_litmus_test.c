// SPDX-License-Identifier: BSD-2-Clause
/*
 * The thread-refs fence as a litmus test on the library's real paths:
 * round after round, a reader thread calls mrc_get() (the slot hit:
 * store to its slot, then load the region's state word) while a killer
 * thread calls mrc_invalidate() on the same page (set DEAD, fence, scan
 * the slots, deregister or park). The two are pinned to different CPUs
 * and started together, and the gap between them is steered round by
 * round to where the two orders meet. Before its get the reader stores to
 * a few cold pages (MRCACHE_LITMUS_STORES, default 8; 0 for none), as a
 * program filling a buffer before registering it.
 *
 * The forbidden outcome: the get returned a registration and the
 * provider was told to deregister it before the reader's mrc_put(), i.e.
 * the reclaimer decided nobody held a region the reader uses. It is the
 * store-buffering pattern (the reader's slot store still in its store
 * buffer while its load of the state word runs), which x86 allows: with
 * the membarrier skipped it appears, with it it must not.
 *
 * Two cases, in order: without the fence the outcome must appear within
 * MRCACHE_LITMUS_SECONDS (default 20; the first one ends the case); with
 * the fence it must not appear in at least as many rounds and seconds as
 * the first case ran, at least FENCED_ROUNDS rounds and
 * MRCACHE_LITMUS_FENCED_SECONDS (default 3), while both orders (the
 * reader first, the killer first) keep occurring, so the rounds did meet.
 * MRCACHE_LITMUS_COUNT=1 makes the first case run its whole time and
 * count every occurrence (for measurements). Under a sanitizer only the
 * fenced case runs (below, and doc/design.md, "Thread references").
 *
 * Needs two CPUs: on one, the two threads never run at the same time,
 * the outcome cannot happen, and the test fails saying so.
 *
 * A third case, first and quick: the fence runs exactly when a thread
 * other than the reclaimer owns a record (only an owner can have a slot
 * store in flight), so a process with one thread using the cache pays no
 * membarrier per deregistration.
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
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "cache_check.h"
#include "mrcache.h"

/*
 * The unfenced case runs in the plain build only. Under TSan the outcome
 * was never seen (its runtime calls around the slot store and the state
 * load order them), under ASan about once in 4,500 rounds (a fifth to a
 * third of the rounds in the plain build): asserting it there would be
 * flaky, and a fenced run long enough to mean something would cost
 * minutes.
 */
#ifndef SANITIZED
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

#define COLD_PAGES 16384	/* 64 MiB of 4 KiB pages: far more than a TLB maps */

/* The provider: registration h is live while live[h % LIVE] == h. */
#define LIVE 1024
static _Atomic uint64_t live[LIVE];
static atomic_ulong nregs, double_deregs;

static int l_reg(void *ctx, void *addr, size_t len, uint32_t access,
		 void **handle)
{
	uint64_t h = atomic_fetch_add(&nregs, 1) + 1;

	(void)ctx, (void)addr, (void)len, (void)access;
	atomic_store(&live[h % LIVE], h);
	*handle = (void *)(uintptr_t)h;
	return 0;
}

static int l_dereg(void *ctx, void *handle)
{
	uint64_t h = (uintptr_t)handle;

	(void)ctx;
	if (!atomic_compare_exchange_strong(&live[h % LIVE], &h, 0))
		atomic_fetch_add(&double_deregs, 1);
	return 0;
}

static unsigned int nregs_live(void)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < LIVE; i++)
		n += atomic_load(&live[i]) != 0;
	return n;
}

static int is_live(void *handle)
{
	uint64_t h = (uintptr_t)handle;

	return atomic_load(&live[h % LIVE]) == h;
}

/* Where the killer puts the reader's start relative to its own. */
struct steering {
	long gap;		/* > 0: the reader waits that many steps */
	int sign;		/* who won the last round: +1 reader, -1 killer */
	int streak;		/* rounds the same side won in a row */
	uint64_t rnd;
};

/* What one round of the reader saw. */
enum outcome {
	READER_FIRST,	/* got the registration the round started with */
	KILLER_FIRST,	/* found it dead and registered a new one */
	FORBIDDEN,	/* got it, and it was deregistered under the reader */
};

/* Every word one side writes and the other spins on has its own line. */
struct litmus {
	_Alignas(64) atomic_ulong go;		/* killer: round n starts */
	_Alignas(64) atomic_ulong killed;	/* killer: its invalidate returned */
	_Alignas(64) atomic_ulong ready;	/* reader: round n done, next set up */
	_Alignas(64) long reader_delay;		/* written before go */
	long killer_delay;
	enum outcome last;			/* written before ready */
	unsigned long count[3];			/* per outcome, killer's */
	unsigned long rounds;
	struct timespec started;
	double seconds;				/* run this long */
	unsigned long min_rounds;		/* and at least this many rounds */
	double cap;				/* but never longer than this */
	int count_all;				/* do not stop at the first */
	unsigned int stores;			/* in flight before the get */
	uint64_t cold_seed;			/* picks pages of cold[] */
	atomic_int stop;
	int cpu[2];
	double first_after;			/* seconds to the first, or -1 */
	unsigned long first_round;
};

/* check's assertions write to a pipe each time: the rounds count instead. */
static atomic_ulong call_errors;
#define CALL_OK(call)							\
	do {								\
		if ((call) != 0 && atomic_fetch_add(&call_errors, 1) == 0) \
			fprintf(stderr, "%s failed: %s\n", #call, mrc_last_error()); \
	} while (0)

static struct mrc_cache *cache;
static char *page_addr;
static char *cold;			/* COLD_PAGES, 4 KiB pages */
static size_t page;

static double elapsed(const struct timespec *since)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - since->tv_sec) +
	       (double)(now.tv_nsec - since->tv_nsec) * 1e-9;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield" ::: "memory");
#endif
}

/*
 * Spin for the other side. Yielding at once would hand the CPU to whatever
 * else wants it for a whole time slice; only a long wait (the other side
 * preempted after all) yields. Returns 0 once the litmus is told to stop.
 */
static int wait_for(struct litmus *l, atomic_ulong *w, unsigned long v)
{
	for (unsigned long i = 1; atomic_load_explicit(w, memory_order_acquire) != v; i++) {
		cpu_relax();
		if (i % (1ul << 16))
			continue;
		if (atomic_load_explicit(&l->stop, memory_order_relaxed))
			return 0;
		sched_yield();
	}
	return 1;
}

/* About one cycle per step: the gap is steered in these. */
static void delay(long steps)
{
	for (long i = steps; i > 0; i--)
		__asm__ volatile("" ::: "memory");
}

/*
 * Pin this thread to @cpu, and ask for the CPU first when others want it
 * too (allowed to root): a round only counts when both threads run at
 * once, which a loaded machine rarely gives two ordinary threads.
 */
static void pin(int cpu)
{
	static atomic_int told;
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set)) {
		atomic_fetch_add(&call_errors, 1);
		fprintf(stderr, "cannot pin to CPU %d: %s\n", cpu, strerror(errno));
	}
	if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), -20) &&
	    !atomic_exchange(&told, 1))
		fprintf(stderr, "threadrefs litmus: cannot raise priority (%s): on a busy machine the rounds will be slow\n",
			strerror(errno));
}

/* A cached registration of the page, hinted, in no slot: the round's. */
static void *set_up_round(void)
{
	struct mrc_region *r;
	void *handle;

	CALL_OK(mrc_get(cache, page_addr, page, 1, &r));
	handle = mrc_region_handle(r);
	CALL_OK(mrc_put(cache, r));
	return handle;
}

/*
 * Store to a few pages not touched for a while, as a program filling a
 * buffer before it registers it: each store misses the TLB and the cache,
 * and the slot store the get makes next waits behind them in the store
 * buffer while the get's load of the state word goes ahead. That widens
 * the window the fence closes from a few cycles to the misses' latency.
 */
static void stores_in_flight(struct litmus *l)
{
	for (unsigned int i = 0; i < l->stores; i++) {
		/* A random page (no prefetcher guesses it), a line of it. */
		l->cold_seed = l->cold_seed * 6364136223846793005ull + 1442695040888963407ull;
		cold[(l->cold_seed >> 40) % COLD_PAGES * page + i * 64] = (char)i;
	}
}

/*
 * One round of the reader: get, wait for the killer's invalidate to
 * return, then look whether the registration got is still there. A
 * region parked for the reader's slot is; one the scan missed is not.
 */
static enum outcome reader_round(struct litmus *l, void *before)
{
	struct mrc_region *r;
	enum outcome o;
	void *got;

	delay(l->reader_delay);
	stores_in_flight(l);
	CALL_OK(mrc_get(cache, page_addr, page, 1, &r));
	got = mrc_region_handle(r);
	/* The killer finishes every round it starts. */
	wait_for(l, &l->killed, atomic_load(&l->go));
	if (!is_live(got))
		o = FORBIDDEN;
	else
		o = got == before ? READER_FIRST : KILLER_FIRST;
	CALL_OK(mrc_put(cache, r));
	return o;
}

static void *reader(void *arg)
{
	struct litmus *l = arg;
	void *before;

	pin(l->cpu[0]);
	before = set_up_round();
	atomic_store_explicit(&l->ready, 0, memory_order_release);
	for (unsigned long n = 1; wait_for(l, &l->go, n); n++) {
		l->last = reader_round(l, before);
		before = set_up_round();
		atomic_store_explicit(&l->ready, n, memory_order_release);
	}
	return NULL;
}

/*
 * Steer the gap: a round the reader won moves the reader later, one the
 * killer won moves it earlier, by steps that double while the same side
 * keeps winning, so rounds gather where the two orders meet wherever that
 * is; each round adds a random spread around that point.
 */
static void steer(struct litmus *l, struct steering *st)
{
	long spread;
	int sign = l->last == READER_FIRST ? 1 : l->last == KILLER_FIRST ? -1 : 0;

	st->streak = sign && sign == st->sign ? st->streak + 1 : 0;
	st->sign = sign;
	st->gap += sign * (8l << (st->streak < 40 ? st->streak / 4 : 10));
	st->rnd ^= st->rnd << 13, st->rnd ^= st->rnd >> 7, st->rnd ^= st->rnd << 17;
	spread = st->gap + (long)(st->rnd % 256) - 128;
	l->reader_delay = spread > 0 ? spread : 0;
	l->killer_delay = spread < 0 ? -spread : 0;
}

static int litmus_over(struct litmus *l)
{
	double t = elapsed(&l->started);

	if (l->count[FORBIDDEN] && !l->count_all)
		return 1;
	/* Past the cap the case fails for too few rounds, it does not hang. */
	return (l->rounds >= l->min_rounds && t >= l->seconds) || t >= l->cap;
}

static void note(struct litmus *l, unsigned long n)
{
	l->count[l->last]++;
	l->rounds = n;
	if (l->last == FORBIDDEN && l->first_after < 0) {
		l->first_after = elapsed(&l->started);
		l->first_round = n;
	}
}

/* The killer: start a round, invalidate, wait for the reader's verdict. */
static void *killer(void *arg)
{
	struct litmus *l = arg;
	struct steering st = { .rnd = 0x9e3779b97f4a7c15ull };

	pin(l->cpu[1]);
	wait_for(l, &l->ready, 0);
	clock_gettime(CLOCK_MONOTONIC, &l->started);
	for (unsigned long n = 1;; n++) {
		steer(l, &st);
		atomic_store_explicit(&l->go, n, memory_order_release);
		delay(l->killer_delay);
		CALL_OK(mrc_invalidate(cache, page_addr, page));
		atomic_store_explicit(&l->killed, n, memory_order_release);
		wait_for(l, &l->ready, n);
		note(l, n);
		if (litmus_over(l))
			break;
	}
	atomic_store(&l->stop, 1);
	return NULL;
}

static void run_litmus(struct litmus *l)
{
	pthread_t reader_thread, killer_thread;

	l->first_after = -1;
	atomic_store(&l->ready, ~0ul);	/* the reader stores 0 when set up */
	ck_assert_int_eq(pthread_create(&reader_thread, NULL, reader, l), 0);
	ck_assert_int_eq(pthread_create(&killer_thread, NULL, killer, l), 0);
	pthread_join(killer_thread, NULL);
	pthread_join(reader_thread, NULL);
	fprintf(stderr, "threadrefs litmus (%s): %lu rounds in %.2f s: reader first %lu, killer first %lu, forbidden %lu",
		mrc_trefs_skip_fence ? "membarrier skipped" : "membarrier",
		l->rounds, elapsed(&l->started), l->count[READER_FIRST],
		l->count[KILLER_FIRST], l->count[FORBIDDEN]);
	if (l->first_after >= 0)
		fprintf(stderr, ", the first after %.3f s (round %lu)",
			l->first_after, l->first_round);
	fprintf(stderr, "\n");
	ck_assert_uint_eq(atomic_load(&double_deregs), 0);
	ck_assert_uint_eq(atomic_load(&call_errors), 0);
}

static double env_seconds(const char *name, double dflt)
{
	const char *v = getenv(name);

	return v ? atof(v) : dflt;
}

static unsigned int litmus_stores(void)
{
	const char *v = getenv("MRCACHE_LITMUS_STORES");
	unsigned long n = v ? strtoul(v, NULL, 0) : 8;

	return n < 64 ? (unsigned int)n : 64;
}

/* The two CPUs the threads go to; fails loudly when there is one. */
static void pick_cpus(struct litmus *l)
{
	cpu_set_t set;
	int n = 0;

	ck_assert_int_eq(sched_getaffinity(0, sizeof(set), &set), 0);
	for (int c = 0; c < CPU_SETSIZE && n < 2; c++)
		if (CPU_ISSET(c, &set))
			l->cpu[n++] = c;
	ck_assert_msg(n == 2,
		      "the litmus needs two CPUs and this process may use %d: the reader and the killer would never run at the same time, so nothing would be shown",
		      n);
}

static void litmus_setup(void)
{
	struct mrc_provider prov = {
		.name = "threadrefs_litmus", .reg = l_reg, .dereg = l_dereg,
	};
	struct mrc_cache_attr attr = {
		.comp_mask = MRC_ATTR_MONITOR, .monitor = MRC_MONITOR_MANUAL,
	};

	ck_assert_int_eq(mrc_cache_create(&prov, &attr, &cache), 0);
	ck_assert_msg(cache->thread_refs, "thread refs unavailable (membarrier?)");
}

static void litmus_teardown(void)
{
	ck_assert_int_eq(mrc_cache_destroy(cache), 0);
	for (unsigned int i = 0; i < LIVE; i++)
		ck_assert_msg(!atomic_load(&live[i]), "registration %lu leaked",
			      (unsigned long)atomic_load(&live[i]));
}

/*
 * What the unfenced case ran: the fenced one runs at least as much, and
 * at least FENCED_ROUNDS (without the fence a fifth to a third of the
 * rounds show the outcome on the development machine, so 200 rounds
 * without one would be chance at odds below 1 in 10^20).
 */
#define FENCED_ROUNDS 200
static unsigned long unfenced_rounds;
static double unfenced_seconds;

START_TEST(without_the_fence_a_scan_misses_a_slot)
{
	struct litmus l = { .count_all = getenv("MRCACHE_LITMUS_COUNT") != NULL };

	l.stores = litmus_stores();

	l.seconds = env_seconds("MRCACHE_LITMUS_SECONDS", 20);
	l.cap = l.seconds;
	pick_cpus(&l);
	litmus_setup();
	mrc_trefs_skip_fence = 1;
	run_litmus(&l);
	mrc_trefs_skip_fence = 0;
	litmus_teardown();
	unfenced_rounds = l.rounds;
	unfenced_seconds = elapsed(&l.started);
	ck_assert_msg(l.count[FORBIDDEN] > 0,
		      "with the membarrier skipped, no scan missed a slot in %lu rounds (%.1f s); reader first %lu, killer first %lu: this machine did not show the race the fence closes",
		      l.rounds, l.seconds, l.count[READER_FIRST], l.count[KILLER_FIRST]);
}
END_TEST

START_TEST(with_the_fence_no_scan_misses_a_slot)
{
	struct litmus l = { .count_all = 1, .stores = litmus_stores() };
	double fenced = env_seconds("MRCACHE_LITMUS_FENCED_SECONDS", 3);

	l.seconds = unfenced_seconds > fenced ? unfenced_seconds : fenced;
	l.min_rounds = unfenced_rounds > FENCED_ROUNDS ? unfenced_rounds : FENCED_ROUNDS;
	l.cap = 3 * env_seconds("MRCACHE_LITMUS_SECONDS", 20) + l.seconds;
	pick_cpus(&l);
	litmus_setup();
	run_litmus(&l);
	litmus_teardown();
	ck_assert_msg(l.count[FORBIDDEN] == 0,
		      "%lu of %lu rounds: a get returned a registration the reclaimer then deregistered under it",
		      l.count[FORBIDDEN], l.rounds);
	ck_assert_msg(l.rounds >= l.min_rounds,
		      "only %lu rounds with the fence in %.0f s (%lu wanted): the machine is too busy to show anything",
		      l.rounds, l.cap, l.min_rounds);
	/* The rounds met: each side won a fair share of them. */
	ck_assert_uint_gt(l.count[READER_FIRST], l.rounds / 10);
	ck_assert_uint_gt(l.count[KILLER_FIRST], l.rounds / 10);
}
END_TEST

/* Membarriers one invalidation of a region this thread got and put ran. */
static unsigned long fences_of_one_invalidation(void)
{
	unsigned long before = __atomic_load_n(&mrc_trefs_fences, __ATOMIC_RELAXED);
	struct mrc_region *r = cache_get_ok(cache, page_addr, page, 0);
	void *handle = mrc_region_handle(r);

	cache_put_ok(cache, r);
	ck_assert_int_eq(mrc_invalidate(cache, page_addr, page), 0);
	ck_assert_msg(!is_live(handle), "an invalidated idle region is still registered");
	return __atomic_load_n(&mrc_trefs_fences, __ATOMIC_RELAXED) - before;
}

struct owner {
	char *addr;			/* its own page */
	atomic_int state;		/* 1: it owns a record, 2: leave, -1: failed */
};

/* Claims a record (a get binds the thread), then waits to be let go. */
static void *owner_thread(void *arg)
{
	struct owner *o = arg;
	struct mrc_region *r;

	if (mrc_get(cache, o->addr, page, 0, &r) || mrc_put(cache, r)) {
		atomic_store(&o->state, -1);
		return NULL;
	}
	atomic_store(&o->state, 1);
	while (atomic_load(&o->state) != 2)
		sched_yield();
	return NULL;
}

static void start_owner(struct owner *o, pthread_t *t)
{
	ck_assert_int_eq(pthread_create(t, NULL, owner_thread, o), 0);
	while (atomic_load(&o->state) == 0)
		sched_yield();
	ck_assert_int_eq(atomic_load(&o->state), 1);
}

START_TEST(the_fence_runs_only_with_another_owner)
{
	struct owner o = { .addr = cold };
	pthread_t t;

	litmus_setup();
	ck_assert_uint_eq(fences_of_one_invalidation(), 0);
	start_owner(&o, &t);
	ck_assert_uint_eq(fences_of_one_invalidation(), 1);
	atomic_store(&o.state, 2);
	pthread_join(t, NULL);
	/* Its record went with it: this thread is the only owner again. */
	ck_assert_uint_eq(fences_of_one_invalidation(), 0);
	litmus_teardown();
}
END_TEST

/*
 * A registration that must evict several regions to fit the byte bound
 * kills them all, then deregisters them with one drain: one membarrier,
 * while another thread owns a record, for the lot.
 */
START_TEST(one_fence_per_eviction_batch)
{
	enum { VICTIMS = 8 };
	struct mrc_provider prov = {
		.name = "threadrefs_litmus", .reg = l_reg, .dereg = l_dereg,
	};
	struct mrc_cache_attr attr = {
		.comp_mask = MRC_ATTR_MONITOR | MRC_ATTR_MAX_BYTES | MRC_ATTR_MERGE,
		.monitor = MRC_MONITOR_MANUAL, .merge = MRC_MERGE_NONE,
		.max_bytes = VICTIMS * page,
	};
	/* Pages of cold[], a page apart so that none touch. */
	char *big = cold + 2 * VICTIMS * page;
	struct owner o = { .addr = cold + 4 * VICTIMS * page };
	struct mrc_stats st;
	unsigned long before;
	uint64_t evictions;
	pthread_t t;

	ck_assert_int_eq(mrc_cache_create(&prov, &attr, &cache), 0);
	for (int i = 0; i < VICTIMS; i++)
		cache_put_ok(cache, cache_get_ok(cache, cold + 2 * i * page, page, 0));
	/* Its page evicts one victim: the bound holds VICTIMS pages. */
	start_owner(&o, &t);
	ck_assert_int_eq(mrc_cache_stats(cache, &st), 0);
	evictions = st.evictions;
	before = __atomic_load_n(&mrc_trefs_fences, __ATOMIC_RELAXED);
	cache_put_ok(cache, cache_get_ok(cache, big, VICTIMS * page, 0));
	ck_assert_uint_eq(__atomic_load_n(&mrc_trefs_fences, __ATOMIC_RELAXED) - before, 1);
	ck_assert_int_eq(mrc_cache_stats(cache, &st), 0);
	ck_assert_uint_eq(st.evictions - evictions, VICTIMS);
	ck_assert_uint_eq(nregs_live(), 1);	/* the big one alone */
	atomic_store(&o.state, 2);
	pthread_join(t, NULL);
	litmus_teardown();
}
END_TEST

static void add_case(Suite *s, const char *name, const TTest *test)
{
	TCase *tc = tcase_create(name);

	tcase_set_timeout(tc, 120 + 3 * env_seconds("MRCACHE_LITMUS_SECONDS", 20));
	tcase_add_test(tc, test);
	suite_add_tcase(s, tc);
}

int main(void)
{
	Suite *s;

	setenv("MRCACHE_THREAD_REFS", "1", 1);
	page = (size_t)sysconf(_SC_PAGESIZE);
	page_addr = mmap(NULL, page, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cold = mmap(NULL, COLD_PAGES * page, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (page_addr == MAP_FAILED || cold == MAP_FAILED)
		return 1;
	/* Small pages (the TLB misses are the point), present (no faults). */
	madvise(cold, COLD_PAGES * page, MADV_NOHUGEPAGE);
	memset(cold, 1, COLD_PAGES * page);
	s = suite_create("threadrefs_litmus");
	add_case(s, "owners", the_fence_runs_only_with_another_owner);
	add_case(s, "eviction", one_fence_per_eviction_batch);
	/* In this order: the fenced case runs as long as the unfenced one. */
	if (!SANITIZED)
		add_case(s, "unfenced", without_the_fence_a_scan_misses_a_slot);
	add_case(s, "fenced", with_the_fence_no_scan_misses_a_slot);
	return check_run_suite_nofork(s);
}
