/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Watches over a process-wide record of changed ranges, for the watcher
 * backends whose monitor records ranges rather than watches: the libc
 * hooks (backend_hooks.c) and userfaultfd (backend_uffd.c). The record is
 * read from this watcher's cursor and each range fires the live watches
 * overlapping it (an interval tree).
 *
 * Validity. Such a monitor knows nothing of watches, so no per-watch word
 * moves before the memory changes; a watch's word moves when a collect
 * fires it. A check therefore also looks at what was recorded but not
 * collected: one load of the record's event word tells whether there is
 * any (the usual answer: no), and only then are the pending ranges
 * scanned, read-only, so a check never fires anything or calls anyone.
 */
#ifndef MRC_WATCH_RANGE_WATCHES_H
#define MRC_WATCH_RANGE_WATCHES_H

#include <stdint.h>

#include "atomics.h"
#include "itree.h"
#include "watch/watcher.h"

typedef void (*mrc_range_fn)(void *arg, uint64_t start, uint64_t end);

/* A record of changed ranges, as its monitor offers it. */
struct mrc_range_record {
	/* Moves whenever a range is recorded. */
	const uint32_t *(*event_word)(void);
	/*
	 * Report every range recorded from *cursor on and move *cursor past
	 * them; set *lost when some were overwritten unread. Returns the
	 * event word the reports cover (loaded before the record was read).
	 */
	uint32_t (*read)(uint64_t *cursor, mrc_range_fn fn, void *arg,
			 int *lost);
	/* Did a range recorded from @from on overlap [start, end)? */
	int (*overlaps)(uint64_t from, uint64_t start, uint64_t end);
};

struct mrc_range_watches {
	const struct mrc_range_record *record;
	struct mrc_watcher *watcher;
	const uint32_t *event_word;	/* the record's */
	struct mrc_itree tree;	/* live watches, watcher lock held */
	uint64_t cursor;	/* next record position to collect */
	uint32_t collected;	/* event word at the last collect */
};

/* Start reading @record at @cursor (the end, when the watcher opens). */
void mrc_range_watches_init(struct mrc_range_watches *rw,
			    const struct mrc_range_record *record,
			    struct mrc_watcher *w, uint64_t cursor);

/*
 * Watcher lock held. Insert: a backend's add(); the word a check compares
 * is the slot's own generation, moved when a collect fires it.
 */
void mrc_range_watches_insert(struct mrc_range_watches *rw,
			      struct mrc_watch_slot *s, const uint64_t **word,
			      uint64_t *generation);
void mrc_range_watches_remove(struct mrc_range_watches *rw,
			      struct mrc_watch_slot *s);
void mrc_range_watches_collect(struct mrc_range_watches *rw);

/*
 * Lock-free, and inline: a runtime checks at every cache hit. Loads in
 * the order that makes a collect running meanwhile harmless: the word
 * collected, then the cursor, then the watch's word. A cursor
 * read here is at most as new as the watch word read after it (release
 * order in mrc_range_watches_collect), so every range before the cursor
 * either fired this watch visibly or missed it, and every range from the
 * cursor on is scanned unless nothing was recorded since the collected
 * word.
 */
static inline int
mrc_range_watches_valid(const struct mrc_range_watches *rw,
			const struct mrc_watchpoint *wp)
{
	uint32_t collected = mrc_load_acquire(&rw->collected);
	uint64_t cursor = mrc_load_acquire(&rw->cursor);

	if (mrc_load_acquire(wp->word) != wp->generation)
		return 0;
	if (mrc_likely(mrc_load_acquire(rw->event_word) == collected))
		return 1;
	return !rw->record->overlaps(cursor, wp->start, wp->end);
}

/* The backend's words() (watcher.h): the record's word and our copy. */
static inline void
mrc_range_watches_words(const struct mrc_range_watches *rw,
			const uint32_t **events, const uint32_t **collected)
{
	*events = rw->event_word;
	*collected = &rw->collected;
}

#endif /* MRC_WATCH_RANGE_WATCHES_H */
