/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Invalidation monitors: who tells the cache that memory under a cached
 * registration changed.
 *
 * A monitor exposes one 32-bit word that changes whenever it has events the
 * cache has not drained yet; the hit path compares it with the value seen at
 * the last drain (one load). Everything else runs under the cache lock:
 * watch/unwatch around registration, and drain, which reports each event
 * through mrc_cache_invalidate_locked(). Monitors never deregister memory
 * themselves: the cache does that outside any monitor callback.
 */
#ifndef MRC_MONITOR_H
#define MRC_MONITOR_H

#include <stdint.h>

struct mrc_cache;
struct mrc_region;
struct mrc_monitor;

struct mrc_monitor_ops {
	const char *name;
	/* Set up for @cache; 0, -ENODEV when unavailable here, or -errno. */
	int (*start)(struct mrc_monitor *mon, struct mrc_cache *cache);
	void (*stop)(struct mrc_monitor *mon);
	/*
	 * Optional. watch() runs before the provider registers the range,
	 * watch_raced() after; a nonzero return from watch_raced() means an
	 * event hit the range in between and the registration must not be
	 * cached.
	 */
	int (*watch)(struct mrc_monitor *mon, struct mrc_region *region);
	int (*watch_raced)(struct mrc_monitor *mon, struct mrc_region *region);
	void (*unwatch)(struct mrc_monitor *mon, struct mrc_region *region);
	/* Report pending events to the cache; returns the word value drained. */
	uint32_t (*drain)(struct mrc_monitor *mon);
};

struct mrc_monitor {
	const struct mrc_monitor_ops *ops;
	struct mrc_cache *cache;
	const uint32_t *events;	/* changes when drain() has work */
	/*
	 * Optional: per-watch generations indexed by region->watch_id; a
	 * region whose entry still equals region->watch_gen (low 32 bits) is
	 * valid even while other events wait to be drained.
	 */
	const uint64_t *generations;
	void *priv;
};

extern const struct mrc_monitor_ops mrc_monitor_manual_ops;
extern const struct mrc_monitor_ops mrc_monitor_kmod_ops;

#endif /* MRC_MONITOR_H */
