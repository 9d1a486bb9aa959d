// SPDX-License-Identifier: BSD-2-Clause
/*
 * The watcher's kernel backend: each watch is a /dev/mrcache watch of its
 * own file. The kernel moves the watch's generation before the page
 * tables change, so a check is the one load of that generation; events
 * come through the ring, and the pollable fd is the device's (POLLIN while
 * the ring holds events or an overflow is unacknowledged).
 *
 * The kernel posts one event per watch (the first invalidation; later ones
 * only move the generation): mrc_watcher_fire() reports the whole watched
 * range, which is what a caller must drop anyway. The event carries the
 * watch's serial as its cookie, so an event of a removed watch whose id
 * the kernel has handed out again is told apart.
 *
 * No pressure feature is asked for: a watcher's users (libfabric, UCX)
 * have no way to be asked for memory back.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mrcache_abi.h"
#include "atomics.h"
#include "error.h"
#include "kmod_device.h"
#include "watch/watcher.h"

/* What a kernel watch id stands for. */
struct kid_slot {
	struct mrc_watch_slot *slot;	/* NULL when free */
	uint64_t serial;
};

struct kmod_backend {
	int fd;
	void *map;
	size_t map_len;
	struct mrc_ring_offsets off;
	uint32_t mask;
	uint32_t slots;
	uint64_t overflow_handled;
	uint32_t collected;	/* sequence word at the last collect */
	struct kid_slot *kids;
};

static void *at(const struct kmod_backend *kb, uint32_t offset)
{
	return (char *)kb->map + offset;
}

/* As many watch slots as the module gives a file; its default ring. */
static int setup(struct kmod_backend *kb)
{
	struct mrc_api api;
	int ret = mrc_kmod_api(kb->fd, &api, MRC_API_PROBE, MRC_FEAT_SEQUENCE, 0, 0);

	if (!ret && !(api.supported_features & MRC_FEAT_SEQUENCE))
		ret = mrc_error(ENOTSUP, "the loaded mrcache module lacks the sequence word; load the module built with this library");
	if (!ret)
		ret = mrc_kmod_api(kb->fd, &api, 0, MRC_FEAT_SEQUENCE,
				   api.max_watch_slots, 0);
	if (ret)
		return ret;
	kb->map_len = api.mmap_length;
	kb->map = mmap(NULL, kb->map_len, PROT_READ | PROT_WRITE, MAP_SHARED,
		       kb->fd, 0);
	if (kb->map == MAP_FAILED) {
		kb->map = NULL;
		return mrc_error(errno, "cannot map the %s ring", MRC_DEVICE_PATH);
	}
	kb->off = api.off;
	kb->mask = api.ring_entries - 1;
	kb->slots = api.watch_slots;
	kb->overflow_handled = mrc_load_acquire((uint64_t *)at(kb, kb->off.overflow));
	kb->collected = mrc_load_acquire((uint32_t *)at(kb, kb->off.sequence));
	kb->kids = calloc(kb->slots, sizeof(*kb->kids));
	if (!kb->kids)
		return mrc_error(ENOMEM, "no memory for %u watch ids", kb->slots);
	return 0;
}

static void kmod_close(struct mrc_watcher *w)
{
	struct kmod_backend *kb = w->priv;

	/* A forked child never inherits the ring (VM_DONTCOPY). */
	if (kb->map && w->owner == getpid())
		munmap(kb->map, kb->map_len);
	if (kb->fd >= 0)
		close(kb->fd);
	free(kb->kids);
	free(kb);
	w->priv = NULL;
}

static int kmod_open(struct mrc_watcher *w)
{
	struct kmod_backend *kb = calloc(1, sizeof(*kb));
	int ret;

	if (!kb)
		return mrc_error(ENOMEM, "no memory for the kernel watcher");
	w->priv = kb;
	kb->fd = mrc_kmod_open();
	ret = kb->fd < 0 ? kb->fd : setup(kb);
	if (ret)
		kmod_close(w);
	return ret;
}

