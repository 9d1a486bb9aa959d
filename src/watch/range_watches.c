// SPDX-License-Identifier: BSD-2-Clause
/*
 * Watches over a record of changed ranges (range_watches.h): the tree of
 * live watches and the collect that fires them (the lock-free check is
 * inline in range_watches.h).
 */
#include "atomics.h"
#include "watch/range_watches.h"

static void ignore_range(void *arg, uint64_t start, uint64_t end)
{
	(void)arg;
	(void)start;
	(void)end;
}

/*
 * What was recorded before the watcher existed is not its business: read
 * past it, so the word collected is one the record's read vouches for
 * (userfaultfd's is never one of a recording still under way).
 */
void mrc_range_watches_init(struct mrc_range_watches *rw,
			    const struct mrc_range_record *record,
			    struct mrc_watcher *w, uint64_t cursor)
{
	int lost;

	rw->record = record;
	rw->watcher = w;
	rw->event_word = record->event_word();
	mrc_itree_init(&rw->tree);
	rw->collected = record->read(&cursor, ignore_range, NULL, &lost);
	rw->cursor = cursor;
}

void mrc_range_watches_insert(struct mrc_range_watches *rw,
			      struct mrc_watch_slot *s, const uint64_t **word,
			      uint64_t *generation)
{
	mrc_itree_insert(&rw->tree, &s->node);
	*word = &s->generation;
	*generation = s->generation;
}

void mrc_range_watches_remove(struct mrc_range_watches *rw,
			      struct mrc_watch_slot *s)
{
	mrc_itree_remove(&rw->tree, &s->node);
}

static void fire_overlapping(void *arg, uint64_t start, uint64_t end)
{
	struct mrc_range_watches *rw = arg;
	struct mrc_itree_node *n, *next;

	for (n = mrc_itree_first_overlap(&rw->tree, start, end); n; n = next) {
		next = mrc_itree_next_overlap(n, start, end);
		mrc_watcher_fire(rw->watcher, (struct mrc_watch_slot *)n);
	}
}

/*
 * The event word is loaded before the record is read (the record's read
 * does it): a range recorded later moves it again. Stores, each a release
 * that mrc_range_watches_valid() pairs with: the fired watches' words
 * (mrc_watcher_fire), then the cursor, then the word collected.
 */
void mrc_range_watches_collect(struct mrc_range_watches *rw)
{
	uint64_t cursor = rw->cursor;
	uint32_t word;
	int lost;

	/* Pairs with the release that moves the word when a range is recorded. */
	if (mrc_load_acquire(rw->event_word) == rw->collected)
		return;
	word = rw->record->read(&cursor, fire_overlapping, rw, &lost);
	if (lost)
		mrc_watcher_fire_all(rw->watcher);
	mrc_store_release(&rw->cursor, cursor);
	mrc_store_release(&rw->collected, word);
}
