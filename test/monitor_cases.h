/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The change table and hard cases that monitor_hooks_test and
 * monitor_uffd_test both run: a cache over the fake provider, the table of
 * address-space changes under a cached registration (each returns 1 when
 * the stale registration was served again), made by this program and by a
 * library loaded with dlopen() later (test/dlopen_lib.c), and the hard
 * cases: a change made under the cache lock, registrations racing a
 * change, many threads, signal handlers, a record that overflows.
 *
 * A program including this defines MRC_DLTEST_LIB (the path of
 * test/libmrc_dltest.so) and links -ldl.
 *
 * MRCACHE_HOOKS_TEST_ITERS sets the length of the thread and signal tests
 * (default 2000 rounds; CI uses the default, 100000 is a longer soak).
 */
#ifndef MRC_MONITOR_CASES_H
#define MRC_MONITOR_CASES_H

#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#include "cache_check.h"
#include "fake_provider.h"
#include "mrcache.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
/* The sanitizer's allocator replaces glibc's malloc: no free() munmap. */
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

static struct fake_provider fake;
static struct mrc_cache *cache;
static size_t page;
/* Set by a test whose monitor refuses a get where nothing is mapped (uffd). */
static int refuses_unmapped;

static void make_cache(uint32_t monitor)
{
	struct mrc_provider prov = fake_provider(&fake);
	struct mrc_cache_attr attr = {
		.comp_mask = MRC_ATTR_MONITOR | MRC_ATTR_MERGE,
		.monitor = monitor,
		.merge = MRC_MERGE_NONE,
	};
	int ret = mrc_cache_create(&prov, &attr, &cache);

	ck_assert_msg(ret == 0, "create: %s", mrc_last_error());
}

static void setup_common(void)
{
	page = (size_t)sysconf(_SC_PAGESIZE);
	fake_init(&fake);
	ck_assert_int_eq(fake_reserve(&fake, 1 << 16), 0);
}

static void teardown(void)
{
	if (cache)
		ck_assert_int_eq(mrc_cache_destroy(cache), 0);
	cache = NULL;
	ck_assert_uint_eq(fake.live, 0);
	ck_assert_uint_eq(fake.double_deregs, 0);
	fake_fini(&fake);
}

static char *map_at(void *hint, size_t pages, int flags)
{
	char *p = mmap(hint, pages * page, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);

	ck_assert_ptr_ne(p, MAP_FAILED);
	if (hint)
		ck_assert_ptr_eq(p, hint);
	memset(p, 0x5a, pages * page);
	return p;
}

static char *map_pages(size_t pages)
{
	return map_at(NULL, pages, 0);
}

/* Map again where something was unmapped, without MAP_FIXED (not hooked). */
static void remap(void *at, size_t pages)
{
	map_at(at, pages, MAP_FIXED_NOREPLACE);
}

/* Register [p, p + len) through the cache; the registration's handle. */
static void *cached(void *p, size_t len)
{
	struct mrc_region *r = cache_get_ok(cache, p, len, 1);
	void *h = mrc_region_handle(r);

	cache_put_ok(cache, r);
	return h;
}

/*
 * The handle of a get of [p, p + len), or NULL when the monitor refused
 * it because nothing is mapped there (only where refuses_unmapped: uffd
 * checks; the fake provider registers anything).
 */
static void *cached_if_mapped(void *p, size_t len)
{
	struct mrc_region *r;
	void *h;
	int ret = mrc_get(cache, p, len, 1, &r);

	if (ret == -EFAULT && refuses_unmapped)
		return NULL;
	ck_assert_msg(ret == 0, "mrc_get(%p, %zu) = %d: %s", p, len, ret,
		      mrc_last_error());
	h = mrc_region_handle(r);
	cache_put_ok(cache, r);
	return h;
}

/* Does a get of [p, p + len) hand back the registration @old? */
static int served_again(void *p, size_t len, void *old)
{
	return cached_if_mapped(p, len) == old;
}

/*
 * Each scenario: 1 when the stale registration was served again. The
 * calls are passed in, so that the same scenario runs them from this
 * program and from a library loaded later (dltest_fn()).
 */
typedef int (*unmap_fn)(void *, size_t);
typedef int (*advise_fn)(void *, size_t, int);
typedef void *(*move_fn)(void *, size_t, size_t, int, void *);

static int unmap_case(unmap_fn unmap)
{
	char *p = map_pages(4);
	void *h = cached(p, 4 * page);

	ck_assert_int_eq(unmap(p, 4 * page), 0);
	remap(p, 4);
	return served_again(p, 4 * page, h);
}

