// SPDX-License-Identifier: BSD-2-Clause
/*
 * The reclaimer's side of thread refs: the process-wide barrier, the scan
 * that says whether any thread still holds a region, and the harvest of
 * recent hits that keeps eviction close to least-recently-used.
 *
 * All of it runs under a cache lock, on paths that already cost a
 * provider call (tens of microseconds): deregistration, eviction,
 * invalidation, destroy.
 */
#include <errno.h>
#include <linux/membarrier.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cache.h"
#include "error.h"
#include "threadrefs.h"

int mrc_trefs_skip_fence;
unsigned long mrc_trefs_fences;

/*
 * Does a thread other than the caller own a record? Only an owner stores
 * to slots, and every claim and exit read-modify-writes the count, as
 * this does (adding nothing), after the caller set DEAD: of two
 * read-modify-writes of one word the second sees everything done before
 * the first. A claim after this one therefore sees DEAD before its
 * thread's first slot hit loads a state word; a claim before it is
 * counted here; an exit before it made that thread's slot stores visible
 * to the scan. The caller's own slot stores precede its scan anyway.
 */
static bool other_owners(void)
{
	uint32_t owners = mrc_rmw_read(&mrc_trefs_owners);

	return owners > (mrc_tref_self ? 1u : 0u);
}

/* No fence, no safe deregistration: stop rather than risk the bytes. */
static __attribute__((cold, noreturn)) void fence_failed(void)
{
	mrc_warn("membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) failed after registration (%s): cannot deregister safely; set MRCACHE_THREAD_REFS=0",
		 strerror(errno));
	abort();
}

/**
 * mrc_trefs_fence() - order every thread's slot stores before our scan.
 *
 * Call after setting DEAD on the regions to scan for. When it returns,
 * every other running thread of the process has executed a full memory
 * barrier (threads not running passed one when they were switched out):
 * a hit whose slot store the scan does not see loads the state word after
 * that barrier, and so sees DEAD. When no other thread owns a record
 * there is no such hit, and no membarrier (other_owners()).
 * mrc_trefs_skip_fence removes it always, for the test that shows it is
 * needed (test/threadrefs_litmus_test, built from the library's sources:
 * no switch of the library itself turns it off).
 */
void mrc_trefs_fence(void)
{
	if (mrc_trefs_skip_fence || !other_owners())
		return;
	/*
	 * Going on without the fence could deregister a region a hit is
	 * using. The process is registered, so the call fails only for
	 * want of memory (the kernel's cpumask, ENOMEM), which passes.
	 */
	while (syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0)) {
		if (errno != ENOMEM)
			fence_failed();
		sched_yield();
	}
	mrc_fetch_add(&mrc_trefs_fences, 1);
}

/* Slot @k of @t holds @r and no other thread's put of it waits there. */
static bool slot_holds(const struct mrc_tref *t, unsigned int k,
		       const struct mrc_region *r)
{
	/*
	 * Acquire pairs with the release in mrc_tref_release(): a released
	 * slot means the user's last access happened before this. Slot
	 * first, then request: the owner clears the request before it
	 * releases the slot, so a scan never misses both.
	 */
	return mrc_load_acquire(&t->slot[k]) == (uintptr_t)r &&
	       mrc_load_acquire(&t->request[k]) != r;
}

/**
 * mrc_trefs_holds() - does any thread hold @r in a slot?
 *
 * Meaningful only after mrc_trefs_fence() ran since @r was marked DEAD;
 * after that a thread can publish @r again but never use it, so a later
 * "no" stays true and the scan may be repeated without another fence.
 */
bool mrc_trefs_holds(const struct mrc_region *r)
{
	unsigned int k = mrc_tref_slot_of(r);

	for (struct mrc_tref *t = mrc_load_acquire(&mrc_trefs_records); t;
	     t = mrc_load_relaxed(&t->next))
		if (slot_holds(t, k, r))
			return true;
	return false;
}

/* A log entry that names a cached region of @cache, or NULL. */
static struct mrc_region *logged_region(struct mrc_cache *cache,
					struct mrc_region *r)
{
	uintptr_t off = (uintptr_t)r - (uintptr_t)cache->pool.base;

	if (!mrc_region_pool_owns(&cache->pool, r) ||
	    off % sizeof(*r) || off / sizeof(*r) >= cache->pool.capacity)
		return NULL;
	return (r->flags & MRC_REGION_IN_LRU) ? r : NULL;
}

static void harvest_one(struct mrc_cache *cache, struct mrc_tref *t)
{
	uint64_t pos = mrc_load_acquire(&t->pos);
	uint64_t from = mrc_load_relaxed(&t->harvested);

	if (pos - from > MRC_TREF_LOG)
		from = pos - MRC_TREF_LOG;
	for (uint64_t i = from; i != pos; i++) {
		struct mrc_region *r = mrc_load_relaxed(&t->log[i & (MRC_TREF_LOG - 1)]);

		r = logged_region(cache, r);
		if (r)
			r->flags |= MRC_REGION_RECENT;
	}
	mrc_store_relaxed(&t->harvested, pos);
}

/**
 * mrc_trefs_harvest() - mark the regions threads hit lately; lock held.
 *
 * A slot hit does not write the region, so the LRU's "hit since queued"
 * comes from here: the last hits of each thread bound to @cache (an entry
 * overwritten before it was read loses that hit's second chance, nothing
 * else; an entry naming a region since reused marks the new one).
 */
void mrc_trefs_harvest(struct mrc_cache *cache)
{
	for (struct mrc_tref *t = mrc_load_acquire(&mrc_trefs_records); t;
	     t = mrc_load_relaxed(&t->next))
		if (mrc_load_acquire(&t->cache) == cache)
			harvest_one(cache, t);
}
