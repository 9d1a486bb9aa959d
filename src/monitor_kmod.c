// SPDX-License-Identifier: BSD-2-Clause
/*
 * The kernel monitor: /dev/mrcache watches each cached range with an MMU
 * interval notifier and writes an event into a ring shared with us before
 * the page tables change (before munmap, madvise, mremap or brk return,
 * and before a migration or reclaim can move a page).
 *
 * The hit path reads the ring's sequence word (one load): the kernel moves
 * it last, after it queued an event, counted an overflow or raised a
 * pressure request. Draining turns each event into a kill of exactly the
 * region that was watched, matched by watch id and a cookie that is never
 * reused, so a stale event cannot drop a newer registration of the same
 * addresses. A full ring loses nothing: the kernel counts an overflow and
 * we then drop every region.
 *
 * Pressure requests (the kernel's shrinker asking for memory) come in a
 * header counter, never through the ring, so they cannot overflow it; they
 * evict idle registrations, least recently used first.
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
#include "mrcache.h"
#include "monitor.h"
#include "platform.h"

#define MRC_KMOD_RING_MAX 16384

/*
 * Without the sequence word an overflow can be missed for good, and
 * without the pressure counter pressure looks like an overflow: a module
 * that lacks either is not used.
 */
#define MRC_KMOD_FEATURES \
	(MRC_FEAT_PRESSURE | MRC_FEAT_SEQUENCE | MRC_FEAT_PRESSURE_COUNTER)

/*
 * What a watch id stands for: the region (pool index + 1, 0 when the slot
 * is free) and the cookie given to the kernel, 8 bytes per slot. Cookies
 * are 32-bit: a stale event is mistaken for a current one only if its slot
 * was reused exactly 2^32 watches later, and then the cost is one needless
 * re-registration.
 */
struct watch_slot {
	uint32_t region;
	uint32_t cookie;
};

struct kmod_monitor {
	int fd;
	void *map;
	size_t map_len;
	const uint32_t *sequence;
	const uint32_t *producer;
	uint32_t *consumer;
	const uint64_t *overflow;
	uint64_t *overflow_seen;
	const uint64_t *pressure;
	uint64_t *pressure_seen;
	const struct mrc_event *events;
	const uint64_t *generations;
	uint32_t mask;
	uint32_t slots;
	uint64_t overflow_handled;
	uint64_t pressure_handled;
	uint32_t next_cookie;
	struct watch_slot *watches;	/* indexed by watch id */
	pid_t owner;			/* a forked child did not inherit the map */
};

static struct kmod_monitor *kmod(struct mrc_monitor *mon)
{
	return mon->priv;
}

static uint32_t pow2_at_least(uint32_t n)
{
	uint32_t p = MRC_RING_MIN_ENTRIES;

	while (p < n && p < (1u << 31))
		p <<= 1;
	return p;
}

/*
 * Every cached region needs a watch, so ask for as many watch slots as the
 * module allows (its max_watches parameter): probe first, then set up. A
 * watch posts one event until it is re-armed, so a ring with a slot per
 * watch could never overflow; that costs 32 bytes of pinned kernel memory
 * per slot, so the ring stops at MRC_KMOD_RING_MAX entries (an overflow is
 * safe: everything is dropped and re-registered on demand).
 */
static int handshake(int fd, struct mrc_api *api)
{
	uint32_t ring, slots;
	int ret = mrc_kmod_api(fd, api, MRC_API_PROBE, MRC_KMOD_FEATURES, 0, 0);

	if (ret)
		return ret;
	if ((api->supported_features & MRC_KMOD_FEATURES) != MRC_KMOD_FEATURES)
		return mrc_error(ENOTSUP, "the loaded mrcache module lacks the sequence word or the pressure counter (features %#llx); load the module built with this library",
				 (unsigned long long)api->supported_features);
	slots = api->max_watch_slots;
	ring = pow2_at_least(slots + 1);
	if (ring > MRC_KMOD_RING_MAX)
		ring = MRC_KMOD_RING_MAX;
	if (ring > api->max_ring_entries)
		ring = api->max_ring_entries;
	return mrc_kmod_api(fd, api, 0, MRC_KMOD_FEATURES, slots, ring);
}

