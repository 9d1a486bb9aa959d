// SPDX-License-Identifier: BSD-2-Clause
/*
 * Cache lifetime, the cache lock, and how regions die.
 *
 * A region dies exactly once, under the lock (mrc_region_kill): it leaves
 * the tree and the LRU and gets DEAD in its state word. Whoever sees the
 * state reach "dead, no references" (the killer, or the last mrc_put) pushes
 * it on the lock-free deferred list; the next lock holder deregisters it.
 * Deregistration therefore happens once, never inside a monitor callback,
 * and never while a reference is held.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "error.h"

/* Why a closed cache (enum mrc_closed) refuses a call. */
int mrc_closed_error(const struct mrc_cache *cache)
{
	if (mrc_load_relaxed(&cache->closed) == MRC_CLOSED_DESTROYED)
		return mrc_error(EINVAL, "cache %p was destroyed by mrc_cache_destroy(); its regions went with it, create a new cache",
				 (const void *)cache);
	return mrc_error(EPERM,
			 "cache was created by process %d before fork(); its registrations belong to the parent, create a new cache in the child",
			 (int)cache->owner_pid);
}

/* Ask the monitor for events the hit path saw pending; lock held. */
static void sync_monitor(struct mrc_cache *cache)
{
	struct mrc_monitor *mon = &cache->monitor;

	if (mrc_load_acquire(cache->monitor_events) == cache->monitor_seen)
		return;
	/*
	 * Store-release pairs with the hit path's load-acquire of
	 * monitor_seen, so a hit that sees the new value also sees the
	 * regions this drain killed as dead.
	 */
	mrc_store_release(&cache->monitor_seen, mon->ops->drain(mon));
}

void mrc_cache_lock(struct mrc_cache *cache)
{
	pthread_mutex_lock(&cache->lock);
	sync_monitor(cache);
}

/* Drain monitor events for a caller that took the lock by other means. */
void mrc_cache_sync_locked(struct mrc_cache *cache)
{
	sync_monitor(cache);
}

/*
 * A put that finds the lock taken leaves its region on the deferred list
 * for the holder (mrc_cache_release_dead). The holder drains the list
 * before it unlocks, but a region pushed after that drain would wait for
 * the next cache call, pinned, in a process that may never make one. So
 * after unlocking look again: the put pushed, then tried the lock; we
 * unlocked, then look at the list. Both sides then do a read-modify-write
 * of the same word (handoff): whichever comes second sees what the other
 * did before it, so either the put's trylock finds the lock free or this
 * load finds the region. A nudge (below) uses the same word and the same
 * handshake; one read-modify-write here serves both.
 */
void mrc_cache_unlock(struct mrc_cache *cache)
{
	uint32_t seen, now;

	do {
		/*
		 * Parked regions wait for a slot to be released; the put that
		 * releases one moves @handoff (mrc_cache_nudge). One that
		 * moved it before this load is seen by the scan in the drain;
		 * one after makes the read-modify-write below return another
		 * value, or comes after it and finds the lock free. A put
		 * that pushed leaves the value as it is: the list is looked
		 * at anyway.
		 */
		seen = mrc_load_acquire(&cache->handoff);
		mrc_drain_deferred(cache);
		pthread_mutex_unlock(&cache->lock);
		now = mrc_rmw_read(&cache->handoff);
	} while ((mrc_load_relaxed(&cache->deferred) ||
		  (mrc_load_relaxed(&cache->parked_count) && now != seen)) &&
		 pthread_mutex_trylock(&cache->lock) == 0);
}

/**
 * mrc_cache_nudge() - a slot holding a dead region was released.
 *
 * Called without the lock. The region is parked (or about to be): have a
 * lock holder look at the parked list now, or after it unlocks. Nothing
 * to do when no region is parked and none is waiting to be deregistered.
 * Reading both after the fence: a region parked after that read was parked
 * by a scan that ran after this thread's release (the fence orders it), and
 * so saw the slot released.
 */
