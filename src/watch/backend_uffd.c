// SPDX-License-Identifier: BSD-2-Clause
/*
 * The watcher's userfaultfd backend: each watch's range is registered with
 * the process's userfaultfd (src/uffd/, shared with every uffd cache: a
 * range can be registered with one userfaultfd only), whose reader thread
 * records the ranges the kernel reports unmapped, removed (madvise) or
 * moved (mremap), by whatever code made the call. This backend reads that
 * record from its own cursor and fires the watches overlapping each range;
 * the check is range_watches.c's (the reader's event word, the pending
 * ranges only when it moved).
 *
 * When a check sees a change. The thread that changed a registered range
 * waits in the kernel until the reader takes the event, and the reader
 * moves the event word (to odd) before it does: once the changing call
 * returned, a check sees the word moved and scans the record, after
 * waiting for the reader to finish recording (mrc_uffd_overlaps). A check
 * on another thread while the call is still running may say valid: the
 * kernel reports madvise before the pages go, but an unmap only after.
 *
 * What it cannot see or watch: what the kernel does by itself (migration,
 * compaction, reclaim), and memory a userfaultfd cannot register (file,
 * device and System V shared memory), which mrc_watcher_add() refuses with
 * EOPNOTSUPP rather than watch blind. A watch removed leaves its range
 * registered (another watch or a cache may share it); the registration
 * ends with the mapping or with the last user of the userfaultfd.
 *
 * The pollable fd is an eventfd the reader itself signals after recording
 * (src/uffd/wakeups.c): no thread of the watcher's own.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "error.h"
#include "uffd/uffd.h"
#include "watch/range_watches.h"

struct uffd_backend {
	struct mrc_range_watches watches;
	struct mrc_uffd_wakeup *wakeup;	/* NULL until mrc_watcher_fd() */
};

static struct uffd_backend *ub_of(const struct mrc_watcher *w)
{
	return w->priv;
}

static const struct mrc_range_record uffd_record = {
	.event_word = mrc_uffd_event_word,
	.read = mrc_uffd_read,
	.overlaps = mrc_uffd_overlaps,
};

static int uffd_open(struct mrc_watcher *w)
{
	struct uffd_backend *ub = calloc(1, sizeof(*ub));
	uint64_t cursor;
	int ret;

	if (!ub)
		return mrc_error(ENOMEM, "no memory for the userfaultfd watcher");
	ret = mrc_uffd_attach(&cursor);
	if (ret) {
		free(ub);
		return ret;
	}
	mrc_range_watches_init(&ub->watches, &uffd_record, w, cursor);
	w->priv = ub;
	return 0;
}

/* A forked child dropped the parent's descriptor and wakeups at fork. */
static void uffd_close(struct mrc_watcher *w)
{
	struct uffd_backend *ub = ub_of(w);

	if (w->owner == getpid()) {
		if (ub->wakeup)
			mrc_uffd_wakeup_close(ub->wakeup);
		mrc_uffd_detach();
	}
	free(ub);
	w->priv = NULL;
}

/*
 * Registered first: a change recorded after the collect that began this
 * add and overlapping the range fires the watch at the next collect (too
 * early at worst, never missed once the registration holds).
 */
static int uffd_add(struct mrc_watcher *w, struct mrc_watch_slot *s,
		    const uint64_t **word, uint64_t *generation)
{
	struct uffd_backend *ub = ub_of(w);
	int ret = mrc_uffd_register(s->node.start, s->node.end);

	if (ret)
		return ret;
	mrc_range_watches_insert(&ub->watches, s, word, generation);
	return 0;
}

static void uffd_remove(struct mrc_watcher *w, struct mrc_watch_slot *s)
{
	mrc_range_watches_remove(&ub_of(w)->watches, s);
}

static void uffd_collect(struct mrc_watcher *w)
{
	struct uffd_backend *ub = ub_of(w);

	/* Before the record is read: a later signal stays readable. */
	if (ub->wakeup)
		mrc_uffd_wakeup_reset(ub->wakeup);
	mrc_range_watches_collect(&ub->watches);
}

static int uffd_valid(const struct mrc_watcher *w,
		      const struct mrc_watchpoint *wp)
{
	return mrc_range_watches_valid(&ub_of(w)->watches, wp);
}

static void uffd_words(const struct mrc_watcher *w, const uint32_t **events,
		       const uint32_t **collected)
{
	mrc_range_watches_words(&ub_of(w)->watches, events, collected);
}

static int uffd_fd(struct mrc_watcher *w)
{
	struct uffd_backend *ub = ub_of(w);
	int ret;

	if (!ub->wakeup) {
		ret = mrc_uffd_wakeup_open(&ub->wakeup);
		if (ret) {
			ub->wakeup = NULL;
			return ret;
		}
	}
	return mrc_uffd_wakeup_fd(ub->wakeup);
}

const struct mrc_watch_backend mrc_watch_uffd = {
	.name = "uffd",
	.open = uffd_open,
	.close = uffd_close,
	.add = uffd_add,
	.remove = uffd_remove,
	.collect = uffd_collect,
	.valid = uffd_valid,
	.fd = uffd_fd,
	.words = uffd_words,
};