static void *at(const struct kmod_monitor *km, uint32_t offset)
{
	return (char *)km->map + offset;
}

static int map_ring(struct kmod_monitor *km, const struct mrc_api *api)
{
	const struct mrc_ring_offsets *off = &api->off;

	km->map_len = api->mmap_length;
	km->map = mmap(NULL, km->map_len, PROT_READ | PROT_WRITE, MAP_SHARED,
		       km->fd, 0);
	if (km->map == MAP_FAILED)
		return mrc_error(errno, "cannot map the %s ring", MRC_DEVICE_PATH);
	km->sequence = at(km, off->sequence);
	km->producer = at(km, off->producer);
	km->consumer = at(km, off->consumer);
	km->overflow = at(km, off->overflow);
	km->overflow_seen = at(km, off->overflow_seen);
	km->pressure = at(km, off->pressure);
	km->pressure_seen = at(km, off->pressure_seen);
	km->events = at(km, off->events);
	km->generations = at(km, off->generations);
	km->mask = api->ring_entries - 1;
	km->slots = api->watch_slots;
	km->overflow_handled = mrc_load_acquire(km->overflow);
	km->pressure_handled = mrc_load_acquire(km->pressure);
	return 0;
}

static void kmod_close(struct kmod_monitor *km)
{
	/*
	 * A forked child never inherits the ring (VM_DONTCOPY): by now its
	 * own memory may sit at that address, so it must not unmap it.
	 */
	if (km->map && km->map != MAP_FAILED && km->owner == getpid())
		munmap(km->map, km->map_len);
	if (km->fd >= 0)
		close(km->fd);
	free(km->watches);
	free(km);
}

static int kmod_setup(struct kmod_monitor *km)
{
	struct mrc_api api;
	int ret;

	km->fd = mrc_kmod_open();
	ret = km->fd < 0 ? km->fd : handshake(km->fd, &api);
	if (!ret)
		ret = map_ring(km, &api);
	if (ret)
		return ret;
	km->watches = calloc(km->slots, sizeof(*km->watches));
	if (!km->watches)
		return mrc_error(ENOMEM, "no memory for %u watch slots", km->slots);
	return 0;
}

static int kmod_start(struct mrc_monitor *mon, struct mrc_cache *cache)
{
	struct kmod_monitor *km = calloc(1, sizeof(*km));
	int ret;

	(void)cache;	/* mon->cache already names it */

	if (!km)
		return mrc_error(ENOMEM, "no memory for the kernel monitor");
	km->fd = -1;
	km->owner = getpid();
	mon->priv = km;
	ret = kmod_setup(km);
	if (ret) {
		kmod_close(km);
		mon->priv = NULL;
		return ret;
	}
	mon->events = km->sequence;
	mon->generations = km->generations;
	mon->wait_fd = km->fd;	/* readable when the ring has events */
	return 0;
}

static void kmod_stop(struct mrc_monitor *mon)
{
	kmod_close(kmod(mon));
	mon->priv = NULL;
}

static int kmod_watch(struct mrc_monitor *mon,
		      const struct mrc_watch_target *t, struct mrc_watch_ref *ref)
{
	struct kmod_monitor *km = kmod(mon);
	struct mrc_watch w = {
		.start = t->start,
		.length = t->end - t->start,
		.cookie = ++km->next_cookie,
	};

	if (ioctl(km->fd, MRC_IOC_WATCH, &w))
		return mrc_error(errno, "MRC_IOC_WATCH %#" PRIx64 "+%" PRIu64 " failed",
				 (uint64_t)w.start, (uint64_t)w.length);
	if (w.id >= km->slots) {
		struct mrc_unwatch u = { .id = w.id };

		ioctl(km->fd, MRC_IOC_UNWATCH, &u);
		return mrc_error(EPROTO, "%s returned watch id %u beyond its %u slots",
				 MRC_DEVICE_PATH, w.id, km->slots);
	}
	km->watches[w.id] = (struct watch_slot){ t->region + 1, (uint32_t)w.cookie };
	ref->id = w.id;
	/* Generations only grow; 32 bits tell a change from none. */
	ref->gen = (uint32_t)w.generation;
	return 0;
}

