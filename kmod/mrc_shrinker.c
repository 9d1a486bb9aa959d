// SPDX-License-Identifier: GPL-2.0
/*
 * mrc_shrinker.c - turn memory reclaim into PRESSURE events
 *
 * Pages pinned by RDMA registrations cannot be reclaimed (MADV_PAGEOUT on
 * them produces no notifier event at all), and only user space can unpin
 * them by deregistering.  So the shrinker reports the pages watched by
 * files that asked for MRC_FEAT_PRESSURE as its objects, and scan_objects
 * posts a PRESSURE event to each of those files instead of freeing
 * anything.  It returns SHRINK_STOP: nothing can be freed synchronously,
 * and reporting progress would only make reclaim call us again in a loop;
 * the scan work is deferred to the next reclaim pass instead.
 *
 * With MRC_FEAT_PRESSURE_COUNTER the request goes into the header's
 * pressure counter, never into the ring: a PRESSURE event posted into a
 * full ring would count as an overflow, and an overflow tells user space
 * that invalidations may have been lost, so it would drop every
 * registration instead of the idle ones.
 *
 * Memory cgroups: the shrinker is SHRINKER_MEMCG_AWARE.  Each set-up
 * file with MRC_FEAT_PRESSURE owns one small item on a memcg-aware
 * list_lru.  The item is allocated with kmem_cache_alloc_lru() and
 * __GFP_ACCOUNT by the process that sets the file up, so it is charged
 * to that process's memcg, and list_lru_add() files it on that memcg's
 * list and sets the memcg's shrinker bit (set_shrinker_bit() itself is
 * not exported in 6.1; this is the route modules have).  Reclaim asks
 * count_objects and scan_objects once per memcg of the hierarchy it
 * reclaims from (sc->memcg), so a cgroup that hits its own memory.max
 * reaches the files of its processes and of its descendants', and no
 * others.  Global reclaim and drop_caches walk every memcg, the root
 * included (whose list holds the files of processes in the root
 * cgroup), so they still reach every file.  See doc/kmod-design.md,
 * "Memory pressure".
 *
 * The walks run under the list's spinlock, never sleep, and take
 * f->lock inside it.  Release takes the item off the list (waiting for
 * that spinlock) before the ring goes, so a walk never sees a file whose
 * ring was freed.
 *
 * The shrinker is not NUMA-aware: pinned pages are not where the item
 * is, so count and scan look at the memcg's items on every node.
 */
#include "mrc_internal.h"

#include <linux/list_lru.h>
#include <linux/mm.h>
#include <linux/nodemask.h>
#include <linux/shrinker.h>
#include <linux/slab.h>

/* A pressure file's place on mrc_lru, charged to the file's memcg. */
struct mrc_pressure_item {
	struct list_head lru;
	struct mrc_file *file;
};

static struct kmem_cache *mrc_item_cache;
static struct list_lru mrc_lru;
/* Set once mrc_lru is initialised (after the shrinker got its id). */
static bool mrc_lru_ready;

/**
 * mrc_pressure_add() - put a file being set up on the shrinker's list
 * @f: file being set up by its opener, under f->mutex, features set;
 *     files without MRC_FEAT_PRESSURE are left off
 *
 * Charges the list item to the memcg of the calling process: that is
 * the memcg whose reclaim will ask this file for memory.
 *
 * Return: 0 or -ENOMEM.
 */
int mrc_pressure_add(struct mrc_file *f)
{
	struct mrc_pressure_item *it;

	if (!(f->features & MRC_FEAT_PRESSURE))
		return 0;
	it = kmem_cache_alloc_lru(mrc_item_cache, &mrc_lru,
				  GFP_KERNEL_ACCOUNT);
	if (!it)
		return -ENOMEM;
	INIT_LIST_HEAD(&it->lru);
	it->file = f;
	f->pressure_item = it;
	list_lru_add(&mrc_lru, &it->lru);
	return 0;
}

/**
 * mrc_pressure_del() - take a file being released off the list
 * @f: file
 *
 * list_lru_del() takes the list's lock, which every walk holds while it
 * looks at an item, so no scan can reach @f once this returns.
 */
void mrc_pressure_del(struct mrc_file *f)
{
	struct mrc_pressure_item *it = f->pressure_item;

	if (!it)
		return;
	list_lru_del(&mrc_lru, &it->lru);
	f->pressure_item = NULL;
	kmem_cache_free(mrc_item_cache, it);
}

/**
 * mrc_pressure_account() - track the pages the shrinker reports
 * @f: file whose watched pages changed by @pages
 * @pages: signed change
 */
void mrc_pressure_account(struct mrc_file *f, long pages)
{
	if (f->features & MRC_FEAT_PRESSURE)
		atomic_long_add(pages, &mrc_stats.pressure_pages);
}

/*
 * Calls @cb on every item of @memcg's lists (all nodes) with @arg.
 * Returns the number of items seen.
 */
static unsigned long mrc_lru_walk(struct mem_cgroup *memcg,
				  list_lru_walk_cb cb, void *arg)
{
	unsigned long seen = 0;
	int nid;

	for_each_node_state(nid, N_NORMAL_MEMORY) {
		unsigned long walk = ULONG_MAX;

		list_lru_walk_one(&mrc_lru, nid, memcg, cb, arg, &walk);
		seen += ULONG_MAX - walk;
	}
	return seen;
}

