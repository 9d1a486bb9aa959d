// SPDX-License-Identifier: BSD-2-Clause
/*
 * Random mrc_get / mrc_put / mrc_invalidate sequences, with occasional bad
 * arguments and provider failures, checked after every call against an
 * oracle: a model of which registrations the cache holds, which the test
 * references, and what each call must do (hit or miss, the merged range and
 * access a miss registers, what an invalidation or a failure drops). The
 * counting fake provider and mrc_cache_stats() are compared with the model
 * after every call, so a registration lost, leaked, deregistered twice or
 * handed out after it was invalidated stops the run at the call that did it.
 *
 * Each round creates a cache with a random merge policy, default access and
 * (sometimes) bounds, runs a few thousand calls, puts everything back and
 * destroys it; calls on the destroyed cache must then fail cleanly.
 *
 *   MRCACHE_TEST_SEED=N       replay a run (the seed is printed first)
 *   MRCACHE_FUZZ_SECONDS=S    how long to run; default 10 (make check).
 *                             For a real session: MRCACHE_FUZZ_SECONDS=600
 *                             in the ASan build (test/fuzz_test).
 *   MRCACHE_FUZZ_OPS=N        stop after N calls instead (exact replay
 *                             length; a failure prints it)
 *
 * The model follows src/miss.c: a miss absorbs, pass after pass while the
 * range grows, the cached regions the merge policy folds in (and any that
 * contains the range with too few access flags), visiting each pass's
 * candidates in the tree's order (start, then registration order).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "fake_provider.h"
#include "mrcache.h"
#include "threadrefs/mode.h"

#define ARENA_PAGES	64
#define MAX_HELD	48
#define ROUND_MAX_OPS	3000
#define LOG_LINES	24

struct model_region {
	struct mrc_region *r;
	uint64_t start, end;
	uint32_t access;
	int refs;		/* references the fuzzer holds */
	int cached;		/* the cache may still hand it out */
	int absorbed;		/* scratch: in the current miss's merge set */
	uint64_t hits;
};

struct counts {
	uint64_t hits, misses, invalidations, reg_failures, evictions;
	uint64_t absorbed, retries;
};

static struct {
	uint64_t seed, rng;
	unsigned long op, max_ops;
	double deadline;
	struct fake_provider fake, other_fake;
	struct mrc_cache *cache, *other;
	struct mrc_region *other_region;
	uint32_t merge, default_access;
	int bounded;
	int thread_refs;	/* the caches' hits go through thread slots */
	struct model_region m[ROUND_MAX_OPS + 2];	/* by fake handle */
	size_t held[MAX_HELD];				/* fake handles */
	size_t nheld;
	struct counts want;
	struct counts total;		/* over finished rounds, for the summary */
	char *arena;
	size_t page;
	char log[LOG_LINES][160];
} fz;

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(fz.log[fz.op % LOG_LINES], sizeof(fz.log[0]), fmt, ap);
	va_end(ap);
}

static void fail(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4), noreturn));
static void fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fuzz_test: FAILED at %s:%d, call %lu: ", file, line, fz.op);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n  mrc_last_error: \"%s\"\n  last calls (oldest first):\n",
		mrc_last_error());
	for (unsigned long i = fz.op >= LOG_LINES ? fz.op - LOG_LINES + 1 : 0;
	     i <= fz.op; i++)
		fprintf(stderr, "    %lu: %s\n", i, fz.log[i % LOG_LINES]);
	fprintf(stderr, "  replay: MRCACHE_TEST_SEED=%" PRIu64 " MRCACHE_FUZZ_OPS=%lu %s\n",
		fz.seed, fz.op + 1, "test/fuzz_test");
	exit(1);
}

#define CHECK(cond, ...)						\
	do {								\
		if (!(cond))						\
			fail(__FILE__, __LINE__, __VA_ARGS__);		\
	} while (0)

/* A failed call: its errno and a message that mentions @what. */
#define CHECK_ERR(ret, err, what)					\
	do {								\
		CHECK((ret) == -(err), "returned %d, expected %d", (ret), -(err)); \
		CHECK(strstr(mrc_last_error(), (what)),			\
		      "message does not mention \"%s\"", (what));	\
	} while (0)

