/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The shims' lock-free index of watched ranges: (addr, len) -> a copy of
 * the range's watchpoint, so a runtime's validity check (libfabric's
 * valid(), called at every cache hit) finds its watch without a lock or a
 * tree walk: a hash, a probe or two, and the watch's one-load check.
 *
 * Writers (insert, remove) hold the owner's lock; lookups take none.
 * An open-addressing table with linear probing; each slot is a seqlock, so
 * a lookup sees a slot's key and watchpoint from one moment. Removal
 * shifts later entries back (no tombstones, so churn never fills the
 * table); a lookup that races with a shift may miss its entry, which is
 * a "not watched" answer: always safe, the runtime registers again.
 * A table that grows is replaced; the old ones stay until the index is
 * closed (they only double, so together they are smaller than the last),
 * so a lookup never reads freed memory.
 */
#ifndef MRC_SHIM_INDEX_H
#define MRC_SHIM_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "mrcache.h"

struct mrc_index_table;

struct mrc_index {
	struct mrc_index_table *table;	/* current, loaded with acquire */
	struct mrc_index_table *retired;	/* older tables, freed at close */
	size_t count;			/* writers only */
};

void mrc_index_init(struct mrc_index *x);
void mrc_index_destroy(struct mrc_index *x);
/* Lock held, (addr, len) not present. Return: 0 or -ENOMEM. */
int mrc_index_insert(struct mrc_index *x, uintptr_t addr, size_t len,
		     const struct mrc_watchpoint *wp);
/* Lock held. */
void mrc_index_remove(struct mrc_index *x, uintptr_t addr, size_t len);
/* Lock-free: copy the watchpoint of (addr, len) to @wp. Return: 1 or 0. */
int mrc_index_find(const struct mrc_index *x, uintptr_t addr, size_t len,
		   struct mrc_watchpoint *wp);

#endif /* MRC_SHIM_INDEX_H */
