// SPDX-License-Identifier: BSD-2-Clause
/*
 * A miss: choose the range to register (merging neighbours and upgrading
 * access as configured), make room, register, and publish the region.
 *
 * Regions being merged are killed only after the new registration
 * succeeded, so a failed miss leaves the cache as it found it (but for
 * regions found stale on the way). A merge that cannot be registered
 * falls back to less of it, then to the request alone.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "error.h"

/* A growable array of regions. */
struct region_list {
	struct mrc_region **at;
	size_t count;
	size_t capacity;
};

static int list_add(struct region_list *list, struct mrc_region *r)
{
	if (list->count == list->capacity) {
		size_t cap = list->capacity ? 2 * list->capacity : 8;
		struct mrc_region **grown;

		grown = realloc(list->at, cap * sizeof(*grown));
		if (!grown)
			return mrc_error(ENOMEM, "no memory to merge regions");
		list->at = grown;
		list->capacity = cap;
	}
	list->at[list->count++] = r;
	return 0;
}

static int list_has(const struct region_list *list, const struct mrc_region *r)
{
	for (size_t i = 0; i < list->count; i++)
		if (list->at[i] == r)
			return 1;
	return 0;
}

/* The range to register, built from the request and what it absorbs. */
struct merge_set {
	struct region_list merged;	/* absorbed; in the tree until the end */
	struct region_list excluded;	/* kept out after a failed registration */
	uint64_t start;
	uint64_t end;
	uint32_t access;
	uint32_t upgrades;
	uint64_t req_start;		/* the request as asked */
	uint64_t req_end;
	uint32_t req_access;
};

/* Does the policy fold @r into the range being built? */
static int should_merge(const struct mrc_cache *cache,
			const struct mrc_region *r, const struct merge_set *set,
			int *upgrade)
{
	uint64_t s = r->node.start, e = r->node.end;

	*upgrade = s <= set->start && e >= set->end &&
		   (mrc_region_access_flags(r) & set->access) != set->access;
	if (*upgrade)
		return 1;
	switch (cache->config.merge) {
	case MRC_MERGE_ADJACENT:
		return s <= set->end && e >= set->start;
	case MRC_MERGE_OVERLAP:
		return s < set->end && e > set->start;
	default:
		return 0;
	}
}

/* One pass over the neighbours; returns 1 when the range grew. */
static int merge_pass(struct mrc_cache *cache, struct merge_set *set)
{
	uint64_t qs = set->start ? set->start - 1 : 0;
	uint64_t qe = set->end + 1 ? set->end + 1 : set->end;
	struct mrc_itree_node *n;
	int grew = 0, upgrade, ret;

	for (n = mrc_itree_first_overlap(&cache->tree, qs, qe); n;
	     n = mrc_itree_next_overlap(n, qs, qe)) {
		struct mrc_region *r = mrc_node_region(n);

		if (list_has(&set->merged, r) || list_has(&set->excluded, r) ||
		    !should_merge(cache, r, set, &upgrade))
			continue;
		ret = list_add(&set->merged, r);
		if (ret)
			return ret;
		set->upgrades += upgrade;
		set->access |= mrc_region_access_flags(r);
		if (r->node.start < set->start || r->node.end > set->end) {
			set->start = r->node.start < set->start ? r->node.start : set->start;
			set->end = r->node.end > set->end ? r->node.end : set->end;
			grew = 1;
		}
	}
	return grew;
}

static int collect_merges(struct mrc_cache *cache, struct merge_set *set)
{
	int ret;

	/* Growing the range can bring new neighbours into reach. */
	do {
		ret = merge_pass(cache, set);
	} while (ret > 0);
	return ret;
}

/* Would @len more bytes exceed a bound, once @pending bytes are deregistered? */
static int over_bounds(const struct mrc_cache *cache, uint64_t len,
		       uint64_t pending)
{
	const struct mrc_config *cfg = &cache->config;
	uint64_t cached = cache->count.bytes_pinned - pending;

	if (cfg->max_bytes && cached + len > cfg->max_bytes)
		return 1;
	if (cfg->max_regions && cache->tree.count + 1 > cfg->max_regions)
		return 1;
	return cache->memlock_limit && cached + len > cache->memlock_limit;
}

static int fits_bounds(const struct mrc_cache *cache, uint64_t freed,
		       uint64_t pending, const void *len)
{
	(void)freed;
	return !over_bounds(cache, *(const uint64_t *)len, pending);
}

static int never_enough(const struct mrc_cache *cache, uint64_t freed,
			uint64_t pending, const void *arg)
{
	(void)cache;
	(void)freed;
	(void)pending;
	(void)arg;
	return 0;
}