static int syscall_munmap(void *p, size_t len)
{
	return (int)syscall(SYS_munmap, p, len);
}

static int sc_munmap(void)
{
	return unmap_case(munmap);
}

static int sc_syscall_munmap(void)
{
	return unmap_case(syscall_munmap);
}

static int sc_mmap_fixed(void)
{
	char *p = map_pages(4);
	void *h = cached(p, 4 * page);

	map_at(p, 4, MAP_FIXED);
	return served_again(p, 4 * page, h);
}

static int move_case(move_fn move)
{
	char *p = map_pages(4), *q = map_pages(4);
	void *h = cached(p, 4 * page);

	ck_assert_ptr_eq(move(p, 4 * page, 4 * page,
			      MREMAP_MAYMOVE | MREMAP_FIXED, q), q);
	remap(p, 4);
	return served_again(p, 4 * page, h);
}

static void *libc_mremap(void *old, size_t old_len, size_t new_len, int flags,
			 void *new_addr)
{
	return mremap(old, old_len, new_len, flags, new_addr);
}

static int sc_mremap_move(void)
{
	return move_case(libc_mremap);
}

static int sc_mremap_shrink(void)
{
	char *p = map_pages(4);
	void *h = cached(p, 4 * page);

	ck_assert_ptr_eq(mremap(p, 4 * page, 2 * page, 0), p);
	remap(p + 2 * page, 2);
	return served_again(p, 4 * page, h);
}

static int madvise_case(advise_fn advise, int advice)
{
	char *p = map_pages(4);
	void *h = cached(p, 4 * page);

	ck_assert_int_eq(advise(p, 4 * page, advice), 0);
	return served_again(p, 4 * page, h);
}

static int sc_madv_dontneed(void)
{
	return madvise_case(madvise, MADV_DONTNEED);
}

static int sc_madv_free(void)
{
	return madvise_case(madvise, MADV_FREE);
}

/* The break moved down and up again under a registration. */
static int sc_brk(void)
{
	char *cur = sbrk(0), *top;
	size_t pad = (page - (uintptr_t)cur % page) % page;
	void *h;

	ck_assert_ptr_ne(sbrk((intptr_t)(pad + 4 * page)), (void *)-1);
	cur += pad;
	memset(cur, 1, 4 * page);
	h = cached(cur, 4 * page);
	top = sbrk(0);
	ck_assert_msg(top == cur + 4 * page, "malloc moved the break under the test");
	ck_assert_ptr_ne(sbrk(-(intptr_t)(4 * page)), (void *)-1);
	ck_assert_ptr_ne(sbrk((intptr_t)(4 * page)), (void *)-1);
	return served_again(cur, 4 * page, h);
}

/* glibc's free() unmaps a large block itself, not through the PLT. */
static int sc_free_malloc(void)
{
	size_t len = 1 << 20;
	char *b, *b2;
	void *h;
	int stale;

	mallopt(M_MMAP_THRESHOLD, 128 * 1024);	/* fixed: no dynamic raise */
	b = malloc(len);
	ck_assert_ptr_nonnull(b);
	memset(b, 1, len);
	h = cached(b, len);
	free(b);
	b2 = malloc(len);
	ck_assert_msg(b2 == b, "malloc gave %p, not the freed %p", (void *)b2, (void *)b);
	stale = served_again(b2, len, h);
	free(b2);
	return stale;
}

/* malloc_trim() gives the heap's top back with brk (and madvise). */
static int sc_malloc_trim(void)
{
	size_t len = 1 << 20;
	char *b, *inner;
	void *h;

	mallopt(M_MMAP_THRESHOLD, 64 << 20);
	mallopt(M_TRIM_THRESHOLD, 512 << 20);	/* only malloc_trim trims */
	b = malloc(len);
	ck_assert_ptr_nonnull(b);
	memset(b, 1, len);
	inner = (char *)(((uintptr_t)b + 2 * page) & ~(uintptr_t)(page - 1));
	h = cached(inner, len / 2);
	free(b);
	ck_assert_int_eq(malloc_trim(0), 1);
	return served_again(inner, len / 2, h);
}

/* A System V segment of @pages, attached; it goes with the last detach. */
static char *shm_pages(size_t pages)
{
	int id = shmget(IPC_PRIVATE, pages * page, IPC_CREAT | 0600);
	char *p;

	ck_assert_int_ge(id, 0);
	p = shmat(id, NULL, 0);
	ck_assert_ptr_ne(p, (void *)-1);
	shmctl(id, IPC_RMID, NULL);
	memset(p, 1, pages * page);
	return p;
}

