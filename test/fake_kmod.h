/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A stand-in for /dev/mrcache in user space, for unit tests of the
 * library's kernel monitor: open() of the device path gives a memfd that
 * the library maps as its ring, and ioctl() on it is answered here. The
 * test plays the kernel with fk_invalidate() and friends, which write the
 * ring exactly as kmod/mrc_ring.c does (same stores, same order), and can
 * stop half way through an invalidation to force an interleaving that the
 * real module allows but a test cannot time.
 *
 * Only for tests that link it: it defines open() and ioctl(), which then
 * take precedence over libc's for the whole process (calls for any other
 * path or file descriptor go straight to the system calls).
 */
#ifndef MRC_FAKE_KMOD_H
#define MRC_FAKE_KMOD_H

#include <stdbool.h>
#include <stdint.h>

#define FK_ENTRIES	8
#define FK_SLOTS	64

/* Forget everything; the next open() of the device sets up afresh. */
void fk_reset(void);
/* The armed or invalid watch whose range contains @addr, or -1. */
int fk_watch_at(const void *addr);
/* A whole invalidation of watch @id, as the MMU notifier callback does it. */
void fk_invalidate(int id);
/*
 * The first half: the generation moves and the ring is found full, but
 * the overflow is not counted yet (the module does both under one lock;
 * a reader that does not take that lock cannot tell the difference).
 * Returns false, having done the whole invalidation, when the ring has
 * room or the watch was not armed.
 */
bool fk_invalidate_begin(int id);
/* The second half: count the overflow, then move the sequence word. */
void fk_invalidate_end(void);
/* Events queued and not consumed yet. */
uint32_t fk_pending(void);

#endif