/*
 * Evict idle regions, least recently used first, until a new registration
 * of @len bytes fits the bounds. Regions in use cannot be evicted: when
 * only they are left the registration proceeds over the bound (the
 * provider, or the kernel's RLIMIT_MEMLOCK, has the last word).
 */
static void make_room(struct mrc_cache *cache, uint64_t len)
{
	/* The common case, without the call and the indirect one. */
	if (over_bounds(cache, len, 0))
		mrc_evict_idle(cache, fits_bounds, &len);
}

/* The provider or the monitor ran out: idle regions hold what it needs. */
static void evict_all_idle(struct mrc_cache *cache)
{
	mrc_evict_idle(cache, never_enough, NULL);
}

static int register_failed(struct mrc_cache *cache, struct mrc_region *r,
			   int ret)
{
	uint64_t len = r->node.end - r->node.start;

	return mrc_error(-ret,
			 "provider '%s' could not register %#" PRIx64 "+%" PRIu64
			 " (access %#x); %" PRIu64 " bytes registered, RLIMIT_MEMLOCK %" PRIu64 " (0: unlimited or ignored)",
			 cache->provider.name, r->node.start, len, mrc_region_access_flags(r),
			 cache->count.bytes_pinned, cache->memlock_limit);
}

/*
 * Register, evicting and retrying once when the provider is out of
 * resources, and again when the monitor saw the memory change during
 * registration (the pages pinned may be the old ones).
 */
static int register_region(struct mrc_cache *cache, struct mrc_region *r)
{
	const struct mrc_monitor_ops *mon = cache->monitor.ops;
	struct mrc_watch_target target = {
		.start = r->node.start, .end = r->node.end, .region = r->index,
	};
	int ret, evicted = 0;

	for (int attempt = 0; attempt < 4; attempt++) {
		if (mon->watch) {
			ret = mon->watch(&cache->monitor, &target, &r->watch);
			/* Out of watch slots: idle regions hold them. */
			if (ret == -ENOSPC && !evicted) {
				evicted = 1;
				evict_all_idle(cache);
				ret = mon->watch(&cache->monitor, &target,
						 &r->watch);
			}
			if (ret)
				return ret;
			r->flags |= MRC_REGION_WATCHED;
		}
		ret = mrc_provider_reg(cache, r);
		if ((ret == -ENOMEM || ret == -EAGAIN) && !evicted) {
			evicted = 1;
			cache->count.retries++;
			evict_all_idle(cache);
			ret = mrc_provider_reg(cache, r);
		}
		if (!ret && !(mon->watch_raced &&
			      mon->watch_raced(&cache->monitor, &r->watch)))
			return 0;
		if (!ret)
			mrc_provider_dereg(cache, r);
		if (r->flags & MRC_REGION_WATCHED)
			mon->unwatch(&cache->monitor, &r->watch);
		r->flags &= ~MRC_REGION_WATCHED;
		if (ret)
			return register_failed(cache, r, ret);
	}
	return mrc_error(EAGAIN, "memory at %#" PRIx64 " kept changing while it was being registered",
			 r->node.start);
}

static void init_region(struct mrc_region *r, const struct merge_set *set)
{
	mrc_itree_node_set_range(&r->node, set->start, set->end);
	r->node.aux = set->access;
	r->flags = 0;
	r->handle = NULL;
	r->lru_prev = r->lru_next = NULL;
}

/*
 * A grown hint table starts with a hint for each cached region under the
 * key of its start, so growth does not send every hit to the tree.
 */
static void seed_hints(struct mrc_hints *h, void *arg)
{
	struct mrc_cache *cache = arg;

	for (struct mrc_region *r = cache->lru_head; r; r = r->lru_next)
		mrc_hints_put(h, mrc_hints_key(r->node.start), r->index);
}

/* Put the registered region in service with one reference for the caller. */
static void publish(struct mrc_cache *cache, struct mrc_region *r)
{
	uint64_t len = r->node.end - r->node.start;

	/* Pairs with the acquire in mrc_region_try_ref(). */
	mrc_store_release(&r->state, 1);
	mrc_itree_insert(&cache->tree, &r->node);
	r->flags |= MRC_REGION_IN_TREE;
	mrc_lru_add(cache, r);
	cache->count.regions++;
	cache->count.misses++;
	cache->count.bytes_pinned += len;
	if (cache->count.bytes_pinned > cache->count.peak_bytes_pinned)
		cache->count.peak_bytes_pinned = cache->count.bytes_pinned;
	mrc_hints_grow(&cache->hints, cache->tree.count, seed_hints, cache);
}

