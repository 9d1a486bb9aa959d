/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Type-stable region memory: regions are carved from chunks that are freed
 * only with the cache, so a lock-free reader holding a stale pointer always
 * points at some region (see region.h).
 */
#ifndef MRC_REGION_POOL_H
#define MRC_REGION_POOL_H

#include <stddef.h>

struct mrc_region;
struct mrc_region_chunk;

struct mrc_region_pool {
	struct mrc_region *free_list;
	struct mrc_region_chunk *chunks;
	size_t in_use;
};

void mrc_region_pool_init(struct mrc_region_pool *pool);
struct mrc_region *mrc_region_alloc(struct mrc_region_pool *pool);
void mrc_region_free(struct mrc_region_pool *pool, struct mrc_region *r);
void mrc_region_pool_destroy(struct mrc_region_pool *pool);

#endif /* MRC_REGION_POOL_H */
