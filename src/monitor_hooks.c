// SPDX-License-Identifier: BSD-2-Clause
/*
 * The hooks monitor: libc's calls that change mappings are patched at
 * their entry points (src/hooks/hooks.c) and write the range they change
 * into a process-wide record (src/hooks/record.c) before the call runs.
 * The record's event word is this monitor's event word: the hit path's one
 * load. A drain reads the record from this cache's own cursor and reports
 * each range through mrc_cache_range_changed(); ranges lost to a full
 * record make it report everything.
 *
 * Around registration: watch() notes the record's position (and moves the
 * epoch that tells hooks a registration began), watch_raced() says whether
 * a range recorded since overlaps the region, so memory changed while it
 * was being pinned is not cached.
 *
 * What hooks cannot see (doc/mrcache.3, "MONITORS"): system calls made
 * with a `syscall` instruction by code that does not go through libc,
 * the dynamic loader's own unmapping (dlclose), libraries loaded with
 * dlmopen() into a new namespace (they get a libc of their own, which is
 * not patched; plain dlopen() is covered), and anything the kernel
 * does by itself (migration, reclaim, compaction).
 */
#include <errno.h>
#include <stdlib.h>

#include "atomics.h"
#include "monitor.h"
#include "mrcache.h"

#include "error.h"
#include "hooks/hooks.h"
#include "hooks/record.h"

struct hooks_monitor {
	uint64_t cursor;	/* next record position to drain */
	/* The registration in progress (one at a time: the cache lock). */
	uint64_t watch_from;	/* record position when its watch began */
	uint64_t watch_start;
	uint64_t watch_end;
};

static struct hooks_monitor *hooks(struct mrc_monitor *mon)
{
	return mon->priv;
}

static int hooks_start(struct mrc_monitor *mon, struct mrc_cache *cache)
{
	struct hooks_monitor *hm;
	int ret;

	(void)cache;
	ret = mrc_hooks_install();
	if (ret)
		return ret;
	hm = calloc(1, sizeof(*hm));
	if (!hm)
		return mrc_error(ENOMEM, "no memory for the hooks monitor");
	hm->cursor = mrc_record_attach();
	mon->priv = hm;
	mon->events = mrc_record_event_word();
	return 0;
}

static void hooks_stop(struct mrc_monitor *mon)
{
	mrc_record_detach();
	free(mon->priv);
	mon->priv = NULL;
}

/*
 * A library loaded since may have written its own patch over ours and
 * call the original some other way: chain ours in front of it again.
 * (Checked here and at each drain; a dlopen hook would have to keep
 * dlopen's caller, which decides the library search path.)
 */
static void keep_hooks(void)
{
	if (mrc_likely(mrc_hooks_intact()))
		return;
	if (mrc_hooks_install())
		mrc_warn("cannot put the libc hooks back after another library replaced them: %s",
			 mrc_last_error());
}

static int hooks_watch(struct mrc_monitor *mon,
		       const struct mrc_watch_target *t, struct mrc_watch_ref *ref)
{
	struct hooks_monitor *hm = hooks(mon);

	*ref = (struct mrc_watch_ref){ 0, 0 };
	keep_hooks();
	hm->watch_start = t->start;
	hm->watch_end = t->end;
	hm->watch_from = mrc_record_watch_begin();
	return 0;
}

static int hooks_watch_raced(struct mrc_monitor *mon,
			     const struct mrc_watch_ref *ref)
{
	struct hooks_monitor *hm = hooks(mon);

	(void)ref;
	return mrc_record_overlaps(hm->watch_from, hm->watch_start,
				   hm->watch_end);
}

static void hooks_unwatch(struct mrc_monitor *mon,
			  const struct mrc_watch_ref *ref)
{
	(void)mon;
	(void)ref;
}

static void report_range(void *arg, uint64_t start, uint64_t end)
{
	mrc_cache_range_changed(arg, start, end);
}

static uint32_t hooks_drain(struct mrc_monitor *mon)
{
	/*
	 * Loaded first and returned: a range recorded after this load moves
	 * the word again, so the next cache call drains it. Pairs with the
	 * fetch-add in push() (record.c).
	 */
	uint32_t word = mrc_load_acquire(mon->events);

	keep_hooks();
	if (mrc_record_read(&hooks(mon)->cursor, report_range, mon->cache))
		mrc_cache_range_changed(mon->cache, 0, UINT64_MAX);
	return word;
}

const struct mrc_monitor_ops mrc_monitor_hooks_ops = {
	.name = "hooks",
	.start = hooks_start,
	.stop = hooks_stop,
	.watch = hooks_watch,
	.watch_raced = hooks_watch_raced,
	.unwatch = hooks_unwatch,
	.drain = hooks_drain,
};
