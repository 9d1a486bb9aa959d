// SPDX-License-Identifier: BSD-2-Clause
/*
 * The eventfds the userfaultfd reader signals (wakeups.h says why the list
 * only grows and how a close waits out the reader's write).
 *
 * The reader writes the eventfd, then raises the node's flag; a consumer
 * resets the count only after it saw the flag, so a collect that finds
 * nothing signalled costs no system call. A write whose flag comes after
 * the consumer looked leaves the fd readable: one more drain, which then
 * sees the flag. A drain can therefore be woken once for nothing, never
 * left asleep with ranges waiting, nor kept awake.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "atomics.h"
#include "error.h"
#include "uffd/wakeups.h"

enum { WAKEUP_FREE, WAKEUP_ARMED, WAKEUP_WRITING };

struct mrc_uffd_wakeup {
	struct mrc_uffd_wakeup *next;	/* set before the node is published */
	int fd;
	uint32_t state;
	uint32_t signalled;	/* the reader wrote since the last reset */
};

/* The list; pushed under the caller's lock, walked by the reader. */
static struct mrc_uffd_wakeup *wakeups;
/*
 * MRCACHE_TEST_WAKEUP_DELAY_US: the reader pauses between claiming a
 * wakeup and writing it, so a test can close the watcher inside that
 * window (test/watcher_test.c). Read before the reader starts.
 */
static struct timespec test_delay;

void mrc_uffd_wakeups_init(void)
{
	const char *us = getenv("MRCACHE_TEST_WAKEUP_DELAY_US");
	long n = us ? atol(us) : 0;

	test_delay = (struct timespec){ n / 1000000, n % 1000000 * 1000 };
}

static struct mrc_uffd_wakeup *free_node(void)
{
	struct mrc_uffd_wakeup *wk;

	for (wk = wakeups; wk; wk = wk->next)
		if (mrc_load_acquire(&wk->state) == WAKEUP_FREE)
			return wk;
	wk = calloc(1, sizeof(*wk));
	if (!wk)
		return NULL;
	wk->next = wakeups;
	/* Pairs with the load-acquire of the head in mrc_uffd_wakeups_signal(). */
	mrc_store_release(&wakeups, wk);
	return wk;
}

int mrc_uffd_wakeups_add(struct mrc_uffd_wakeup **out)
{
	struct mrc_uffd_wakeup *wk = free_node();
	int fd;

	if (!wk)
		return mrc_error(ENOMEM, "no memory for a userfaultfd wakeup");
	fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (fd < 0)
		return mrc_error(errno, "eventfd for a userfaultfd wakeup");
	wk->fd = fd;
	mrc_store_relaxed(&wk->signalled, 0);
	/* Pairs with the reader's claim (mrc_cas) in signal_one(). */
	mrc_store_release(&wk->state, WAKEUP_ARMED);
	*out = wk;
	return 0;
}

void mrc_uffd_wakeups_remove(struct mrc_uffd_wakeup *wk)
{
	uint32_t armed = WAKEUP_ARMED;

	/* The reader holds the node only for one non-blocking write. */
	while (!mrc_cas(&wk->state, &armed, WAKEUP_FREE)) {
		armed = WAKEUP_ARMED;
		sched_yield();
	}
	close(wk->fd);
	wk->fd = -1;
}

void mrc_uffd_wakeups_forget(void)
{
	for (struct mrc_uffd_wakeup *wk = wakeups; wk; wk = wk->next) {
		if (wk->state == WAKEUP_FREE)
			continue;
		close(wk->fd);
		wk->fd = -1;
		wk->state = WAKEUP_FREE;
	}
}

static void signal_one(struct mrc_uffd_wakeup *wk)
{
	uint32_t armed = WAKEUP_ARMED;
	uint64_t one = 1;
	int fd;

	if (!mrc_cas(&wk->state, &armed, WAKEUP_WRITING))
		return;
	fd = wk->fd;	/* the number stays this file's until the state moves */
	if (mrc_unlikely(test_delay.tv_sec | test_delay.tv_nsec))
		nanosleep(&test_delay, NULL);
	/* EAGAIN: the count is already as high as it goes, still readable. */
	(void)!write(fd, &one, sizeof(one));
	/* After the write: pairs with the exchange in mrc_uffd_wakeup_reset(). */
	mrc_store_release(&wk->signalled, 1);
	/* Pairs with the compare-and-swap in mrc_uffd_wakeups_remove(). */
	mrc_store_release(&wk->state, WAKEUP_ARMED);
}

void mrc_uffd_wakeups_signal(void)
{
	struct mrc_uffd_wakeup *wk;

	for (wk = mrc_load_acquire(&wakeups); wk; wk = wk->next)
		signal_one(wk);
}

int mrc_uffd_wakeup_fd(const struct mrc_uffd_wakeup *wk)
{
	return wk->fd;
}

void mrc_uffd_wakeup_reset(struct mrc_uffd_wakeup *wk)
{
	uint64_t count;

	if (!mrc_load_relaxed(&wk->signalled) || !mrc_exchange(&wk->signalled, 0))
		return;
	if (read(wk->fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		mrc_warn("cannot reset a userfaultfd wakeup: %s", strerror(errno));
}
