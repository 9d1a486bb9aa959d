/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Registration strategies: how the application's buffer gets an lkey or
 * rkey for one message. Pre-registered, dynamic and the caches hand out a
 * registration covering the buffer (acquire/release); static and
 * pipelined change how the message moves, so xfer.c treats them itself.
 */
#ifndef MRCACHE_BENCH_STRATEGY_H
#define MRCACHE_BENCH_STRATEGY_H

#include <stddef.h>
#include <stdint.h>

#include "bench.h"

enum strategy_id {
	ST_PREREG,	/* registered once at allocation: the upper bound */
	ST_STATIC,	/* copied through a registered bounce buffer */
	ST_DYNAMIC,	/* ibv_reg_mr, message, ibv_dereg_mr */
	ST_PIPELINED,	/* dynamic in chunks, registering ahead */
	ST_MRC_KMOD,	/* mrcache, /dev/mrcache monitor */
	ST_MRC_HOOKS,	/* mrcache, libc call hooks */
	ST_MRC_MANUAL,	/* mrcache, application calls mrc_invalidate() */
	ST_UCX,		/* UCX's ucs_rcache with verbs callbacks */
	ST_OFI,		/* libfabric's verbs MR cache, bytes on the prereg MR */
	NSTRATEGIES
};

struct reg {
	uint32_t lkey, rkey;
	void *handle;
};

struct strategy {
	enum strategy_id id;
	const char *name;
	int available;
	char why[160];		/* why not available */
	void *state;		/* the cache */
	struct ep *ep;
	/* Registration covering [p, p+len), a part of buffer @w. */
	int (*acquire)(struct strategy *s, struct wbuf *w, void *p, size_t len,
		       struct reg *r);
	void (*release)(struct strategy *s, struct reg *r);
	/* The application is about to free @w / just allocated it. */
	int (*attach)(struct strategy *s, struct wbuf *w, size_t len);
	void (*detach)(struct strategy *s, struct wbuf *w, size_t len);
	/* Cumulative cache hits and misses, if a cache. */
	void (*counts)(struct strategy *s, uint64_t *hits, uint64_t *misses);
	void (*fini)(struct strategy *s);
	/* Told about churn: detach+attach around it (pre-registered does). */
	int tracks_churn;
};

extern const char *const strategy_names[NSTRATEGIES];

/* Set up every strategy in @mask; unavailable ones say why. */
int strategies_init(struct strategy *all, struct ep *ep, unsigned int mask, int cache_regions);
void strategies_fini(struct strategy *all);
int strategy_by_name(const char *name);

/* A cache-based strategy is ready: its state and the calls that use it. */
struct cache_calls {
	int (*acquire)(struct strategy *s, struct wbuf *w, void *p, size_t len, struct reg *r);
	void (*release)(struct strategy *s, struct reg *r);
	void (*counts)(struct strategy *s, uint64_t *hits, uint64_t *misses);
	void (*fini)(struct strategy *s);
};
void strategy_set_cache(struct strategy *s, void *state, const struct cache_calls *calls);
/* Every buffer gets its own MR when allocated (w->owner), as prereg's. */
void strategy_set_prereg(struct strategy *s);

/* A strategy this build lacks: says which configure option brings it. */
int strategy_not_built(struct strategy *s, const char *library, const char *option);

/* The cache-based ones, each in its own file. */
int strategy_mrcache_init(struct strategy *s, int monitor, int cache_regions);
int strategy_ucx_init(struct strategy *s, int cache_regions);
int strategy_ofi_init(struct strategy *s, int cache_regions);

#endif
