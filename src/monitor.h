/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Invalidation monitors: who tells the cache that memory under a cached
 * registration changed.
 *
 * A monitor exposes one 32-bit word that changes whenever it has events the
 * cache has not drained yet; the hit path compares it with the value seen at
 * the last drain (one load). Everything else runs under the cache lock:
 * watch/unwatch around registration, and drain(), which reports what
 * happened through the cache's entry points below and nothing else. A
 * monitor never kills, counts, evicts or deregisters: the cache does, and
 * deregisters only outside any monitor callback.
 */
#ifndef MRC_MONITOR_H
#define MRC_MONITOR_H

#include <stdint.h>

struct mrc_cache;
struct mrc_monitor;

/* A range to watch, and the region to name when its watch fires. */
struct mrc_watch_target {
	uint64_t start;
	uint64_t end;
	uint32_t region;	/* the region's pool index */
};

/* What the cache keeps of a watch: the monitor's id and generation. */
struct mrc_watch_ref {
	uint32_t id;
	uint32_t gen;		/* low 32 bits of the generation at watch time */
};

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
	int (*watch)(struct mrc_monitor *mon, const struct mrc_watch_target *t,
		     struct mrc_watch_ref *ref);
	int (*watch_raced)(struct mrc_monitor *mon,
			   const struct mrc_watch_ref *ref);
	void (*unwatch)(struct mrc_monitor *mon,
			const struct mrc_watch_ref *ref);
	/* Report pending events to the cache; returns the word value drained. */
	uint32_t (*drain)(struct mrc_monitor *mon);
};

struct mrc_monitor {
	const struct mrc_monitor_ops *ops;
	struct mrc_cache *cache;
	const uint32_t *events;	/* changes when drain() has work */
	/*
	 * Optional: per-watch generations indexed by mrc_watch_ref.id; a
	 * region whose entry still equals its ref.gen (low 32 bits) is valid
	 * even while other events wait to be drained.
	 */
	const uint64_t *generations;
	/*
	 * Optional: a descriptor that polls readable when drain() has work,
	 * so the cache's progress thread (progress.c) wakes for it; -1 when
	 * the monitor has none (the thread then looks at least every second).
	 */
	int wait_fd;
	void *priv;
};

/*
 * The cache's entry points for monitors, called from drain() with the
 * cache locked: the one way in for each kind of event.
 */
/* The memory in [start, end) changed: drop every region overlapping it. */
void mrc_cache_range_changed(struct mrc_cache *cache, uint64_t start,
			     uint64_t end);
/* The watch of the region with pool index @region fired. */
void mrc_cache_watch_fired(struct mrc_cache *cache, uint32_t region);
/* The system wants memory back: release at least @bytes of idle pins. */
void mrc_cache_release_idle(struct mrc_cache *cache, uint64_t bytes);

extern const struct mrc_monitor_ops mrc_monitor_manual_ops;
/* The manual monitor under the name "none": AUTO found no monitor. */
extern const struct mrc_monitor_ops mrc_monitor_none_ops;
extern const struct mrc_monitor_ops mrc_monitor_kmod_ops;
extern const struct mrc_monitor_ops mrc_monitor_hooks_ops;
extern const struct mrc_monitor_ops mrc_monitor_uffd_ops;

#endif /* MRC_MONITOR_H */
