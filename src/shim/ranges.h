/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Watched ranges for the runtime shims (src/ofi, src/ucx): a runtime names
 * a range by its address and length only, so this keeps one watchpoint of
 * one mrc_watcher per distinct range and a thread that drains the watcher
 * and hands each changed range to the shim's callback (libfabric's notify,
 * UCX's ucm_vm_munmap).
 *
 * Locking: one mutex over the table, never held while the callback runs,
 * so the callback may take the runtime's locks while the runtime, holding
 * them, calls in here to watch a range. A check takes no lock: it looks
 * the range up in a lock-free index (index.h) and does the watch's check.
 *
 * A range's watch is dropped when it fires (after the callback ran) and
 * when the runtime unwatches it as often as it watched it. A runtime that
 * never unwatches (libfabric 1.17 for host memory) leaves watches of
 * ranges it no longer caches; when the monitor runs out of room the oldest
 * are reported as changed and dropped, which is always safe: the runtime
 * re-registers on its next lookup.
 */
#ifndef MRC_SHIM_RANGES_H
#define MRC_SHIM_RANGES_H

#include <stddef.h>
#include <stdint.h>

#include "mrcache.h"

struct mrc_ranges;

/*
 * What the settled check loads, apart so that a runtime's validity
 * callback can inline it (mrc_ranges_settle_of() once, then
 * mrc_ranges_settle_done() per call): a few loads and no call.
 */
struct mrc_ranges_settle {
	uint64_t drains;		/* started (low half), ended (high) */
	int trim;			/* the monitor ran out of room */
	struct mrc_watcher_words words;	/* the watcher's pending check */
};

/* Memory in [addr, addr + len) may have changed. */
typedef void (*mrc_ranges_fn)(void *arg, void *addr, size_t len);

/*
 * Open a watcher (its monitor chosen as mrc_watcher_open() does) and, if
 * @thread, the thread that drains it. Return: 0 or -errno.
 */
int mrc_ranges_open(struct mrc_ranges **r, mrc_ranges_fn fn, void *arg,
		    int thread);
void mrc_ranges_close(struct mrc_ranges *r);
const char *mrc_ranges_monitor(const struct mrc_ranges *r);

/* Watch (again) [addr, addr + len). Return: 0 or -errno. */
int mrc_ranges_watch(struct mrc_ranges *r, const void *addr, size_t len);
void mrc_ranges_unwatch(struct mrc_ranges *r, const void *addr, size_t len);
/*
 * 1 while the range is watched and unchanged, 0 when it is not watched,
 * -ESTALE when its watch saw a change (not necessarily delivered yet).
 * Lock-free: never 1 for a range whose change was seen before the call.
 */
int mrc_ranges_check(struct mrc_ranges *r, const void *addr, size_t len);
/* Drop the range's watch, whatever it saw (its report is skipped). */
void mrc_ranges_forget(struct mrc_ranges *r, const void *addr, size_t len);
/* Report what changed now, on the calling thread. Return: count or -errno. */
int mrc_ranges_drain(struct mrc_ranges *r);
/* Cheap (a load or two): might mrc_ranges_drain() report anything? */
int mrc_ranges_pending(const struct mrc_ranges *r);
/*
 * Cheap (a few loads): 1 when every change seen before the call has been
 * handed to the callback (nothing pending, no drain under way), so a range
 * the runtime still caches cannot have changed. Lock-free.
 */
int mrc_ranges_settled(const struct mrc_ranges *r);
/* The words of @r's settled check; they live until mrc_ranges_close(). */
const struct mrc_ranges_settle *mrc_ranges_settle_of(const struct mrc_ranges *r);

static inline int mrc_ranges_settle_pending(const struct mrc_ranges_settle *s)
{
	return mrc_watcher_words_pending(&s->words) ||
	       __atomic_load_n(&s->trim, __ATOMIC_ACQUIRE);
}

/*
 * mrc_ranges_settled(), inline. No drain was running and nothing was
 * pending at one instant between the two loads of the drain counter (it
 * only grows, so equal loads mean it did not move). Every change seen
 * before that instant was then taken by a drain that has returned, so its
 * callback has run.
 */
static inline int mrc_ranges_settle_done(const struct mrc_ranges_settle *s)
{
	uint64_t before = __atomic_load_n(&s->drains, __ATOMIC_ACQUIRE);

	if ((uint32_t)before != (uint32_t)(before >> 32))
		return 0;
	return !mrc_ranges_settle_pending(s) &&
	       __atomic_load_n(&s->drains, __ATOMIC_ACQUIRE) == before;
}

#endif /* MRC_SHIM_RANGES_H */
