// SPDX-License-Identifier: BSD-2-Clause
/*
 * The userfaultfd monitor: each cached range is registered with the
 * process's userfaultfd (src/uffd/), whose reader records the ranges the
 * kernel reports unmapped (munmap, brk shrink, mremap shrink, mmap over
 * it), removed (madvise DONTNEED, FREE, REMOVE) or moved (mremap), by
 * whatever code made the call, libc or a raw system call. The reader's
 * event word is this monitor's event word; a drain reports the recorded
 * ranges from this cache's cursor through mrc_cache_range_changed().
 *
 * watch() registers the range, so memory a userfaultfd cannot watch
 * (file and device mappings) makes the registration fail with a message
 * naming the monitors that can: a range is never cached unwatched.
 * watch_raced() says whether a range recorded since watch() overlaps.
 *
 * What it cannot see (doc/mrcache.3, "MONITORS"): what the kernel does
 * by itself (migration, reclaim, compaction), and a registration racing
 * madvise in another thread (reported before the pages go, nothing
 * after). It refuses System V shared memory (not registrable, and shmdt
 * sends no event). Unmapping is reported after the pages went, before
 * munmap returns.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "error.h"
#include "monitor.h"
#include "uffd/uffd.h"

struct uffd_monitor {
	uint64_t cursor;	/* next record position to drain */
	pid_t owner;		/* a forked child's copy is not attached */
	/* The registration in progress (one at a time: the cache lock). */
	uint64_t watch_from;	/* record position when its watch began */
	uint64_t watch_start;
	uint64_t watch_end;
};

static struct uffd_monitor *uffd_mon(struct mrc_monitor *mon)
{
	return mon->priv;
}

static int uffd_start(struct mrc_monitor *mon, struct mrc_cache *cache)
{
	struct uffd_monitor *um = calloc(1, sizeof(*um));
	int ret;

	(void)cache;
	if (!um)
		return mrc_error(ENOMEM, "no memory for the userfaultfd monitor");
	ret = mrc_uffd_attach(&um->cursor);
	if (ret) {
		free(um);
		return ret;
	}
	um->owner = getpid();
	mon->priv = um;
	mon->events = mrc_uffd_event_word();
	return 0;
}

static void uffd_stop(struct mrc_monitor *mon)
{
	struct uffd_monitor *um = uffd_mon(mon);

	/* A child's copy: the child dropped the parent's descriptor at fork. */
	if (um->owner == getpid())
		mrc_uffd_detach();
	free(um);
	mon->priv = NULL;
}

static int uffd_watch(struct mrc_monitor *mon,
		      const struct mrc_watch_target *t, struct mrc_watch_ref *ref)
{
	struct uffd_monitor *um = uffd_mon(mon);

	*ref = (struct mrc_watch_ref){ 0, 0 };
	um->watch_start = t->start;
	um->watch_end = t->end;
	um->watch_from = mrc_uffd_position();
	return mrc_uffd_register(t->start, t->end);
}

static int uffd_watch_raced(struct mrc_monitor *mon,
			    const struct mrc_watch_ref *ref)
{
	struct uffd_monitor *um = uffd_mon(mon);

	(void)ref;
	return mrc_uffd_overlaps(um->watch_from, um->watch_start, um->watch_end);
}

/*
 * The range stays registered: another region may overlap it, and the
 * registration ends with the mapping or with the last uffd monitor.
 */
static void uffd_unwatch(struct mrc_monitor *mon,
			 const struct mrc_watch_ref *ref)
{
	(void)mon;
	(void)ref;
}

static void report_range(void *arg, uint64_t start, uint64_t end)
{
	mrc_cache_range_changed(arg, start, end);
}

static uint32_t uffd_drain(struct mrc_monitor *mon)
{
	int lost;
	uint32_t word = mrc_uffd_read(&uffd_mon(mon)->cursor, report_range,
				      mon->cache, &lost);

	if (lost)
		mrc_cache_range_changed(mon->cache, 0, UINT64_MAX);
	return word;
}

const struct mrc_monitor_ops mrc_monitor_uffd_ops = {
	.name = "uffd",
	.start = uffd_start,
	.stop = uffd_stop,
	.watch = uffd_watch,
	.watch_raced = uffd_watch_raced,
	.unwatch = uffd_unwatch,
	.drain = uffd_drain,
};
