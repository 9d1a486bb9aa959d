// SPDX-License-Identifier: BSD-2-Clause
/*
 * The progress thread: work a cache does for a process that stopped
 * calling it. It drains the monitor's events, so registrations of freed,
 * unmapped or migrating memory are deregistered promptly, and it releases
 * regions idle for longer than the idle bound (idle_timeout_ms), so a
 * buffer registered once does not stay pinned for the life of the process
 * (RLIMIT_MEMLOCK counts it).
 *
 * It sleeps in poll() on the monitor's descriptor when the monitor has
 * one (the kernel monitor's /dev/mrcache: readable when the ring has
 * events) and on an eventfd that stops it. The idle bound needs no
 * monitor: the thread wakes every quarter of the bound (at most every
 * second) to sweep; with a monitor that has no descriptor (the libc
 * hooks) it wakes at least every second to drain. The manual monitor has
 * nothing to drain: there only the idle bound gives the thread work.
 *
 * Everything it does goes through the cache's lock like any other call,
 * so it adds no new way in. In a forked child the thread does not exist
 * (only the forking thread is copied); the child only closes the eventfd.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "cache.h"
#include "error.h"

#define PROGRESS_TICK_MS 1000

/* The idle sweep's clock: milliseconds since the thread started, never 0. */
static uint32_t sweep_clock(const struct mrc_cache *cache)
{
	uint32_t ms = (uint32_t)((mrc_now_ns() - cache->progress.origin_ns) /
				 1000000u);

	return ms ? ms : 1;
}

/* How long poll() may sleep: -1 when only the monitor's descriptor matters. */
static int period_ms(const struct mrc_cache *cache, int fd)
{
	uint64_t idle = cache->config.idle_timeout_ms;

	if (idle)
		return idle / 4 == 0 ? 1 :
		       idle / 4 < PROGRESS_TICK_MS ? (int)(idle / 4) :
		       PROGRESS_TICK_MS;
	return fd >= 0 ? -1 : PROGRESS_TICK_MS;
}

/* Drain (the lock does it), sweep idle regions, deregister the dead. */
static void progress_tick(struct mrc_cache *cache)
{
	mrc_cache_lock(cache);
	if (cache->config.idle_timeout_ms)
		mrc_lru_sweep_idle(cache, sweep_clock(cache),
				   (uint32_t)cache->config.idle_timeout_ms);
	mrc_cache_unlock(cache);
}

static void *progress_main(void *arg)
{
	struct mrc_cache *cache = arg;
	struct pollfd fds[2] = {
		{ .fd = cache->monitor.wait_fd, .events = POLLIN },
		{ .fd = cache->progress.wake_fd, .events = POLLIN },
	};

	for (;;) {
		int n = poll(fds, 2, period_ms(cache, fds[0].fd));

		if (n < 0 && errno != EINTR)
			break;
		if (n > 0 && fds[1].revents)
			break;
		/* A monitor descriptor that failed is not polled again. */
		if (n > 0 && (fds[0].revents & (POLLERR | POLLHUP | POLLNVAL)))
			fds[0].fd = -1;
		progress_tick(cache);
	}
	return NULL;
}

/*
 * The thread runs with every signal blocked: the program's handlers must
 * not land on a thread it does not know about.
 */
static int spawn(struct mrc_cache *cache)
{
	sigset_t all, old;
	int ret;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = pthread_create(&cache->progress.thread, NULL, progress_main,
			     cache);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!ret)
		pthread_setname_np(cache->progress.thread, "mrcache-progress");
	return ret;
}

/**
 * mrc_progress_start() - start the cache's progress thread.
 * @cache: a cache whose monitor has started, not yet shared.
 *
 * Return: 0, or -errno with a message.
 */
int mrc_progress_start(struct mrc_cache *cache)
{
	struct mrc_progress *p = &cache->progress;
	int ret;

	p->origin_ns = mrc_now_ns();
	p->wake_fd = eventfd(0, EFD_CLOEXEC);
	if (p->wake_fd < 0)
		return mrc_error(errno, "eventfd for the progress thread: %s",
				 strerror(errno));
	ret = spawn(cache);
	if (ret) {
		close(p->wake_fd);
		p->wake_fd = -1;
		return mrc_error(ret, "cannot start the progress thread: %s",
				 strerror(ret));
	}
	p->running = 1;
	return 0;
}

/**
 * mrc_progress_stop() - stop and join the progress thread, if any.
 * @cache: unlocked (the thread may be waiting for the lock).
 *
 * In a forked child the thread was never copied: only the eventfd goes.
 */
void mrc_progress_stop(struct mrc_cache *cache)
{
	struct mrc_progress *p = &cache->progress;
	uint64_t one = 1;

	if (!p->running)
		return;
	if (cache->owner_pid == getpid()) {
		if (write(p->wake_fd, &one, sizeof(one)) != sizeof(one))
			mrc_warn("cannot wake the progress thread: %s",
				 strerror(errno));
		pthread_join(p->thread, NULL);
	}
	close(p->wake_fd);
	p->wake_fd = -1;
	p->running = 0;
}
