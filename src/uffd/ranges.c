// SPDX-License-Identifier: BSD-2-Clause
/*
 * The record of changed ranges: a ring with one producer (the userfaultfd
 * reader) that never waits for its readers. It overwrites the oldest
 * slot; a reader detects that after reading a slot (the slot is claimed
 * before it is rewritten, as a seqlock's writer does), and then treats
 * everything as changed (the kernel monitor's overflow rule). 4096
 * ranges are 64 KiB: a cache lapped by that many changes between two of
 * its calls was idle, and dropping everything costs it re-registrations,
 * never a wrong answer.
 */
#include "atomics.h"
#include "uffd/ranges.h"

#define RANGES		4096u
#define RANGES_MASK	(RANGES - 1)

struct range {
	uint64_t start;
	uint64_t end;
};

static struct range slots[RANGES];
/* Positions whose slot the producer began to write. */
static uint64_t claimed;
/* Positions written completely: where readers stop. */
static uint64_t head;

void mrc_uffd_ranges_push(uint64_t start, uint64_t end)
{
	uint64_t pos = mrc_load_relaxed(&head);
	struct range *s = &slots[pos & RANGES_MASK];

	mrc_store_relaxed(&claimed, pos + 1);
	/*
	 * Release: the claim before each new word of the slot. Pairs with
	 * the load-acquires in slot_intact(), so a reader that saw either
	 * new word sees the claim too.
	 */
	mrc_store_release(&s->start, start);
	mrc_store_release(&s->end, end);
	/* Pairs with the load-acquire in mrc_uffd_ranges_end(). */
	mrc_store_release(&head, pos + 1);
}

uint64_t mrc_uffd_ranges_end(void)
{
	return mrc_load_acquire(&head);
}

/* Read the slot of @pos; 0 when the producer has reused it meanwhile. */
static int slot_intact(uint64_t pos, struct range *r)
{
	const struct range *s = &slots[pos & RANGES_MASK];

	/* Acquire: the load of the claim below comes after both. */
	r->start = mrc_load_acquire(&s->start);
	r->end = mrc_load_acquire(&s->end);
	/* The write of pos + RANGES claims first: claimed > pos + RANGES. */
	return mrc_load_relaxed(&claimed) - pos <= RANGES;
}

int mrc_uffd_ranges_read(uint64_t *cursor, mrc_uffd_range_fn fn, void *arg)
{
	uint64_t end = mrc_uffd_ranges_end();
	uint64_t pos = *cursor;
	struct range r;
	int lost = end - pos > RANGES;

	for (; !lost && pos != end; pos++) {
		if (slot_intact(pos, &r))
			fn(arg, r.start, r.end);
		else
			lost = 1;
	}
	*cursor = end;
	return lost;
}

int mrc_uffd_ranges_overlap(uint64_t from, uint64_t start, uint64_t end)
{
	uint64_t stop = mrc_uffd_ranges_end();
	struct range r;

	if (stop - from > RANGES)
		return 1;
	for (uint64_t pos = from; pos != stop; pos++) {
		if (!slot_intact(pos, &r))
			return 1;
		if (r.start < end && start < r.end)
			return 1;
	}
	return 0;
}
