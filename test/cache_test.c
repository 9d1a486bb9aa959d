// SPDX-License-Identifier: BSD-2-Clause
/*
 * Cache semantics against the counting fake provider: hits, merges, access
 * upgrades, eviction order and bounds, invalidation, error paths, fork.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cache_check.h"
#include "merge_cases.h"
#include "fake_provider.h"
#include "mrcache.h"
#include "threadrefs/mode.h"

static struct fake_provider fake;
static struct mrc_cache *cache;
static char *arena;		/* page-aligned memory the tests register */
static size_t page;

#define ARENA_PAGES 64
#define P(i) (arena + (size_t)(i) * page)

static void make_cache(const struct mrc_cache_attr *attr)
{
	struct mrc_provider prov = fake_provider(&fake);

	ck_assert_int_eq(mrc_cache_create(&prov, attr, &cache), 0);
}

/*
 * MRCACHE_THREAD_REFS as the run was started with (scripts/test.sh runs
 * this suite with 0 too): cases that set it put it back, so that with
 * CK_FORK=no the cases after them still run in the run's mode.
 */
static char refs_env_run[64];
static int refs_env_was_set;

static void restore_refs_env(void)
{
	if (refs_env_was_set)
		setenv("MRCACHE_THREAD_REFS", refs_env_run, 1);
	else
		unsetenv("MRCACHE_THREAD_REFS");
}

