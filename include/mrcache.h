/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * mrcache: a registration cache for RDMA memory regions.
 *
 * A cache sits on top of a provider (ibverbs built in) and hands out
 * registrations covering a requested range. Registrations are reused while
 * the memory under them is unchanged and are dropped when an invalidation
 * monitor (or the caller, through mrc_invalidate()) says it changed.
 *
 * Error convention: every function that can fail returns 0 or a negative
 * errno value and leaves errno alone; mrc_last_error() then describes the
 * failure of the calling thread's most recent call.
 */
#ifndef MRCACHE_H
#define MRCACHE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MRC_VERSION_MAJOR 0
#define MRC_VERSION_MINOR 1

struct mrc_cache;
struct mrc_region;
struct ibv_pd;
struct ibv_mr;

/**
 * struct mrc_provider - how a cache registers memory.
 * @name:  short name reported in statistics ("verbs", "fake", ...).
 * @reg:   register [addr, addr + len) with @access; store the provider's
 *         object in *handle. Return 0 or -errno. -ENOMEM and -EAGAIN make
 *         the cache evict idle registrations and retry once.
 * @dereg: release a handle returned by @reg. Return 0 or -errno.
 * @ctx:   passed unchanged to both callbacks.
 *
 * The cache serializes calls to @reg and @dereg; they never run inside a
 * monitor callback. The provider must not call back into the same cache.
 */
struct mrc_provider {
	const char *name;
	int (*reg)(void *ctx, void *addr, size_t len, uint32_t access,
		   void **handle);
	int (*dereg)(void *ctx, void *handle);
	void *ctx;
};

/* How a miss treats cached regions that overlap or touch the new range. */
enum mrc_merge {
	MRC_MERGE_NONE = 0,	/* keep separate (access upgrades still merge) */
	MRC_MERGE_OVERLAP = 1,	/* merge regions overlapping the range */
	MRC_MERGE_ADJACENT = 2,	/* also merge regions that touch it (default) */
};

/* Which invalidation monitor watches the cached ranges. */
enum mrc_monitor_kind {
	MRC_MONITOR_AUTO = 0,	/* best available; falls back to manual */
	MRC_MONITOR_MANUAL = 1,	/* only mrc_invalidate() invalidates */
	MRC_MONITOR_KMOD = 2,	/* /dev/mrcache kernel module */
	MRC_MONITOR_UFFD = 3,	/* userfaultfd */
	MRC_MONITOR_HOOKS = 4,	/* libc call hooks */
};

/* Bits of mrc_cache_attr.comp_mask: which optional fields are set. */
enum mrc_cache_attr_mask {
	MRC_ATTR_MAX_BYTES = 1u << 0,
	MRC_ATTR_MAX_REGIONS = 1u << 1,
	MRC_ATTR_MERGE = 1u << 2,
	MRC_ATTR_MEMLOCK = 1u << 3,
	MRC_ATTR_CHECK_PFN = 1u << 4,
	MRC_ATTR_DEFAULT_ACCESS = 1u << 5,
	MRC_ATTR_MONITOR = 1u << 6,
	MRC_ATTR_PRINT_STATS = 1u << 7,
	MRC_ATTR_PROGRESS_THREAD = 1u << 8,
	MRC_ATTR_IDLE_TIMEOUT = 1u << 9,
	MRC_ATTR_ALL = (1u << 10) - 1,
};

/**
 * struct mrc_cache_attr - optional cache parameters.
 *
 * A field is used only when its bit is set in @comp_mask; unknown bits are
 * rejected with -EINVAL so fields can be added without breaking binaries.
 * Fields not set take the MRCACHE_* environment value, else the default
 * (see mrcache(3) for the table).
 */
struct mrc_cache_attr {
	uint64_t comp_mask;
	uint64_t max_bytes;	/* idle registered bytes kept; 0 = no bound */
	uint64_t max_regions;	/* idle regions kept; 0 = no bound */
	uint32_t merge;		/* enum mrc_merge */
	uint32_t memlock;	/* 1: stay under RLIMIT_MEMLOCK */
	uint32_t check_pfn;	/* pages to verify per hit, 0 = off */
	uint32_t default_access;/* used when mrc_get() is given access 0 */
	uint32_t monitor;	/* enum mrc_monitor_kind */
	uint32_t print_stats;	/* 1: print statistics at destruction */
	uint32_t progress_thread; /* 1: a thread drains monitor events and
				   * releases idle registrations */
	uint32_t reserved;	/* must be 0 */
	uint64_t idle_timeout_ms; /* release regions unused this long (needs
				   * progress_thread); 0 = never */
};

/**
 * struct mrc_stats - counters since the cache was created.
 */
struct mrc_stats {
	uint64_t hits;		/* gets served by a cached region */
	uint64_t misses;	/* gets that registered a new region */
	uint64_t merges;	/* regions folded into a new, larger one */
	uint64_t upgrades;	/* regions re-registered with wider access */
	uint64_t evictions;	/* idle regions dropped for the bounds */
	uint64_t invalidations;	/* regions dropped because memory changed */
	uint64_t regions;	/* regions registered now (cached or not) */
	uint64_t bytes_pinned;	/* bytes registered now */
	uint64_t peak_bytes_pinned;
	uint64_t reg_calls;	/* provider register calls */
	uint64_t reg_failures;	/* ... of which failed */
	uint64_t dereg_calls;	/* provider deregister calls */
	uint64_t retries;	/* registrations retried after eviction */
	uint64_t provider_ns;	/* time spent in register and deregister */
	char provider[16];
	char monitor[16];
};

