/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Per-thread published references ("thread refs"): a hit that performs no
 * atomic read-modify-write and stores to no shared line.
 *
 * Each thread owns one record. A hit stores the region's address in one of
 * the record's slots (a plain store to a line only this thread writes),
 * then loads the region's state word: if it is not DEAD the region is
 * served. mrc_put() stores the address back with the RELEASED tag. Whoever
 * deregisters a region first sets DEAD (under the cache lock), then runs
 * membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED), which executes a full
 * barrier on every running thread of the process, then scans the slots:
 * either a hit's slot store is visible to the scan, or the hit's load of
 * the state word comes after the barrier and sees DEAD. A region still
 * published is parked and looked at again by later lock holders; it is
 * never deregistered under a user. The argument is in doc/design.md,
 * "Thread references".
 *
 * Slot of a region: fixed by its address, so get and put find it without a
 * search and a thread holds a region in at most one slot. A slot already
 * holding another region, or the same one, sends the hit to the
 * compare-and-swap reference of region.h instead (bounded per-thread state:
 * overflow falls back, it never allocates).
 */
#ifndef MRC_THREADREFS_H
#define MRC_THREADREFS_H

#include <stdbool.h>
#include <stdint.h>

#include "atomics.h"

struct mrc_cache;
struct mrc_region;

#define MRC_TREF_SLOTS		8	/* power of two */
#define MRC_TREF_LOG		16	/* recent hits kept for the LRU */
#define MRC_TREF_FRONT		8	/* front entries, power of two */
#define MRC_TREF_RELEASED	((uintptr_t)1)
#define MRC_TREF_NO_KEY		UINT64_MAX	/* an empty front entry */

/*
 * A front entry: the region this thread last got for a request of @key
 * (mrc_hints_key()) from the bound cache. A guess like a hint (the region may
 * have died or been reused since): the hit checks it as it checks a hint.
 */
struct mrc_tref_front {
	uint64_t key;
	struct mrc_region *region;
};

/*
 * Lines 0-3 and 7-8 are the owner's: a hit stores to lines 0, 1 and one of
 * 1-3, a hinted hit to 7 or 8 as well, and other threads only read them
 * (the reclaimer's scan, statistics). What other threads write (a put left
 * for the owner, the lock it takes, eviction's harvest mark) is on lines
 * 4-6, but for @requests, raised only by a put actually left here, which
 * the owner has to see anyway. Aligned to 128 bytes: Intel's L2 fetches
 * lines in 128-byte pairs, so no pair holds lines of two records, whatever
 * the allocator puts next to a record.
 */
struct mrc_tref {
	/* Line 0: the slots, stored to by the owner only. */
	uintptr_t slot[MRC_TREF_SLOTS];

	/*
	 * Line 1: the owner's hit count for the cache it last used (also the
	 * head of the log) and the word remote puts raise, then the log.
	 */
	struct mrc_cache *cache __attribute__((aligned(64)));
	uint64_t pos;			/* hits of @cache, ever */
	uint64_t base;			/* pos when @cache was bound */
	uint32_t requests;		/* remote puts waiting (under lock) */

	/* Lines 1-3: the regions of the last hits, read by eviction. */
	struct mrc_region *log[MRC_TREF_LOG];

	/* Lines 4-6: what other threads leave or mark here, and the registry. */
	struct mrc_region *request[MRC_TREF_SLOTS] __attribute__((aligned(64)));
	struct mrc_cache *request_cache[MRC_TREF_SLOTS];
	struct mrc_tref *next;		/* all records, never freed */
	uint64_t harvested;		/* log read by eviction up to here */
	uint32_t lock;			/* guards request[] and state */
	uint32_t state;			/* enum mrc_tref_state */
	uint32_t serving;		/* owner is serving requests */

	/*
	 * Lines 7-8: the owner's front entries, by request key, for @cache
	 * only (emptied when the record is bound to another cache).
	 */
	struct mrc_tref_front front[MRC_TREF_FRONT] __attribute__((aligned(64)));
} __attribute__((aligned(128)));

#define MRC_TREF_LINE(field)	(__builtin_offsetof(struct mrc_tref, field) / 64)
_Static_assert(MRC_TREF_LINE(lock) > MRC_TREF_LINE(log[MRC_TREF_LOG - 1]) &&
	       MRC_TREF_LINE(harvested) > MRC_TREF_LINE(log[MRC_TREF_LOG - 1]) &&
	       MRC_TREF_LINE(request) > MRC_TREF_LINE(log[MRC_TREF_LOG - 1]) &&
	       MRC_TREF_LINE(serving) < MRC_TREF_LINE(front),
	       "words other threads write share no line with the owner's hit stores");

enum mrc_tref_state {
	MRC_TREF_FREE,		/* no thread, nothing held: reusable */
	MRC_TREF_OWNED,		/* a live thread's */
	MRC_TREF_ORPHAN,	/* its thread exited holding dead regions */
};

