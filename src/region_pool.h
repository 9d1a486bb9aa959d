/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Type-stable region memory: regions are carved from chunks that are freed
 * only with the cache, so a lock-free reader holding a stale pointer always
 * points at some region (see region.h).
 */
#ifndef MRC_REGION_POOL_H
#define MRC_REGION_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "atomics.h"
#include "region.h"

#define MRC_REGIONS_PER_CHUNK 64

struct mrc_region_chunk {
	struct mrc_region regions[MRC_REGIONS_PER_CHUNK];
};

struct mrc_region_pool {
	/*
	 * Lock-free readers index this array (mrc_region_at), so a grown
	 * array does not free the old one until the pool goes: together they
	 * cost less than two pointers per chunk.
	 */
	struct mrc_region_chunk **chunks;
	size_t nchunks;
	size_t chunks_cap;
	void **retired;
	size_t nretired;
	struct mrc_region *free_list;
	size_t in_use;
};

/* The region with pool index @index, which the pool has handed out before. */
static inline struct mrc_region *mrc_region_at(struct mrc_region_pool *pool,
					       uint32_t index)
{
	struct mrc_region_chunk **chunks = mrc_load_acquire(&pool->chunks);

	return &chunks[index / MRC_REGIONS_PER_CHUNK]->regions[index % MRC_REGIONS_PER_CHUNK];
}

void mrc_region_pool_init(struct mrc_region_pool *pool);
struct mrc_region *mrc_region_alloc(struct mrc_region_pool *pool);
void mrc_region_free(struct mrc_region_pool *pool, struct mrc_region *r);
void mrc_region_pool_destroy(struct mrc_region_pool *pool);

#endif /* MRC_REGION_POOL_H */