static int kmod_add(struct mrc_watcher *w, struct mrc_watch_slot *s,
		    const uint64_t **word, uint64_t *generation)
{
	struct kmod_backend *kb = w->priv;
	struct mrc_watch kw = {
		.start = s->node.start,
		.length = s->node.end - s->node.start,
		.cookie = s->serial,
	};
	struct mrc_unwatch u = { 0 };

	if (ioctl(kb->fd, MRC_IOC_WATCH, &kw))
		return mrc_error(errno, "MRC_IOC_WATCH %#" PRIx64 "+%" PRIu64 " failed",
				 (uint64_t)kw.start, (uint64_t)kw.length);
	if (kw.id >= kb->slots) {
		u.id = kw.id;
		ioctl(kb->fd, MRC_IOC_UNWATCH, &u);
		return mrc_error(EPROTO, "%s returned watch id %u beyond its %u slots",
				 MRC_DEVICE_PATH, kw.id, kb->slots);
	}
	s->backend_id = kw.id;
	kb->kids[kw.id] = (struct kid_slot){ s, s->serial };
	*word = (const uint64_t *)at(kb, kb->off.generations) + kw.id;
	*generation = kw.generation;
	return 0;
}

static void kmod_remove(struct mrc_watcher *w, struct mrc_watch_slot *s)
{
	struct kmod_backend *kb = w->priv;
	struct mrc_unwatch u = { .id = s->backend_id };

	kb->kids[s->backend_id].slot = NULL;
	if (ioctl(kb->fd, MRC_IOC_UNWATCH, &u))
		mrc_warn("MRC_IOC_UNWATCH %u failed: %s", u.id, strerror(errno));
}

static void handle_event(struct mrc_watcher *w, const struct mrc_event *ev)
{
	struct kmod_backend *kb = w->priv;
	struct kid_slot *k;

	if ((ev->flags & MRC_EVENT_F_INFO) || ev->id >= kb->slots)
		return;
	k = &kb->kids[ev->id];
	if (k->slot && k->serial == ev->cookie)
		mrc_watcher_fire(w, k->slot);
}

/*
 * Consumer side of the ring; the barriers as in monitor_kmod.c's drain.
 * The sequence word is loaded first: the kernel moves it last, so what it
 * tells of is visible below, and anything later moves it again.
 */
static void kmod_collect(struct mrc_watcher *w)
{
	struct kmod_backend *kb = w->priv;
	/* Pairs with the kernel's store-release in mrc_ring_tick(). */
	uint32_t seq = mrc_load_acquire((uint32_t *)at(kb, kb->off.sequence));
	/* Pairs with the kernel's store-release of the producer index. */
	uint32_t prod = mrc_load_acquire((uint32_t *)at(kb, kb->off.producer));
	uint32_t *consumer = at(kb, kb->off.consumer);
	const struct mrc_event *events = at(kb, kb->off.events);
	uint64_t overflow;

	for (uint32_t cons = *consumer; cons != prod; cons++)
		handle_event(w, &events[cons & kb->mask]);
	/* Pairs with the kernel's load-acquire before it reuses the slots. */
	mrc_store_release(consumer, prod);
	overflow = mrc_load_acquire((uint64_t *)at(kb, kb->off.overflow));
	if (overflow != kb->overflow_handled) {
		/* Lost events: any watch may have fired. */
		mrc_watcher_fire_all(w);
		kb->overflow_handled = overflow;
		mrc_store_release((uint64_t *)at(kb, kb->off.overflow_seen),
				  overflow);
	}
	mrc_store_release(&kb->collected, seq);
}

static void kmod_words(const struct mrc_watcher *w, const uint32_t **events,
		       const uint32_t **collected)
{
	const struct kmod_backend *kb = w->priv;

	*events = (const uint32_t *)at(kb, kb->off.sequence);
	*collected = &kb->collected;
}

static int kmod_fd(struct mrc_watcher *w)
{
	return ((struct kmod_backend *)w->priv)->fd;
}

const struct mrc_watch_backend mrc_watch_kmod = {
	.name = "kmod",
	.open = kmod_open,
	.close = kmod_close,
	.add = kmod_add,
	.remove = kmod_remove,
	.collect = kmod_collect,
	.fd = kmod_fd,
	.words = kmod_words,
};
