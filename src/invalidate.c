// SPDX-License-Identifier: BSD-2-Clause
/*
 * Dropping regions because the memory under them changed, or because the
 * system wants pinned memory back.
 */
#include <errno.h>
#include <stdint.h>

#include "cache.h"
#include "error.h"

/**
 * mrc_cache_range_changed() - drop every region overlapping a range.
 * @cache: locked cache.
 * @start, @end: the byte range that changed, [start, end).
 *
 * The one way in for "this memory changed": mrc_invalidate(), every
 * monitor's drain, and a miss that found a merged neighbour unmapped.
 */
void mrc_cache_range_changed(struct mrc_cache *cache, uint64_t start,
			     uint64_t end)
{
	struct mrc_itree_node *n;

	while ((n = mrc_itree_first_overlap(&cache->tree, start, end))) {
		mrc_region_kill(cache, mrc_node_region(n));
		cache->count.invalidations++;
	}
}

/**
 * mrc_cache_watch_fired() - the watch of one region fired.
 * @cache: locked cache.
 * @region: the pool index the monitor was given at watch time.
 *
 * Drops exactly that region, if it is still cached: the monitor matched
 * the event to the watch, so a newer region over the same addresses is
 * left alone.
 */
void mrc_cache_watch_fired(struct mrc_cache *cache, uint32_t region)
{
	struct mrc_region *r;

	if (region >= cache->pool.capacity)
		return;
	r = mrc_region_at(&cache->pool, region);
	if (r->flags & MRC_REGION_IN_TREE) {
		mrc_region_kill(cache, r);
		cache->count.invalidations++;
	}
}

static int freed_enough(const struct mrc_cache *cache, uint64_t freed,
			uint64_t pending, const void *bytes)
{
	(void)cache;
	(void)pending;
	return freed >= *(const uint64_t *)bytes;
}

/**
 * mrc_cache_release_idle() - release at least @bytes of idle memory.
 * @cache: locked cache.
 *
 * For memory-pressure signals: least recently used idle regions go first.
 */
void mrc_cache_release_idle(struct mrc_cache *cache, uint64_t bytes)
{
	mrc_evict_idle(cache, freed_enough, &bytes);
}

/**
 * mrc_invalidate() - the memory in [addr, addr + len) changed or is going.
 *
 * Cached regions overlapping the range are never handed out again.
 * Unreferenced ones are deregistered before this returns; referenced ones at
 * their last mrc_put().
 *
 * Return: 0; -EINVAL for bad arguments (a NULL address, as in mrc_get(), or
 * a range that wraps) or a destroyed cache; -EPERM in a forked child. A
 * range may reach the top of the address space: that invalidates all
 * regions above @addr.
 */
int mrc_invalidate(struct mrc_cache *cache, const void *addr, size_t len)
{
	uint64_t start = (uintptr_t)addr;

	if (!cache)
		return mrc_error(EINVAL, "cache is NULL");
	/* Never a mapping (mmap_min_addr); most likely an unset pointer. */
	if (!addr)
		return mrc_error(EINVAL, "address is NULL");
	if (!len)
		return mrc_error(EINVAL, "length is zero");
	if (len > UINT64_MAX - start)
		return mrc_error(EINVAL, "range %p + %zu wraps around the address space",
				 addr, len);
	if (mrc_load_relaxed(&cache->closed))
		return mrc_closed_error(cache);
	mrc_cache_lock(cache);
	mrc_cache_range_changed(cache, start, start + len);
	mrc_cache_unlock(cache);
	return 0;
}
