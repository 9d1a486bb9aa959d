// SPDX-License-Identifier: BSD-2-Clause
/*
 * The public watcher API (mrcache(3), "WATCHERS"): the table of watches,
 * the fired list and the drain; the monitor behind it is a backend
 * (watcher.h).
 *
 * A watch fires at most once: after that it stays invalid until removed.
 * That is what the kernel module does (it coalesces later invalidations of
 * a watch into its first event), and it is all a registration cache needs:
 * a changed registration is dropped, and a new one gets a new watch. So
 * the drain reports each fired watch's whole range, whatever part of it
 * changed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "atomics.h"
#include "../config.h"	/* src/config.h, not autoconf's */
#include "error.h"
#include "platform.h"
#include "watch/watcher.h"

static int owned(const struct mrc_watcher *w)
{
	if (mrc_likely(w->owner == getpid()))
		return 0;
	return mrc_error(ECHILD, "this watcher belongs to process %d; a forked child must open its own",
			 (int)w->owner);
}

void mrc_watcher_fire(struct mrc_watcher *w, struct mrc_watch_slot *s)
{
	struct mrc_watch_fired *f;

	if (!s->live || s->fired)
		return;
	s->fired = 1;
	/* Pairs with the load-acquire in mrc_watchpoint_valid(). */
	mrc_store_release(&s->generation, s->generation + 1);
	if (w->nfired == w->fired_cap) {
		size_t cap = w->fired_cap ? 2 * w->fired_cap : 64;

		f = realloc(w->fired, cap * sizeof(*f));
		if (!f) {
			/* The check still says invalid; only the report is lost. */
			mrc_warn("no memory to report a changed range to the drain");
			return;
		}
		w->fired = f;
		w->fired_cap = cap;
	}
	w->fired[w->nfired] = (struct mrc_watch_fired){
		s->cookie, s->node.start, s->node.end };
	__atomic_store_n(&w->nfired, w->nfired + 1, __ATOMIC_RELAXED);
}

void mrc_watcher_fire_all(struct mrc_watcher *w)
{
	for (uint32_t i = 0; i < w->used; i++)
		mrc_watcher_fire(w, mrc_watch_slot_at(w, i));
}

static int grow_table(struct mrc_watcher *w)
{
	struct mrc_watch_slot **chunks, *chunk;

	if (w->used == UINT32_MAX - MRC_WATCH_CHUNK)
		return mrc_error(ENOSPC, "a watcher holds at most %u watches",
				 w->used);
	chunks = realloc(w->chunks, (w->nchunks + 1) * sizeof(*chunks));
	if (!chunks)
		return mrc_error(ENOMEM, "no memory for the watch table");
	w->chunks = chunks;
	chunk = calloc(MRC_WATCH_CHUNK, sizeof(*chunk));
	if (!chunk)
		return mrc_error(ENOMEM, "no memory for %u more watches",
				 MRC_WATCH_CHUNK);
	w->chunks[w->nchunks++] = chunk;
	return 0;
}

static int alloc_slot(struct mrc_watcher *w, uint32_t *index)
{
	int ret;

	if (w->free_head) {
		*index = w->free_head - 1;
		w->free_head = mrc_watch_slot_at(w, *index)->next_free;
		return 0;
	}
	if (w->used == w->nchunks * MRC_WATCH_CHUNK) {
		ret = grow_table(w);
		if (ret)
			return ret;
	}
	*index = w->used++;
	return 0;
}

static void free_slot(struct mrc_watcher *w, uint32_t index)
{
	struct mrc_watch_slot *s = mrc_watch_slot_at(w, index);

	s->live = 0;
	/* A removed watchpoint never checks valid again. */
	mrc_store_release(&s->generation, s->generation + 1);
	s->next_free = w->free_head;
	w->free_head = index + 1;
}

static int open_backend(struct mrc_watcher *w,
			const struct mrc_watch_backend *b)
{
	int ret;

	w->backend = b;
	ret = b->open(w);
	if (ret) {
		w->backend = NULL;
		return ret;
	}
	w->words.fired = &w->nfired;
	b->words(w, &w->words.events, &w->words.collected);
	return 0;
}

/*
 * As a cache does: the module when loaded, else the libc hooks, else
 * userfaultfd; an explicit choice fails when unavailable.
 */
static int choose_auto(struct mrc_watcher *w)
{
	int ret = open_backend(w, &mrc_watch_kmod);

	if (ret != -ENODEV)
		return ret;
	ret = open_backend(w, &mrc_watch_hooks);
	if (!ret)
		return 0;
	mrc_warn("libc hooks unavailable for a watcher, trying userfaultfd: %s",
		 mrc_last_error());
	return open_backend(w, &mrc_watch_uffd);
}

