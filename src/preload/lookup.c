// SPDX-License-Identifier: BSD-2-Clause
/*
 * The caches' index for the hit path: (PD, access) -> cache without a
 * lock. caches.c keeps every cache on its list, under its mutex; this
 * table holds those the hit path finds directly: one slot per hash of
 * (PD, access), direct-mapped, so a cache whose slot is taken stays on
 * the list only (found there, under the mutex). Programs have a few PDs
 * and access sets, so that is rare.
 *
 * Each slot is a sequence lock: written only under caches.c's mutex
 * (made at a cache's creation, cleared before its destruction), read
 * without one. A reader that saw the sequence change, or odd, takes the
 * locked way instead of retrying.
 *
 * Removal: a cache leaves its slot before mrc_cache_destroy(). A reader
 * that read the slot just before can still call into the cache while it
 * is destroyed, but only if the program registers on a PD while another
 * of its threads deallocates that PD (or closes its device): without the
 * preload that is a use of freed memory in libibverbs as well.
 */
#include <stdint.h>

#include "lookup.h"

struct preload_slot preload_slots[PRELOAD_SLOTS];

/* Under caches.c's mutex: the only writer. */
static void slot_write(struct preload_slot *s, struct ibv_pd *pd,
		       unsigned int access, struct mrc_cache *cache)
{
	uint32_t seq = s->seq;

	__atomic_store_n(&s->seq, seq + 1, __ATOMIC_RELAXED);
	/*
	 * Release each field (no fence: ThreadSanitizer cannot see one): a
	 * reader that acquires a new field also sees the odd sequence.
	 */
	__atomic_store_n(&s->pd, pd, __ATOMIC_RELEASE);
	__atomic_store_n(&s->access, access, __ATOMIC_RELEASE);
	__atomic_store_n(&s->cache, cache, __ATOMIC_RELEASE);
	/* Pairs with preload_lookup()'s first load. */
	__atomic_store_n(&s->seq, seq + 2, __ATOMIC_RELEASE);
}

/* Under caches.c's mutex: @cache into its slot, if the slot is free. */
void preload_lookup_add(struct ibv_pd *pd, unsigned int access,
			struct mrc_cache *cache)
{
	struct preload_slot *s = preload_slot_of(pd, access);

	if (!s->cache)
		slot_write(s, pd, access, cache);
}

/* Under caches.c's mutex: @cache out of the table, if it is there. */
void preload_lookup_remove(struct ibv_pd *pd, unsigned int access,
			   struct mrc_cache *cache)
{
	struct preload_slot *s = preload_slot_of(pd, access);

	if (s->cache == cache)
		slot_write(s, NULL, 0, NULL);
}
