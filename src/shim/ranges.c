// SPDX-License-Identifier: BSD-2-Clause
/*
 * Watched ranges for the runtime shims (see ranges.h). Uses only the
 * public watcher API: the shims are separate libraries.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "mrcache.h"
#include "shim/index.h"
#include "shim/ranges.h"

/* When the monitor is full, this share of the oldest watches goes. */
#define TRIM_DIVISOR 4

struct range {
	uintptr_t addr;
	size_t len;
	uint64_t serial;	/* the watch's cookie */
	uint32_t refs;
	struct mrc_watchpoint wp;
	struct range *older, *newer;	/* in watch order */
};

struct mrc_ranges {
	struct mrc_watcher *watcher;
	mrc_ranges_fn fn;
	void *arg;
	pthread_mutex_t lock;
	void *tree;			/* struct range by (addr, len) */
	void *by_serial;		/* ... by serial (the cookie) */
	struct mrc_index index;		/* ... for lock-free checks */
	struct range *oldest, *newest;
	size_t count;
	uint64_t next_serial;
	struct mrc_ranges_settle settle;	/* trim, drains, the watcher's words */
	int wake_fd;			/* trim, or stop the thread */
	int stopping;
	int thread_running;
	pthread_t thread;
	/* Test only (mrcache-runtimes(7)): hold the drain thread off. */
	unsigned wake_delay_ms;		/* after it wakes, before it drains */
	unsigned report_delay_ms;	/* between taking a change and reporting it */
};

/* Set on the drain thread: the test delays hold only it off. */
static __thread int on_drain_thread;

static void test_delay(unsigned ms)
{
	if (ms && on_drain_thread)
		usleep(ms * 1000u);
}

static unsigned test_setting(const char *name)
{
	const char *text = getenv(name);

	return text ? (unsigned)strtoul(text, NULL, 10) : 0;
}

static int compare(const void *a, const void *b)
{
	const struct range *x = a, *y = b;

	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	return 0;
}

static int compare_serial(const void *a, const void *b)
{
	const struct range *x = a, *y = b;

	return x->serial < y->serial ? -1 : x->serial > y->serial;
}

static struct range *find(struct mrc_ranges *r, const void *addr, size_t len)
{
	struct range key = { .addr = (uintptr_t)addr, .len = len };
	struct range **hit = tfind(&key, &r->tree, compare);

	return hit ? *hit : NULL;
}

static void link_newest(struct mrc_ranges *r, struct range *e)
{
	e->older = r->newest;
	e->newer = NULL;
	if (r->newest)
		r->newest->newer = e;
	else
		r->oldest = e;
	r->newest = e;
	r->count++;
}

/* Lock held: forget @e and its watch. */
static void drop(struct mrc_ranges *r, struct range *e)
{
	if (e->older)
		e->older->newer = e->newer;
	else
		r->oldest = e->newer;
	if (e->newer)
		e->newer->older = e->older;
	else
		r->newest = e->older;
	r->count--;
	mrc_index_remove(&r->index, e->addr, e->len);
	tdelete(e, &r->tree, compare);
	tdelete(e, &r->by_serial, compare_serial);
	mrc_watcher_remove(r->watcher, &e->wp);
	free(e);
}

static int add(struct mrc_ranges *r, const void *addr, size_t len)
{
	struct range *e = calloc(1, sizeof(*e));
	int ret;

	if (!e)
		return -ENOMEM;
	e->addr = (uintptr_t)addr;
	e->len = len;
	e->serial = ++r->next_serial;
	e->refs = 1;
	ret = mrc_watcher_add(r->watcher, addr, len, e->serial, &e->wp);
	if (!ret && !tsearch(e, &r->tree, compare))
		ret = -ENOMEM;
	if (!ret && !tsearch(e, &r->by_serial, compare_serial)) {
		tdelete(e, &r->tree, compare);
		ret = -ENOMEM;
	}
	if (!ret && mrc_index_insert(&r->index, e->addr, len, &e->wp)) {
		tdelete(e, &r->tree, compare);
		tdelete(e, &r->by_serial, compare_serial);
		ret = -ENOMEM;
	}
	if (ret == -ENOMEM)
		mrc_watcher_remove(r->watcher, &e->wp);
	if (ret) {
		free(e);
		return ret;
	}
	link_newest(r, e);
	return 0;
}

static void ask_for_trim(struct mrc_ranges *r)
{
	uint64_t one = 1;

	__atomic_store_n(&r->settle.trim, 1, __ATOMIC_RELAXED);
	if (r->wake_fd >= 0 && write(r->wake_fd, &one, sizeof(one)) < 0)
		fprintf(stderr, "mrcache shim: cannot wake the drain thread: %s\n",
			strerror(errno));
}