void mrc_cache_nudge(struct mrc_cache *cache)
{
	/* Pairs with the read-modify-write in mrc_cache_unlock(). */
	mrc_rmw_fence(&cache->handoff);
	if (!mrc_load_relaxed(&cache->parked_count) &&
	    !mrc_load_relaxed(&cache->deferred))
		return;
	if (pthread_mutex_trylock(&cache->lock) == 0)
		mrc_cache_unlock(cache);
}

static void fold_hits(struct mrc_cache *cache, struct mrc_region *r)
{
	cache->count.hits += mrc_load_relaxed(&r->state) >> 32;
}

/* Deregister a dead region without references and recycle it; lock held. */
static void region_deregister(struct mrc_cache *cache, struct mrc_region *r)
{
	uint64_t len = r->node.end - r->node.start;

	if ((r->flags & MRC_REGION_WATCHED) && cache->monitor.ops->unwatch)
		cache->monitor.ops->unwatch(&cache->monitor, &r->watch);
	mrc_provider_dereg(cache, r);
	cache->count.regions--;
	cache->count.bytes_pinned -= len;
	fold_hits(cache, r);
	if (cache->pfns)
		mrc_pfn_forget(cache, r);
	r->flags = 0;
	/* Back to dead with a zero hit count: it may be summed by stats. */
	mrc_store_relaxed(&r->state, MRC_DEAD);
	mrc_region_free(&cache->pool, r);
}

static void push_deferred(struct mrc_cache *cache, struct mrc_region *r)
{
	struct mrc_region *head = mrc_load_relaxed(&cache->deferred);

	/*
	 * The release half of the CAS publishes r->lru_next to the drainer's
	 * acquiring exchange in mrc_drain_deferred().
	 */
	do {
		r->lru_next = head;
	} while (!mrc_cas(&cache->deferred, &head, r));
}

static void park(struct mrc_cache *cache, struct mrc_region *r)
{
	r->lru_next = cache->parked;
	cache->parked = r;
	mrc_store_relaxed(&cache->parked_count, cache->parked_count + 1);
}

/* Deregister the parked regions no slot holds any more. */
static void unpark_released(struct mrc_cache *cache)
{
	struct mrc_region **p = &cache->parked;

	while (*p) {
		struct mrc_region *r = *p;

		if (mrc_trefs_holds(r)) {
			p = &r->lru_next;
			continue;
		}
		*p = r->lru_next;
		mrc_store_relaxed(&cache->parked_count, cache->parked_count - 1);
		region_deregister(cache, r);
	}
}

/*
 * With thread refs, "no references" is the state word's count and no
 * slot: after the fence, a region a slot still holds is parked and looked
 * at again by every later drain (doc/design.md, "Thread references").
 */
static void deregister_or_park(struct mrc_cache *cache, struct mrc_region *r)
{
	if (cache->thread_refs && mrc_trefs_holds(r))
		park(cache, r);
	else
		region_deregister(cache, r);
}

/**
 * mrc_drain_deferred() - deregister every region whose last reference went.
 * @cache: locked cache.
 */
void mrc_drain_deferred(struct mrc_cache *cache)
{
	struct mrc_region *r;

	if (cache->parked)
		unpark_released(cache);
	if (!mrc_load_relaxed(&cache->deferred))
		return;
	r = mrc_exchange(&cache->deferred, NULL);
	/* Every region on the list is DEAD: order that before the scan. */
	if (cache->thread_refs)
		mrc_trefs_fence();
	while (r) {
		struct mrc_region *next = r->lru_next;

		deregister_or_park(cache, r);
		r = next;
	}
}

/**
 * mrc_cache_release_dead() - the last reference of a dead region is gone.
 *
 * Called without the lock (from mrc_put). Deregisters now when the lock is
 * free, else leaves the region to the lock holder, which looks at the list
 * again after it unlocks (mrc_cache_unlock).
 */
