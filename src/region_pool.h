/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Type-stable region memory: regions are carved from one reservation of
 * address space that is released only with the cache, so a lock-free reader
 * holding a stale pointer or index always points at some region (see
 * region.h). Being one array, a region's pool index turns into its address
 * with one multiply-add: no table to load on the hit path.
 */
#ifndef MRC_REGION_POOL_H
#define MRC_REGION_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "atomics.h"
#include "region.h"

struct mrc_region_pool {
	struct mrc_region *base;	/* reserved address space */
	size_t reserved_bytes;		/* of address space, from base */
	size_t capacity;		/* regions made accessible so far */
	struct mrc_region *free_list;
	size_t in_use;
};

int mrc_region_pool_init(struct mrc_region_pool *pool);
struct mrc_region *mrc_region_alloc(struct mrc_region_pool *pool);
void mrc_region_free(struct mrc_region_pool *pool, struct mrc_region *r);
void mrc_region_pool_destroy(struct mrc_region_pool *pool);

/*
 * Regions accessible so far, for a reader without the lock: any index below
 * it names a region whose state word is initialized (pairs with the release
 * in the pool's growth).
 */
static inline size_t mrc_region_pool_capacity(const struct mrc_region_pool *pool)
{
	return mrc_load_acquire(&pool->capacity);
}

/*
 * Is @r in this pool's reservation? One subtract and one compare, both
 * operands on the line mrc_put() already reads, so every put can afford
 * it: a region of another cache lies in that cache's own reservation,
 * never in this one. Bytes, not regions, so there is no multiply; both
 * fields are set before the cache is published and never change.
 * (A pointer into the middle of one of this pool's regions passes: that
 * is no region of another cache.)
 */
static inline int mrc_region_pool_owns(const struct mrc_region_pool *pool,
				       const struct mrc_region *r)
{
	return (uintptr_t)r - (uintptr_t)pool->base < pool->reserved_bytes;
}

/* The region with pool index @index, which the pool has handed out before. */
static inline struct mrc_region *mrc_region_at(const struct mrc_region_pool *pool,
					       uint32_t index)
{
	return pool->base + index;
}

#endif /* MRC_REGION_POOL_H */
