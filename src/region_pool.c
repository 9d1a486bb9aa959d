// SPDX-License-Identifier: BSD-2-Clause
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "hints.h"
#include "region.h"
#include "region_pool.h"

/* Region plus its share of the hint table must stay within 128 bytes. */
_Static_assert(sizeof(struct mrc_region) <= 112,
	       "a region must stay within 112 bytes (doc/performance.md)");

/*
 * Hint slots name at most 2^24 regions, so reserve room for that many
 * (1.75 GiB of address space, none of it memory until used). Address space
 * is cheap but can be limited (RLIMIT_AS): settle for less if need be.
 */
#define MRC_POOL_MAX_REGIONS	((size_t)MRC_HINT_INDEX_MASK)
#define MRC_POOL_MIN_REGIONS	((size_t)1 << 12)
/* Made accessible 512 at a time: 56 KiB, a whole number of pages. */
#define MRC_POOL_STEP		512

int mrc_region_pool_init(struct mrc_region_pool *pool)
{
	memset(pool, 0, sizeof(*pool));
	for (size_t n = MRC_POOL_MAX_REGIONS; n >= MRC_POOL_MIN_REGIONS; n /= 2) {
		void *p = mmap(NULL, n * sizeof(struct mrc_region), PROT_NONE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

		if (p != MAP_FAILED) {
			pool->base = p;
			pool->reserved_bytes = n / MRC_POOL_STEP * MRC_POOL_STEP *
					       sizeof(struct mrc_region);
			return 0;
		}
	}
	return -ENOMEM;
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23	/* Linux 5.14 */
#endif

/*
 * Fault in the pages of a step just made accessible, in one call: the
 * loop below writes every region of it at once, so this takes no more
 * memory than the loop would, and saves the ~14 separate page faults the
 * loop would take (in a fresh cache, about half of what growing costs).
 * Older kernels refuse the advice (EINVAL); then the loop faults as before.
 * Not a change a monitor records (hooks.c).
 */
static void populate(void *p, size_t len)
{
	int saved = errno;

	madvise(p, len, MADV_POPULATE_WRITE);
	errno = saved;
}

static int grow(struct mrc_region_pool *pool)
{
	struct mrc_region *step = pool->base + pool->capacity;

	if ((pool->capacity + MRC_POOL_STEP) * sizeof(*step) > pool->reserved_bytes ||
	    mprotect(step, MRC_POOL_STEP * sizeof(*step), PROT_READ | PROT_WRITE))
		return -1;
	populate(step, MRC_POOL_STEP * sizeof(*step));
	for (int i = MRC_POOL_STEP - 1; i >= 0; i--) {
		struct mrc_region *r = &step[i];

		/*
		 * Free regions are dead so no reader can take a reference.
		 * Atomic: a hit may CAS this word as soon as it sees the
		 * capacity below.
		 */
		mrc_store_relaxed(&r->state, MRC_DEAD);
		r->index = (uint32_t)(pool->capacity + (size_t)i);
		r->lru_next = pool->free_list;
		pool->free_list = r;
	}
	/*
	 * Read without the lock by the hit path, which bounds indexes by it.
	 * Release pairs with its load-acquire (mrc_region_pool_capacity()):
	 * a reader that sees the new capacity sees the new slots dead, not
	 * zero-filled (a zero state word reads as live and unreferenced).
	 */
	mrc_store_release(&pool->capacity, pool->capacity + MRC_POOL_STEP);
	return 0;
}

/**
 * mrc_region_alloc() - a dead, unpublished region, or NULL without memory.
 *
 * The caller holds the cache lock. Only the state word and the index are
 * meaningful; the caller initializes the rest and then publishes the region.
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
	if (pool->base)
		munmap(pool->base, pool->reserved_bytes);
	memset(pool, 0, sizeof(*pool));
}
