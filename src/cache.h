/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The cache object, shared by the cache's source files.
 */
#ifndef MRC_CACHE_H
#define MRC_CACHE_H

#include <pthread.h>
#include <stdbool.h>
#include <sys/types.h>

#include "mrcache.h"
#include "config.h"
#include "hints.h"
#include "itree.h"
#include "monitor.h"
#include "platform.h"
#include "region.h"
#include "region_pool.h"
#include "threadrefs/threadrefs.h"

/*
 * Why a cache refuses calls. One word for both, so the calls that must
 * refuse test it with the load and branch they already had for fork.
 */
enum mrc_closed {
	MRC_OPEN = 0,
	MRC_CLOSED_FORK = 1,	/* inherited by a child after fork() */
	MRC_CLOSED_DESTROYED = 2, /* mrc_cache_destroy()ed: a tombstone */
};

/* The progress thread (progress.c). */
struct mrc_progress {
	pthread_t thread;
	int wake_fd;		/* eventfd that stops it */
	int running;
	uint64_t origin_ns;	/* the idle sweep clock's zero */
};

struct mrc_cache {
	/*
	 * Lines 0 and 1: read by every hit, written only by lock holders and
	 * rarely (misses, growth), so they stay shared between cores.
	 */
	struct mrc_itree tree;
	struct mrc_hint_table hints;	/* .current is read by hits */
	uint64_t page_mask;
	uint32_t page_shift;
	uint32_t check_pfn;
	const uint32_t *monitor_events;
	const uint64_t *watch_gens;	/* per-watch generations, or NULL */
	uint32_t monitor_seen;		/* *monitor.events at the last drain */
	uint32_t default_access;
	int closed;			/* enum mrc_closed: why calls fail */
	uint32_t thread_refs;		/* hits may use per-thread slots */
	struct mrc_region_pool pool;	/* .base is read by hint lookups */

	/* Regions whose last reference went away after they died. */
	struct mrc_region *deferred __attribute__((aligned(64)));
	uint64_t hit_wraps;		/* region hit counters that wrapped */
	uint64_t tref_hits;		/* slot hits folded by threads leaving */
	/*
	 * Read-modify-written by unlocks and by puts that push or nudge,
	 * which orders them; moved only by releases of parked slots.
	 */
	uint32_t handoff;
	size_t parked_count;		/* regions on @parked (atomic reads) */

	pthread_mutex_t lock __attribute__((aligned(64)));
	struct mrc_provider provider;
	struct mrc_config config;
	/*
	 * Counters, under the lock: the public struct itself, so a new
	 * counter is one field there. count.hits holds only the hits of
	 * regions already freed (live regions count theirs in their state
	 * words); count.provider and count.monitor are filled in by
	 * mrc_cache_stats().
	 */
	struct mrc_stats count;
	uint64_t provider_ticks;	/* count.provider_ns, in mrc_ticks() */
	struct mrc_region *lru_head;	/* least recently used first */
	struct mrc_region *parked;	/* dead, no references, held in a slot */
	struct mrc_region *lru_tail;
	size_t lru_len;
	struct mrc_monitor monitor;
	struct mrc_progress progress;
	uint64_t memlock_limit;		/* bytes, 0 when unlimited or ignored */
	pid_t owner_pid;
	struct mrc_pfn_table *pfns;	/* MRCACHE_CHECK_PFN records */
	struct mrc_cache *registry_next;
};

void mrc_cache_release_dead(struct mrc_cache *cache, struct mrc_region *r);
void mrc_cache_nudge(struct mrc_cache *cache);

/* lru.c: the one place that evicts */
void mrc_lru_add(struct mrc_cache *cache, struct mrc_region *r);
void mrc_lru_remove(struct mrc_cache *cache, struct mrc_region *r);
/*
 * Says whether eviction freed enough: @freed bytes evicted so far, of
 * which @pending are not deregistered yet (still in count.bytes_pinned).
 */
typedef int (*mrc_evict_enough_fn)(const struct mrc_cache *cache,
				   uint64_t freed, uint64_t pending,
				   const void *arg);
uint64_t mrc_evict_idle(struct mrc_cache *cache, mrc_evict_enough_fn enough,
			const void *arg);
uint64_t mrc_lru_sweep_idle(struct mrc_cache *cache, uint32_t now,
			    uint32_t timeout_ms);

/* progress.c: the thread working for a process that stopped calling */
int mrc_progress_start(struct mrc_cache *cache);
void mrc_progress_stop(struct mrc_cache *cache);

/* provider.c */
int mrc_provider_reg(struct mrc_cache *cache, struct mrc_region *r);
void mrc_provider_dereg(struct mrc_cache *cache, const struct mrc_region *r);

/* fork.c: fork handling, and destroyed caches kept detectable */
int mrc_registry_add(struct mrc_cache *cache);
void mrc_registry_bury(struct mrc_cache *cache);

/* pfn_check.c: frames kept aside, only in paranoid mode */
int mrc_pfn_record(struct mrc_cache *cache, struct mrc_region *r);
void mrc_pfn_verify(struct mrc_cache *cache, const struct mrc_region *r);
void mrc_pfn_forget(struct mrc_cache *cache, const struct mrc_region *r);
void mrc_pfn_destroy(struct mrc_cache *cache);

/* cache.c: locking and region lifetime, shared by the files below. */
void mrc_cache_lock(struct mrc_cache *cache);
void mrc_cache_unlock(struct mrc_cache *cache);
void mrc_cache_sync_locked(struct mrc_cache *cache);
void mrc_region_kill(struct mrc_cache *cache, struct mrc_region *r);
void mrc_drain_deferred(struct mrc_cache *cache);
int mrc_closed_error(const struct mrc_cache *cache);

/* vma.c: what /proc/self/maps says, read after a failed registration */
struct mrc_vma_state {
	uint64_t hole_start;	/* [hole_start, hole_end) covers every */
	uint64_t hole_end;	/* unmapped part; empty when all is mapped */
	bool unwritable;	/* some mapped part lacks PROT_WRITE */
};
int mrc_vma_state(uint64_t start, uint64_t end, struct mrc_vma_state *st);

/* miss.c */
int mrc_register_range(struct mrc_cache *cache, uint64_t start, uint64_t end,
		       uint32_t access, struct mrc_region **region);

#define mrc_container_of(ptr, type, member)				\
	((type *)((char *)(ptr) - __builtin_offsetof(type, member)))

static inline struct mrc_region *mrc_node_region(struct mrc_itree_node *n)
{
	return n ? mrc_container_of(n, struct mrc_region, node) : NULL;
}

#endif /* MRC_CACHE_H */
