// SPDX-License-Identifier: BSD-2-Clause
/*
 * Least-recently-used order of the cached regions, kept without making a
 * hit write anything shared.
 *
 * Every cached region is on one list in the order it was queued, with the
 * region's hit count at that time. A hit only bumps the count in the
 * region's state word, which it writes anyway. When eviction scans from the
 * head, a region hit since it was queued is requeued at the tail instead of
 * evicted: a second chance, so the hot path never touches the list and the
 * order approximates least-recently-used.
 */
#include "cache.h"

void mrc_lru_add(struct mrc_cache *cache, struct mrc_region *r)
{
	r->lru_hits = mrc_region_hits(r);
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

static int idle(const struct mrc_region *r)
{
	return !(mrc_load_relaxed(&r->state) & MRC_REF_MASK) &&
	       !(r->flags & MRC_REGION_MERGING);
}

/**
 * mrc_lru_pick_idle() - the least recently used region without references.
 * @cache: locked cache.
 *
 * Return: a region to evict, or NULL when every region is in use.
 */
struct mrc_region *mrc_lru_pick_idle(struct mrc_cache *cache)
{
	/* Each region is requeued at most once, so two laps see them all. */
	size_t budget = 2 * cache->lru_len;
	struct mrc_region *r = cache->lru_head;

	while (r && budget--) {
		struct mrc_region *next = r->lru_next;

		if (mrc_region_hits(r) != r->lru_hits)
			requeue(cache, r);
		else if (idle(r))
			return r;
		r = next;
		if (!r && budget)
			r = cache->lru_head;
	}
	return NULL;
}