/*
 * Did an invalidation hit the range between MRC_IOC_WATCH and the end of
 * registration? The kernel bumps the generation before it changes the page
 * tables, so after the provider pinned the pages an unchanged generation
 * proves they are the ones the application sees.
 */
static int kmod_watch_raced(struct mrc_monitor *mon,
			    const struct mrc_watch_ref *ref)
{
	struct kmod_monitor *km = kmod(mon);

	return (uint32_t)mrc_load_acquire(&km->generations[ref->id]) != ref->gen;
}

static void kmod_unwatch(struct mrc_monitor *mon,
			 const struct mrc_watch_ref *ref)
{
	struct kmod_monitor *km = kmod(mon);
	struct mrc_unwatch u = { .id = ref->id };

	km->watches[ref->id].region = 0;
	if (ioctl(km->fd, MRC_IOC_UNWATCH, &u))
		mrc_warn("MRC_IOC_UNWATCH %u failed: %s", u.id, strerror(errno));
}

static void handle_event(struct mrc_monitor *mon, const struct mrc_event *ev)
{
	struct kmod_monitor *km = kmod(mon);
	struct watch_slot *slot;

	if ((ev->flags & MRC_EVENT_F_INFO) || ev->id >= km->slots)
		return;
	slot = &km->watches[ev->id];
	/* A stale event of a watch whose slot was reused since: ignore. */
	if (!slot->region || slot->cookie != (uint32_t)ev->cookie)
		return;
	mrc_cache_watch_fired(mon->cache, slot->region - 1);
}

/* The ring overflowed: any watch may have fired, drop every region. */
static void handle_overflow(struct mrc_monitor *mon, uint64_t overflow)
{
	struct kmod_monitor *km = kmod(mon);

	mrc_cache_range_changed(mon->cache, 0, UINT64_MAX);
	km->overflow_handled = overflow;
	mrc_store_release(km->overflow_seen, overflow);
}

/* The shrinker asked for pages back: release idle regions to match. */
static void handle_pressure(struct mrc_monitor *mon, uint64_t pressure)
{
	struct kmod_monitor *km = kmod(mon);
	uint64_t pages = pressure - km->pressure_handled;

	mrc_cache_release_idle(mon->cache, pages * mrc_page_size());
	km->pressure_handled = pressure;
	/* Acknowledges the request: the kernel may raise the next one. */
	mrc_store_release(km->pressure_seen, pressure);
}

/*
 * The sequence word is read first and returned as what was drained: the
 * kernel moves it after everything else it writes, so either this load
 * saw a change and the acquire makes the change itself visible below, or
 * it did not and the word still differs from what we return, which sends
 * the next cache call here again. Comparing the producer index instead
 * could miss an overflow counted just after we read the counter.
 */
static uint32_t kmod_drain(struct mrc_monitor *mon)
{
	struct kmod_monitor *km = kmod(mon);
	/* Pairs with the kernel's store-release in mrc_ring_tick(). */
	uint32_t seq = mrc_load_acquire(km->sequence);
	/* Pairs with the kernel's store-release of the producer index. */
	uint32_t prod = mrc_load_acquire(km->producer);
	uint32_t cons = *km->consumer;
	uint64_t overflow, pressure;

	for (; cons != prod; cons++)
		handle_event(mon, &km->events[cons & km->mask]);
	/* Pairs with the kernel's load-acquire before it reuses the slots. */
	mrc_store_release(km->consumer, cons);
	overflow = mrc_load_acquire(km->overflow);
	if (overflow != km->overflow_handled)
		handle_overflow(mon, overflow);
	pressure = mrc_load_acquire(km->pressure);
	if (pressure != km->pressure_handled)
		handle_pressure(mon, pressure);
	return seq;
}

const struct mrc_monitor_ops mrc_monitor_kmod_ops = {
	.name = "kmod",
	.start = kmod_start,
	.stop = kmod_stop,
	.watch = kmod_watch,
	.watch_raced = kmod_watch_raced,
	.unwatch = kmod_unwatch,
	.drain = kmod_drain,
};
