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
 * mrc_cache_invalidate_locked() - drop every region overlapping a range.
 * @cache: locked cache.
 * @start, @end: the byte range that changed, [start, end).
 *
 * Called by mrc_invalidate() and by monitors while draining events.
 */
void mrc_cache_invalidate_locked(struct mrc_cache *cache, uint64_t start,
				 uint64_t end)
{
	struct mrc_itree_node *n;

	while ((n = mrc_itree_first_overlap(&cache->tree, start, end))) {
		mrc_region_kill(cache, mrc_node_region(n));
		cache->count.invalidations++;
	}
}

/**
 * mrc_cache_evict_bytes_locked() - release at least @bytes of idle memory.
 * @cache: locked cache.
 *
 * For memory-pressure signals: least recently used idle regions go first.
 */
void mrc_cache_evict_bytes_locked(struct mrc_cache *cache, uint64_t bytes)
{
	uint64_t freed = 0;
	struct mrc_region *r;

	while (freed < bytes && (r = mrc_lru_pick_idle(cache))) {
		freed += r->node.end - r->node.start;
		mrc_region_kill(cache, r);
		cache->count.evictions++;
	}
}

/**
 * mrc_invalidate() - the memory in [addr, addr + len) changed or is going.
 *
 * Cached regions overlapping the range are never handed out again.
 * Unreferenced ones are deregistered before this returns; referenced ones at
 * their last mrc_put().
 *
 * Return: 0, -EINVAL for bad arguments, -EPERM in a forked child.
 */
int mrc_invalidate(struct mrc_cache *cache, const void *addr, size_t len)
{
	uint64_t start = (uintptr_t)addr;

	if (!cache)
		return mrc_error(EINVAL, "cache is NULL");
	if (!len)
		return mrc_error(EINVAL, "length is zero");
	if (len > UINT64_MAX - start)
		return mrc_error(EINVAL, "range %p + %zu wraps around the address space",
				 addr, len);
	if (mrc_load_relaxed(&cache->forked))
		return mrc_fork_error(cache);
	mrc_cache_lock(cache);
	mrc_cache_invalidate_locked(cache, start, start + len);
	mrc_cache_unlock(cache);
	return 0;
}