int mrc_cache_create(const struct mrc_provider *provider,
		     const struct mrc_cache_attr *attr,
		     struct mrc_cache **cache);
int mrc_cache_create_verbs(struct ibv_pd *pd, uint32_t default_access,
			   const struct mrc_cache_attr *attr,
			   struct mrc_cache **cache);
int mrc_cache_destroy(struct mrc_cache *cache);

int mrc_get(struct mrc_cache *cache, const void *addr, size_t len,
	    uint32_t access, struct mrc_region **region);
int mrc_put(struct mrc_cache *cache, struct mrc_region *region);
int mrc_invalidate(struct mrc_cache *cache, const void *addr, size_t len);
int mrc_cache_progress(struct mrc_cache *cache);
/* Deregister every cached region nobody holds (before fork, say). */
int mrc_cache_flush_idle(struct mrc_cache *cache);
int mrc_cache_stats(struct mrc_cache *cache, struct mrc_stats *stats);

void *mrc_region_addr(const struct mrc_region *region);
size_t mrc_region_length(const struct mrc_region *region);
uint32_t mrc_region_access(const struct mrc_region *region);
void *mrc_region_handle(const struct mrc_region *region);
struct ibv_mr *mrc_region_mr(const struct mrc_region *region);
uint32_t mrc_region_lkey(const struct mrc_region *region);
uint32_t mrc_region_rkey(const struct mrc_region *region);

/*
 * Watchers: notifications that memory changed, without a cache.
 *
 * For runtimes that keep their own registration cache (libfabric, UCX): a
 * watcher watches ranges on behalf of the caller with the same monitors a
 * cache uses, tells with a cheap check whether a watched range is still
 * the memory it was, and reports changed ranges through a callback. See
 * mrcache(3), "WATCHERS".
 */
struct mrc_watcher;

/* Bits of mrc_watcher_attr.comp_mask. */
enum mrc_watcher_attr_mask {
	MRC_WATCHER_ATTR_MONITOR = 1u << 0,
	MRC_WATCHER_ATTR_ALL = (1u << 1) - 1,
};

/**
 * struct mrc_watcher_attr - optional watcher parameters (comp_mask as for
 * struct mrc_cache_attr).
 * @monitor: enum mrc_monitor_kind; AUTO (the default, or MRCACHE_MONITOR)
 *           takes the kernel module when present, else the libc hooks.
 *           MANUAL has nothing to watch with and is refused.
 */
struct mrc_watcher_attr {
	uint64_t comp_mask;
	uint32_t monitor;
	uint32_t reserved;	/* must be 0 */
};

/**
 * struct mrc_watchpoint - one watched range, filled by mrc_watcher_add()
 * and owned by the caller until mrc_watcher_remove(). Read-only for the
 * caller; @start, @end and @cookie may be read.
 */
struct mrc_watchpoint {
	uint64_t start;		/* the watched range, rounded out to pages */
	uint64_t end;
	uint64_t cookie;	/* the caller's, reported by the drain */
	const uint64_t *word;	/* the library's: the word a check loads */
	uint64_t generation;	/* valid while *word equals it */
	uint64_t serial;	/* the library's: which watch of @slot */
	uint32_t slot;		/* the library's */
	uint32_t reserved;
};

/*
 * Called by mrc_watcher_drain() once for each watch that fired, with the
 * watch's cookie and its whole range (not only the part that changed).
 */
typedef void (*mrc_watch_fn)(void *arg, uint64_t cookie, void *addr,
			     size_t len);

int mrc_watcher_open(const struct mrc_watcher_attr *attr,
		     struct mrc_watcher **watcher);
int mrc_watcher_close(struct mrc_watcher *watcher);
const char *mrc_watcher_monitor(const struct mrc_watcher *watcher);
int mrc_watcher_fd(struct mrc_watcher *watcher);
int mrc_watcher_add(struct mrc_watcher *watcher, const void *addr,
		    size_t len, uint64_t cookie, struct mrc_watchpoint *wp);
int mrc_watcher_remove(struct mrc_watcher *watcher,
		       struct mrc_watchpoint *wp);
int mrc_watchpoint_valid(const struct mrc_watcher *watcher,
			 const struct mrc_watchpoint *wp);
int mrc_watcher_drain(struct mrc_watcher *watcher, mrc_watch_fn fn,
		      void *arg);
int mrc_watcher_pending(const struct mrc_watcher *watcher);

/*
 * struct mrc_watcher_words - the words mrc_watcher_pending() loads, for a
 * check on a hot path without a call (a runtime's validity callback, say).
 * Filled by mrc_watcher_words(); they live as long as the watcher. Read
 * them only through mrc_watcher_words_pending(), which loads them in the
 * order the library stores them.
 */
struct mrc_watcher_words {
	const size_t *fired;		/* watches fired, not yet drained */
	const uint32_t *events;		/* moves when the monitor sees a change */
	const uint32_t *collected;	/* *events as the last drain took it */
};

int mrc_watcher_words(const struct mrc_watcher *watcher,
		      struct mrc_watcher_words *words);

/* mrc_watcher_pending() inline: might a drain report anything? */
static inline int mrc_watcher_words_pending(const struct mrc_watcher_words *w)
{
	return __atomic_load_n(w->fired, __ATOMIC_ACQUIRE) ||
	       __atomic_load_n(w->events, __ATOMIC_ACQUIRE) !=
	       __atomic_load_n(w->collected, __ATOMIC_ACQUIRE);
}

const char *mrc_last_error(void);

#ifdef __cplusplus
}
#endif

#endif /* MRCACHE_H */
