/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A cached registration and its reference word.
 *
 * Regions live in type-stable memory (region_pool.c): once allocated, a
 * region's memory stays a region until the cache is destroyed. That is what
 * lets the hit path follow a tree pointer without a lock: the worst a stale
 * pointer can lead to is a failed reference attempt or a region that is
 * re-validated after the reference is taken.
 */
#ifndef MRC_REGION_H
#define MRC_REGION_H

#include <stdbool.h>
#include <stdint.h>

#include "atomics.h"
#include "itree.h"
#include "monitor.h"

/*
 * The state word: references in the low 31 bits, DEAD in bit 31 and a hit
 * counter in the high 32 bits, so a hit is a single compare-and-swap.
 * DEAD means "never hand out again"; the registration itself stays valid
 * until the last reference is dropped.
 */
#define MRC_REF_MASK	0x7fffffffull
#define MRC_DEAD	0x80000000ull
#define MRC_HIT_ONE	(1ull << 32)

enum mrc_region_flags {
	MRC_REGION_IN_TREE = 1u << 0,
	MRC_REGION_IN_LRU = 1u << 1,
	MRC_REGION_WATCHED = 1u << 2,
	MRC_REGION_MERGING = 1u << 3,	/* being folded into a new region */
	MRC_REGION_RECENT = 1u << 4,	/* a thread hit it since it was queued */
};

struct mrc_region {
	/*
	 * All a hit reads or writes: node.aux (the access flags),
	 * node.start/end (the registered range), the node's last fields,
	 * and right after the node the state word: 28 bytes. Regions are
	 * 112 bytes apart, so they start at 0, 48, 32 and 16 bytes into a
	 * cache line in turn; these 28 bytes, 36 bytes into the region, lie
	 * in one line for three regions of those four. (The state word
	 * first and the range in the node's middle spread a hit's bytes
	 * over 64, in one line for one region of four.)
	 */
	struct mrc_itree_node node;
	uint64_t state;

	/* The lock holder's and the accessors'. */
	uint32_t flags;			/* enum mrc_region_flags */
	uint32_t index;			/* in the pool; names it in hint slots */
	void *handle;			/* the provider's object */
	struct mrc_region *lru_prev;
	struct mrc_region *lru_next;	/* also the deferred-list link */
	uint32_t lru_hits;		/* hit count when queued in the LRU */
	struct mrc_watch_ref watch;	/* the monitor's watch of this range */
	uint32_t idle_since;		/* idle sweep clock (ms) when first seen
					 * idle since its last use; 0: not yet */
};

/* The bytes a hit touches: node.aux, node.start, node.end, the state word. */
#define MRC_REGION_HIT_FIRST	__builtin_offsetof(struct mrc_region, node.aux)
_Static_assert(__builtin_offsetof(struct mrc_region, node.start) > MRC_REGION_HIT_FIRST &&
	       __builtin_offsetof(struct mrc_region, node.end) > MRC_REGION_HIT_FIRST &&
	       __builtin_offsetof(struct mrc_region, state) + sizeof(uint64_t) -
	       MRC_REGION_HIT_FIRST <= 28,
	       "a hit's fields must stay within 28 bytes (see struct mrc_region)");

static inline uint32_t mrc_region_access_flags(const struct mrc_region *r)
{
	return r->node.aux;
}

static inline uint32_t mrc_region_hits(const struct mrc_region *r)
{
	return (uint32_t)(mrc_load_relaxed(&r->state) >> 32);
}

static inline uint64_t mrc_region_start(const struct mrc_region *r)
{
	return mrc_load_relaxed(&r->node.start);
}

static inline uint64_t mrc_region_end(const struct mrc_region *r)
{
	return mrc_load_relaxed(&r->node.end);
}

/*
 * Take a reference unless the region is dead. The acquire half of the CAS
 * pairs with the release store that published the region (region_publish),
 * so a reference always sees initialized fields.
 */
static inline bool mrc_region_try_ref(struct mrc_region *r, uint64_t *old)
{
	uint64_t v = mrc_load_relaxed(&r->state);

	do {
		if (v & MRC_DEAD)
			return false;
	} while (!mrc_cas(&r->state, &v, v + 1 + MRC_HIT_ONE));
	*old = v;
	return true;
}

#endif /* MRC_REGION_H */