/* Under the list's lock: add the file's watched pages to *arg. */
static enum lru_status mrc_count_one(struct list_head *item,
				     struct list_lru_one *list,
				     spinlock_t *lock, void *arg)
{
	struct mrc_pressure_item *it = list_entry(item, typeof(*it), lru);

	*(unsigned long *)arg += READ_ONCE(it->file->watched_pages);
	return LRU_SKIP;
}

/*
 * The pages of distinct watched ranges of the pressure files of
 * sc->memcg: what user space could give back if every watch were a
 * registration.  Each user's part is bounded by max_user_pages, and no
 * more than all of memory can be pinned, so the sum is capped at
 * totalram: a watch of unmapped address space must not make reclaim
 * believe we hold more than the machine has.  SHRINK_EMPTY (the memcg's
 * shrinker bit may be cleared) only when the memcg has no pressure file
 * at all: list_lru_add() sets the bit again only for a list that was
 * empty.
 */
static unsigned long mrc_shrink_count(struct shrinker *s,
				      struct shrink_control *sc)
{
	unsigned long pages = 0;

	/* Pairs with the store-release in mrc_shrinker_register(). */
	if (!smp_load_acquire(&mrc_lru_ready))
		return 0;
	if (!mrc_lru_walk(sc->memcg, mrc_count_one, &pages))
		return SHRINK_EMPTY;
	return min_t(unsigned long, pages, totalram_pages());
}

/*
 * Caller holds f->lock.  One unconsumed PRESSURE event per file is
 * enough: user space reacts to the latest one anyway.  This is the
 * pre-MRC_FEAT_PRESSURE_COUNTER form: a full ring counts the event as an
 * overflow, which user space must treat as lost invalidations.
 */
static bool mrc_pressure_post_event(struct mrc_file *f, unsigned long wanted)
{
	struct mrc_event ev = {
		.start = 0,
		.end = wanted,
		.id = MRC_WATCH_NONE,
		.reason = MRC_REASON_PRESSURE,
	};
	u32 pos = f->ring.prod;

	if (f->pressure_pending && !mrc_ring_consumed(&f->ring,
						      f->pressure_pos))
		return false;
	f->pressure_pending = mrc_ring_post(&f->ring, &ev);
	f->pressure_pos = pos;
	return f->pressure_pending;
}

/* Caller holds f->lock.  Returns true if a request was raised. */
static bool mrc_pressure_post(struct mrc_file *f, unsigned long wanted)
{
	bool raised;

	if (f->features & MRC_FEAT_PRESSURE_COUNTER)
		raised = mrc_ring_raise_pressure(&f->ring, wanted);
	else
		raised = mrc_pressure_post_event(f, wanted);
	if (raised)
		atomic_long_inc(&mrc_stats.pressure_events);
	return raised;
}

static void mrc_pressure_notify(struct mrc_file *f, unsigned long nr)
{
	unsigned long pages = READ_ONCE(f->watched_pages);
	bool wake;

	if (!pages)
		return;
	spin_lock(&f->lock);
	wake = mrc_pressure_post(f, min(nr, pages));
	spin_unlock(&f->lock);
	if (wake)
		mrc_file_wake(f);
}

/* Under the list's lock: ask the file for up to *arg pages. */
static enum lru_status mrc_scan_one(struct list_head *item,
				    struct list_lru_one *list,
				    spinlock_t *lock, void *arg)
{
	struct mrc_pressure_item *it = list_entry(item, typeof(*it), lru);

	mrc_pressure_notify(it->file, *(unsigned long *)arg);
	return LRU_SKIP;
}

static unsigned long mrc_shrink_scan(struct shrinker *s,
				     struct shrink_control *sc)
{
	unsigned long nr = sc->nr_to_scan;

	if (!smp_load_acquire(&mrc_lru_ready))
		return SHRINK_STOP;
	atomic_long_inc(&mrc_stats.shrinker_scans);
	mrc_lru_walk(sc->memcg, mrc_scan_one, &nr);
	return SHRINK_STOP;
}

static struct shrinker mrc_shrinker = {
	.count_objects = mrc_shrink_count,
	.scan_objects = mrc_shrink_scan,
	.seeks = DEFAULT_SEEKS,
	.flags = SHRINKER_MEMCG_AWARE,
};

/**
 * mrc_shrinker_register() - register the pressure shrinker and its list
 *
 * The memcg-aware list needs the shrinker's id, which register_shrinker()
 * assigns (prealloc_shrinker() is not exported in 6.1), so the shrinker
 * ignores calls until the list is ready.
 *
 * Return: 0, -ENOMEM or the error of register_shrinker().
 */
int mrc_shrinker_register(void)
{
	int ret;

	mrc_item_cache = KMEM_CACHE(mrc_pressure_item, SLAB_ACCOUNT);
	if (!mrc_item_cache)
		return -ENOMEM;
	ret = register_shrinker(&mrc_shrinker, "mrcache");
	if (ret)
		goto destroy_cache;
	ret = list_lru_init_memcg(&mrc_lru, &mrc_shrinker);
	if (ret)
		goto unregister;
	/* Pairs with the load-acquire in count and scan. */
	smp_store_release(&mrc_lru_ready, true);
	return 0;

unregister:
	unregister_shrinker(&mrc_shrinker);
destroy_cache:
	kmem_cache_destroy(mrc_item_cache);
	return ret;
}

/**
 * mrc_shrinker_unregister() - unregister it (waits for running scans)
 *
 * Called with no file left, so the list is empty.
 */
void mrc_shrinker_unregister(void)
{
	unregister_shrinker(&mrc_shrinker);
	list_lru_destroy(&mrc_lru);
	kmem_cache_destroy(mrc_item_cache);
}