static int sc_shmdt(void)
{
	char *p = shm_pages(4), *q;
	void *h;

	h = cached(p, 4 * page);
	ck_assert_int_eq(shmdt(p), 0);
	q = map_at(p, 4, MAP_FIXED_NOREPLACE);
	return served_again(q, 4 * page, h);
}

/*
 * The same changes made by a library loaded with dlopen() after the hooks
 * went in (test/dlopen_lib.c): its PLT is resolved at its first call, and
 * nothing tells the hooks it exists.
 */
static void *dltest_fn(const char *name)
{
	static void *lib;
	void *fn;

	if (!lib) {
		ck_assert_msg(!dlopen(MRC_DLTEST_LIB, RTLD_LAZY | RTLD_NOLOAD),
			      "%s was loaded before the hooks", MRC_DLTEST_LIB);
		lib = dlopen(MRC_DLTEST_LIB, RTLD_LAZY | RTLD_LOCAL);
		ck_assert_msg(lib, "dlopen: %s", dlerror());
	}
	fn = dlsym(lib, name);
	ck_assert_msg(fn, "dlsym(%s): %s", name, dlerror());
	return fn;
}

static int sc_dl_munmap(void)
{
	return unmap_case(dltest_fn("mrc_dltest_munmap"));
}

static int sc_dl_madvise(void)
{
	return madvise_case(dltest_fn("mrc_dltest_madvise"), MADV_DONTNEED);
}

static int sc_dl_mremap(void)
{
	return move_case(dltest_fn("mrc_dltest_mremap"));
}

static int sc_dl_syscall_munmap(void)
{
	return unmap_case(dltest_fn("mrc_dltest_syscall_munmap"));
}

struct scenario {
	const char *name;
	int (*run)(void);
	int needs_glibc_malloc;
	/* Memory a userfaultfd cannot watch (SysV shm): uffd refuses it. */
	int uffd_refused;
};

static const struct scenario scenarios[] = {
	{ "munmap + mmap at the same address", sc_munmap, 0, 0 },
	{ "syscall(SYS_munmap)", sc_syscall_munmap, 0, 0 },
	{ "mmap(MAP_FIXED) over it", sc_mmap_fixed, 0, 0 },
	{ "mremap move", sc_mremap_move, 0, 0 },
	{ "mremap shrink", sc_mremap_shrink, 0, 0 },
	{ "madvise(MADV_DONTNEED)", sc_madv_dontneed, 0, 0 },
	{ "madvise(MADV_FREE)", sc_madv_free, 0, 0 },
	{ "brk shrink and regrow", sc_brk, 0, 0 },
	{ "free() of a large block, malloc() at the same address", sc_free_malloc, 1, 0 },
	{ "malloc_trim()", sc_malloc_trim, 1, 0 },
	{ "shmdt", sc_shmdt, 0, 1 },
	{ "munmap from a library dlopen'ed later", sc_dl_munmap, 0, 0 },
	{ "madvise(MADV_DONTNEED) from a library dlopen'ed later", sc_dl_madvise, 0, 0 },
	{ "mremap from a library dlopen'ed later", sc_dl_mremap, 0, 0 },
	{ "syscall(SYS_munmap) from a library dlopen'ed later", sc_dl_syscall_munmap, 0, 0 },
};

#define NSCENARIOS ((int)(sizeof(scenarios) / sizeof(scenarios[0])))

static int skipped(const struct scenario *s)
{
	if (s->needs_glibc_malloc && SANITIZED) {
		fprintf(stderr, "skipped under a sanitizer (its malloc is not glibc's): %s\n",
			s->name);
		return 1;
	}
	return 0;
}

/* @s, under a monitor that must see it: nothing stale is served. */
static void check_dropped(const struct scenario *s, const char *monitor)
{
	ck_assert_msg(!s->run(), "%s: stale registration served after %s",
		      monitor, s->name);
	ck_assert_uint_ge(cache_stats_ok(cache).invalidations, 1);
}

static long iters(void)
{
	const char *s = getenv("MRCACHE_HOOKS_TEST_ITERS");

	return s ? atol(s) : 2000;
}

static size_t registrations(void)
{
	return fake_read(&fake, &fake.count);
}