/* splitmix64: any seed, 0 included, gives a good sequence. */
static uint64_t rnd(void)
{
	uint64_t z = (fz.rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t below(uint64_t n)
{
	return rnd() % n;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static size_t handle_of(const struct mrc_region *r)
{
	return (uintptr_t)mrc_region_handle(r);
}

static int fake_live(size_t h)
{
	return fz.fake.regs[h - 1].live;
}

static int serves(const struct model_region *m, uint64_t s, uint64_t e,
		  uint32_t access)
{
	return m->cached && m->start <= s && m->end >= e &&
	       (m->access & access) == access;
}

/* ------------------------------------------------------------------------
 * The invariants, checked after every call.
 */

/* Registered now exactly: what the cache holds plus what we still hold. */
static void check_registrations(void)
{
	size_t refs = 0;

	CHECK(fz.fake.count <= ROUND_MAX_OPS + 1, "too many registrations");
	CHECK(fz.fake.double_deregs == 0, "a registration was deregistered twice");
	for (size_t h = 1; h <= fz.fake.count; h++) {
		const struct model_region *m = &fz.m[h];
		int want = m->cached || m->refs > 0;

		CHECK(fake_live(h) == want,
		      "registration %zu [%#" PRIx64 ", %#" PRIx64 ") is %s, the model says %s (cached %d, refs %d)",
		      h, m->start, m->end, fake_live(h) ? "live" : "gone",
		      want ? "live" : "gone", m->cached, m->refs);
		refs += (size_t)m->refs;
	}
	CHECK(refs == fz.nheld, "model holds %zu refs, %zu held", refs, fz.nheld);
}

/*
 * Hits the statistics show: a dead region still referenced is in neither
 * the LRU nor the folded count, so its hits show up at its last put.
 */
static uint64_t visible_hits(void)
{
	uint64_t hidden = 0;

	for (size_t h = 1; h <= fz.fake.count; h++)
		if (!fz.m[h].cached && fz.m[h].refs > 0)
			hidden += fz.m[h].hits;
	return fz.want.hits - hidden;
}

/*
 * With thread refs (the default; MRCACHE_THREAD_REFS=0 turns them off) a
 * hit through a slot is counted in the thread's record at once, so a dead
 * referenced region's hits may already show: the count lies between the
 * visible hits and all of them. With compare-and-swap references it is
 * exactly the visible hits.
 */
static int hits_match(uint64_t got, uint64_t visible)
{
	if (fz.thread_refs)
		return got >= visible && got <= fz.want.hits;
	return got == visible;
}

static void check_stats(void)
{
	const struct counts *w = &fz.want;
	uint64_t hits = visible_hits();
	struct mrc_stats s;
	int ret = mrc_cache_stats(fz.cache, &s);

	CHECK(ret == 0, "mrc_cache_stats = %d", ret);
	CHECK(s.regions == fz.fake.live, "stats.regions %" PRIu64 ", provider has %zu",
	      s.regions, fz.fake.live);
	CHECK(s.bytes_pinned == fz.fake.live_bytes, "stats.bytes_pinned %" PRIu64 ", provider %" PRIu64,
	      s.bytes_pinned, fz.fake.live_bytes);
	CHECK(s.dereg_calls == fz.fake.deregs, "stats.dereg_calls %" PRIu64 ", provider %zu",
	      s.dereg_calls, fz.fake.deregs);
	CHECK(hits_match(s.hits, hits) && s.misses == w->misses,
	      "hits/misses %" PRIu64 "/%" PRIu64 ", model %" PRIu64 "/%" PRIu64,
	      s.hits, s.misses, hits, w->misses);
	CHECK(s.invalidations == w->invalidations && s.evictions == w->evictions,
	      "invalidations/evictions %" PRIu64 "/%" PRIu64 ", model %" PRIu64 "/%" PRIu64,
	      s.invalidations, s.evictions, w->invalidations, w->evictions);
	CHECK(s.reg_failures == w->reg_failures && s.retries == w->retries,
	      "reg_failures/retries %" PRIu64 "/%" PRIu64 ", model %" PRIu64 "/%" PRIu64,
	      s.reg_failures, s.retries, w->reg_failures, w->retries);
	CHECK(s.merges + s.upgrades == w->absorbed, "merges+upgrades %" PRIu64 ", model %" PRIu64,
	      s.merges + s.upgrades, w->absorbed);
}

/* ------------------------------------------------------------------------
 * The model of a miss (src/miss.c).
 */
struct merge_set {
	uint64_t start, end;
	uint32_t access;
};

/* A pass's candidates: cached regions touching the range, tree order. */
static size_t candidates(const struct merge_set *set, size_t *out)
{
	size_t n = 0;

	for (size_t h = 1; h <= fz.fake.count; h++) {
		const struct model_region *m = &fz.m[h];
		size_t i = n;

		if (!m->cached || m->absorbed || m->start > set->end ||
		    m->end < set->start)
			continue;
		/* Insertion sort by start; equal starts keep handle order. */
		while (i > 0 && fz.m[out[i - 1]].start > m->start) {
			out[i] = out[i - 1];
			i--;
		}
		out[i] = h;
		n++;
	}
	return n;
}

static int should_merge(const struct model_region *m, const struct merge_set *set)
{
	if (m->start <= set->start && m->end >= set->end &&
	    (m->access & set->access) != set->access)
		return 1;	/* an upgrade, whatever the policy */
	if (fz.merge == MRC_MERGE_ADJACENT)
		return m->start <= set->end && m->end >= set->start;
	if (fz.merge == MRC_MERGE_OVERLAP)
		return m->start < set->end && m->end > set->start;
	return 0;
}

/* Mark the regions a miss absorbs; returns how many. */
static size_t predict_merge(struct merge_set *set)
{
	static size_t order[ROUND_MAX_OPS + 2];
	size_t absorbed = 0;
	int grew;

	do {
		size_t n = candidates(set, order);

		grew = 0;
		for (size_t i = 0; i < n; i++) {
			struct model_region *m = &fz.m[order[i]];

			if (!should_merge(m, set))
				continue;
			m->absorbed = 1;
			absorbed++;
			set->access |= m->access;
			if (m->start < set->start || m->end > set->end) {
				set->start = m->start < set->start ? m->start : set->start;
				set->end = m->end > set->end ? m->end : set->end;
				grew = 1;
			}
		}
	} while (grew);
	return absorbed;
}

/* Cached regions the cache evicted (bounds, or ENOMEM): must be idle. */
static size_t sync_evictions(void)
{
	size_t n = 0;

	for (size_t h = 1; h <= fz.fake.count; h++) {
		struct model_region *m = &fz.m[h];

		if (!m->cached || m->absorbed || fake_live(h))
			continue;
		CHECK(m->refs == 0, "registration %zu was evicted while referenced", h);
		m->cached = 0;
		n++;
	}
	fz.want.evictions += n;
	return n;
}

static size_t idle_unabsorbed(void)
{
	size_t n = 0;

	for (size_t h = 1; h <= fz.fake.count; h++)
		n += fz.m[h].cached && !fz.m[h].absorbed && fz.m[h].refs == 0;
	return n;
}

static void clear_absorbed(void)
{
	for (size_t h = 1; h <= fz.fake.count; h++)
		fz.m[h].absorbed = 0;
}

/* ------------------------------------------------------------------------
 * The calls.
 */
enum inject { INJ_NONE, INJ_EIO, INJ_ENOMEM_ONCE, INJ_ENOMEM_TWICE };

static void hold(size_t h)
{
	fz.m[h].refs++;
	fz.held[fz.nheld++] = h;
}

static int call_get(const void *addr, size_t len, uint32_t access,
		    enum inject inj, struct mrc_region **r)
{
	static const int fail_with[] = { 0, -EIO, -ENOMEM, -ENOMEM };
	int ret;

	fz.fake.fail_next = fail_with[inj];
	fz.fake.fail_count = inj == INJ_ENOMEM_TWICE ? 2 : inj != INJ_NONE;
	ret = mrc_get(fz.cache, addr, len, access, r);
	fz.fake.fail_count = 0;
	return ret;
}

static void check_region(const struct mrc_region *r, const struct model_region *m)
{
	CHECK((uintptr_t)mrc_region_addr(r) == m->start &&
	      mrc_region_length(r) == m->end - m->start &&
	      mrc_region_access(r) == m->access,
	      "region accessors disagree with registration [%#" PRIx64 ", %#" PRIx64 ")",
	      m->start, m->end);
}

static void expect_hit(const void *addr, size_t len, uint32_t access,
		       uint64_t s, uint64_t e, uint32_t eff)
{
	size_t count = fz.fake.count, h;
	struct mrc_region *r = NULL;
	int ret = call_get(addr, len, access, below(20) ? INJ_NONE : INJ_EIO, &r);

	CHECK(ret == 0, "a cached region serves it, yet mrc_get = %d", ret);
	CHECK(fz.fake.count == count, "a hit registered something");
	h = handle_of(r);
	CHECK(h >= 1 && h <= count && serves(&fz.m[h], s, e, eff),
	      "hit returned registration %zu, which does not serve [%#" PRIx64 ", %#" PRIx64 ") access %#x",
	      h, s, e, eff);
	CHECK(fz.m[h].r == r, "registration %zu came back as another region", h);
	hold(h);
	fz.m[h].hits++;
	fz.want.hits++;
}

/*
 * What an injected failure leaves of a miss: MISS_MERGED (none, or ENOMEM
 * once: evict, retry, succeed), MISS_FAILED (the error, when there was
 * nothing to merge), or MISS_ALONE: the merged registration failed, so the
 * request alone is registered and the regions it would absorb stay cached
 * (src/miss.c, register_fallback; the arena is all mapped and writable, so
 * no region is excluded first).
 */
enum miss_outcome { MISS_FAILED, MISS_MERGED, MISS_ALONE };

static enum miss_outcome expect_failure(int ret, enum inject inj, size_t count,
					size_t absorbed)
{
	if (inj == INJ_NONE)
		return MISS_MERGED;
	fz.want.reg_failures += inj == INJ_ENOMEM_TWICE ? 2 : 1;
	fz.want.retries += inj != INJ_EIO;
	if (inj == INJ_ENOMEM_ONCE)
		return MISS_MERGED;
	if (absorbed)
		return MISS_ALONE;
	CHECK_ERR(ret, inj == INJ_EIO ? EIO : ENOMEM, "could not register");
	CHECK(fz.fake.count == count, "a failed get left a registration");
	return MISS_FAILED;
}

/* The miss registered @set as registration @h: check and record it. */
static void accept_new(struct mrc_region *r, size_t h,
		       const struct merge_set *setp, size_t absorbed)
{
	const struct merge_set set = *setp;

	CHECK(fz.fake.regs[h - 1].addr == set.start &&
	      fz.fake.regs[h - 1].len == set.end - set.start &&
	      fz.fake.regs[h - 1].access == set.access,
	      "registered [%#" PRIx64 ", +%#" PRIx64 ") access %#x, the model expects [%#" PRIx64 ", %#" PRIx64 ") access %#x",
	      fz.fake.regs[h - 1].addr, fz.fake.regs[h - 1].len,
	      fz.fake.regs[h - 1].access, set.start, set.end, set.access);
	CHECK(handle_of(r) == h, "mrc_get returned registration %zu, not the new one", handle_of(r));
	fz.m[h] = (struct model_region){ r, set.start, set.end, set.access, 0, 1, 0, 0 };
	check_region(r, &fz.m[h]);
	for (size_t i = 1; i < h; i++)
		if (fz.m[i].absorbed)
			fz.m[i].cached = 0;
	clear_absorbed();
	fz.want.absorbed += absorbed;
	fz.want.misses++;
	hold(h);
}

static void expect_miss(const void *addr, size_t len, uint32_t access,
			const struct merge_set req, enum inject inj)
{
	struct merge_set set = req;
	size_t count = fz.fake.count, absorbed = predict_merge(&set), h = count + 1;
	size_t evicted;
	struct mrc_region *r = NULL;
	int ret = call_get(addr, len, access, inj, &r);

	evicted = sync_evictions();
	if (inj == INJ_ENOMEM_ONCE || inj == INJ_ENOMEM_TWICE)
		CHECK(idle_unabsorbed() == 0, "ENOMEM left idle regions cached");
	else if (!fz.bounded)
		CHECK(evicted == 0, "%zu regions evicted without bounds", evicted);
	switch (expect_failure(ret, inj, count, absorbed)) {
	case MISS_FAILED:
		clear_absorbed();
		return;
	case MISS_ALONE:
		/* The request alone made room for itself, merge set or not. */
		clear_absorbed();
		evicted = sync_evictions();
		CHECK(fz.bounded || evicted == 0, "fallback evicted without bounds");
		absorbed = 0;
		set = req;
		break;
	default:
		break;
	}
	CHECK(ret == 0, "mrc_get = %d", ret);
	CHECK(fz.fake.count == h, "a miss made %zu registrations", fz.fake.count - count);
	accept_new(r, h, &set, absorbed);
}

static size_t random_len(void)
{
	static const size_t scale[] = { 1, 2, 2, 4, 4, 16 };

	return 1 + below(scale[below(6)] * fz.page);
}

static void op_get(void)
{
	uint64_t mask = fz.page - 1;
	char *addr = fz.arena + below(ARENA_PAGES - 17) * fz.page + below(fz.page);
	size_t len = random_len();
	uint32_t access = (uint32_t)below(8);
	uint32_t eff = access ? access : fz.default_access;
	uint64_t s = (uintptr_t)addr & ~mask, e = ((uintptr_t)addr + len + mask) & ~mask;
	enum inject inj = below(16) ? INJ_NONE : (enum inject)(1 + below(3));

	note("get %p+%zu access %u (inject %d)", (void *)addr, len, access, inj);
	for (size_t h = 1; h <= fz.fake.count; h++) {
		if (serves(&fz.m[h], s, e, eff)) {
			expect_hit(addr, len, access, s, e, eff);
			return;
		}
	}
	expect_miss(addr, len, access, (struct merge_set){ s, e, eff }, inj);
}

static void op_put(void)
{
	size_t i = below(fz.nheld), h = fz.held[i];
	int ret;

	note("put registration %zu (refs %d)", h, fz.m[h].refs);
	ret = mrc_put(fz.cache, fz.m[h].r);
	CHECK(ret == 0, "mrc_put = %d", ret);
	fz.m[h].refs--;
	fz.held[i] = fz.held[--fz.nheld];
}

static void op_invalidate(void)
{
	uint64_t a = (uintptr_t)fz.arena + below(ARENA_PAGES * fz.page);
	uint64_t len = below(8) ? random_len() : ARENA_PAGES * fz.page;
	int ret;

	note("invalidate %#" PRIx64 "+%" PRIu64, a, len);
	for (size_t h = 1; h <= fz.fake.count; h++) {
		struct model_region *m = &fz.m[h];

		if (m->cached && m->start < a + len && m->end > a) {
			m->cached = 0;
			fz.want.invalidations++;
		}
	}
	ret = mrc_invalidate(fz.cache, (void *)(uintptr_t)a, len);
	CHECK(ret == 0, "mrc_invalidate = %d", ret);
}

/* A cached region nobody references, for a double put; 0 if none. */
static size_t idle_cached(void)
{
	for (size_t h = fz.fake.count; h >= 1; h--)
		if (fz.m[h].cached && fz.m[h].refs == 0)
			return h;
	return 0;
}

/* One bad argument; the model does not move, so check_stats() proves
 * nothing else did. */
static void op_bad(void)
{
	struct mrc_region *r = NULL;
	char *p = fz.arena + below(ARENA_PAGES * fz.page);
	size_t h;

	switch (below(10)) {
	case 0:
		note("bad: get NULL");
		CHECK_ERR(mrc_get(fz.cache, NULL, 1 + below(fz.page), 1, &r), EINVAL, "NULL");
		break;
	case 1:
		note("bad: get zero length");
		CHECK_ERR(mrc_get(fz.cache, p, 0, 1, &r), EINVAL, "zero");
		break;
	case 2:
		note("bad: get wrapping");
		CHECK_ERR(mrc_get(fz.cache, (void *)(UINTPTR_MAX - below(fz.page)),
				  fz.page + below(fz.page), 1, &r), EINVAL, "wraps");
		break;
	case 3:
		note("bad: get past the address space");
		CHECK_ERR(mrc_get(fz.cache, p, (size_t)1 << 60, 1, &r), EINVAL, "address space");
		break;
	case 4:
		note("bad: invalidate NULL");
		CHECK_ERR(mrc_invalidate(fz.cache, NULL, 1 + below(fz.page)), EINVAL, "NULL");
		break;
	case 5:
		note("bad: invalidate wrapping");
		CHECK_ERR(mrc_invalidate(fz.cache, p, SIZE_MAX - below(fz.page)), EINVAL, "wraps");
		break;
	case 6:
		note("bad: put NULL");
		CHECK_ERR(mrc_put(fz.cache, NULL), EINVAL, "NULL");
		break;
	case 7:
		h = idle_cached();
		note("bad: put twice, registration %zu", h);
		if (h)
			CHECK_ERR(mrc_put(fz.cache, fz.m[h].r), EINVAL, "put twice");
		break;
	case 8:
		h = fz.nheld ? fz.held[below(fz.nheld)] : 0;
		note("bad: put registration %zu to another cache", h);
		if (h)
			CHECK_ERR(mrc_put(fz.other, fz.m[h].r), EINVAL, "not a region of this cache");
		break;
	default:
		note("bad: put another cache's region");
		CHECK_ERR(mrc_put(fz.cache, fz.other_region), EINVAL, "not a region of this cache");
		break;
	}
	CHECK(r == NULL, "a failed get returned a region");
}

static void one_op(void)
{
	uint64_t dice = below(100);

	if (dice < 45 && fz.nheld < MAX_HELD)
		op_get();
	else if (dice < 80 && fz.nheld)
		op_put();
	else if (dice < 93)
		op_invalidate();
	else
		op_bad();
}

/* ------------------------------------------------------------------------
 * Rounds: one cache each.
 */
static struct mrc_cache *create(struct fake_provider *fake,
				struct mrc_cache_attr *attr)
{
	struct mrc_provider prov = fake_provider(fake);
	struct mrc_cache *c = NULL;
	int ret = mrc_cache_create(&prov, attr, &c);

	CHECK(ret == 0, "mrc_cache_create = %d", ret);
	return c;
}

static void round_start(void)
{
	struct mrc_cache_attr attr = {
		.comp_mask = MRC_ATTR_MONITOR | MRC_ATTR_MEMLOCK | MRC_ATTR_MERGE |
			     MRC_ATTR_DEFAULT_ACCESS,
		.monitor = MRC_MONITOR_MANUAL,
	};

	fake_init(&fz.fake);
	fake_init(&fz.other_fake);
	memset(fz.m, 0, sizeof(fz.m));
	memset(&fz.want, 0, sizeof(fz.want));
	fz.nheld = 0;
	fz.merge = attr.merge = (uint32_t)below(3);
	fz.default_access = attr.default_access = 1 + (uint32_t)below(7);
	fz.bounded = !below(3);
	if (fz.bounded && below(2)) {
		attr.comp_mask |= MRC_ATTR_MAX_REGIONS;
		attr.max_regions = 1 + below(12);
	} else if (fz.bounded) {
		attr.comp_mask |= MRC_ATTR_MAX_BYTES;
		attr.max_bytes = (1 + below(24)) * fz.page;
	}
	note("round: merge %u, default access %u, bounded %d", fz.merge,
	     fz.default_access, fz.bounded);
	fz.cache = create(&fz.fake, &attr);
	fz.other = create(&fz.other_fake, &attr);
	CHECK(mrc_get(fz.other, fz.arena, fz.page, 0, &fz.other_region) == 0,
	      "other cache's get");
}

/* Everything back, destroyed, nothing left; then the dead cache refuses. */
static void round_end(void)
{
	struct mrc_region *r = NULL, *stale = fz.fake.count ? fz.m[1].r : NULL;
	struct mrc_cache *dead = fz.cache;

	note("round end: put %zu held, destroy", fz.nheld);
	while (fz.nheld)
		op_put();
	check_registrations();
	check_stats();
	CHECK(mrc_cache_destroy(fz.cache) == 0, "destroy");
	CHECK(fz.fake.live == 0 && fz.fake.double_deregs == 0,
	      "after destroy: %zu live, %zu deregistered twice", fz.fake.live,
	      fz.fake.double_deregs);
	if (stale)
		CHECK_ERR(mrc_put(dead, stale), EINVAL, "destroyed");
	CHECK_ERR(mrc_get(dead, fz.arena, fz.page, 0, &r), EINVAL, "destroyed");
	CHECK_ERR(mrc_invalidate(dead, fz.arena, fz.page), EINVAL, "destroyed");
	CHECK(mrc_put(fz.other, fz.other_region) == 0, "other cache's put");
	CHECK(mrc_cache_destroy(fz.other) == 0, "other cache's destroy");
	CHECK(fz.other_fake.live == 0, "other cache leaked");
	fz.total.hits += fz.want.hits;
	fz.total.misses += fz.want.misses;
	fz.total.absorbed += fz.want.absorbed;
	fz.total.invalidations += fz.want.invalidations;
	fz.total.evictions += fz.want.evictions;
	fz.total.reg_failures += fz.want.reg_failures;
	fake_fini(&fz.fake);
	fake_fini(&fz.other_fake);
}

static int done(void)
{
	return fz.max_ops ? fz.op >= fz.max_ops : now() >= fz.deadline;
}

static uint64_t env_u64(const char *name, uint64_t dflt)
{
	const char *v = getenv(name);

	return v && *v ? strtoull(v, NULL, 0) : dflt;
}

int main(void)
{
	double seconds = (double)env_u64("MRCACHE_FUZZ_SECONDS", 10);
	unsigned long rounds = 0;

	fz.seed = env_u64("MRCACHE_TEST_SEED", (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32));
	fz.rng = fz.seed;
	fz.max_ops = (unsigned long)env_u64("MRCACHE_FUZZ_OPS", 0);
	fz.deadline = now() + seconds;
	fz.page = (size_t)sysconf(_SC_PAGESIZE);
	fz.thread_refs = mrc_trefs_expected();
	printf("fuzz_test: seed %" PRIu64 " (MRCACHE_TEST_SEED=%" PRIu64 " replays), %s %g, %s references\n",
	       fz.seed, fz.seed, fz.max_ops ? "calls" : "seconds",
	       fz.max_ops ? (double)fz.max_ops : seconds,
	       fz.thread_refs ? "thread" : "compare-and-swap");
	fflush(stdout);
	fz.arena = mmap(NULL, ARENA_PAGES * fz.page, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(fz.arena != MAP_FAILED, "mmap");
	while (!done()) {
		unsigned long n = 100 + below(ROUND_MAX_OPS - 100);

		round_start();
		while (n-- && !done()) {
			fz.op++;
			one_op();
			check_registrations();
			check_stats();
		}
		round_end();
		rounds++;
	}
	printf("fuzz_test: %lu calls in %lu rounds, no discrepancy: %" PRIu64 " hits, %" PRIu64
	       " misses absorbing %" PRIu64 " regions, %" PRIu64 " invalidated, %" PRIu64
	       " evicted, %" PRIu64 " registrations failed\n", fz.op, rounds,
	       fz.total.hits, fz.total.misses, fz.total.absorbed,
	       fz.total.invalidations, fz.total.evictions, fz.total.reg_failures);
	munmap(fz.arena, ARENA_PAGES * fz.page);
	return 0;
}
