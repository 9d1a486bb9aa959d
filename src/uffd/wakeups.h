/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Eventfds the userfaultfd reader signals after it recorded ranges, so a
 * consumer can poll for changes (the watcher's pollable fd) without a
 * thread of its own looking at the event word.
 *
 * Each wakeup is a node on a list that only grows (nodes are reused, never
 * freed), so the reader walks it without a lock. A node's state says who
 * may use its fd: the reader claims an armed node for the one write it
 * makes, and closing waits out that write before the fd is closed, so the
 * reader never writes to a number the process has reused for another file.
 * Adding, removing and forgetting run under the caller's lock (uffd.c's).
 */
#ifndef MRC_UFFD_WAKEUPS_H
#define MRC_UFFD_WAKEUPS_H

#include "uffd/uffd.h"

/* Lock held, before the reader starts: read the test's delay setting. */
void mrc_uffd_wakeups_init(void);
/* Lock held: a new armed wakeup with its own eventfd. 0 or -errno. */
int mrc_uffd_wakeups_add(struct mrc_uffd_wakeup **out);
/* Lock held: disarm @wk (waiting out a write in flight), close its fd. */
void mrc_uffd_wakeups_remove(struct mrc_uffd_wakeup *wk);
/* A forked child, single-threaded: close every copy, disarm everything. */
void mrc_uffd_wakeups_forget(void);
/* The reader, lock-free: signal every armed wakeup. */
void mrc_uffd_wakeups_signal(void);

#endif /* MRC_UFFD_WAKEUPS_H */