static void setup(void)
{
	const char *refs = getenv("MRCACHE_THREAD_REFS");

	refs_env_was_set = refs != NULL;
	snprintf(refs_env_run, sizeof(refs_env_run), "%s", refs ? refs : "");
	page = (size_t)sysconf(_SC_PAGESIZE);
	arena = mmap(NULL, ARENA_PAGES * page, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(arena, MAP_FAILED);
	memset(arena, 1, ARENA_PAGES * page);
	fake_init(&fake);
	cache = NULL;
}

static void teardown(void)
{
	fake_teardown(cache, &fake);
	munmap(arena, ARENA_PAGES * page);
	unsetenv("MRCACHE_MAX_REGIONS");
	unsetenv("MRCACHE_MERGE");
	restore_refs_env();
}

#define PFN_SAME_FRAMES_OK "pfn check: hits on unchanged pages passed"

static struct mrc_region *get_ok(void *addr, size_t len, uint32_t access)
{
	return cache_get_ok(cache, addr, len, access);
}

static void put_ok(struct mrc_region *r)
{
	cache_put_ok(cache, r);
}

static struct mrc_stats stats(void)
{
	return cache_stats_ok(cache);
}

static struct mrc_cache_attr attr_merge(uint32_t merge)
{
	return (struct mrc_cache_attr){ .comp_mask = MRC_ATTR_MERGE, .merge = merge };
}

static void sleep_20ms(void *arg)
{
	(void)arg;
	usleep(20000);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * provider_ns is the time spent in the provider, in nanoseconds: at least
 * what the registration slept, at most the whole get around it (a clock
 * in the wrong unit, TSC ticks not converted, lands outside).
 */
START_TEST(provider_time_is_nanoseconds)
{
	struct mrc_region *r;
	uint64_t t0, t1;

	make_cache(NULL);
	fake.reg_hook = sleep_20ms;
	t0 = now_ns();
	r = get_ok(P(0), page, 1);
	t1 = now_ns();
	put_ok(r);
	ck_assert_uint_ge(stats().provider_ns, 20000000);
	ck_assert_uint_le(stats().provider_ns, t1 - t0);
}
END_TEST

/*
 * With thread refs a thread's front entries name regions of the cache it
 * is bound to; binding to another cache must forget them, or a hit there
 * through a key the first cache filled would hand out the first cache's
 * region.
 */
START_TEST(front_entries_belong_to_one_cache)
{
	struct fake_provider fake2;
	struct mrc_provider prov2;
	struct mrc_cache *cache2;
	struct mrc_region *r;

	/* Front entries exist only with thread refs: on in either CI pass. */
	setenv("MRCACHE_THREAD_REFS", "1", 1);
	make_cache(NULL);
	fake_init(&fake2);
	prov2 = fake_provider(&fake2);
	ck_assert_int_eq(mrc_cache_create(&prov2, NULL, &cache2), 0);
	restore_refs_env();
	put_ok(get_ok(P(0), page, 1));	/* fills the front entries */
	put_ok(get_ok(P(2), page, 1));	/* of two keys in the first cache */
	put_ok(get_ok(P(2), page, 1));
	r = cache_get_ok(cache2, P(0), page, 1);	/* binds to the second */
	cache_put_ok(cache2, r);
	r = cache_get_ok(cache2, P(2), page, 1);
	ck_assert_uint_eq(fake_read(&fake2, &fake2.count), 2);
	cache_put_ok(cache2, r);
	fake_teardown(cache2, &fake2);
}
END_TEST

START_TEST(hit_reuses_registration)
{
	struct mrc_region *a, *b;

	make_cache(NULL);
	a = get_ok(P(1) + 10, 100, 1);
	put_ok(a);
	b = get_ok(P(1) + 50, 8, 1);
	ck_assert_ptr_eq(a, b);
	ck_assert_ptr_eq(mrc_region_addr(b), P(1));
	ck_assert_uint_eq(mrc_region_length(b), page);
	put_ok(b);
	ck_assert_uint_eq(fake.count, 1);
	ck_assert_uint_eq(stats().hits, 1);
	ck_assert_uint_eq(stats().misses, 1);
	ck_assert_str_eq(stats().provider, "fake");
	ck_assert_str_eq(stats().monitor, "manual");
}
END_TEST

START_TEST(range_is_page_aligned)
{
	struct mrc_region *r;

	make_cache(NULL);
	r = get_ok(P(2) + page - 1, 2, 1); /* straddles two pages */
	ck_assert_ptr_eq(mrc_region_addr(r), P(2));
	ck_assert_uint_eq(mrc_region_length(r), 2 * page);
	ck_assert_uint_eq(fake_reg_of(&fake, r)->addr, (uintptr_t)P(2));
	ck_assert_uint_eq(fake_reg_of(&fake, r)->len, 2 * page);
	put_ok(r);
}
END_TEST

START_TEST(overlap_merges_and_old_dies_at_last_put)
{
	struct mrc_region *a, *b, *c;

	make_cache(NULL);
	a = get_ok(P(0), 2 * page, 1);
	b = get_ok(P(1), 2 * page, 1);	/* overlaps a: one region P0..P3 */
	ck_assert_ptr_ne(a, b);
	ck_assert_ptr_eq(mrc_region_addr(b), P(0));
	ck_assert_uint_eq(mrc_region_length(b), 3 * page);
	ck_assert_uint_eq(stats().merges, 1);
	ck_assert_uint_eq(fake.live, 2);	/* a is dead but referenced */
	put_ok(a);
	ck_assert_uint_eq(fake.live, 1);	/* deregistered at its last put */
	c = get_ok(P(0), page, 1);		/* served by the merged region */
	ck_assert_ptr_eq(c, b);
	put_ok(b);
	put_ok(c);
}
END_TEST

START_TEST(adjacent_merge_follows_policy)
{
	struct mrc_cache_attr attr = attr_merge(MRC_MERGE_ADJACENT);
	struct mrc_region *a, *b;

	make_cache(&attr);
	a = get_ok(P(0), page, 1);
	put_ok(a);
	b = get_ok(P(1), page, 1);
	ck_assert_ptr_eq(mrc_region_addr(b), P(0));
	ck_assert_uint_eq(mrc_region_length(b), 2 * page);
	put_ok(b);
	ck_assert_uint_eq(mrc_cache_destroy(cache), 0);

	attr = attr_merge(MRC_MERGE_OVERLAP);
	make_cache(&attr);
	a = get_ok(P(0), page, 1);
	b = get_ok(P(1), page, 1);
	ck_assert_ptr_eq(mrc_region_addr(b), P(1));
	ck_assert_uint_eq(stats().merges, 0);
	put_ok(a);
	put_ok(b);
}
END_TEST

START_TEST(no_merge_keeps_overlapping_regions)
{
	struct mrc_cache_attr attr = attr_merge(MRC_MERGE_NONE);
	struct mrc_region *a, *b, *c;

	make_cache(&attr);
	a = get_ok(P(0), 2 * page, 1);
	b = get_ok(P(1), 2 * page, 1);
	ck_assert_ptr_eq(mrc_region_addr(b), P(1));
	ck_assert_uint_eq(stats().regions, 2);
	c = get_ok(P(0), page, 1);
	ck_assert_ptr_eq(c, a);
	c = get_ok(P(2), page, 1);
	ck_assert_ptr_eq(c, b);
	put_ok(a);
	put_ok(a);
	put_ok(b);
	put_ok(b);
}
END_TEST

START_TEST(access_upgrade_reregisters_with_union)
{
	struct mrc_region *ro, *rw, *again;

	make_cache(NULL);
	ro = get_ok(P(3), page, 0x1);
	rw = get_ok(P(3), page, 0x2);
	ck_assert_ptr_ne(ro, rw);
	ck_assert_uint_eq(mrc_region_access(rw), 0x3);
	ck_assert_uint_eq(fake_reg_of(&fake, rw)->access, 0x3);
	ck_assert_uint_eq(stats().upgrades, 1);
	put_ok(ro);
	ck_assert_uint_eq(fake.live, 1);
	again = get_ok(P(3), page, 0x1);	/* wider access serves */
	ck_assert_ptr_eq(again, rw);
	put_ok(again);
	put_ok(rw);
}
END_TEST

START_TEST(default_access_used_for_zero)
{
	struct mrc_cache_attr attr = {
		.comp_mask = MRC_ATTR_DEFAULT_ACCESS, .default_access = 0x5,
	};
	struct mrc_region *r;

	make_cache(&attr);
	r = get_ok(P(0), 1, 0);
	ck_assert_uint_eq(mrc_region_access(r), 0x5);
	put_ok(r);
}
END_TEST

static void get_put(void *addr, size_t len)
{
	put_ok(get_ok(addr, len, 1));
}

START_TEST(evicts_least_recently_used_by_count)
{
	struct mrc_cache_attr attr = {
		.comp_mask = MRC_ATTR_MAX_REGIONS | MRC_ATTR_MERGE,
		.max_regions = 2, .merge = MRC_MERGE_NONE,
	};
	struct mrc_region *r;

	make_cache(&attr);
	get_put(P(0), page);	/* A */
	get_put(P(2), page);	/* B */
	get_put(P(0), page);	/* hit A: B is now least recently used */
	get_put(P(4), page);	/* C evicts B */
	ck_assert_uint_eq(stats().evictions, 1);
	ck_assert_uint_eq(fake.live, 2);
	r = get_ok(P(0), page, 1);
	ck_assert_uint_eq(stats().misses, 3);	/* A still cached */
	put_ok(r);
	get_put(P(2), page);			/* B must register again */
	ck_assert_uint_eq(stats().misses, 4);
}
END_TEST

START_TEST(evicts_by_bytes)
{
	struct mrc_cache_attr attr = {
		.comp_mask = MRC_ATTR_MAX_BYTES | MRC_ATTR_MERGE,
		.max_bytes = 4 * page, .merge = MRC_MERGE_NONE,
	};

	make_cache(&attr);
	for (int i = 0; i < 8; i++) {
		get_put(P(3 * i), 2 * page);
		ck_assert_uint_le(fake.live_bytes, 4 * page);
	}
	ck_assert_uint_eq(stats().evictions, 6);
	ck_assert_uint_eq(stats().bytes_pinned, 4 * page);
}
END_TEST

START_TEST(referenced_regions_are_never_evicted)
{
	struct mrc_cache_attr attr = {
		.comp_mask = MRC_ATTR_MAX_REGIONS, .max_regions = 1,
	};
	struct mrc_region *a, *b;

	make_cache(&attr);
	a = get_ok(P(0), page, 1);
	b = get_ok(P(5), page, 1);	/* over the bound, but a is in use */
	ck_assert_uint_eq(fake.live, 2);
	ck_assert_uint_eq(stats().evictions, 0);
	ck_assert_ptr_eq(get_ok(P(0), page, 1), a);
	put_ok(a);
	put_ok(a);
	put_ok(b);
}
END_TEST

/* mrc_cache_flush_idle(): idle regions go now, held ones stay cached. */
START_TEST(flush_idle_keeps_held_regions)
{
	struct mrc_region *held;

	make_cache(&(struct mrc_cache_attr){ .comp_mask = MRC_ATTR_MERGE,
					    .merge = MRC_MERGE_NONE });
	held = get_ok(P(0), page, 1);
	put_ok(get_ok(P(4), page, 1));
	put_ok(get_ok(P(8), page, 1));
	ck_assert_uint_eq(fake.live, 3);
	ck_assert_int_eq(mrc_cache_flush_idle(cache), 0);
	ck_assert_uint_eq(fake.live, 1);
	ck_assert_uint_eq(stats().evictions, 2);
	ck_assert_ptr_eq(get_ok(P(0), page, 1), held);	/* still a hit */
	put_ok(held);
	put_ok(held);
	ck_assert_int_eq(mrc_cache_flush_idle(NULL), -EINVAL);
}
END_TEST

START_TEST(invalidate_idle_deregisters_now)
{
	struct mrc_region *r;
	size_t first;

	make_cache(NULL);
	r = get_ok(P(4), 2 * page, 1);
	first = (uintptr_t)mrc_region_handle(r);
	put_ok(r);
	ck_assert_int_eq(mrc_invalidate(cache, P(5) + 7, 1), 0);
	ck_assert_uint_eq(fake.live, 0);
	ck_assert_uint_eq(stats().invalidations, 1);
	r = get_ok(P(4), 2 * page, 1);
	ck_assert_uint_ne((uintptr_t)mrc_region_handle(r), first);
	put_ok(r);
}
END_TEST

START_TEST(invalidate_referenced_defers_to_last_put)
{
	struct mrc_region *old, *fresh;

	make_cache(NULL);
	old = get_ok(P(4), page, 1);
	ck_assert_int_eq(mrc_invalidate(cache, P(4), page), 0);
	ck_assert_uint_eq(fake.live, 1);	/* still in use */
	fresh = get_ok(P(4), page, 1);		/* never the invalidated one */
	ck_assert_ptr_ne(fresh, old);
	ck_assert_uint_eq(fake.live, 2);
	put_ok(old);
	ck_assert_uint_eq(fake.live, 1);
	put_ok(fresh);
	ck_assert_uint_eq(fake.deregs, 1);
}
END_TEST

START_TEST(provider_failure_is_reported)
{
	struct mrc_region *r = NULL;

	make_cache(NULL);
	fake.fail_next = -EIO;
	fake.fail_count = 1;
	ck_assert_int_eq(mrc_get(cache, P(0), page, 1, &r), -EIO);
	ck_assert_ptr_null(r);
	ck_assert_ptr_nonnull(strstr(mrc_last_error(), "could not register"));
	ck_assert_uint_eq(stats().reg_failures, 1);
	ck_assert_uint_eq(stats().regions, 0);
	get_put(P(0), page);		/* and the cache still works */
}
END_TEST

START_TEST(enomem_evicts_and_retries_once)
{
	struct mrc_region *held, *r = NULL;

	make_cache(NULL);
	fake.byte_limit = 4 * page;
	get_put(P(0), 2 * page);
	get_put(P(10), 2 * page);	/* the provider is now full of idle memory */
	get_put(P(20), 2 * page);	/* fails once, evicts, retries */
	ck_assert_uint_eq(stats().retries, 1);
	ck_assert_uint_ge(stats().evictions, 1);

	held = get_ok(P(30), 4 * page, 1);	/* everything else evicted */
	ck_assert_int_eq(mrc_get(cache, P(40), page, 1, &r), -ENOMEM);
	ck_assert_ptr_nonnull(strstr(mrc_last_error(), "could not register"));
	put_ok(held);
}
END_TEST

START_TEST(bad_arguments_fail_cleanly)
{
	struct mrc_region *r = NULL;
	struct mrc_provider prov = fake_provider(&fake);
	struct mrc_provider no_reg = { .name = "broken" };
	struct mrc_cache *other;
	struct mrc_stats s;

	make_cache(NULL);
	ck_assert_int_eq(mrc_get(cache, P(0), 0, 1, &r), -EINVAL);
	ck_assert_ptr_nonnull(strstr(mrc_last_error(), "length is zero"));
	ck_assert_int_eq(mrc_get(cache, NULL, 10, 1, &r), -EINVAL);
	ck_assert_int_eq(mrc_get(cache, (void *)(UINTPTR_MAX - 10), 100, 1, &r), -EINVAL);
	ck_assert_ptr_nonnull(strstr(mrc_last_error(), "wraps"));
	ck_assert_int_eq(mrc_get(cache, (void *)(UINTPTR_MAX - 10), 5, 1, &r), -EINVAL);
	ck_assert_int_eq(mrc_get(NULL, P(0), 10, 1, &r), -EINVAL);
	ck_assert_int_eq(mrc_get(cache, P(0), 10, 1, NULL), -EINVAL);
	ck_assert_int_eq(mrc_put(cache, NULL), -EINVAL);
	ck_assert_int_eq(mrc_put(NULL, r), -EINVAL);
	ck_assert_int_eq(mrc_invalidate(cache, P(0), 0), -EINVAL);
	ck_assert_int_eq(mrc_invalidate(NULL, P(0), 1), -EINVAL);
	ck_assert_int_eq(mrc_cache_stats(cache, NULL), -EINVAL);
	ck_assert_int_eq(mrc_cache_stats(NULL, &s), -EINVAL);
	ck_assert_int_eq(mrc_cache_progress(NULL), -EINVAL);
	ck_assert_int_eq(mrc_cache_destroy(NULL), -EINVAL);
	ck_assert_int_eq(mrc_cache_create(NULL, NULL, &other), -EINVAL);
	ck_assert_int_eq(mrc_cache_create(&no_reg, NULL, &other), -EINVAL);
	ck_assert_int_eq(mrc_cache_create(&prov, NULL, NULL), -EINVAL);
	ck_assert_int_eq(mrc_cache_create_verbs(NULL, 0, NULL, &other), -EINVAL);

	r = get_ok(P(0), 10, 1);
	put_ok(r);
	ck_assert_int_eq(mrc_put(cache, r), -EINVAL);	/* double put */
	ck_assert_ptr_nonnull(strstr(mrc_last_error(), "put twice"));
	ck_assert_uint_eq(fake.live, 1);
}
END_TEST

START_TEST(destroy_with_references_is_refused)
{
	struct mrc_region *r;

	make_cache(NULL);
	r = get_ok(P(0), page, 1);
	ck_assert_int_eq(mrc_cache_destroy(cache), -EBUSY);
	ck_assert_ptr_nonnull(strstr(mrc_last_error(), "still referenced"));
	ck_assert_ptr_eq(get_ok(P(0), page, 1), r);	/* cache intact */
	put_ok(r);
	ck_assert_int_eq(mrc_invalidate(cache, P(0), page), 0);
	ck_assert_int_eq(mrc_cache_destroy(cache), -EBUSY);	/* dead, held */
	put_ok(r);
}
END_TEST

static int create_status(void)
{
	return fake_create_status(&fake, NULL);
}

START_TEST(environment_is_validated)
{
	struct mrc_provider prov = fake_provider(&fake);
	struct mrc_cache_attr attr = { .comp_mask = 1ull << 40 };
	struct mrc_cache *c;

	setenv("MRCACHE_MAX_REGIONS", "12x", 1);
	ck_assert_int_eq(create_status(), -EINVAL);
	ck_assert_ptr_nonnull(strstr(mrc_last_error(), "MRCACHE_MAX_REGIONS"));
	setenv("MRCACHE_MAX_REGIONS", "-1", 1);
	ck_assert_int_eq(create_status(), -EINVAL);
	unsetenv("MRCACHE_MAX_REGIONS");
	setenv("MRCACHE_MERGE", "sometimes", 1);
	ck_assert_int_eq(create_status(), -EINVAL);
	ck_assert_ptr_nonnull(strstr(mrc_last_error(), "MRCACHE_MERGE"));
	unsetenv("MRCACHE_MERGE");
	setenv("MRCACHE_MAX_BYTES", "12Q", 1);
	ck_assert_int_eq(create_status(), -EINVAL);
	ck_assert_ptr_nonnull(strstr(mrc_last_error(), "MRCACHE_MAX_BYTES"));
	setenv("MRCACHE_MAX_BYTES", "99999999999999T", 1);
	ck_assert_int_eq(create_status(), -EINVAL);
	unsetenv("MRCACHE_MAX_BYTES");
	setenv("MRCACHE_MONITOR", "telepathy", 1);
	ck_assert_int_eq(create_status(), -EINVAL);
	ck_assert_ptr_nonnull(strstr(mrc_last_error(), "MRCACHE_MONITOR"));
	unsetenv("MRCACHE_MONITOR");
	setenv("MRCACHE_STATS", "maybe", 1);
	ck_assert_int_eq(create_status(), -EINVAL);
	unsetenv("MRCACHE_STATS");
	ck_assert_int_eq(mrc_cache_create(&prov, &attr, &c), -EINVAL);
	ck_assert_ptr_nonnull(strstr(mrc_last_error(), "comp_mask"));
}
END_TEST

START_TEST(environment_sets_bounds)
{
	setenv("MRCACHE_MAX_REGIONS", "1", 1);
	setenv("MRCACHE_MERGE", "none", 1);
	make_cache(NULL);
	get_put(P(0), page);
	get_put(P(2), page);
	ck_assert_uint_eq(stats().evictions, 1);
	ck_assert_uint_eq(fake.live, 1);
}
END_TEST

START_TEST(child_after_fork_cannot_use_parent_cache)
{
	struct mrc_region *r, *c = NULL;
	int status;
	pid_t pid;

	make_cache(NULL);
	r = get_ok(P(0), page, 1);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct mrc_stats s;
		int ok = mrc_get(cache, P(0), page, 1, &c) == -EPERM &&
			 mrc_put(cache, r) == -EPERM &&
			 mrc_cache_stats(cache, &s) == 0 && s.regions == 1 &&
			 mrc_cache_destroy(cache) == 0 &&
			 fake.deregs == 0;	/* nothing torn down */
		_exit(ok ? 0 : 1);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_ptr_eq(get_ok(P(0), page, 1), r);	/* parent unaffected */
	put_ok(r);
	put_ok(r);
}
END_TEST

static const struct mrc_cache_attr print_stats_attr = {
	.comp_mask = MRC_ATTR_PRINT_STATS, .print_stats = 1,
};

/* Destroy the cache (made with print_stats_attr); what it printed in @buf. */
static void destroy_capturing(char *buf, size_t size)
{
	FILE *tmp = tmpfile();
	int saved = dup(2);

	ck_assert_ptr_nonnull(tmp);
	fflush(stderr);
	dup2(fileno(tmp), 2);
	ck_assert_int_eq(mrc_cache_destroy(cache), 0);
	cache = NULL;
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(tmp);
	ck_assert_uint_gt(fread(buf, 1, size - 1, tmp), 0);
	fclose(tmp);
}

START_TEST(stats_printed_at_destroy)
{
	char buf[1024] = "";

	make_cache(&print_stats_attr);
	get_put(P(0), page);
	get_put(P(0), page);
	destroy_capturing(buf, sizeof(buf));
	ck_assert_ptr_nonnull(strstr(buf, "hits 1 misses 1"));
}
END_TEST

/*
 * Thread refs are the default wherever the kernel has private expedited
 * membarrier; MRCACHE_THREAD_REFS=0 (or off, no, false) chooses the
 * compare-and-swap. The cache names its references in the statistics
 * line, and mrc_trefs_expected() (src/threadrefs/mode.h: what the benches
 * report and the fuzz test expects) must say the same.
 */
static const char *const refs_env[] = { NULL, "0", "OFF", "1" };

static int fenced_at_start, refs_off_at_start;

/*
 * The library registers for membarrier when it is loaded, not at the first
 * cache: registering a process that already runs threads waits for an RCU
 * grace period (tens of milliseconds). So main() could use the fence
 * before it made any cache; with MRCACHE_THREAD_REFS=0 at start the
 * library makes no membarrier call, and the fence is refused (EPERM).
 */
START_TEST(membarrier_registered_at_load)
{
	ck_assert_msg(fenced_at_start == (!refs_off_at_start && mrc_trefs_membarrier_ok()),
		      "MRCACHE_THREAD_REFS %s at start: membarrier %s registered before the first cache",
		      refs_off_at_start ? "off" : "on", fenced_at_start ? "was" : "was not");
}
END_TEST

START_TEST(stats_line_names_references)
{
	const char *env = refs_env[_i];
	int thread = !(env && mrc_trefs_env_off(env)) && mrc_trefs_membarrier_ok();
	char buf[1024] = "";

	if (env)
		setenv("MRCACHE_THREAD_REFS", env, 1);
	else
		unsetenv("MRCACHE_THREAD_REFS");
	make_cache(&print_stats_attr);
	ck_assert_int_eq(mrc_trefs_expected(), thread);
	get_put(P(0), page);
	get_put(P(0), page);
	destroy_capturing(buf, sizeof(buf));
	ck_assert_msg(strstr(buf, thread ? " refs thread:" : " refs cas:"),
		      "MRCACHE_THREAD_REFS=%s: wanted %s references: %s",
		      env ? env : "(unset)", thread ? "thread" : "cas", buf);
}
END_TEST

START_TEST(memlock_limit_bounds_idle_memory)
{
	struct rlimit saved, small;

	ck_assert_int_eq(getrlimit(RLIMIT_MEMLOCK, &saved), 0);
	small = saved;
	small.rlim_cur = 6 * page;
	if (saved.rlim_max != RLIM_INFINITY && saved.rlim_max < small.rlim_cur)
		small.rlim_cur = saved.rlim_max;
	ck_assert_int_eq(setrlimit(RLIMIT_MEMLOCK, &small), 0);
	make_cache(NULL);
	ck_assert_int_eq(setrlimit(RLIMIT_MEMLOCK, &saved), 0);
	for (int i = 0; i < 10; i++) {
		get_put(P(5 * i), 2 * page);
		ck_assert_uint_le(stats().bytes_pinned, small.rlim_cur);
	}
	ck_assert_uint_ge(stats().evictions, 7);
}
END_TEST

/*
 * In the child: hits on unchanged pages pass, then the page is replaced
 * behind the cache's back and the next hit must abort.
 */
static void stale_pages_child(void)
{
	struct mrc_cache_attr attr = {
		.comp_mask = MRC_ATTR_CHECK_PFN, .check_pfn = 4,
	};
	char *p = P(8);

	make_cache(&attr);
	put_ok(get_ok(p, page, 1));
	put_ok(get_ok(p, page, 1));	/* same frames: passes */
	fprintf(stderr, "%s\n", PFN_SAME_FRAMES_OK);
	/*
	 * Replace the page behind the cache's back, without invalidating.
	 * The old page moves away rather than being freed, so the new one
	 * cannot reuse its frame.
	 */
	ck_assert_ptr_eq(mremap(p, page, page, MREMAP_MAYMOVE | MREMAP_FIXED,
				P(ARENA_PAGES - 1)), P(ARENA_PAGES - 1));
	ck_assert_ptr_eq(mmap(p, page, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0), p);
	p[0] = 2;
	put_ok(get_ok(p, page, 1));	/* must abort */
}

/*
 * The check itself must fire: the child has to die of SIGABRT after
 * saying the unchanged pages passed, with the check's own message (any
 * other abort, or a check switched off for want of frames, fails).
 * Reading frames needs root: test/cache_root.sh runs this as root, in the
 * VM when this machine does not give root.
 */
START_TEST(pfn_check_aborts_on_stale_pages)
{
	char out[8192], *same;
	size_t len = 0;
	ssize_t n;
	int fd[2], status;
	pid_t pid;

	ck_assert_msg(geteuid() == 0,
		      "needs root to read frames from /proc/self/pagemap (test/cache_root.sh runs it as root, in the VM if need be)");
	ck_assert_int_eq(pipe(fd), 0);
	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(fd[1], 2);
		close(fd[0]);
		close(fd[1]);
		stale_pages_child();
		_exit(0);
	}
	close(fd[1]);
	while (len < sizeof(out) - 1 &&
	       (n = read(fd[0], out + len, sizeof(out) - 1 - len)) > 0)
		len += (size_t)n;
	out[len] = 0;
	close(fd[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	fputs(out, stderr);
	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
		      "the child did not abort (status %#x)", status);
	same = strstr(out, PFN_SAME_FRAMES_OK);
	ck_assert_msg(same, "aborted before the hits on unchanged pages passed");
	ck_assert_msg(strstr(same, "MRCACHE_CHECK_PFN: stale registration!"),
		      "aborted, but not by the frame check");
}
END_TEST

/* ------------------------------------------------------------------------
 * A merge never fails a get that a plain registration would serve. The
 * fake provider fails with -EFAULT over the pages ibv_reg_mr could not pin,
 * and the pages really are protected or unmapped, as the cache may look.
 */
#define RD 0x1u
#define WR 0x2u


/* Cache the neighbour at @nb as @mc says; the access the request uses. */
static uint32_t prepare_neighbour(const struct merge_case *mc, char *nb,
				  char *buf, struct mrc_region **cached)
{
	switch (mc->kind) {
	case NB_READ_ONLY:
		ck_assert_int_eq(mprotect(nb, page, PROT_READ), 0);
		fake_add_fault(&fake, nb, page, WR);
		*cached = get_ok(nb, page, RD);
		return RD | WR;
	case NB_PROT_NONE:
		*cached = get_ok(nb, page, RD | WR);
		ck_assert_int_eq(mprotect(nb, page, PROT_NONE), 0);
		fake_add_fault(&fake, nb, page, RD | WR);
		return RD | WR;
	case NB_UNMAPPED:
		*cached = get_ok(nb, page, RD | WR);
		unmap_neighbour(nb, page, P(ARENA_PAGES - DECOY_PAGES));
		fake_add_fault(&fake, nb, page, RD | WR);
		return RD | WR;
	default:
		*cached = get_ok(nb, page, RD | WR);
		ck_assert_int_eq(mprotect(buf, page, PROT_READ), 0);
		fake_add_fault(&fake, buf, page, WR);
		return RD;
	}
}

START_TEST(merge_failure_falls_back_to_request)
{
	const struct merge_case *mc = &merge_cases[_i];
	char *nb = mc->above ? P(11) : P(10), *buf = mc->above ? P(10) : P(11);
	struct mrc_region *old, *r;
	struct mrc_stats s;
	uint32_t access;

	make_cache(NULL);	/* default policy: adjacent regions merge */
	access = prepare_neighbour(mc, nb, buf, &old);
	put_ok(old);
	r = get_ok(buf, page, access);
	ck_assert_msg(mrc_region_addr(r) == buf && mrc_region_length(r) == page,
		      "%s: region %p+%zu, expected the request's own page %p",
		      mc->name, mrc_region_addr(r), mrc_region_length(r), (void *)buf);
	ck_assert_uint_eq(mrc_region_access(r), access);
	ck_assert_uint_eq(fake_reg_of(&fake, r)->len, page);
	s = stats();
	ck_assert_uint_eq(s.reg_failures, 1);	/* the merged attempt */
	ck_assert_uint_eq(s.merges + s.upgrades, 0);
	if (mc->kind == NB_UNMAPPED) {
		/* Stale: invalidated, and deregistered (it was idle). */
		assert_still_unmapped(nb, page);
		ck_assert_uint_eq(s.invalidations, 1);
		ck_assert_uint_eq(fake.live, 1);
	} else {
		/* Still valid and cached: its memory is only protected. */
		ck_assert_uint_eq(s.invalidations, 0);
		ck_assert_ptr_eq(get_ok(nb, page, mrc_region_access(old)), old);
		put_ok(old);
	}
	put_ok(r);
}
END_TEST

/* Only what cannot be registered leaves the merge; the rest still merges. */
START_TEST(merge_failure_keeps_registrable_neighbours)
{
	struct mrc_region *ro, *rw, *r;

	make_cache(NULL);
	ck_assert_int_eq(mprotect(P(10), page, PROT_READ), 0);
	fake_add_fault(&fake, P(10), page, WR);
	ro = get_ok(P(10), page, RD);
	rw = get_ok(P(12), page, RD | WR);
	put_ok(ro);
	put_ok(rw);
	r = get_ok(P(11), page, RD | WR);
	ck_assert_ptr_eq(mrc_region_addr(r), P(11));
	ck_assert_uint_eq(mrc_region_length(r), 2 * page);
	ck_assert_uint_eq(stats().merges, 1);
	ck_assert_uint_eq(stats().reg_failures, 1);
	ck_assert_ptr_eq(get_ok(P(10), page, RD), ro);
	put_ok(ro);
	put_ok(r);
}
END_TEST

/* An access upgrade over partly read-only memory registers the request. */
START_TEST(upgrade_failure_falls_back_to_request)
{
	struct mrc_cache_attr attr = attr_merge(MRC_MERGE_NONE);
	struct mrc_region *ro, *r;

	make_cache(&attr);
	ro = get_ok(P(10), 2 * page, RD);
	put_ok(ro);
	ck_assert_int_eq(mprotect(P(10), page, PROT_READ), 0);
	fake_add_fault(&fake, P(10), page, WR);
	r = get_ok(P(11), page, RD | WR);
	ck_assert_ptr_eq(mrc_region_addr(r), P(11));
	ck_assert_uint_eq(mrc_region_length(r), page);
	ck_assert_uint_eq(stats().upgrades, 0);
	ck_assert_ptr_eq(get_ok(P(10), 2 * page, RD), ro);	/* still cached */
	put_ok(ro);
	put_ok(r);
}
END_TEST

/* When the request itself cannot be registered, its own failure is reported. */
START_TEST(merge_fallback_reports_request_failure)
{
	struct mrc_region *nb, *r = NULL;
	char want[64];

	make_cache(NULL);
	nb = get_ok(P(10), page, RD | WR);
	put_ok(nb);
	fake_add_fault(&fake, P(11), page, RD | WR);
	ck_assert_int_eq(mrc_get(cache, P(11), page, RD | WR, &r), -EFAULT);
	ck_assert_ptr_null(r);
	snprintf(want, sizeof(want), "could not register %p+%zu ", (void *)P(11), page);
	ck_assert_msg(strstr(mrc_last_error(), want), "\"%s\" does not name %s",
		      mrc_last_error(), want);
	ck_assert_uint_eq(stats().reg_failures, 2);
	ck_assert_uint_eq(stats().invalidations, 0);
	ck_assert_ptr_eq(get_ok(P(10), page, RD | WR), nb);	/* cache intact */
	put_ok(nb);
}
END_TEST

static Suite *cache_suite(void)
{
	Suite *s = suite_create("cache");
	TCase *tc = tcase_create("semantics");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, hit_reuses_registration);
	tcase_add_test(tc, provider_time_is_nanoseconds);
	tcase_add_test(tc, front_entries_belong_to_one_cache);
	tcase_add_test(tc, range_is_page_aligned);
	tcase_add_test(tc, overlap_merges_and_old_dies_at_last_put);
	tcase_add_test(tc, adjacent_merge_follows_policy);
	tcase_add_test(tc, no_merge_keeps_overlapping_regions);
	tcase_add_test(tc, access_upgrade_reregisters_with_union);
	tcase_add_test(tc, default_access_used_for_zero);
	tcase_add_test(tc, evicts_least_recently_used_by_count);
	tcase_add_test(tc, evicts_by_bytes);
	tcase_add_test(tc, referenced_regions_are_never_evicted);
	tcase_add_test(tc, flush_idle_keeps_held_regions);
	tcase_add_test(tc, invalidate_idle_deregisters_now);
	tcase_add_test(tc, invalidate_referenced_defers_to_last_put);
	tcase_add_test(tc, provider_failure_is_reported);
	tcase_add_test(tc, enomem_evicts_and_retries_once);
	tcase_add_test(tc, bad_arguments_fail_cleanly);
	tcase_add_test(tc, destroy_with_references_is_refused);
	tcase_add_test(tc, environment_is_validated);
	tcase_add_test(tc, environment_sets_bounds);
	tcase_add_test(tc, child_after_fork_cannot_use_parent_cache);
	tcase_add_test(tc, stats_printed_at_destroy);
	tcase_add_loop_test(tc, stats_line_names_references, 0,
			    (int)(sizeof(refs_env) / sizeof(refs_env[0])));
	tcase_add_test(tc, membarrier_registered_at_load);
	tcase_add_test(tc, memlock_limit_bounds_idle_memory);
	tcase_add_loop_test(tc, merge_failure_falls_back_to_request, 0,
			    (int)(sizeof(merge_cases) / sizeof(merge_cases[0])));
	tcase_add_test(tc, merge_failure_keeps_registrable_neighbours);
	tcase_add_test(tc, upgrade_failure_falls_back_to_request);
	tcase_add_test(tc, merge_fallback_reports_request_failure);
	suite_add_tcase(s, tc);
	return s;
}

/* The tests that need root: `cache_test --root` (test/cache_root.sh). */
static Suite *root_suite(void)
{
	Suite *s = suite_create("cache_root");
	TCase *tc = tcase_create("root");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, pfn_check_aborts_on_stale_pages);
	suite_add_tcase(s, tc);
	return s;
}

int main(int argc, char **argv)
{
	int root = argc > 1 && !strcmp(argv[1], "--root");

	/* Before any cache: what loading the library did (the test below). */
	fenced_at_start = !syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
	refs_off_at_start = mrc_trefs_env_off(getenv("MRCACHE_THREAD_REFS"));

	/*
	 * These tests change memory behind the cache's back on purpose (the
	 * merge fallback, the PFN check): they need the monitor that sees
	 * nothing. The monitors have their own tests.
	 */
	setenv("MRCACHE_MONITOR", "manual", 1);
	return check_run_suite(root ? root_suite() : cache_suite());
}