static int choose_backend(struct mrc_watcher *w, uint32_t kind)
{
	switch (kind) {
	case MRC_MONITOR_KMOD:
		return open_backend(w, &mrc_watch_kmod);
	case MRC_MONITOR_HOOKS:
		return open_backend(w, &mrc_watch_hooks);
	case MRC_MONITOR_UFFD:
		return open_backend(w, &mrc_watch_uffd);
	case MRC_MONITOR_AUTO:
		return choose_auto(w);
	default:
		return mrc_error(ENOTSUP, "a watcher cannot use monitor '%s'; use kmod, hooks, uffd or auto",
				 mrc_monitor_kind_name(kind));
	}
}

/* The monitor asked for: the attribute, else MRCACHE_MONITOR, else auto. */
static int requested_monitor(const struct mrc_watcher_attr *attr,
			     uint32_t *kind)
{
	struct mrc_cache_attr cattr = { 0 };
	struct mrc_config config;
	int ret;

	if (attr && (attr->comp_mask & MRC_WATCHER_ATTR_MONITOR)) {
		cattr.comp_mask = MRC_ATTR_MONITOR;
		cattr.monitor = attr->monitor;
	}
	ret = mrc_config_load(&cattr, &config);
	*kind = config.monitor;
	return ret;
}

static int check_watcher_attr(const struct mrc_watcher_attr *attr)
{
	if (!attr)
		return 0;
	if (attr->comp_mask & ~(uint64_t)MRC_WATCHER_ATTR_ALL)
		return mrc_error(EINVAL, "mrc_watcher_attr.comp_mask has unknown bits 0x%llx",
				 (unsigned long long)(attr->comp_mask & ~(uint64_t)MRC_WATCHER_ATTR_ALL));
	if (attr->reserved)
		return mrc_error(EINVAL, "mrc_watcher_attr.reserved must be 0");
	return 0;
}

int mrc_watcher_open(const struct mrc_watcher_attr *attr,
		     struct mrc_watcher **watcher)
{
	struct mrc_watcher *w;
	uint32_t kind;
	int ret;

	if (!watcher)
		return mrc_error(EINVAL, "mrc_watcher_open: watcher is NULL");
	*watcher = NULL;
	ret = check_watcher_attr(attr);
	if (!ret)
		ret = requested_monitor(attr, &kind);
	if (ret)
		return ret;
	w = calloc(1, sizeof(*w));
	if (!w)
		return mrc_error(ENOMEM, "no memory for a watcher");
	w->owner = getpid();
	pthread_mutex_init(&w->lock, NULL);
	ret = choose_backend(w, kind);
	if (ret) {
		pthread_mutex_destroy(&w->lock);
		free(w);
		return ret;
	}
	*watcher = w;
	return 0;
}

int mrc_watcher_close(struct mrc_watcher *w)
{
	if (!w)
		return mrc_error(EINVAL, "mrc_watcher_close: watcher is NULL");
	/* A child only frees: the parent's watches are not its own. */
	for (uint32_t i = 0; w->owner == getpid() && i < w->used; i++) {
		struct mrc_watch_slot *s = mrc_watch_slot_at(w, i);

		if (s->live)
			w->backend->remove(w, s);
	}
	w->backend->close(w);
	for (uint32_t i = 0; i < w->nchunks; i++)
		free(w->chunks[i]);
	free(w->chunks);
	free(w->fired);
	pthread_mutex_destroy(&w->lock);
	free(w);
	return 0;
}

const char *mrc_watcher_monitor(const struct mrc_watcher *w)
{
	return w ? w->backend->name : NULL;
}

int mrc_watcher_fd(struct mrc_watcher *w)
{
	int ret;

	if (!w)
		return mrc_error(EINVAL, "mrc_watcher_fd: watcher is NULL");
	ret = owned(w);
	if (ret)
		return ret;
	pthread_mutex_lock(&w->lock);
	ret = w->backend->fd(w);
	pthread_mutex_unlock(&w->lock);
	return ret;
}

static int check_range(const void *addr, size_t len, uint64_t *start,
		       uint64_t *end)
{
	uint64_t page = mrc_page_size(), a = (uintptr_t)addr, e;

	if (!len)
		return mrc_error(EINVAL, "mrc_watcher_add: len is 0");
	if (__builtin_add_overflow(a, len, &e) ||
	    __builtin_add_overflow(e, page - 1, &e))
		return mrc_error(EINVAL, "mrc_watcher_add: %p + %zu wraps around",
				 addr, len);
	*start = a & ~(page - 1);
	*end = e & ~(page - 1);
	return 0;
}

