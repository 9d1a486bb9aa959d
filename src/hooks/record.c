// SPDX-License-Identifier: BSD-2-Clause
/*
 * The record of changed ranges (see record.h).
 *
 * A producer claims a position with one fetch-add on the producer index,
 * fills the slot under a per-slot sequence word (a seqlock: "being
 * written", then the position + 1 with release), and then moves the event
 * word, which is what the hit path compares. So a reader that sees the
 * event word move sees the slot filled, and the hooked call runs only
 * after both: no hit can be served on its range once it returns.
 *
 * Why a hook records twice. A registration of the range by another thread
 * can pin the old pages while the call is in flight and still find nothing
 * new in the record (the first range was recorded, and maybe even drained,
 * before the registration began). So a hook notes the registration epoch
 * (moved by every watch) before it records, and records the range again
 * after the call if the epoch moved: any registration that began after the
 * first note pinned either after the call (the new pages: fine) or is
 * caught by the second range, which moves the event word before the call
 * returns. A registration that began before the note sees the first range,
 * either in its own race check or in the next drain: its cache's lock was
 * held since before the range was claimed, so no drain read it earlier.
 * When no registration began meanwhile (the usual case) the second range
 * is skipped.
 */
#include <stdint.h>

#include "hooks/record.h"

struct record_slot {
	uint64_t seq;		/* position + 1 when filled; WRITING */
	uint64_t start;
	uint64_t end;
};

#define SEQ_WRITING UINT64_MAX

/* Each word written by many threads on its own line. */
static struct {
	uint64_t producer __attribute__((aligned(64)));
	uint32_t events __attribute__((aligned(64)));
	uint64_t epoch __attribute__((aligned(64)));
	struct record_slot slot[MRC_RECORD_SLOTS] __attribute__((aligned(64)));
} rec;

uint32_t mrc_record_readers __attribute__((aligned(64)));

MRC_HOOK_PATH static void push(uint64_t start, uint64_t end)
{
	uint64_t pos = __atomic_fetch_add(&rec.producer, 1, __ATOMIC_SEQ_CST);
	struct record_slot *s = &rec.slot[pos & (MRC_RECORD_SLOTS - 1)];

	mrc_store_relaxed(&s->seq, SEQ_WRITING);
	/*
	 * Release stores: "being written" is visible before the data, so a
	 * reader that loads this data (acquire) sees WRITING or later in its
	 * recheck of seq. No standalone fence (TSan does not model them).
	 */
	mrc_store_release(&s->start, start);
	mrc_store_release(&s->end, end);
	/* Pairs with the load-acquire of seq in read_slot(). */
	mrc_store_release(&s->seq, pos + 1);
	/*
	 * Pairs with the hit path's load-acquire of the event word (and
	 * drain's): seeing it move means seeing this slot filled. A full
	 * barrier: the hooked call starts only after it.
	 */
	__atomic_fetch_add(&rec.events, 1, __ATOMIC_SEQ_CST);
}

MRC_HOOK_PATH void mrc_record_before(struct mrc_hook_call *c, uint64_t start,
				     uint64_t end)
{
	c->start = start;
	c->end = end;
	/* Before the push: see the argument at the top of the file. */
	c->epoch = __atomic_load_n(&rec.epoch, __ATOMIC_SEQ_CST);
	push(start, end);
}

MRC_HOOK_PATH void mrc_record_after(const struct mrc_hook_call *c)
{
	if (__atomic_load_n(&rec.epoch, __ATOMIC_SEQ_CST) != c->epoch)
		push(c->start, c->end);
}

const uint32_t *mrc_record_event_word(void)
{
	return &rec.events;
}

/*
 * A hook that read no readers skips recording, so attach must come before
 * the new reader registers anything: the seq_cst RMW orders it before the
 * cache's first watch, and the hook's seq_cst load either sees it or came
 * first (its call then precedes every registration of this reader).
 */
uint64_t mrc_record_attach(void)
{
	__atomic_fetch_add(&mrc_record_readers, 1, __ATOMIC_SEQ_CST);
	return __atomic_load_n(&rec.producer, __ATOMIC_SEQ_CST);
}

void mrc_record_detach(void)
{
	__atomic_fetch_sub(&mrc_record_readers, 1, __ATOMIC_SEQ_CST);
}

enum slot_state { SLOT_FILLED, SLOT_UNFILLED, SLOT_LOST };

/*
 * Read position @pos. Its slot can only be rewritten for position
 * pos + MRC_RECORD_SLOTS, so when the sequence does not match, the
 * producer index says which: reused (lost) or not written yet.
 */
static enum slot_state read_slot(uint64_t pos, uint64_t *start, uint64_t *end)
{
	const struct record_slot *s = &rec.slot[pos & (MRC_RECORD_SLOTS - 1)];
	/* Pairs with the store-release of seq in push(). */
	uint64_t seq = mrc_load_acquire(&s->seq);

	/* Pair with push()'s release stores: a rewrite shows in the recheck. */
	*start = mrc_load_acquire(&s->start);
	*end = mrc_load_acquire(&s->end);
	if (seq == pos + 1 && mrc_load_relaxed(&s->seq) == pos + 1)
		return SLOT_FILLED;
	if (__atomic_load_n(&rec.producer, __ATOMIC_SEQ_CST) - pos >
	    MRC_RECORD_SLOTS)
		return SLOT_LOST;
	return SLOT_UNFILLED;
}

int mrc_record_read(uint64_t *cursor, mrc_record_fn fn, void *arg)
{
	uint64_t prod = __atomic_load_n(&rec.producer, __ATOMIC_SEQ_CST);
	uint64_t pos = *cursor, resume = prod, start, end;

	if (prod - pos > MRC_RECORD_SLOTS)
		goto lost;
	for (; pos != prod; pos++) {
		switch (read_slot(pos, &start, &end)) {
		case SLOT_FILLED:
			fn(arg, start, end);
			break;
		case SLOT_UNFILLED:
			/* Its call has not started: read it next time. */
			if (resume == prod)
				resume = pos;
			break;
		case SLOT_LOST:
			goto lost;
		}
	}
	*cursor = resume;
	return 0;
lost:
	*cursor = prod;
	return 1;
}

uint64_t mrc_record_watch_begin(void)
{
	__atomic_fetch_add(&rec.epoch, 1, __ATOMIC_SEQ_CST);
	return __atomic_load_n(&rec.producer, __ATOMIC_SEQ_CST);
}

int mrc_record_overlaps(uint64_t from, uint64_t start, uint64_t end)
{
	uint64_t prod = __atomic_load_n(&rec.producer, __ATOMIC_SEQ_CST);
	uint64_t s, e;

	if (prod - from > MRC_RECORD_SLOTS)
		return 1;
	for (uint64_t pos = from; pos != prod; pos++) {
		switch (read_slot(pos, &s, &e)) {
		case SLOT_FILLED:
			if (s < end && e > start)
				return 1;
			break;
		case SLOT_UNFILLED:	/* its call has not started */
			break;
		case SLOT_LOST:
			return 1;
		}
	}
	return 0;
}
