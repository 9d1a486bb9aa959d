/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The process's userfaultfd, as a source of "this range changed" records.
 *
 * One userfaultfd per process, shared by every uffd monitor (two caches
 * over the same buffer would otherwise collide: a range can be registered
 * with only one userfaultfd). Ranges are registered with
 * UFFDIO_REGISTER_MODE_WP and never write-protected, so the kernel reports
 * unmap, remove (madvise) and remap events for them and never delivers a
 * page fault that someone would have to resolve. A reader thread takes
 * the events from the kernel (the thread that changed the mapping waits
 * until it does) and appends each range to a record that every monitor
 * reads with its own cursor, as the hooks' record is read.
 *
 * The event word is odd while the reader holds events it took from the
 * kernel but has not recorded yet: the thread that changed the mapping
 * may already have returned, so a drain waits for the word to be even.
 * The reader never takes a lock, allocates nothing and calls nothing of
 * the cache, so a thread that holds the cache lock (or malloc's) and
 * unmaps a registered range cannot deadlock with it. After recording it
 * writes the consumers' wakeup eventfds (wakeups.c), never blocking.
 */
#ifndef MRC_UFFD_UFFD_H
#define MRC_UFFD_UFFD_H

#include <stdint.h>

/*
 * Start using the process's userfaultfd (opened, and its reader started,
 * by the first user); *cursor is set to the record's current end.
 * Return: 0 or -errno with mrc_error() set.
 */
int mrc_uffd_attach(uint64_t *cursor);
/* Stop using it; the last user stops the reader and closes it. */
void mrc_uffd_detach(void);

/* The word that moves when ranges are recorded (odd: being recorded). */
const uint32_t *mrc_uffd_event_word(void);

/*
 * Watch [start, end) (page-aligned). Return: 0, or -EFAULT (not mapped),
 * -EOPNOTSUPP (memory a userfaultfd cannot watch), -EBUSY (another
 * userfaultfd watches it) or another -errno, with mrc_error() set.
 */
int mrc_uffd_register(uint64_t start, uint64_t end);

/* Where the record ends now. */
uint64_t mrc_uffd_position(void);

typedef void (*mrc_uffd_range_fn)(void *arg, uint64_t start, uint64_t end);

/*
 * Wait until the reader has recorded what it took from the kernel, then
 * report every range recorded from *cursor on and move *cursor to the end.
 * Returns the event word the reports cover, and sets *lost when ranges
 * were overwritten before this cursor read them (report everything then).
 */
uint32_t mrc_uffd_read(uint64_t *cursor, mrc_uffd_range_fn fn, void *arg,
		       int *lost);

/*
 * Did a range recorded from @from on overlap [start, end)? (Lost: yes.)
 * Waits, as mrc_uffd_read() does, for what the reader took to be recorded.
 */
int mrc_uffd_overlaps(uint64_t from, uint64_t start, uint64_t end);

/*
 * An eventfd the reader signals after it recorded ranges (wakeups.c), for
 * a consumer that polls; the caller must be attached. Open: 0 or -errno
 * with mrc_error() set. Reset clears the count once the reader signalled
 * (no system call otherwise); a close waits out a signal in flight.
 */
struct mrc_uffd_wakeup;
int mrc_uffd_wakeup_open(struct mrc_uffd_wakeup **wk);
void mrc_uffd_wakeup_close(struct mrc_uffd_wakeup *wk);
int mrc_uffd_wakeup_fd(const struct mrc_uffd_wakeup *wk);
void mrc_uffd_wakeup_reset(struct mrc_uffd_wakeup *wk);

#endif /* MRC_UFFD_UFFD_H */
