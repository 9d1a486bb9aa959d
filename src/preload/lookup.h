/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The caches' lock-free index (lookup.c): its read side, inline because
 * every registration takes it.
 */
#ifndef MRCACHE_PRELOAD_LOOKUP_H
#define MRCACHE_PRELOAD_LOOKUP_H

#include <stdint.h>

#include "preload.h"

#define PRELOAD_SLOTS 64u	/* a power of two */

struct preload_slot {
	uint32_t seq;		/* odd while written */
	uint32_t access;
	struct ibv_pd *pd;
	struct mrc_cache *cache;	/* NULL: free */
};

extern struct preload_slot preload_slots[PRELOAD_SLOTS];

static inline struct preload_slot *preload_slot_of(const struct ibv_pd *pd,
						   unsigned int access)
{
	uint64_t h = ((uint64_t)(uintptr_t)pd ^ access) *
		     UINT64_C(0x9e3779b97f4a7c15);

	return &preload_slots[h >> (64 - 6)];
}

_Static_assert(PRELOAD_SLOTS == 1u << 6, "preload_slot_of() takes 6 bits");

/* Return: the cache of @pd and @access in the index, or NULL (ask the list). */
static inline struct mrc_cache *preload_lookup(struct ibv_pd *pd,
					       unsigned int access)
{
	struct preload_slot *s = preload_slot_of(pd, access);
	/* Acquire: pairs with the release that ends slot_write() (lookup.c). */
	uint32_t seq = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
	struct mrc_cache *cache;

	/*
	 * Acquire loads of fields slot_write() releases: a field it wrote
	 * brings its odd sequence along, so the second load of the sequence
	 * (kept after them by the acquires) sees the write and says retry.
	 */
	if (seq & 1 || __atomic_load_n(&s->pd, __ATOMIC_ACQUIRE) != pd ||
	    __atomic_load_n(&s->access, __ATOMIC_ACQUIRE) != access)
		return NULL;
	cache = __atomic_load_n(&s->cache, __ATOMIC_ACQUIRE);
	return __atomic_load_n(&s->seq, __ATOMIC_RELAXED) == seq ? cache : NULL;
}

void preload_lookup_add(struct ibv_pd *pd, unsigned int access,
			struct mrc_cache *cache);
void preload_lookup_remove(struct ibv_pd *pd, unsigned int access,
			   struct mrc_cache *cache);

#endif /* MRCACHE_PRELOAD_LOOKUP_H */
