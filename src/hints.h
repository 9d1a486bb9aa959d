/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The hint table: a 4-way set-associative hash from a request's first page
 * to the regions that last served it, read by the hit path before it walks
 * the interval tree.
 *
 * A slot is 32 bits: an 8-bit tag of the key and the region's pool index
 * plus one (0 is empty), so the table costs 5 to 11 bytes per cached region.
 * A hint is only a guess: the hit path takes a reference on the region it
 * names and re-checks range and access, exactly as after a tree walk, so a
 * stale hint (a dead or recycled region) costs a tree walk, never a wrong
 * answer. That is why hints are never cleared when regions die.
 *
 * The table grows with the cache. A replaced table cannot be freed while a
 * lock-free reader may still be looking at it, so it is emptied with
 * MADV_DONTNEED instead, all but the first page (the header, which a late
 * reader needs intact, and a few stale hints): its memory goes back to
 * the kernel, and a late reader finds zero pages, i.e. no hints. The
 * mappings are unmapped with the cache.
 */
#ifndef MRC_HINTS_H
#define MRC_HINTS_H

#include <stddef.h>
#include <stdint.h>

#include "atomics.h"

#define MRC_HINT_WAYS		4
#define MRC_HINT_INDEX_BITS	24
#define MRC_HINT_INDEX_MASK	((1u << MRC_HINT_INDEX_BITS) - 1)

struct mrc_hints {
	uint64_t mult;			/* keys' multiplier (mrc_hints_hash) */
	uint64_t set_mask;		/* slots - MRC_HINT_WAYS */
	/* Aligned so that a set is 16 bytes in one line (one vector load). */
	uint32_t slot[] __attribute__((aligned(16)));
};

#define MRC_HINTS_MAX_RETIRED 48

/* Emptied tables, unmapped with the cache. */
struct mrc_hints_retired {
	struct mrc_hints *table[MRC_HINTS_MAX_RETIRED];
	size_t len[MRC_HINTS_MAX_RETIRED];
	unsigned int count;
};

/* Small on purpose: it sits in the cache line every hit reads. */
struct mrc_hint_table {
	struct mrc_hints *current;	/* acquire-loaded by the hit path */
	size_t current_len;		/* bytes mapped for current */
	struct mrc_hints_retired *retired;
};

int mrc_hints_init(struct mrc_hint_table *table);
void mrc_hints_destroy(struct mrc_hint_table *table);
/* Fills a new table before it replaces the current one. */
typedef void (*mrc_hints_seed_fn)(struct mrc_hints *h, void *arg);
void mrc_hints_grow(struct mrc_hint_table *table, size_t regions,
		    mrc_hints_seed_fn seed, void *arg);

/*
 * The key of a request: the 4 KiB block its first byte lies in. A fixed
 * shift rather than the page size's costs the hit path no load and no
 * shift register; with larger pages a page merely has several keys.
 * Every key is computed from the request's own address as the caller
 * gave it (or a region's start), never from a rounded one.
 */
#define MRC_HINT_KEY_SHIFT	12

static inline uint64_t mrc_hints_key(uint64_t addr)
{
	return addr >> MRC_HINT_KEY_SHIFT;
}

/*
 * A table has at most 2^24 slots (4 bytes each, 64 MiB): its sets are
 * picked by at most the hash's top 24 bits, so one fixed shift serves
 * every size.
 */
#define MRC_HINT_MAX_BITS	24
#define MRC_HINT_SET_SHIFT	(64 - MRC_HINT_MAX_BITS)

/*
 * Fibonacci hashing in a word of 40 + log2(slots) bits: the table's
 * multiplier is 2^64 / the golden ratio shifted right by 24 - log2(slots)
 * (mrc_hints_mult()), so bits 40 and up of key * mult are the top bits of
 * key * (2^w / the golden ratio) mod 2^w, w = 40 + log2(slots). Picking
 * the set then takes a fixed shift and the header's mask: no shift by a
 * count loaded from the table, which on x86 must sit in %cl and costs the
 * hit path register moves.
 */
static inline uint64_t mrc_hints_mult(unsigned int bits)
{
	return 0x9e3779b97f4a7c15ull >> (MRC_HINT_MAX_BITS - bits);
}

static inline uint64_t mrc_hints_hash(const struct mrc_hints *h, uint64_t key)
{
	return key * h->mult;
}

/*
 * First slot of the set for @hash; the set's slots share a cache line.
 * The mask alone keeps it below the slot count.
 */
static inline uint64_t mrc_hints_set(const struct mrc_hints *h, uint64_t hash)
{
	return (hash >> MRC_HINT_SET_SHIFT) & h->set_mask;
}

/*
 * The tag of a key: 8 bits of its hash that the set index does not use,
 * never 0, so an empty slot (all zero) matches no tag.
 */
static inline uint32_t mrc_hints_tag(uint64_t hash)
{
	return (uint32_t)(hash >> 24 & 0xff) | 1;
}

/* The slot value naming region @index for a key of @hash (0: none). */
static inline uint32_t mrc_hints_entry(uint64_t hash, uint32_t index)
{
	if (index >= MRC_HINT_INDEX_MASK)
		return 0;
	return mrc_hints_tag(hash) << MRC_HINT_INDEX_BITS | (index + 1);
}

/*
 * Remember in table @h that region @index served the request of @key;
 * any thread, no lock. Release pairs with the hit path's acquire of the
 * slot, so a reader that sees the index also sees the region it names
 * initialized and the pool grown to hold it.
 */
static inline void mrc_hints_put(struct mrc_hints *h, uint64_t key,
				 uint32_t index)
{
	uint64_t hash = mrc_hints_hash(h, key);
	uint32_t entry = mrc_hints_entry(hash, index);
	uint32_t *set = &h->slot[mrc_hints_set(h, hash)];
	uint32_t older = entry;

	if (!entry)
		return;
	/*
	 * Most recent first: shift the others down until the way that held
	 * this tag (or an empty one, or the oldest) is overwritten. A way
	 * with the same tag names the region this key had before (an
	 * upgrade, merge or re-registration put it at another pool index),
	 * or another key that would be confused with this one; kept, it
	 * would match too, and the hit path would mix the two indexes and
	 * take the slow lookup on every hit.
	 */
	for (int way = 0; way < MRC_HINT_WAYS; way++) {
		uint32_t cur = mrc_load_relaxed(&set[way]);

		mrc_store_release(&set[way], older);
		if (!cur || (cur ^ entry) >> MRC_HINT_INDEX_BITS == 0)
			return;
		older = cur;
	}
}

static inline void mrc_hints_remember(struct mrc_hint_table *table,
				      uint64_t key, uint32_t index)
{
	mrc_hints_put(mrc_load_acquire(&table->current), key, index);
}

#endif /* MRC_HINTS_H */