/* The handle of a get of [p, p + len) must be a registration after @n. */
static void assert_fresh(void *p, size_t len, size_t n)
{
	void *h = cached(p, len);

	ck_assert_msg((uintptr_t)h > n, "registration %zu made before the change (last %zu) served",
		      (size_t)(uintptr_t)h, n);
}

/* The provider's deregistration (cache lock held) unmaps cached memory. */
static char *victim;

static void dereg_unmaps(void *arg)
{
	(void)arg;
	fake.dereg_hook = NULL;
	ck_assert_int_eq(munmap(victim, 4 * page), 0);
}

/* A change made by the provider's deregistration, cache lock held. */
static void check_dereg_unmaps(void)
{
	char *a = map_pages(4);
	void *h;

	victim = map_pages(4);
	cached(a, 4 * page);
	h = cached(victim, 4 * page);
	fake.dereg_hook = dereg_unmaps;
	/* Deregisters a's region under the lock; the hook fires there. */
	ck_assert_int_eq(mrc_invalidate(cache, a, 4 * page), 0);
	ck_assert_ptr_null(fake.dereg_hook);
	remap(victim, 4);
	ck_assert(!served_again(victim, 4 * page, h));
}

/*
 * A registration another thread makes while the call runs must not stay
 * cached. The fake provider "pins" by reading the registered page's stamp
 * when it registers (process_vm_readv: an unmapped page reads as nothing,
 * as ibv_reg_mr would fail there). Each round changes the buffer stamped
 * with the round number, stamps the new pages anew and checks that a get
 * never gives a registration that read the old stamp.
 *
 * madvise(MADV_DONTNEED) of a large populated buffer zaps it page by page
 * for milliseconds, and the contested page is the last one: the other
 * threads drain the first record and register the old page while the
 * call is still running. Only the second record (after the call) catches
 * that; without it this test fails within a few rounds.
 */
static char *stamp_at;		/* the contested page */
static int stop;
static uint64_t *stamp_of;	/* by registration handle */

static void read_stamp(void *arg)
{
	uint64_t stamp = 0;
	struct iovec local = { &stamp, sizeof(stamp) };
	struct iovec remote = { stamp_at, sizeof(stamp) };

	(void)arg;
	/* Under the cache lock: registrations are serialized. */
	if (process_vm_readv(getpid(), &local, 1, &remote, 1, 0) != sizeof(stamp))
		stamp = 0;
	stamp_of[fake.count + 1] = stamp;
}

static void *hitter(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED))
		cached_if_mapped(stamp_at, page);
	return NULL;
}

static void race(void (*change)(char *buf, size_t pages), size_t pages,
		 long rounds)
{
	char *buf = map_pages(pages);
	pthread_t t[2];
	void *h;

	stamp_of = calloc(1 << 16, sizeof(*stamp_of));
	fake.reg_hook = read_stamp;
	stamp_at = buf + (pages - 1) * page;
	*(volatile uint64_t *)stamp_at = 1;
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, hitter, NULL), 0);
	for (uint64_t i = 1; i <= (uint64_t)rounds && registrations() < (1 << 16) - 64; i++) {
		change(buf, pages);
		*(volatile uint64_t *)stamp_at = i + 1;
		h = cached(stamp_at, page);
		ck_assert_msg(stamp_of[(uintptr_t)h] != i,
			      "round %lu: registration %lu of the old page served",
			      (unsigned long)i, (unsigned long)(uintptr_t)h);
	}
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	fake.reg_hook = NULL;
	free(stamp_of);
	munmap(buf, pages * page);
}

/*
 * New pages at the same address. Under a sanitizer, the racing thread's
 * gets map the sanitizer's own memory now and then (a get that fails
 * formats an error; uffd refuses the unmapped range), and the kernel puts
 * it in the hole munmap leaves (seen once in ten ASan runs of the hooks
 * under load). There the mapping is replaced without a hole: MAP_FIXED
 * for uffd, fresh pages moved over the old ones in one mremap for the
 * others (both recorded before the change, like munmap); the plain and
 * TSan builds race munmap itself.
 */
static void unmap_remap(char *buf, size_t pages)
{
	char *fresh;

	if (SANITIZED && refuses_unmapped) {
		map_at(buf, pages, MAP_FIXED);
		return;
	}
	if (SANITIZED) {
		fresh = map_pages(pages);
		ck_assert_ptr_eq(mremap(fresh, pages * page, pages * page,
					MREMAP_MAYMOVE | MREMAP_FIXED, buf), buf);
		return;
	}
	ck_assert_int_eq(munmap(buf, pages * page), 0);
	remap(buf, pages);
}