int mrc_ranges_watch(struct mrc_ranges *r, const void *addr, size_t len)
{
	struct range *e;
	int ret = 0;

	pthread_mutex_lock(&r->lock);
	e = find(r, addr, len);
	/* A fired watch of the same range belongs to the old memory. */
	if (e && !mrc_watchpoint_valid(r->watcher, &e->wp)) {
		drop(r, e);
		e = NULL;
	}
	if (e)
		e->refs++;
	else
		ret = add(r, addr, len);
	if (ret == -ENOSPC)
		ask_for_trim(r);
	pthread_mutex_unlock(&r->lock);
	return ret;
}

void mrc_ranges_unwatch(struct mrc_ranges *r, const void *addr, size_t len)
{
	struct range *e;

	pthread_mutex_lock(&r->lock);
	e = find(r, addr, len);
	if (e && !--e->refs)
		drop(r, e);
	pthread_mutex_unlock(&r->lock);
}

/*
 * Lock-free (a runtime calls this at every cache hit): a copy of the
 * watchpoint from the index. Its word outlives the watch (the watcher's
 * table or the module's page), and a removed watch's word has moved, so a
 * copy taken just before a drop checks invalid, or valid as of before.
 */
int mrc_ranges_check(struct mrc_ranges *r, const void *addr, size_t len)
{
	struct mrc_watchpoint wp;

	if (!mrc_index_find(&r->index, (uintptr_t)addr, len, &wp))
		return 0;
	return mrc_watchpoint_valid(r->watcher, &wp) ? 1 : -ESTALE;
}

void mrc_ranges_forget(struct mrc_ranges *r, const void *addr, size_t len)
{
	struct range *e;

	pthread_mutex_lock(&r->lock);
	e = find(r, addr, len);
	if (e)
		drop(r, e);
	pthread_mutex_unlock(&r->lock);
}

/* Lock held: the range whose watch has cookie @serial, or NULL. */
static struct range *find_serial(struct mrc_ranges *r, uint64_t serial)
{
	struct range key = { .serial = serial }, **hit;

	hit = tfind(&key, &r->by_serial, compare_serial);
	return hit ? *hit : NULL;
}

/*
 * A report of a watch that was replaced meanwhile (same range, watched
 * again after its memory changed) is about memory nobody caches: skip it.
 *
 * The watch is dropped only after the report: until then a check of the
 * range says -ESTALE (its watch fired), never 0. A 0 ("not watched") would
 * make the UCX shim watch afresh the stale region UCX still holds, the
 * report not there yet, and let the send use it.
 */
static void fired(void *arg, uint64_t cookie, void *addr, size_t len)
{
	struct mrc_ranges *r = arg;
	struct range *e;
	uintptr_t a = 0;
	size_t l = 0;

	(void)addr;
	(void)len;
	pthread_mutex_lock(&r->lock);
	e = find_serial(r, cookie);
	if (e) {
		a = e->addr;
		l = e->len;
	}
	pthread_mutex_unlock(&r->lock);
	if (!e)
		return;
	test_delay(r->report_delay_ms);
	r->fn(r->arg, (void *)a, l);
	pthread_mutex_lock(&r->lock);
	/* Gone if forgotten, unwatched or watched again meanwhile. */
	e = find_serial(r, cookie);
	if (e)
		drop(r, e);
	pthread_mutex_unlock(&r->lock);
}

static int trim(struct mrc_ranges *r);

#define DRAIN_STARTED 1ull
#define DRAIN_ENDED (1ull << 32)

/*
 * What the drain takes out of the watcher (the backend's collected word,
 * the watcher's count of fired watches, the trim flag) is stored with
 * release after the start is counted, and mrc_ranges_settled() loads it
 * with acquire: a check that sees any of it gone also sees the start.
 */
int mrc_ranges_drain(struct mrc_ranges *r)
{
	int trimmed = 0, ret;

	__atomic_add_fetch(&r->settle.drains, DRAIN_STARTED, __ATOMIC_RELAXED);
	if (__atomic_load_n(&r->settle.trim, __ATOMIC_RELAXED))
		trimmed = trim(r);
	ret = mrc_watcher_drain(r->watcher, fired, r);
	__atomic_add_fetch(&r->settle.drains, DRAIN_ENDED, __ATOMIC_RELEASE);
	return ret < 0 ? ret : ret + trimmed;
}

int mrc_ranges_pending(const struct mrc_ranges *r)
{
	return mrc_ranges_settle_pending(&r->settle);
}

