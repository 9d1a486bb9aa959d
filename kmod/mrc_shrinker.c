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
 * Only set-up files that asked for MRC_FEAT_PRESSURE are on the list the
 * scan walks, and it walks it under RCU (files are freed a grace period
 * after release), so reclaim never waits for a lock that open, close or
 * another reclaimer holds, and never visits files it has nothing to say
 * to.  The list is bounded by max_user_files per user.
 *
 * The shrinker is neither NUMA- nor memcg-aware: it runs in global
 * reclaim (kswapd, direct reclaim, drop_caches) but not in reclaim caused
 * by a memory cgroup's own limit.
 */
#include "mrc_internal.h"

#include <linux/mm.h>
#include <linux/shrinker.h>

/* Set-up files with MRC_FEAT_PRESSURE; readers use RCU. */
static LIST_HEAD(mrc_pressure_files);
static DEFINE_SPINLOCK(mrc_pressure_lock);

static bool mrc_wants_pressure(struct mrc_file *f)
{
	return mrc_file_ready(f) && (f->features & MRC_FEAT_PRESSURE);
}

/**
 * mrc_pressure_add() - put a file just set up on the shrinker's list
 * @f: ready file, under f->mutex; files without MRC_FEAT_PRESSURE are
 *     left off
 */
void mrc_pressure_add(struct mrc_file *f)
{
	if (!mrc_wants_pressure(f))
		return;
	spin_lock(&mrc_pressure_lock);
	list_add_tail_rcu(&f->node, &mrc_pressure_files);
	spin_unlock(&mrc_pressure_lock);
}

/**
 * mrc_pressure_del() - take a file being released off the list
 * @f: file; its memory must stay valid for a grace period afterwards
 *
 * A scan that found the file before it left the list may still reach
 * it; it checks f->gone under f->lock, which is set here, so it never
 * touches the ring that release frees next.
 */
void mrc_pressure_del(struct mrc_file *f)
{
	if (!mrc_wants_pressure(f))
		return;
	spin_lock(&mrc_pressure_lock);
	list_del_rcu(&f->node);
	spin_unlock(&mrc_pressure_lock);
	spin_lock(&f->lock);
	f->gone = true;
	spin_unlock(&f->lock);
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
 * The pages of distinct watched ranges of pressure files: what user space
 * could give back if every watch were a registration.  Each user's part
 * is bounded by max_user_pages, and no more than all of memory can be
 * pinned, so the sum is capped at totalram: a watch of unmapped address
 * space must not make reclaim believe we hold more than the machine has.
 */
static unsigned long mrc_shrink_count(struct shrinker *s,
				      struct shrink_control *sc)
{
	long pages = atomic_long_read(&mrc_stats.pressure_pages);

	if (pages <= 0)
		return 0;
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
	wake = !f->gone && mrc_pressure_post(f, min(nr, pages));
	spin_unlock(&f->lock);
	if (wake)
		mrc_file_wake(f);
}

static unsigned long mrc_shrink_scan(struct shrinker *s,
				     struct shrink_control *sc)
{
	struct mrc_file *f;

	atomic_long_inc(&mrc_stats.shrinker_scans);
	rcu_read_lock();
	list_for_each_entry_rcu(f, &mrc_pressure_files, node)
		mrc_pressure_notify(f, sc->nr_to_scan);
	rcu_read_unlock();
	return SHRINK_STOP;
}

static struct shrinker mrc_shrinker = {
	.count_objects = mrc_shrink_count,
	.scan_objects = mrc_shrink_scan,
	.seeks = DEFAULT_SEEKS,
};

/**
 * mrc_shrinker_register() - register the pressure shrinker
 *
 * Return: 0 or the error of register_shrinker().
 */
int mrc_shrinker_register(void)
{
	return register_shrinker(&mrc_shrinker, "mrcache");
}

/**
 * mrc_shrinker_unregister() - unregister it (waits for running scans)
 */
void mrc_shrinker_unregister(void)
{
	unregister_shrinker(&mrc_shrinker);
}
