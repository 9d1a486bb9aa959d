/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Watchers (the public mrc_watcher_* API) and the backends behind them.
 *
 * The core (watcher.c) owns the table of watches, the lock and the list of
 * watches that fired and wait for a drain; a backend (one per monitor:
 * backend_kmod.c, backend_hooks.c, backend_uffd.c, the last two over
 * range_watches.c) turns what its monitor saw into mrc_watcher_fire() calls
 * and nothing else. A backend never calls the user: only mrc_watcher_drain() does, with
 * the lock dropped, so a callback may take its own locks, add and remove
 * watches, while other threads check validity against it.
 */
#ifndef MRC_WATCH_WATCHER_H
#define MRC_WATCH_WATCHER_H

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#include "itree.h"
#include "mrcache.h"

/* One watch. Slots live in chunks that never move: a watchpoint points in. */
struct mrc_watch_slot {
	struct mrc_itree_node node;	/* for backends that look up by address */
	uint64_t cookie;
	uint64_t serial;	/* never reused: tells a stale event apart */
	/* Moved when the watch fires or goes (backends without their own). */
	uint64_t generation;
	uint32_t backend_id;	/* the backend's name for it (a kernel id) */
	uint8_t live;
	uint8_t fired;
	uint32_t next_free;	/* slot index + 1 of the next free slot, or 0 */
};

/* A fired watch waiting for the drain. */
struct mrc_watch_fired {
	uint64_t cookie;
	uint64_t start;
	uint64_t end;
};

struct mrc_watcher;

struct mrc_watch_backend {
	const char *name;
	/* Set up (w->priv); 0, -ENODEV when unavailable here, or -errno. */
	int (*open)(struct mrc_watcher *w);
	void (*close)(struct mrc_watcher *w);
	/*
	 * Lock held. Start watching slot @s (start, end, serial set): fill
	 * s->backend_id and the word and value a check compares.
	 */
	int (*add)(struct mrc_watcher *w, struct mrc_watch_slot *s,
		   const uint64_t **word, uint64_t *generation);
	void (*remove)(struct mrc_watcher *w, struct mrc_watch_slot *s);
	/* Lock held: fire every watch the monitor saw change. */
	void (*collect)(struct mrc_watcher *w);
	/*
	 * Optional, lock-free: is @wp still valid? For backends whose
	 * monitor moves no word per watch before memory changes; without
	 * it a check is the one load of the watchpoint's word.
	 */
	int (*valid)(const struct mrc_watcher *w,
		     const struct mrc_watchpoint *wp);
	int (*fd)(struct mrc_watcher *w);
	/*
	 * The monitor's event word, which moves whenever it sees a change,
	 * and the backend's copy of it at the last collect, stored with
	 * release after what the collect did: while the two are equal the
	 * monitor saw nothing since, and a check that loads them with
	 * acquire and finds them equal also sees what preceded the collect
	 * (src/shim/ranges.c's settled check relies on it). Both live until
	 * close.
	 */
	void (*words)(const struct mrc_watcher *w, const uint32_t **events,
		      const uint32_t **collected);
};

struct mrc_watcher {
	const struct mrc_watch_backend *backend;
	void *priv;
	pthread_mutex_t lock;
	struct mrc_watch_slot **chunks;
	uint32_t nchunks;
	uint32_t used;		/* slots ever handed out */
	uint32_t free_head;	/* slot index + 1, or 0 */
	uint32_t live;
	uint64_t next_serial;
	struct mrc_watch_fired *fired;	/* waiting for the drain */
	size_t nfired;
	size_t fired_cap;
	pid_t owner;		/* a forked child gets -ECHILD */
	struct mrc_watcher_words words;	/* nfired and the backend's words */
};

#define MRC_WATCH_CHUNK 1024u

static inline struct mrc_watch_slot *mrc_watch_slot_at(struct mrc_watcher *w,
							uint32_t index)
{
	return &w->chunks[index / MRC_WATCH_CHUNK][index % MRC_WATCH_CHUNK];
}

/* For backends, lock held: the watch in @s changed (once per watch). */
void mrc_watcher_fire(struct mrc_watcher *w, struct mrc_watch_slot *s);
/* Every live watch may have changed (a lost event). */
void mrc_watcher_fire_all(struct mrc_watcher *w);

extern const struct mrc_watch_backend mrc_watch_kmod;
extern const struct mrc_watch_backend mrc_watch_hooks;
extern const struct mrc_watch_backend mrc_watch_uffd;

#endif /* MRC_WATCH_WATCHER_H */
