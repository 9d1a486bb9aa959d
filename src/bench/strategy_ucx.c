// SPDX-License-Identifier: BSD-2-Clause
/*
 * UCX's registration cache (ucs_rcache) as a strategy, with the same
 * verbs registration underneath as mrcache's verbs provider. UCX's own
 * memory events (UCM_EVENT_VM_UNMAPPED, as its verbs transports ask for)
 * invalidate regions whose memory is unmapped, so it is measured the way
 * UCX applications run it. The same bound on regions as mrcache's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "strategy.h"

#ifdef HAVE_UCX
#include <ucm/api/ucm.h>
#include <ucs/memory/rcache.h>

struct ucx_region {
	ucs_rcache_region_t super;	/* first: UCX allocates the struct */
	struct ibv_mr *mr;
};

struct ucx_cache {
	ucs_rcache_t *rcache;
	struct ep *ep;
	uint64_t gets, regs;
};

static ucs_status_t ucx_reg(void *ctx, ucs_rcache_t *rc, void *arg,
			    ucs_rcache_region_t *region, uint16_t flags)
{
	struct ucx_cache *c = ctx;
	struct ucx_region *r = (struct ucx_region *)region;
	size_t len = region->super.end - region->super.start;

	(void)rc, (void)arg, (void)flags;
	r->mr = ibv_reg_mr(c->ep->pd, (void *)region->super.start, len, BENCH_ACCESS);
	c->regs++;
	return r->mr ? UCS_OK : UCS_ERR_IO_ERROR;
}

static void ucx_dereg(void *ctx, ucs_rcache_t *rc, ucs_rcache_region_t *region)
{
	struct ucx_region *r = (struct ucx_region *)region;

	(void)ctx, (void)rc;
	if (r->mr)
		ibv_dereg_mr(r->mr);
	r->mr = NULL;
}

static void ucx_dump(void *ctx, ucs_rcache_t *rc, ucs_rcache_region_t *region,
		     char *buf, size_t max)
{
	(void)ctx, (void)rc;
	snprintf(buf, max, "mr %p", (void *)((struct ucx_region *)region)->mr);
}

static const ucs_rcache_ops_t ucx_ops = { ucx_reg, ucx_dereg, ucx_dump };

static int ucx_acquire(struct strategy *s, struct wbuf *w, void *p, size_t len, struct reg *out)
{
	struct ucx_cache *c = s->state;
	ucs_rcache_region_t *region;
	ucs_status_t st;

	(void)w;
	c->gets++;
	st = ucs_rcache_get(c->rcache, p, len, PROT_READ | PROT_WRITE, NULL, &region);
	if (st != UCS_OK) {
		fprintf(stderr, "mrcache-bench: ucs_rcache_get(%p, %zu): %s\n", p, len,
			ucs_status_string(st));
		return -EIO;
	}
	*out = (struct reg){ ((struct ucx_region *)region)->mr->lkey,
			     ((struct ucx_region *)region)->mr->rkey, region };
	return 0;
}

static void ucx_release(struct strategy *s, struct reg *r)
{
	ucs_rcache_region_put(((struct ucx_cache *)s->state)->rcache, r->handle);
}

static void ucx_counts(struct strategy *s, uint64_t *hits, uint64_t *misses)
{
	struct ucx_cache *c = s->state;

	*hits = c->gets - c->regs;
	*misses = c->regs;
}

static void ucx_fini(struct strategy *s)
{
	struct ucx_cache *c = s->state;

	ucs_rcache_destroy(c->rcache);
	free(c);
}

static const struct cache_calls ucx_calls = { ucx_acquire, ucx_release, ucx_counts, ucx_fini };

int strategy_ucx_init(struct strategy *s, int cache_regions)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	struct ucx_cache *c = calloc(1, sizeof(*c));
	ucs_rcache_params_t params = {
		.region_struct_size = sizeof(struct ucx_region),
		.alignment = page,
		.max_alignment = page,
		.ucm_events = UCM_EVENT_VM_UNMAPPED,
		.ucm_event_priority = 1000,
		.ops = &ucx_ops,
		.context = c,
		.flags = 0,
		.max_regions = (unsigned long)cache_regions,
		.max_size = SIZE_MAX,
		.max_unreleased = SIZE_MAX,
	};
	ucs_status_t st;

	if (!c) {
		snprintf(s->why, sizeof(s->why), "out of memory");
		return -ENOMEM;
	}
	c->ep = s->ep;
	st = ucs_rcache_create(&params, "mrcache-bench", NULL, &c->rcache);
	if (st != UCS_OK) {
		snprintf(s->why, sizeof(s->why), "ucs_rcache_create: %s", ucs_status_string(st));
		free(c);
		return -EIO;
	}
	strategy_set_cache(s, c, &ucx_calls);
	return 0;
}
#else
int strategy_ucx_init(struct strategy *s, int cache_regions)
{
	(void)cache_regions;
	return strategy_not_built(s, "UCX", "--with-ucx");
}
#endif