static void retire_merged(struct mrc_cache *cache, const struct merge_set *set)
{
	for (size_t i = 0; i < set->merged.count; i++)
		mrc_region_kill(cache, set->merged.at[i]);
	cache->count.merges += set->merged.count - set->upgrades;
	cache->count.upgrades += set->upgrades;
}

static void mark_merging(const struct merge_set *set, int on)
{
	for (size_t i = 0; i < set->merged.count; i++) {
		if (on)
			set->merged.at[i]->flags |= MRC_REGION_MERGING;
		else
			set->merged.at[i]->flags &= ~MRC_REGION_MERGING;
	}
}

static int register_new(struct mrc_cache *cache, struct merge_set *set,
			struct mrc_region **region)
{
	struct mrc_region *r;
	int ret;

	mark_merging(set, 1);
	make_room(cache, set->end - set->start);
	r = mrc_region_alloc(&cache->pool);
	if (!r) {
		mark_merging(set, 0);
		return mrc_error(ENOMEM, "no memory for a region");
	}
	init_region(r, set);
	ret = register_region(cache, r);
	mark_merging(set, 0);
	if (ret) {
		mrc_region_free(&cache->pool, r);
		return ret;
	}
	if (cache->check_pfn)
		mrc_pfn_record(cache, r);
	retire_merged(cache, set);
	publish(cache, r);
	*region = r;
	return 0;
}

/* Start the set again from the request alone: its own range and access. */
static void reset_to_request(struct merge_set *set)
{
	set->merged.count = 0;
	set->start = set->req_start;
	set->end = set->req_end;
	set->access = set->req_access;
	set->upgrades = 0;
}

/*
 * A registration of the whole set failed. Keep out of the merge each
 * absorbed region whose memory it may have tripped over. Unmapped pages
 * make a region stale (an event not seen yet, or never reported): it is
 * invalidated like any reported change. Pages without write permission
 * (read-only, PROT_NONE) leave a region valid, only not one to widen: it
 * stays cached, excluded from the merge. When the maps cannot be read,
 * nothing is excluded and only the request alone is tried again.
 */
static int exclude_unregistrable(struct mrc_cache *cache,
				 struct merge_set *set)
{
	for (size_t i = 0; i < set->merged.count; i++) {
		struct mrc_region *r = set->merged.at[i];
		struct mrc_vma_state st;
		int ret;

		if (mrc_vma_state(r->node.start, r->node.end, &st))
			return 0;
		if (st.hole_end > st.hole_start) {
			mrc_cache_range_changed(cache, st.hole_start,
						    st.hole_end);
		} else if (st.unwritable) {
			ret = list_add(&set->excluded, r);
			if (ret)
				return ret;
		}
	}
	return 0;
}

/*
 * A merge never fails a get that a plain registration would serve: after
 * the merged or widened range failed, try what is left of the merge
 * without the regions that cannot be registered, then the request alone.
 * Only the request's own failure is reported.
 */
static int register_fallback(struct mrc_cache *cache, struct merge_set *set,
			     struct mrc_region **region)
{
	size_t failed = set->merged.count;
	int ret;

	ret = exclude_unregistrable(cache, set);
	if (ret)
		return ret;
	reset_to_request(set);
	ret = collect_merges(cache, set);
	if (ret)
		return ret;
	/* Nothing left the merge: the same range would fail the same way. */
	if (set->merged.count && set->merged.count < failed &&
	    !register_new(cache, set, region))
		return 0;
	reset_to_request(set);
	return register_new(cache, set, region);
}

/**
 * mrc_register_range() - serve a miss; cache lock held.
 * @cache: the cache.
 * @start, @end: page-aligned range requested.
 * @access: access flags requested.
 * @region: receives the new region, referenced once.
 *
 * Return: 0, or the error of registering the request's own range and
 * access (a merge that fails falls back to that).
 */
int mrc_register_range(struct mrc_cache *cache, uint64_t start, uint64_t end,
		       uint32_t access, struct mrc_region **region)
{
	struct merge_set set = {
		.start = start, .end = end, .access = access,
		.req_start = start, .req_end = end, .req_access = access,
	};
	int ret;

	ret = collect_merges(cache, &set);
	if (!ret) {
		ret = register_new(cache, &set, region);
		if (ret && set.merged.count)
			ret = register_fallback(cache, &set, region);
	}
	free(set.merged.at);
	free(set.excluded.at);
	return ret;
}