int mrc_ranges_settled(const struct mrc_ranges *r)
{
	return mrc_ranges_settle_done(&r->settle);
}

const struct mrc_ranges_settle *mrc_ranges_settle_of(const struct mrc_ranges *r)
{
	return &r->settle;
}

/*
 * The monitor is full: report the oldest watches as changed and drop them
 * (the runtime forgets their registrations, which is always safe).
 * Return: how many were reported.
 */
static int trim(struct mrc_ranges *r)
{
	size_t n, i = 0;
	struct { uintptr_t addr; size_t len; } *out;

	pthread_mutex_lock(&r->lock);
	__atomic_store_n(&r->settle.trim, 0, __ATOMIC_RELEASE);
	n = r->count / TRIM_DIVISOR + 1;
	out = calloc(n, sizeof(*out));
	for (i = 0; out && i < n && r->oldest; i++) {
		out[i].addr = r->oldest->addr;
		out[i].len = r->oldest->len;
		drop(r, r->oldest);
	}
	pthread_mutex_unlock(&r->lock);
	for (i = 0; out && i < n && out[i].len; i++)
		r->fn(r->arg, (void *)out[i].addr, out[i].len);
	free(out);
	return (int)i;
}

static void *drain_main(void *arg)
{
	struct mrc_ranges *r = arg;
	struct pollfd fds[2] = {
		{ .fd = mrc_watcher_fd(r->watcher), .events = POLLIN },
		{ .fd = r->wake_fd, .events = POLLIN },
	};
	uint64_t count;

	on_drain_thread = 1;
	for (;;) {
		if (poll(fds, 2, -1) < 0 && errno != EINTR)
			break;
		test_delay(r->wake_delay_ms);
		if (fds[1].revents & POLLIN) {
			if (read(r->wake_fd, &count, sizeof(count)) < 0)
				break;
			if (__atomic_load_n(&r->stopping, __ATOMIC_ACQUIRE))
				break;
			mrc_ranges_drain(r);
		}
		if (fds[0].revents & (POLLERR | POLLHUP))
			break;
		if (fds[0].revents & POLLIN)
			mrc_ranges_drain(r);
	}
	return NULL;
}

static int start_thread(struct mrc_ranges *r)
{
	int ret = mrc_watcher_fd(r->watcher);

	if (ret < 0)
		return ret;
	r->wake_fd = eventfd(0, EFD_CLOEXEC);
	if (r->wake_fd < 0)
		return -errno;
	ret = pthread_create(&r->thread, NULL, drain_main, r);
	if (ret)
		return -ret;
	r->thread_running = 1;
	return 0;
}

int mrc_ranges_open(struct mrc_ranges **out, mrc_ranges_fn fn, void *arg,
		    int thread)
{
	struct mrc_ranges *r = calloc(1, sizeof(*r));
	int ret;

	if (!r)
		return -ENOMEM;
	r->fn = fn;
	r->arg = arg;
	r->wake_fd = -1;
	r->wake_delay_ms = test_setting("MRCACHE_SHIM_TEST_WAKE_DELAY_MS");
	r->report_delay_ms = test_setting("MRCACHE_SHIM_TEST_REPORT_DELAY_MS");
	mrc_index_init(&r->index);
	pthread_mutex_init(&r->lock, NULL);
	ret = mrc_watcher_open(NULL, &r->watcher);
	if (!ret)
		ret = mrc_watcher_words(r->watcher, &r->settle.words);
	if (!ret && thread)
		ret = start_thread(r);
	if (ret) {
		mrc_ranges_close(r);
		return ret;
	}
	*out = r;
	return 0;
}

static void free_range(void *e)
{
	free(e);
}

static void keep_range(void *e)
{
	(void)e;	/* freed through the other tree */
}

void mrc_ranges_close(struct mrc_ranges *r)
{
	uint64_t one = 1;

	if (r->thread_running) {
		__atomic_store_n(&r->stopping, 1, __ATOMIC_RELEASE);
		if (write(r->wake_fd, &one, sizeof(one)) == sizeof(one))
			pthread_join(r->thread, NULL);
	}
	if (r->wake_fd >= 0)
		close(r->wake_fd);
	/* Closing the watcher removes every watch at once. */
	if (r->watcher)
		mrc_watcher_close(r->watcher);
	tdestroy(r->tree, keep_range);
	tdestroy(r->by_serial, free_range);
	mrc_index_destroy(&r->index);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

const char *mrc_ranges_monitor(const struct mrc_ranges *r)
{
	return mrc_watcher_monitor(r->watcher);
}