void mrc_cache_release_dead(struct mrc_cache *cache, struct mrc_region *r)
{
	push_deferred(cache, r);
	/* Pairs with the one in mrc_cache_unlock(). */
	(void)mrc_rmw_read(&cache->handoff);
	if (pthread_mutex_trylock(&cache->lock) == 0)
		mrc_cache_unlock(cache);
}

/**
 * mrc_region_kill() - take a region out of service; lock held.
 *
 * It leaves the index at once. Without references it is deregistered when
 * the lock is released; otherwise at its last mrc_put().
 */
void mrc_region_kill(struct mrc_cache *cache, struct mrc_region *r)
{
	uint64_t old;

	if (r->flags & MRC_REGION_IN_TREE) {
		mrc_itree_remove(&cache->tree, &r->node);
		r->flags &= ~MRC_REGION_IN_TREE;
	}
	if (r->flags & MRC_REGION_IN_LRU)
		mrc_lru_remove(cache, r);
	old = mrc_fetch_or(&r->state, MRC_DEAD);
	if (!(old & MRC_DEAD) && !(old & MRC_REF_MASK))
		push_deferred(cache, r);
}

static uint64_t memlock_limit(const struct mrc_config *config)
{
	struct rlimit rl;

	if (!config->memlock || getrlimit(RLIMIT_MEMLOCK, &rl))
		return 0;
	return rl.rlim_cur == RLIM_INFINITY ? 0 : (uint64_t)rl.rlim_cur;
}

static int try_monitor(struct mrc_cache *cache,
		       const struct mrc_monitor_ops *ops)
{
	static const uint32_t never_changes;
	struct mrc_monitor *mon = &cache->monitor;
	int ret;

	*mon = (struct mrc_monitor){
		.ops = ops, .cache = cache, .events = &never_changes,
		.wait_fd = -1,
	};
	ret = ops->start(mon, cache);
	if (ret) {
		mon->ops = NULL;
		return ret;
	}
	cache->monitor_events = mon->events;
	cache->watch_gens = mon->generations;
	cache->monitor_seen = mrc_load_acquire(mon->events);
	return 0;
}

/*
 * No monitor could start: the cache works, but only mrc_invalidate()
 * invalidates. Said once per process on stderr, and always in the stats
 * (monitor "none"), so nobody runs unprotected without being told;
 * MRCACHE_MONITOR=manual is the quiet way to choose this.
 */
static int start_unmonitored(struct mrc_cache *cache)
{
	static int warned;

	if (!__atomic_exchange_n(&warned, 1, __ATOMIC_RELAXED))
		mrc_warn("no invalidation monitor could start (kmod, hooks, uffd): cached registrations are NOT dropped when memory is freed or unmapped; call mrc_invalidate(), load the mrcache module, or set MRCACHE_MONITOR=manual to silence this");
	return try_monitor(cache, &mrc_monitor_none_ops);
}

/*
 * AUTO takes the kernel monitor when /dev/mrcache exists, else the libc
 * hooks, else userfaultfd, else none (loudly); an explicit choice fails
 * when unavailable.
 */
static int start_auto(struct mrc_cache *cache)
{
	int ret = try_monitor(cache, &mrc_monitor_kmod_ops);

	if (!ret)
		return 0;
	if (ret != -ENODEV)
		mrc_warn("kernel monitor unavailable, trying the libc hooks: %s",
			 mrc_last_error());
	ret = try_monitor(cache, &mrc_monitor_hooks_ops);
	if (!ret)
		return 0;
	mrc_warn("libc hooks monitor unavailable, trying userfaultfd: %s",
		 mrc_last_error());
	ret = try_monitor(cache, &mrc_monitor_uffd_ops);
	if (!ret)
		return 0;
	mrc_warn("userfaultfd monitor unavailable: %s", mrc_last_error());
	return start_unmonitored(cache);
}

