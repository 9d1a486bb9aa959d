// SPDX-License-Identifier: GPL-2.0
/*
 * mrc_notifier.c - the mmu_interval_notifier callback
 *
 * Everything happens inside the callback, under the file's spinlock: the
 * generation bump and the ring event are visible before the munmap(),
 * madvise(), mremap() ... that caused them returns, and before the pages
 * change (the callback runs from invalidate_range_start).
 */
#include <linux/mm.h>
#include <linux/poll.h>

#include "mrc_internal.h"

static u16 mrc_reason_of(enum mmu_notifier_event event)
{
	switch (event) {
	case MMU_NOTIFY_UNMAP:
		return MRC_REASON_UNMAP;
	case MMU_NOTIFY_CLEAR:
		return MRC_REASON_CLEAR;
	case MMU_NOTIFY_PROTECTION_VMA:
		return MRC_REASON_PROTECTION_VMA;
	case MMU_NOTIFY_PROTECTION_PAGE:
		return MRC_REASON_PROTECTION_PAGE;
	case MMU_NOTIFY_SOFT_DIRTY:
		return MRC_REASON_SOFT_DIRTY;
	case MMU_NOTIFY_RELEASE:
		return MRC_REASON_RELEASE;
	case MMU_NOTIFY_MIGRATE:
		return MRC_REASON_MIGRATE;
	case MMU_NOTIFY_EXCLUSIVE:
		return MRC_REASON_EXCLUSIVE;
	}
	/* A newer kernel's event: assume the worst. */
	return MRC_REASON_UNKNOWN;
}

/*
 * Protection changes and soft-dirty tracking keep the same physical pages
 * mapped, so a registration of those pages stays correct.
 */
static bool mrc_reason_is_info(u16 reason)
{
	return reason == MRC_REASON_PROTECTION_VMA ||
	       reason == MRC_REASON_PROTECTION_PAGE ||
	       reason == MRC_REASON_SOFT_DIRTY;
}

static void mrc_event_fill(struct mrc_event *ev, struct mrc_interval *iv,
			   const struct mmu_notifier_range *range, u16 reason)
{
	u64 end = iv->range->start + iv->range->length;

	ev->cookie = iv->cookie;
	ev->start = max_t(u64, range->start, iv->range->start);
	ev->end = min_t(u64, range->end, end);
	ev->id = iv->id;
	ev->reason = reason;
	ev->flags = 0;
}

/* Caller holds file->lock.  Returns true if user space should be woken. */
static bool mrc_note_info(struct mrc_file *f, struct mrc_interval *iv,
			  const struct mmu_notifier_range *range, u16 reason)
{
	struct mrc_event ev;

	if (!(f->features & MRC_FEAT_INFO_EVENTS)) {
		mrc_pcpu_inc(filtered);
		return false;
	}
	mrc_event_fill(&ev, iv, range, reason);
	ev.flags = MRC_EVENT_F_INFO;
	mrc_ring_post(&f->ring, &ev);
	return true;
}

/*
 * Caller holds file->lock.  The generation moves on every invalidation;
 * the event is posted only for the first one since the watch was
 * (re)armed, which coalesces e.g. the per-page, per-retry CLEARs of a
 * migration that keeps failing on pinned pages.
 */
static bool mrc_note_invalidation(struct mrc_file *f, struct mrc_interval *iv,
				  const struct mmu_notifier_range *range,
				  u16 reason)
{
	struct mrc_event ev;

	mrc_gen_bump(&f->ring, iv->id);
	if (reason == MRC_REASON_RELEASE)
		mrc_pcpu_inc(release_events);
	if (iv->state != MRC_STATE_ARMED) {
		mrc_pcpu_inc(coalesced);
		return false;
	}
	iv->state = MRC_STATE_INVALID;
	iv->last_reason = reason;
	mrc_event_fill(&ev, iv, range, reason);
	mrc_ring_post(&f->ring, &ev);
	return true;
}

/* Caller holds file->lock.  Returns true if user space should be woken. */
static bool mrc_note(struct mrc_file *f, struct mrc_interval *iv,
		     const struct mmu_notifier_range *range, u16 reason)
{
	if (mrc_reason_is_info(reason))
		return mrc_note_info(f, iv, range, reason);
	return mrc_note_invalidation(f, iv, range, reason);
}

/*
 * One call per distinct range; every watch of that range (duplicates are
 * folded onto one notifier) is noted under one lock hold.
 */
static bool mrc_invalidate(struct mmu_interval_notifier *mni,
			   const struct mmu_notifier_range *range,
			   unsigned long cur_seq)
{
	struct mrc_range *r = container_of(mni, struct mrc_range, notifier);
	struct mrc_file *f = r->file;
	u16 reason = mrc_reason_of(range->event);
	struct mrc_interval *iv;
	bool wake = false;

	/*
	 * The lock is a spinlock held for a few stores per watch, but a
	 * caller that must not block (the OOM reaper) is told to come back
	 * rather than made to wait for it.
	 */
	if (mmu_notifier_range_blockable(range)) {
		spin_lock(&f->lock);
	} else if (!spin_trylock(&f->lock)) {
		mrc_pcpu_inc(nonblock_busy);
		return false;
	}
	mrc_pcpu_inc(callbacks);
	/* Under the lock that REARM holds for mmu_interval_read_retry(). */
	mmu_interval_set_seq(mni, cur_seq);
	list_for_each_entry(iv, &r->watches, link)
		wake |= mrc_note(f, iv, range, reason);
	spin_unlock(&f->lock);

	if (wake)
		mrc_file_wake(f);
	return true;
}

const struct mmu_interval_notifier_ops mrc_interval_ops = {
	.invalidate = mrc_invalidate,
};