extern __thread struct mrc_tref *mrc_tref_self
	__attribute__((tls_model("initial-exec")));

/* The slot a region uses: regions are 112 bytes apart, 16-byte aligned. */
static inline unsigned int mrc_tref_slot_of(const struct mrc_region *r)
{
	return (unsigned int)((uintptr_t)r >> 4) & (MRC_TREF_SLOTS - 1);
}

static inline bool mrc_tref_slot_held(uintptr_t v)
{
	return v && !(v & MRC_TREF_RELEASED);
}

/* This thread may hit @cache through its slots. */
static inline struct mrc_tref *mrc_tref_for(const struct mrc_cache *cache)
{
	struct mrc_tref *t = mrc_tref_self;

	if (mrc_likely(t && t->cache == cache &&
		       !mrc_load_relaxed(&t->requests)))
		return t;
	return NULL;
}

/*
 * Publish @r in slot @k. No fence: the barrier between this store and
 * the caller's load of the state word is the one membarrier runs on this
 * thread for the reclaimer (mrc_trefs_fence); the compiler barrier keeps
 * the compiler from moving the load above the store.
 */
static inline void mrc_tref_publish(struct mrc_tref *t, unsigned int k,
				    const struct mrc_region *r)
{
	mrc_store_relaxed(&t->slot[k], (uintptr_t)r);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
}

/*
 * Release: pairs with the reclaimer's load-acquire in mrc_trefs_holds(),
 * so everything the user did with the region happens before its
 * deregistration.
 */
static inline void mrc_tref_release(struct mrc_tref *t, unsigned int k,
				    const struct mrc_region *r)
{
	mrc_store_release(&t->slot[k], (uintptr_t)r | MRC_TREF_RELEASED);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
}

/*
 * Count a hit and log its region for the LRU: own line, plain stores.
 * Returns the count before this hit.
 */
static inline uint64_t mrc_tref_count_hit(struct mrc_tref *t,
					  struct mrc_region *r)
{
	uint64_t pos = t->pos;

	mrc_store_relaxed(&t->log[pos & (MRC_TREF_LOG - 1)], r);
	mrc_store_release(&t->pos, pos + 1);
	return pos;
}

/* The front entry a request of @key would use. */
static inline struct mrc_tref_front *mrc_tref_front_of(struct mrc_tref *t,
							uint64_t key)
{
	return &t->front[key & (MRC_TREF_FRONT - 1)];
}

/* Remember that @r served a request of @key, in its front entry. */
static inline void mrc_tref_remember(struct mrc_tref *t, uint64_t key,
				     struct mrc_region *r)
{
	*mrc_tref_front_of(t, key) = (struct mrc_tref_front){ key, r };
}

/*
 * Whether a hit through the hint table, the thread's hit number @pos,
 * also fills the key's front entry: one in MRC_TREF_FRONT_EVERY. Every
 * one did before; with more keys in use than front entries (most hits
 * of a thread spreading over a thousand buffers come through the hint
 * table) that was a store per hit evicting an entry that was about as
 * likely to be used next, and kept a value live (the key) that cost the
 * hit two saved registers. Sampled, a key hit often still gets its entry
 * soon, and two keys sharing an entry no longer evict each other at
 * every hit.
 */
#define MRC_TREF_FRONT_EVERY	16	/* power of two */

static inline bool mrc_tref_refresh_front(uint64_t pos)
{
	return !(pos & (MRC_TREF_FRONT_EVERY - 1));
}

/* threadrefs.c: records, binding, thread exit, fork, remote puts */
int mrc_trefs_available(void);
void mrc_trefs_bind_slow(struct mrc_cache *cache);
void mrc_trefs_serve_requests(struct mrc_tref *t);
int mrc_trefs_put_remote(struct mrc_cache *cache, struct mrc_region *r);
uint64_t mrc_trefs_hits(const struct mrc_cache *cache);

/*
 * Let this thread hit @cache through its slots (called on the slow path of
 * a get): nothing to do when it already may, which is every miss but a
 * thread's first in this cache.
 */
static inline void mrc_trefs_bind(struct mrc_cache *cache)
{
	if (!mrc_tref_for(cache))
		mrc_trefs_bind_slow(cache);
}

extern struct mrc_tref *mrc_trefs_records;	/* all, newest first */
extern uint32_t mrc_trefs_owners;		/* records owned by a thread */
extern int mrc_trefs_skip_fence;		/* test only */
extern unsigned long mrc_trefs_fences;		/* membarriers run, for tests */

/* reclaim.c: the reclaimer's side */
void mrc_trefs_fence(void);
bool mrc_trefs_holds(const struct mrc_region *r);
void mrc_trefs_harvest(struct mrc_cache *cache);

#endif /* MRC_THREADREFS_H */