static int start_monitor(struct mrc_cache *cache)
{
	uint32_t kind = cache->config.monitor;

	switch (kind) {
	case MRC_MONITOR_AUTO:
		return start_auto(cache);
	case MRC_MONITOR_KMOD:
		return try_monitor(cache, &mrc_monitor_kmod_ops);
	case MRC_MONITOR_HOOKS:
		return try_monitor(cache, &mrc_monitor_hooks_ops);
	case MRC_MONITOR_UFFD:
		return try_monitor(cache, &mrc_monitor_uffd_ops);
	case MRC_MONITOR_MANUAL:
		return try_monitor(cache, &mrc_monitor_manual_ops);
	default:
		return mrc_error(ENOTSUP, "monitor '%s' is not built into this library; use MRCACHE_MONITOR=kmod, hooks, uffd or manual",
				 mrc_monitor_kind_name(kind));
	}
}

static int check_provider(const struct mrc_provider *provider)
{
	if (!provider)
		return mrc_error(EINVAL, "provider is NULL");
	if (!provider->reg || !provider->dereg)
		return mrc_error(EINVAL, "provider '%s' lacks a reg or dereg callback",
				 provider->name ? provider->name : "(unnamed)");
	return 0;
}

static struct mrc_cache *cache_alloc(const struct mrc_provider *provider)
{
	struct mrc_cache *cache;

	cache = aligned_alloc(64, sizeof(*cache));
	if (!cache)
		return NULL;
	memset(cache, 0, sizeof(*cache));
	if (mrc_hints_init(&cache->hints)) {
		free(cache);
		return NULL;
	}
	cache->page_mask = mrc_page_size() - 1;
	cache->page_shift = (uint32_t)__builtin_ctzll(mrc_page_size());
	mrc_ticks_init();
	pthread_mutex_init(&cache->lock, NULL);
	cache->provider = *provider;
	if (!cache->provider.name)
		cache->provider.name = "custom";
	mrc_itree_init(&cache->tree);
	if (mrc_region_pool_init(&cache->pool)) {
		mrc_hints_destroy(&cache->hints);
		free(cache);
		return NULL;
	}
	cache->owner_pid = getpid();
	return cache;
}

/* Release what the cache owns: everything but the object itself. */
static void cache_release(struct mrc_cache *cache)
{
	mrc_pfn_destroy(cache);
	mrc_hints_destroy(&cache->hints);
	mrc_region_pool_destroy(&cache->pool);
	pthread_mutex_destroy(&cache->lock);
}

static void cache_free(struct mrc_cache *cache)
{
	cache_release(cache);
	free(cache);
}

/*
 * A destroyed cache's object is never given back to malloc: it stays, as a
 * tombstone, so that a call made with it later (a put after destroy) finds
 * the closed word set and fails with a message instead of reading freed
 * memory. Only the object stays; the pool, hint table, monitor and tree
 * are released. The cost is sizeof(struct mrc_cache) per cache destroyed,
 * for the life of the process (doc/design.md, "Calls after destroy").
 */
static void cache_bury(struct mrc_cache *cache)
{
	cache_release(cache);
	mrc_registry_bury(cache);
}

/**
 * mrc_cache_create() - a cache over any provider.
 * @provider: registration callbacks (copied).
 * @attr: optional parameters, or NULL.
 * @cachep: receives the cache.
 *
 * Return: 0, -EINVAL for bad arguments or settings, -ENOMEM, or the
 * monitor's error when a requested monitor cannot start.
 */
int mrc_cache_create(const struct mrc_provider *provider,
		     const struct mrc_cache_attr *attr,
		     struct mrc_cache **cachep)
{
	struct mrc_config config;
	struct mrc_cache *cache;
	int ret;

