/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The record of changed ranges: a bounded, lock-free, multi-producer ring
 * that the libc hooks write and every hooks monitor reads with its own
 * cursor. One per process (the hooks are process-wide); a range is written
 * before the hooked call changes the mapping.
 *
 * Producers (any thread, a signal handler, a thread holding a cache lock)
 * never block, never allocate and never wait for a reader: a reader that
 * fell a whole ring behind finds out (the positions tell it) and drops
 * everything instead, as the kernel ring's overflow does. Nothing is lost
 * silently.
 */
#ifndef MRC_HOOKS_RECORD_H
#define MRC_HOOKS_RECORD_H

#include <stdint.h>

#include "atomics.h"

#define MRC_RECORD_SLOTS 4096u	/* a power of two; 96 KiB */

/*
 * Everything a hook runs is left alone by ThreadSanitizer: glibc calls
 * madvise on an exiting thread's stack after TSan has retired the thread,
 * and TSan's entry instrumentation then faults. The record's atomics are
 * the only shared accesses on that path and need no checking to be
 * correct; the readers' side stays instrumented.
 */
#define MRC_HOOK_PATH __attribute__((no_sanitize_thread))

/* What a hook keeps between its two halves (on its own stack). */
struct mrc_hook_call {
	uint64_t start;
	uint64_t end;
	uint64_t epoch;		/* registrations begun, before the call */
};

/* Monitors running in this process; 0 makes every hook a pass-through. */
extern uint32_t mrc_record_readers;

/* The whole cost of a hook when no cache uses them: a load and a branch. */
MRC_HOOK_PATH static inline int mrc_record_wanted(void)
{
	/* Pairs with the RMW in mrc_record_attach() (see record.c). */
	return __atomic_load_n(&mrc_record_readers, __ATOMIC_SEQ_CST) != 0;
}

/* Producer: around the hooked call (see record.c for why both halves). */
MRC_HOOK_PATH void mrc_record_before(struct mrc_hook_call *c, uint64_t start,
				     uint64_t end);
MRC_HOOK_PATH void mrc_record_after(const struct mrc_hook_call *c);

/* Consumers. */
const uint32_t *mrc_record_event_word(void);
/* Start reading: returns the position to read from. */
uint64_t mrc_record_attach(void);
void mrc_record_detach(void);

typedef void (*mrc_record_fn)(void *arg, uint64_t start, uint64_t end);
/*
 * Hand each range recorded from *cursor on to @fn; advance *cursor past
 * what was read (it stops at a slot still being written). Return 1 when
 * ranges were lost (the ring lapped the cursor): the caller must then
 * assume everything changed.
 */
int mrc_record_read(uint64_t *cursor, mrc_record_fn fn, void *arg);

/*
 * For registration: mrc_record_watch_begin() before the pages are pinned
 * returns a position; mrc_record_overlaps(pos, ...) after says whether a
 * range recorded since overlaps [start, end) (or ranges were lost).
 */
uint64_t mrc_record_watch_begin(void);
int mrc_record_overlaps(uint64_t from, uint64_t start, uint64_t end);

#endif /* MRC_HOOKS_RECORD_H */
