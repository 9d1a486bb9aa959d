// SPDX-License-Identifier: BSD-2-Clause
/*
 * The watcher's libc-hooks backend: the hooks write every range they see
 * changing into the process-wide record (src/hooks/record.h) before the
 * call runs; this backend reads the record from its own cursor and fires
 * the watches overlapping each range (range_watches.c, which also holds
 * the check: the record's event word, and the pending ranges only when it
 * moved).
 *
 * The pollable fd. A hook runs inside any libc call, in signal handlers,
 * inside malloc's locks and in vfork children: it may only touch the
 * record (hooks.h), so it cannot signal an eventfd (that would be a system
 * call per munmap on our behalf, and a change to code this watcher must
 * only observe). Instead mrc_watcher_fd() starts a thread that looks at the
 * event word every MRC_WATCH_HOOKS_POLL_MS and signals an eventfd when it
 * moved past what was collected. The fd is for waking a drain promptly;
 * correctness never waits for it (a check sees pending ranges at once).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "atomics.h"
#include "error.h"
#include "hooks/hooks.h"
#include "hooks/record.h"
#include "watch/range_watches.h"

#define MRC_WATCH_HOOKS_POLL_MS 1

struct hooks_backend {
	struct mrc_range_watches watches;
	int event_fd;		/* -1 until mrc_watcher_fd() */
	int signalled;		/* event_fd holds a count to reset */
	int stop_fd;
	pthread_t signaller;
};

static struct hooks_backend *hb_of(const struct mrc_watcher *w)
{
	return w->priv;
}

/* The event word is loaded before the record is read. */
static uint32_t read_record(uint64_t *cursor, mrc_range_fn fn, void *arg,
			    int *lost)
{
	/* Pairs with the fetch-add in the record's push(). */
	uint32_t word = mrc_load_acquire(mrc_record_event_word());

	*lost = mrc_record_read(cursor, fn, arg);
	return word;
}

static const struct mrc_range_record hooks_record = {
	.event_word = mrc_record_event_word,
	.read = read_record,
	.overlaps = mrc_record_overlaps,
};

static int hooks_open(struct mrc_watcher *w)
{
	struct hooks_backend *hb;
	int ret = mrc_hooks_install();

	if (ret)
		return ret;
	hb = calloc(1, sizeof(*hb));
	if (!hb)
		return mrc_error(ENOMEM, "no memory for the hooks watcher");
	hb->event_fd = -1;
	hb->stop_fd = -1;
	mrc_range_watches_init(&hb->watches, &hooks_record, w,
			       mrc_record_attach());
	w->priv = hb;
	return 0;
}

static void stop_signaller(struct hooks_backend *hb, int joinable)
{
	uint64_t one = 1;

	if (hb->stop_fd < 0)
		return;
	if (joinable) {
		if (write(hb->stop_fd, &one, sizeof(one)) != sizeof(one))
			mrc_warn("cannot stop the watcher's signalling thread: %s",
				 strerror(errno));
		pthread_join(hb->signaller, NULL);
	}
	close(hb->stop_fd);
	close(hb->event_fd);
}

static void hooks_close(struct mrc_watcher *w)
{
	struct hooks_backend *hb = hb_of(w);

	/* A forked child has no signalling thread to stop. */
	stop_signaller(hb, w->owner == getpid());
	mrc_record_detach();
	free(hb);
	w->priv = NULL;
}

static int hooks_add(struct mrc_watcher *w, struct mrc_watch_slot *s,
		     const uint64_t **word, uint64_t *generation)
{
	struct hooks_backend *hb = hb_of(w);

	/* A hook whose call is in flight now records its range again after. */
	(void)mrc_record_watch_begin();
	if (mrc_unlikely(!mrc_hooks_intact()) && mrc_hooks_install())
		mrc_warn("cannot put the libc hooks back after another library replaced them: %s",
			 mrc_last_error());
	mrc_range_watches_insert(&hb->watches, s, word, generation);
	return 0;
}

static void hooks_remove(struct mrc_watcher *w, struct mrc_watch_slot *s)
{
	mrc_range_watches_remove(&hb_of(w)->watches, s);
}

/* Only after a signal: a read per collect would tax every cache lookup. */
static void reset_event_fd(struct hooks_backend *hb)
{
	uint64_t count;

	if (!mrc_load_relaxed(&hb->signalled) ||
	    !mrc_exchange(&hb->signalled, 0))
		return;
	if (read(hb->event_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		mrc_warn("cannot reset the watcher's eventfd: %s", strerror(errno));
}

static void hooks_collect(struct mrc_watcher *w)
{
	struct hooks_backend *hb = hb_of(w);

	reset_event_fd(hb);
	mrc_range_watches_collect(&hb->watches);
}

static int hooks_valid(const struct mrc_watcher *w,
		       const struct mrc_watchpoint *wp)
{
	return mrc_range_watches_valid(&hb_of(w)->watches, wp);
}

static void hooks_words(const struct mrc_watcher *w, const uint32_t **events,
			const uint32_t **collected)
{
	mrc_range_watches_words(&hb_of(w)->watches, events, collected);
}

static void *signaller_main(void *arg)
{
	struct hooks_backend *hb = arg;
	struct pollfd stop = { .fd = hb->stop_fd, .events = POLLIN };
	uint32_t signalled = mrc_load_acquire(&hb->watches.collected);
	uint64_t one = 1;

	for (;;) {
		uint32_t word;

		if (poll(&stop, 1, MRC_WATCH_HOOKS_POLL_MS) > 0)
			break;
		word = mrc_load_acquire(mrc_record_event_word());
		if (word == signalled ||
		    word == mrc_load_acquire(&hb->watches.collected))
			continue;
		if (write(hb->event_fd, &one, sizeof(one)) != sizeof(one))
			break;
		/*
		 * After the write: a collect that sees the flag finds the
		 * count to reset. One that ran in between left it, and the
		 * drain it woke comes back once more to reset it.
		 */
		mrc_store_release(&hb->signalled, 1);
		signalled = word;
	}
	return NULL;
}

static int start_signaller(struct hooks_backend *hb)
{
	int ret;

	hb->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	hb->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (hb->event_fd < 0 || hb->stop_fd < 0) {
		ret = mrc_error(errno, "eventfd for the hooks watcher");
		goto fail;
	}
	ret = pthread_create(&hb->signaller, NULL, signaller_main, hb);
	if (!ret)
		return 0;
	ret = mrc_error(ret, "cannot start the hooks watcher's signalling thread");
fail:
	if (hb->event_fd >= 0)
		close(hb->event_fd);
	if (hb->stop_fd >= 0)
		close(hb->stop_fd);
	hb->event_fd = hb->stop_fd = -1;
	return ret;
}

static int hooks_fd(struct mrc_watcher *w)
{
	struct hooks_backend *hb = hb_of(w);
	int ret;

	if (hb->stop_fd < 0) {
		ret = start_signaller(hb);
		if (ret)
			return ret;
	}
	return hb->event_fd;
}

const struct mrc_watch_backend mrc_watch_hooks = {
	.name = "hooks",
	.open = hooks_open,
	.close = hooks_close,
	.add = hooks_add,
	.remove = hooks_remove,
	.collect = hooks_collect,
	.valid = hooks_valid,
	.fd = hooks_fd,
	.words = hooks_words,
};