	if (!cachep)
		return mrc_error(EINVAL, "cache pointer is NULL");
	ret = check_provider(provider);
	if (!ret)
		ret = mrc_config_load(attr, &config);
	if (ret)
		return ret;
	cache = cache_alloc(provider);
	if (!cache)
		return mrc_error(ENOMEM, "no memory for the cache object");
	cache->config = config;
	cache->check_pfn = config.check_pfn;
	cache->default_access = config.default_access;
	cache->thread_refs = config.thread_refs && mrc_trefs_available();
	cache->memlock_limit = memlock_limit(&config);
	ret = start_monitor(cache);
	if (!ret && config.progress_thread)
		ret = mrc_progress_start(cache);
	if (!ret)
		ret = mrc_registry_add(cache);
	if (ret) {
		mrc_progress_stop(cache);
		if (cache->monitor.ops)
			cache->monitor.ops->stop(&cache->monitor);
		cache_free(cache);
		return ret;
	}
	*cachep = cache;
	return 0;
}

static uint64_t sum_live_hits(struct mrc_cache *cache)
{
	uint64_t hits = 0;

	for (struct mrc_region *r = cache->lru_head; r; r = r->lru_next)
		hits += mrc_load_relaxed(&r->state) >> 32;
	return hits;
}

/*
 * Regions still referenced, or dead and waiting for their last put. With
 * thread refs, after a fence, so a slot published before is seen.
 */
static size_t busy_regions(struct mrc_cache *cache)
{
	size_t idle = 0;

	if (cache->thread_refs)
		mrc_trefs_fence();
	for (struct mrc_region *r = cache->lru_head; r; r = r->lru_next)
		if (!(mrc_load_relaxed(&r->state) & MRC_REF_MASK) &&
		    !(cache->thread_refs && mrc_trefs_holds(r)))
			idle++;
	return cache->pool.in_use - idle;
}

static void fill_stats(struct mrc_cache *cache, struct mrc_stats *s)
{
	*s = cache->count;
	s->provider_ns = mrc_ticks_to_ns(cache->provider_ticks);
	/*
	 * Hits live in the regions' state words and, for hits through
	 * thread slots, in the threads' records (a hit writes nothing
	 * shared); dead regions' hits were folded into count.hits. Dying
	 * regions still referenced are not visited: their state-word hits
	 * show up once they are released.
	 */
	s->hits += sum_live_hits(cache) +
		   (mrc_load_relaxed(&cache->hit_wraps) << 32) +
		   mrc_load_relaxed(&cache->tref_hits) + mrc_trefs_hits(cache);
	snprintf(s->provider, sizeof(s->provider), "%s", cache->provider.name);
	snprintf(s->monitor, sizeof(s->monitor), "%s",
		 cache->monitor.ops->name);
}

/**
 * mrc_cache_stats() - copy the cache's counters.
 *
 * Return: 0, or -EINVAL for NULL arguments.
 */
int mrc_cache_stats(struct mrc_cache *cache, struct mrc_stats *stats)
{
	if (!cache || !stats)
		return mrc_error(EINVAL, "%s is NULL", cache ? "stats" : "cache");
	if (mrc_load_relaxed(&cache->closed) == MRC_CLOSED_DESTROYED)
		return mrc_closed_error(cache);
	if (mrc_load_relaxed(&cache->closed)) {
		/*
		 * Counters only: no monitor or provider call in a child, and
		 * no lock either: another thread of the parent may have held
		 * it at fork(), and the child has no other thread.
		 */
		fill_stats(cache, stats);
		return 0;
	}
	/* Drain first, so the counters include every event already posted. */
	mrc_cache_lock(cache);
	mrc_drain_deferred(cache);
	fill_stats(cache, stats);
	mrc_cache_unlock(cache);
	return 0;
}

