// SPDX-License-Identifier: BSD-2-Clause
/*
 * Calls into the provider: registration and deregistration side by side,
 * each counted and timed here and nowhere else (in ticks: two clock
 * readings per call is most of what a miss costs beyond a null provider).
 */
#include <inttypes.h>
#include <string.h>

#include "cache.h"
#include "error.h"

/*
 * Count the ticks since @t0. A thread moved to a CPU whose TSC lags can
 * read an earlier time: count nothing rather than wrap around.
 */
static void add_ticks(struct mrc_cache *cache, uint64_t t0)
{
	uint64_t t1 = mrc_ticks();

	if (t1 > t0)
		cache->provider_ticks += t1 - t0;
}

/**
 * mrc_provider_reg() - register region @r's range with its access flags.
 * @cache: locked cache.
 *
 * Return: 0 with r->handle set, or the provider's negative errno.
 */
int mrc_provider_reg(struct mrc_cache *cache, struct mrc_region *r)
{
	uint64_t len = r->node.end - r->node.start;
	uint64_t t0 = mrc_ticks();
	int ret;

	ret = cache->provider.reg(cache->provider.ctx,
				  (void *)(uintptr_t)r->node.start, len,
				  mrc_region_access_flags(r), &r->handle);
	add_ticks(cache, t0);
	cache->count.reg_calls++;
	if (ret)
		cache->count.reg_failures++;
	return ret > 0 ? -ret : ret;
}

/**
 * mrc_provider_dereg() - deregister what mrc_provider_reg() registered.
 * @cache: locked cache.
 *
 * A failure cannot be undone or retried: it is reported and counted.
 */
void mrc_provider_dereg(struct mrc_cache *cache, const struct mrc_region *r)
{
	uint64_t t0 = mrc_ticks();
	int ret;

	ret = cache->provider.dereg(cache->provider.ctx, r->handle);
	add_ticks(cache, t0);
	cache->count.dereg_calls++;
	if (ret)
		mrc_warn("provider '%s' failed to deregister %#" PRIx64 "+%" PRIu64 ": %s",
			 cache->provider.name, r->node.start,
			 r->node.end - r->node.start, strerror(ret < 0 ? -ret : ret));
}
