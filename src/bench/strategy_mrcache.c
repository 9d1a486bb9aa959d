// SPDX-License-Identifier: BSD-2-Clause
/*
 * mrcache as a strategy, once per monitor. With the manual monitor the
 * application must call mrc_invalidate() before it frees memory: the
 * benchmark does so when it drops a working set, and deliberately not
 * when churn replaces a buffer (the cell that shows what a forgotten
 * invalidation costs: stale bytes).
 */
#include <stdio.h>

#include "mrcache.h"
#include "strategy.h"

static int mrc_acquire(struct strategy *s, struct wbuf *w, void *p, size_t len, struct reg *r)
{
	struct mrc_region *region;
	int ret = mrc_get(s->state, p, len, BENCH_ACCESS, &region);

	(void)w;
	if (ret) {
		fprintf(stderr, "mrcache-bench: %s: mrc_get(%p, %zu): %s\n", s->name, p, len,
			mrc_last_error());
		return ret;
	}
	*r = (struct reg){ mrc_region_lkey(region), mrc_region_rkey(region), region };
	return 0;
}

static void mrc_release(struct strategy *s, struct reg *r)
{
	mrc_put(s->state, r->handle);
}

static void mrc_forget(struct strategy *s, struct wbuf *w, size_t len)
{
	mrc_invalidate(s->state, w->p, len);
}

static void mrc_counts(struct strategy *s, uint64_t *hits, uint64_t *misses)
{
	struct mrc_stats st;

	if (mrc_cache_stats(s->state, &st))
		return;
	*hits = st.hits;
	*misses = st.misses;
}

static void mrc_fini(struct strategy *s)
{
	if (mrc_cache_destroy(s->state))
		fprintf(stderr, "mrcache-bench: %s: mrc_cache_destroy: %s\n", s->name,
			mrc_last_error());
}

static const struct cache_calls mrc_calls = { mrc_acquire, mrc_release, mrc_counts, mrc_fini };

int strategy_mrcache_init(struct strategy *s, int monitor, int cache_regions)
{
	struct mrc_cache_attr attr = {
		.comp_mask = MRC_ATTR_MONITOR | MRC_ATTR_MAX_REGIONS,
		.monitor = (uint32_t)monitor,
		.max_regions = (uint64_t)cache_regions,
	};
	struct mrc_cache *cache;
	int ret = mrc_cache_create_verbs(s->ep->pd, BENCH_ACCESS, &attr, &cache);

	if (ret) {
		snprintf(s->why, sizeof(s->why), "mrc_cache_create_verbs: %s", mrc_last_error());
		return ret;
	}
	strategy_set_cache(s, cache, &mrc_calls);
	if (monitor == MRC_MONITOR_MANUAL)
		s->detach = mrc_forget;
	return 0;
}