static void print_stats(struct mrc_cache *cache)
{
	struct mrc_stats s;

	fill_stats(cache, &s);
	/*
	 * "refs": the references hits take, thread slots or the state word's
	 * compare-and-swap (thread refs fall back to it without membarrier);
	 * not in struct mrc_stats, whose layout callers compiled against.
	 */
	fprintf(stderr,
		"mrcache: pid %d provider %s monitor %s refs %s: hits %" PRIu64
		" misses %" PRIu64 " merges %" PRIu64 " upgrades %" PRIu64
		" evictions %" PRIu64 " invalidations %" PRIu64
		" reg %" PRIu64 " (failed %" PRIu64 ", retried %" PRIu64
		") dereg %" PRIu64 " provider time %.3f ms peak pinned %" PRIu64
		" bytes\n",
		(int)getpid(), s.provider, s.monitor,
		cache->thread_refs ? "thread" : "cas", s.hits, s.misses,
		s.merges, s.upgrades, s.evictions, s.invalidations, s.reg_calls,
		s.reg_failures, s.retries, s.dereg_calls, s.provider_ns / 1e6,
		s.peak_bytes_pinned);
}

/* A call that needs a live cache of this process: 0, or why not. */
static int check_usable(const struct mrc_cache *cache)
{
	if (!cache)
		return mrc_error(EINVAL, "cache is NULL");
	if (mrc_load_relaxed(&cache->closed))
		return mrc_closed_error(cache);
	return 0;
}

/**
 * mrc_cache_progress() - deregister what died since the last cache call.
 *
 * For a runtime that stops calling mrc_get() but wants invalidated memory
 * released promptly (e.g. from its progress loop).
 */
int mrc_cache_progress(struct mrc_cache *cache)
{
	int ret = check_usable(cache);

	if (ret)
		return ret;
	mrc_cache_lock(cache);
	mrc_cache_unlock(cache);
	return 0;
}

/**
 * mrc_cache_flush_idle() - deregister every cached region nobody holds.
 *
 * Held regions stay cached. Counted as evictions.
 *
 * Return: 0; -EINVAL for NULL or a destroyed cache; -EPERM in a forked child.
 */
int mrc_cache_flush_idle(struct mrc_cache *cache)
{
	int ret = check_usable(cache);

	if (ret)
		return ret;
	mrc_cache_lock(cache);
	mrc_cache_release_idle(cache, UINT64_MAX);
	mrc_cache_unlock(cache);
	return 0;
}

/*
 * In a child after fork() the registrations belong to the parent's verbs
 * context; deregistering them here would tear down the parent's. Forget
 * them and free only this process's memory.
 */
static int destroy_forked(struct mrc_cache *cache)
{
	mrc_progress_stop(cache);
	cache->monitor.ops->stop(&cache->monitor);
	cache_bury(cache);
	return 0;
}

/**
 * mrc_cache_destroy() - deregister everything and free the cache.
 *
 * The object itself stays behind as a tombstone (cache_bury), so later
 * calls with it fail with -EINVAL instead of reading freed memory.
 *
 * Return: 0; -EBUSY (and the cache is left intact) while any region is
 * still referenced; -EINVAL for NULL or a cache already destroyed.
 */
int mrc_cache_destroy(struct mrc_cache *cache)
{
	size_t busy;

	if (!cache)
		return mrc_error(EINVAL, "cache is NULL");
	if (mrc_load_relaxed(&cache->closed) == MRC_CLOSED_DESTROYED)
		return mrc_closed_error(cache);
	if (mrc_load_relaxed(&cache->closed))
		return destroy_forked(cache);
	mrc_cache_lock(cache);
	mrc_drain_deferred(cache);
	busy = busy_regions(cache);
	if (busy) {
		mrc_cache_unlock(cache);
		return mrc_error(EBUSY, "%zu regions are still referenced; mrc_put() them before destroying the cache",
				 busy);
	}
	while (cache->lru_head)
		mrc_region_kill(cache, cache->lru_head);
	mrc_drain_deferred(cache);
	if (cache->config.print_stats)
		print_stats(cache);
	pthread_mutex_unlock(&cache->lock);
	/* The thread may take the lock until joined: it finds nothing. */
	mrc_progress_stop(cache);
	cache->monitor.ops->stop(&cache->monitor);
	cache_bury(cache);
	return 0;
}