static int add_locked(struct mrc_watcher *w, uint64_t start, uint64_t end,
		      uint64_t cookie, struct mrc_watchpoint *wp)
{
	struct mrc_watch_slot *s;
	uint32_t index;
	int ret;

	/* What changed before this watch existed is not its business. */
	w->backend->collect(w);
	ret = alloc_slot(w, &index);
	if (ret)
		return ret;
	s = mrc_watch_slot_at(w, index);
	mrc_itree_node_set_range(&s->node, start, end);
	s->cookie = cookie;
	s->serial = ++w->next_serial;
	s->fired = 0;
	ret = w->backend->add(w, s, &wp->word, &wp->generation);
	if (ret) {
		free_slot(w, index);
		return ret;
	}
	s->live = 1;
	w->live++;
	*wp = (struct mrc_watchpoint){ start, end, cookie, wp->word,
				       wp->generation, s->serial, index, 0 };
	return 0;
}

int mrc_watcher_add(struct mrc_watcher *w, const void *addr, size_t len,
		    uint64_t cookie, struct mrc_watchpoint *wp)
{
	uint64_t start = 0, end = 0;
	int ret;

	if (!w || !wp)
		return mrc_error(EINVAL, "mrc_watcher_add: watcher or watchpoint is NULL");
	ret = owned(w);
	if (!ret)
		ret = check_range(addr, len, &start, &end);
	if (ret)
		return ret;
	pthread_mutex_lock(&w->lock);
	ret = add_locked(w, start, end, cookie, wp);
	pthread_mutex_unlock(&w->lock);
	return ret;
}

static struct mrc_watch_slot *live_slot(struct mrc_watcher *w,
					const struct mrc_watchpoint *wp)
{
	struct mrc_watch_slot *s;

	if (wp->slot >= w->used)
		return NULL;
	s = mrc_watch_slot_at(w, wp->slot);
	return s->live && s->serial == wp->serial ? s : NULL;
}

int mrc_watcher_remove(struct mrc_watcher *w, struct mrc_watchpoint *wp)
{
	struct mrc_watch_slot *s;
	int ret;

	if (!w || !wp)
		return mrc_error(EINVAL, "mrc_watcher_remove: watcher or watchpoint is NULL");
	ret = owned(w);
	if (ret)
		return ret;
	pthread_mutex_lock(&w->lock);
	s = live_slot(w, wp);
	if (s) {
		w->backend->remove(w, s);
		free_slot(w, wp->slot);
		w->live--;
	}
	pthread_mutex_unlock(&w->lock);
	if (!s)
		return mrc_error(EINVAL, "mrc_watcher_remove: not a watchpoint of this watcher (removed twice?)");
	wp->serial = 0;
	return 0;
}

/*
 * Lock-free. Pairs with the store-release of the word by whoever moves it
 * (the kernel, or mrc_watcher_fire()). A backend that moves no word before
 * the memory changes answers itself, counting what it has not collected.
 */
int mrc_watchpoint_valid(const struct mrc_watcher *w,
			 const struct mrc_watchpoint *wp)
{
	if (w->backend->valid)
		return w->backend->valid(w, wp);
	return mrc_load_acquire(wp->word) == wp->generation;
}

/*
 * Lock-free: may a drain report something? The fired count is written
 * under the lock; a stale read only delays a report to the next call.
 */
int mrc_watcher_pending(const struct mrc_watcher *w)
{
	return mrc_watcher_words_pending(&w->words);
}

int mrc_watcher_words(const struct mrc_watcher *w,
		      struct mrc_watcher_words *words)
{
	if (!w || !words)
		return mrc_error(EINVAL, "mrc_watcher_words: %s is NULL",
				 w ? "words" : "watcher");
	*words = w->words;
	return 0;
}

static size_t take_fired(struct mrc_watcher *w, struct mrc_watch_fired **list)
{
	size_t n;

	pthread_mutex_lock(&w->lock);
	w->backend->collect(w);
	*list = w->fired;
	n = w->nfired;
	w->fired = NULL;
	/* Release: a pending check that sees it empty sees what came before. */
	__atomic_store_n(&w->nfired, 0, __ATOMIC_RELEASE);
	w->fired_cap = 0;
	pthread_mutex_unlock(&w->lock);
	return n;
}

int mrc_watcher_drain(struct mrc_watcher *w, mrc_watch_fn fn, void *arg)
{
	struct mrc_watch_fired *list;
	size_t n;
	int ret;

	if (!w || !fn)
		return mrc_error(EINVAL, "mrc_watcher_drain: watcher or callback is NULL");
	ret = owned(w);
	if (ret)
		return ret;
	n = take_fired(w, &list);
	/* Unlocked: the callback may take its own locks and call us. */
	for (size_t i = 0; i < n; i++)
		fn(arg, list[i].cookie, (void *)(uintptr_t)list[i].start,
		   list[i].end - list[i].start);
	free(list);
	return n > INT32_MAX ? INT32_MAX : (int)n;
}
