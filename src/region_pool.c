// SPDX-License-Identifier: BSD-2-Clause
#include <stdlib.h>
#include <string.h>

#include "region.h"
#include "region_pool.h"

/*
 * Chunks hold only regions; the pool keeps the list of chunks in a separate
 * array, so a region costs its own size plus a fraction of a pointer.
 */
/* Region plus its share of the hint table must stay within 128 bytes. */
_Static_assert(sizeof(struct mrc_region) <= 112,
	       "a region must stay within 112 bytes (doc/performance.md)");

void mrc_region_pool_init(struct mrc_region_pool *pool)
{
	memset(pool, 0, sizeof(*pool));
}

/* Copy the chunk array into a larger one; readers may still use the old. */
static int grow_chunk_array(struct mrc_region_pool *pool)
{
	size_t cap = pool->chunks_cap ? 2 * pool->chunks_cap : 16;
	struct mrc_region_chunk **grown;
	void **retired;

	retired = realloc(pool->retired, (pool->nretired + 1) * sizeof(*retired));
	if (!retired)
		return -1;
	pool->retired = retired;
	grown = calloc(cap, sizeof(*grown));
	if (!grown)
		return -1;
	if (pool->nchunks)
		memcpy(grown, pool->chunks, pool->nchunks * sizeof(*grown));
	if (pool->chunks)
		pool->retired[pool->nretired++] = pool->chunks;
	/* Pairs with the acquire in mrc_region_at(). */
	mrc_store_release(&pool->chunks, grown);
	pool->chunks_cap = cap;
	return 0;
}

static int remember_chunk(struct mrc_region_pool *pool,
			  struct mrc_region_chunk *chunk)
{
	if (pool->nchunks == pool->chunks_cap && grow_chunk_array(pool))
		return -1;
	pool->chunks[pool->nchunks++] = chunk;
	return 0;
}

static int grow(struct mrc_region_pool *pool)
{
	struct mrc_region_chunk *chunk;

	chunk = aligned_alloc(64, sizeof(*chunk));
	if (!chunk)
		return -1;
	memset(chunk, 0, sizeof(*chunk));
	if (remember_chunk(pool, chunk)) {
		free(chunk);
		return -1;
	}
	for (int i = MRC_REGIONS_PER_CHUNK - 1; i >= 0; i--) {
		struct mrc_region *r = &chunk->regions[i];

		/* Free regions are dead so no reader can take a reference. */
		r->state = MRC_DEAD;
		r->index = (uint32_t)((pool->nchunks - 1) * MRC_REGIONS_PER_CHUNK + i);
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
	for (size_t i = 0; i < pool->nchunks; i++)
		free(pool->chunks[i]);
	for (size_t i = 0; i < pool->nretired; i++)
		free(pool->retired[i]);
	free(pool->retired);
	free(pool->chunks);
	memset(pool, 0, sizeof(*pool));
}