/* Many threads changing their own mappings while others hit theirs. */
static void *changer(void *arg)
{
	long rounds = (long)(uintptr_t)arg;
	char *p = map_pages(2);
	size_t n;

	for (long i = 0; i < rounds; i++) {
		cached(p, 2 * page);
		if (i % 2) {
			ck_assert_int_eq(madvise(p, 2 * page, MADV_DONTNEED), 0);
		} else {
			map_at(p, 2, MAP_FIXED);
		}
		n = registrations();
		assert_fresh(p, 2 * page, n);
	}
	munmap(p, 2 * page);
	return NULL;
}

static void run_changers(void)
{
	enum { THREADS = 4 };
	pthread_t t[THREADS];

	for (int i = 0; i < THREADS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, changer,
						(void *)(uintptr_t)(iters() / THREADS)), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
}

/*
 * A signal handler unmaps and maps back a cached buffer, interrupting the
 * main thread anywhere: inside a hook, inside mrc_get with the lock held.
 */
static char *sigbuf;
static volatile sig_atomic_t signals;

static void on_alarm(int sig)
{
	int saved = errno;

	(void)sig;
	if (munmap(sigbuf, page) == 0 &&
	    mmap(sigbuf, page, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) == sigbuf)
		signals++;
	errno = saved;
}

static void run_signal_rounds(void)
{
	struct itimerval tv = { { 0, 200 }, { 0, 200 } };
	char *own = map_pages(2);
	long rounds = iters();

	sigbuf = map_pages(1);
	ck_assert(signal(SIGALRM, on_alarm) != SIG_ERR);
	ck_assert_int_eq(setitimer(ITIMER_REAL, &tv, NULL), 0);
	for (long i = 0; i < rounds; i++) {
		sig_atomic_t before = signals;
		void *h = cached(sigbuf, page);

		cached(own, 2 * page);
		ck_assert_int_eq(munmap(own, 2 * page), 0);
		own = map_pages(2);
		if (signals != before)
			continue;	/* the handler ran inside this round */
		while (signals == before)
			cached(own, 2 * page);
		ck_assert(!served_again(sigbuf, page, h));
	}
	memset(&tv, 0, sizeof(tv));
	setitimer(ITIMER_REAL, &tv, NULL);
}

/*
 * More changes than the record holds: nothing is lost, everything drops.
 * @watched: the monitor reports changes of cached ranges only (uffd), so
 * the range changed over and over is cached first.
 */
static void check_overflow(int watched)
{
	char *a = map_pages(4), *b = map_pages(4), *other = map_pages(1);
	void *ha = cached(a, 4 * page), *hb = cached(b, 4 * page);

	if (watched)
		cached(other, page);

	ck_assert_int_eq(munmap(a, 4 * page), 0);
	remap(a, 4);
	for (int i = 0; i < 5000; i++)
		ck_assert_int_eq(madvise(other, page, MADV_DONTNEED), 0);
	ck_assert(!served_again(a, 4 * page, ha));
	/* b was never touched: it went with the overflow. */
	ck_assert(!served_again(b, 4 * page, hb));
}

/* The hard cases every user-space monitor must pass, as Check tests. */
START_TEST(change_under_cache_lock)
{
	check_dereg_unmaps();
}
END_TEST

START_TEST(registration_races_munmap)
{
	race(unmap_remap, 4, iters());
}
END_TEST

START_TEST(many_threads)
{
	run_changers();
}
END_TEST

START_TEST(signal_handler)
{
	run_signal_rounds();
}
END_TEST

/* A test case of @s running @test over every scenario, after @setup. */
static void add_table_case(Suite *s, const char *name, void (*setup)(void),
			   const TTest *test)
{
	TCase *tc = tcase_create(name);

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test, 0, NSCENARIOS);
	suite_add_tcase(s, tc);
}

/*
 * The "hard cases" test case of @s: the shared ones, then the @n tests of
 * @own.
 */
static void add_hard_cases(Suite *s, void (*setup)(void),
			   const TTest *const *own, size_t n)
{
	const TTest *shared[] = {
		change_under_cache_lock, registration_races_munmap,
		many_threads, signal_handler,
	};
	TCase *tc = tcase_create("hard cases");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	for (size_t i = 0; i < sizeof(shared) / sizeof(shared[0]); i++)
		tcase_add_test(tc, shared[i]);
	for (size_t i = 0; i < n; i++)
		tcase_add_test(tc, own[i]);
	suite_add_tcase(s, tc);
}

#endif
