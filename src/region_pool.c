// SPDX-License-Identifier: BSD-2-Clause
#include <stdlib.h>
#include <string.h>

#include "region.h"
#include "region_pool.h"

/* 63 regions of 128 bytes and a header fill an 8 KiB chunk. */
#define MRC_REGIONS_PER_CHUNK 63

struct mrc_region_chunk {
	struct mrc_region_chunk *next;
	struct mrc_region regions[MRC_REGIONS_PER_CHUNK]
		__attribute__((aligned(64)));
};

_Static_assert(sizeof(struct mrc_region) <= 128,
	       "a region must stay within 128 bytes (doc/performance.md)");

void mrc_region_pool_init(struct mrc_region_pool *pool)
{
	memset(pool, 0, sizeof(*pool));
}

static int grow(struct mrc_region_pool *pool)
{
	struct mrc_region_chunk *chunk;

	chunk = aligned_alloc(64, sizeof(*chunk));
	if (!chunk)
		return -1;
	memset(chunk, 0, sizeof(*chunk));
	chunk->next = pool->chunks;
	pool->chunks = chunk;
	for (int i = MRC_REGIONS_PER_CHUNK - 1; i >= 0; i--) {
		struct mrc_region *r = &chunk->regions[i];

		/* Free regions are dead so no reader can take a reference. */
		r->state = MRC_DEAD;
		r->lru_next = pool->free_list;
		pool->free_list = r;
	}
	return 0;
}

/**
 * mrc_region_alloc() - a dead, unpublished region, or NULL without memory.
 *
 * The caller holds the cache lock. Only the state word is meaningful; the
 * caller initializes the rest and then publishes the region.
 */
struct mrc_region *mrc_region_alloc(struct mrc_region_pool *pool)
{
	struct mrc_region *r;

	if (!pool->free_list && grow(pool))
		return NULL;
	r = pool->free_list;
	pool->free_list = r->lru_next;
	pool->in_use++;
	return r;
}

/* Return a dead region whose references are all gone. */
void mrc_region_free(struct mrc_region_pool *pool, struct mrc_region *r)
{
	r->lru_next = pool->free_list;
	pool->free_list = r;
	pool->in_use--;
}

void mrc_region_pool_destroy(struct mrc_region_pool *pool)
{
	struct mrc_region_chunk *chunk = pool->chunks;

	while (chunk) {
		struct mrc_region_chunk *next = chunk->next;

		free(chunk);
		chunk = next;
	}
	memset(pool, 0, sizeof(*pool));
}
