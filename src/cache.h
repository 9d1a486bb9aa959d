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
#include "region.h"
#include "region_pool.h"

/* Counters kept under the cache lock (hits are counted in the regions). */
struct mrc_counters {
	uint64_t misses;
	uint64_t merges;
	uint64_t upgrades;
	uint64_t evictions;
	uint64_t invalidations;
	uint64_t regions;
	uint64_t bytes_pinned;
	uint64_t peak_bytes_pinned;
	uint64_t reg_calls;
	uint64_t reg_failures;
	uint64_t dereg_calls;
	uint64_t retries;
	uint64_t provider_ns;
	uint64_t hits_of_dead;	/* hit counts of regions already freed */
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
	int forked;			/* set in a child after fork() */
	struct mrc_region_pool pool;	/* .base is read by hint lookups */

	/* Regions whose last reference went away after they died. */
	struct mrc_region *deferred __attribute__((aligned(64)));
	uint64_t hit_wraps;		/* region hit counters that wrapped */
	uint32_t handoff;		/* orders puts against unlocks */

	pthread_mutex_t lock __attribute__((aligned(64)));
	struct mrc_provider provider;
	struct mrc_config config;
	struct mrc_counters count;
	struct mrc_region *lru_head;	/* least recently used first */
	struct mrc_region *lru_tail;
	size_t lru_len;
	struct mrc_monitor monitor;
	uint64_t memlock_limit;		/* bytes, 0 when unlimited or ignored */
	pid_t owner_pid;
	struct mrc_pfn_table *pfns;	/* MRCACHE_CHECK_PFN records */
	struct mrc_cache *registry_next;
};

/* Internal entry points used by monitors and the other source files. */
void mrc_cache_invalidate_locked(struct mrc_cache *cache, uint64_t start,
				 uint64_t end);
void mrc_cache_evict_bytes_locked(struct mrc_cache *cache, uint64_t bytes);
void mrc_cache_release_dead(struct mrc_cache *cache, struct mrc_region *r);
uint64_t mrc_now_ns(void);

/* lru.c */
void mrc_lru_add(struct mrc_cache *cache, struct mrc_region *r);
void mrc_lru_remove(struct mrc_cache *cache, struct mrc_region *r);
struct mrc_region *mrc_lru_pick_idle(struct mrc_cache *cache);

/* registry.c: fork handling */
int mrc_registry_add(struct mrc_cache *cache);
void mrc_registry_remove(struct mrc_cache *cache);

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
int mrc_fork_error(const struct mrc_cache *cache);
uint64_t mrc_page_size(void);

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
