// SPDX-License-Identifier: BSD-2-Clause
/*
 * Least-recently-used order of the cached regions, kept without making a
 * hit write anything shared, and eviction in that order.
 *
 * Every cached region is on one list in the order it was queued, with the
 * region's hit count at that time. A hit only bumps the count in the
 * region's state word, which it writes anyway. When eviction scans from the
 * head, a region hit since it was queued is requeued at the tail instead of
 * evicted: a second chance, so the hot path never touches the list and the
 * order approximates least-recently-used. Hits through thread slots
 * (threadrefs/) write no region: eviction and the idle sweep first read
 * the threads' logs of recent hits and mark those regions RECENT, which
 * counts the same.
 */
#include "cache.h"

void mrc_lru_add(struct mrc_cache *cache, struct mrc_region *r)
{
	r->lru_hits = mrc_region_hits(r);
	r->flags &= ~MRC_REGION_RECENT;
	r->idle_since = 0;
	r->lru_next = NULL;
	r->lru_prev = cache->lru_tail;
	if (cache->lru_tail)
		cache->lru_tail->lru_next = r;
	else
		cache->lru_head = r;
	cache->lru_tail = r;
	cache->lru_len++;
	r->flags |= MRC_REGION_IN_LRU;
}

void mrc_lru_remove(struct mrc_cache *cache, struct mrc_region *r)
{
	if (r->lru_prev)
		r->lru_prev->lru_next = r->lru_next;
	else
		cache->lru_head = r->lru_next;
	if (r->lru_next)
		r->lru_next->lru_prev = r->lru_prev;
	else
		cache->lru_tail = r->lru_prev;
	r->lru_prev = r->lru_next = NULL;
	cache->lru_len--;
	r->flags &= ~MRC_REGION_IN_LRU;
}

static void requeue(struct mrc_cache *cache, struct mrc_region *r)
{
	mrc_lru_remove(cache, r);
	mrc_lru_add(cache, r);
}

/* A slot may take it right after: then the drain parks it (cache.c). */
static int idle(const struct mrc_cache *cache, const struct mrc_region *r)
{
	return !(mrc_load_relaxed(&r->state) & MRC_REF_MASK) &&
	       !(r->flags & MRC_REGION_MERGING) &&
	       !(cache->thread_refs && mrc_trefs_holds(r));
}

static int hit_since_queued(const struct mrc_region *r)
{
	return mrc_region_hits(r) != r->lru_hits || (r->flags & MRC_REGION_RECENT);
}

/* The least recently used region without references, or NULL. */
static struct mrc_region *pick_idle(struct mrc_cache *cache)
{
	/* Each region is requeued at most once, so two laps see them all. */
	size_t budget = 2 * cache->lru_len;
	struct mrc_region *r = cache->lru_head;

	while (r && budget--) {
		struct mrc_region *next = r->lru_next;

		if (hit_since_queued(r))
			requeue(cache, r);
		else if (idle(cache, r))
			return r;
		r = next;
		if (!r && budget)
			r = cache->lru_head;
	}
	return NULL;
}

/*
 * Take a victim out of service; the caller's next drain deregisters it.
 * Returns its length.
 */
static uint64_t evict(struct mrc_cache *cache, struct mrc_region *victim)
{
	uint64_t len = victim->node.end - victim->node.start;

	mrc_region_kill(cache, victim);
	cache->count.evictions++;
	return len;
}

/*
 * Victims until @enough, counting those killed and not yet drained; called
 * when it is not enough yet.
 */
static uint64_t evict_batch(struct mrc_cache *cache, mrc_evict_enough_fn enough,
			    const void *arg, uint64_t freed)
{
	uint64_t pending = 0;
	struct mrc_region *victim;

	while ((victim = pick_idle(cache))) {
		pending += evict(cache, victim);
		if (enough(cache, freed + pending, pending, arg))
			break;
	}
	return pending;
}

/**
 * mrc_evict_idle() - evict idle regions, least recently used first.
 * @cache: locked cache.
 * @enough: asked before each eviction whether to stop.
 * @arg: passed to @enough.
 *
 * Every eviction of the cache goes through here: the bounds before a
 * registration, the retry after the provider ran out of resources, memory
 * pressure. The victims that look enough are killed, then deregistered
 * by one drain (with thread refs, one fence for all of them). A victim
 * that a thread hit meanwhile is parked by the drain, still pinned: then
 * the bound is asked again, and another goes.
 *
 * Return: the bytes released.
 */
uint64_t mrc_evict_idle(struct mrc_cache *cache, mrc_evict_enough_fn enough,
			const void *arg)
{
	uint64_t freed = 0, batch, pinned;

	if (enough(cache, 0, 0, arg))
		return 0;
	if (cache->thread_refs)
		mrc_trefs_harvest(cache);
	do {
		batch = evict_batch(cache, enough, arg, freed);
		if (!batch)
			break;
		pinned = cache->count.bytes_pinned;
		mrc_drain_deferred(cache);
		freed += batch;
	} while (pinned - cache->count.bytes_pinned < batch &&
		 !enough(cache, freed, 0, arg));
	return freed;
}

/* One region's turn in the idle sweep; returns the bytes it released. */
static uint64_t sweep_one(struct mrc_cache *cache, struct mrc_region *r,
			  uint32_t now, uint32_t timeout_ms)
{
	if (!idle(cache, r)) {
		r->idle_since = 0;	/* in use: the clock starts after */
	} else if (hit_since_queued(r)) {
		requeue(cache, r);	/* hit since the last look */
		r->idle_since = now;
	} else if (!r->idle_since) {
		r->idle_since = now;
	} else if (now - r->idle_since >= timeout_ms) {
		return evict(cache, r);
	}
	return 0;
}

/**
 * mrc_lru_sweep_idle() - evict regions nobody used for @timeout_ms.
 * @cache: locked cache.
 * @now: the sweep clock in milliseconds, never 0 (wraps after 49 days).
 * @timeout_ms: the idle bound, at most MRC_IDLE_TIMEOUT_MAX_MS.
 *
 * A hit writes nothing but the state word, so a region's last use is not
 * known to the millisecond: each sweep looks at every region once and
 * starts its idle clock at the first sweep that finds it unreferenced and
 * not hit since the sweep before. A region is therefore evicted only after
 * it was idle for at least @timeout_ms, and at most two sweep periods
 * later than that. Regions found hit are requeued at the LRU tail, which
 * keeps the eviction order closer to least recently used too.
 *
 * Return: the bytes released.
 */
uint64_t mrc_lru_sweep_idle(struct mrc_cache *cache, uint32_t now,
			    uint32_t timeout_ms)
{
	/* Requeued regions go behind the ones not yet looked at. */
	size_t budget = cache->lru_len;
	struct mrc_region *r = cache->lru_head;
	uint64_t freed = 0;

	if (cache->thread_refs)
		mrc_trefs_harvest(cache);
	while (r && budget--) {
		struct mrc_region *next = r->lru_next;

		freed += sweep_one(cache, r, now, timeout_ms);
		r = next;
	}
	/* The victims' deregistration, one drain (and fence) for all. */
	if (freed)
		mrc_drain_deferred(cache);
	return freed;
}
