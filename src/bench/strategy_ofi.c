// SPDX-License-Identifier: BSD-2-Clause
/*
 * libfabric's MR cache (the verbs provider's domain cache, libfabric's
 * default memory monitor) as a strategy. Every message costs an
 * fi_mr_reg + fi_close through that cache, as a libfabric application
 * pays it. The verbs domain registers on a protection domain of its own
 * (and fi_mr_desc is the provider's descriptor, not an lkey), so its keys
 * are not valid on mrcache-bench's queue pair: the bytes move with the
 * buffer's pre-registered MR. The cell's time is that transfer plus
 * libfabric's lookup (a hit) or registration (a miss); the byte check
 * shows the plumbing, not libfabric's invalidation (test/ofi.sh does).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strategy.h"

#ifdef HAVE_OFI
#include <rdma/fabric.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_errno.h>

struct ofi_cache {
	struct fi_info *info;
	struct fid_fabric *fabric;
	struct fid_domain *domain;
};

static int ofi_acquire(struct strategy *s, struct wbuf *w, void *p, size_t len, struct reg *r)
{
	struct ofi_cache *c = s->state;
	struct ibv_mr *pre = w->owner;
	struct fid_mr *mr;
	int ret = fi_mr_reg(c->domain, p, len, FI_SEND | FI_RECV | FI_READ | FI_WRITE |
			    FI_REMOTE_READ | FI_REMOTE_WRITE, 0, 0, 0, &mr, NULL);

	if (ret) {
		fprintf(stderr, "mrcache-bench: fi_mr_reg(%p, %zu): %s\n", p, len,
			fi_strerror(-ret));
		return ret;
	}
	*r = (struct reg){ pre->lkey, pre->rkey, mr };
	return 0;
}

static void ofi_release(struct strategy *s, struct reg *r)
{
	(void)s;
	fi_close(&((struct fid_mr *)r->handle)->fid);
}

static void ofi_fini(struct strategy *s)
{
	struct ofi_cache *c = s->state;

	if (c->domain)
		fi_close(&c->domain->fid);
	if (c->fabric)
		fi_close(&c->fabric->fid);
	if (c->info)
		fi_freeinfo(c->info);
	free(c);
}

/* The verbs domain named @name (an endpoint type of @type) on @s's device. */
static int ofi_find(struct ofi_cache *c, const char *name, enum fi_ep_type type)
{
	struct fi_info *hints = fi_allocinfo();
	int ret;

	if (!hints)
		return -FI_ENOMEM;
	hints->fabric_attr->prov_name = strdup("verbs");
	hints->domain_attr->name = strdup(name);
	hints->ep_attr->type = type;
	hints->caps = FI_MSG;
	hints->domain_attr->mr_mode = FI_MR_LOCAL | FI_MR_VIRT_ADDR |
				      FI_MR_ALLOCATED | FI_MR_PROV_KEY;
	ret = fi_getinfo(FI_VERSION(1, 13), NULL, NULL, 0, hints, &c->info);
	fi_freeinfo(hints);
	return ret;
}

/*
 * The device's MSG domain, else its DGRAM one: only the domain is opened
 * (no endpoint, no rdma_cm connection), which works on rxe over lo too.
 */
static int ofi_open(struct strategy *s, struct ofi_cache *c)
{
	char dgram[sizeof(s->ep->device) + 8];
	int ret = ofi_find(c, s->ep->device, FI_EP_MSG);

	snprintf(dgram, sizeof(dgram), "%s-dgram", s->ep->device);
	if (ret)
		ret = ofi_find(c, dgram, FI_EP_DGRAM);
	if (ret) {
		snprintf(s->why, sizeof(s->why), "libfabric's verbs provider has no "
			 "domain %.24s (nor %.24s-dgram): %.40s", s->ep->device, s->ep->device,
			 fi_strerror(-ret));
		return ret;
	}
	ret = fi_fabric(c->info->fabric_attr, &c->fabric, NULL);
	if (!ret)
		ret = fi_domain(c->fabric, c->info, &c->domain, NULL);
	if (ret)
		snprintf(s->why, sizeof(s->why), "libfabric verbs domain %.40s: %.40s",
			 c->info->domain_attr->name, fi_strerror(-ret));
	return ret;
}

static const struct cache_calls ofi_calls = { ofi_acquire, ofi_release, NULL, ofi_fini };

int strategy_ofi_init(struct strategy *s, int cache_regions)
{
	struct ofi_cache *c = calloc(1, sizeof(*c));
	char max[24];
	int ret;

	if (!c) {
		snprintf(s->why, sizeof(s->why), "out of memory");
		return -ENOMEM;
	}
	/* The same bound on regions as the other caches (read at fi_getinfo). */
	snprintf(max, sizeof(max), "%d", cache_regions);
	setenv("FI_MR_CACHE_MAX_COUNT", max, 0);
	ret = ofi_open(s, c);
	if (ret) {
		s->state = c;
		ofi_fini(s);
		s->state = NULL;
		return ret;
	}
	fprintf(stderr, "mrcache-bench: ofi_cache: libfabric %s, verbs domain %s\n",
		fi_tostr(&(uint32_t){ fi_version() }, FI_TYPE_VERSION), c->info->domain_attr->name);
	strategy_set_cache(s, c, &ofi_calls);
	strategy_set_prereg(s);
	return 0;
}
#else
int strategy_ofi_init(struct strategy *s, int cache_regions)
{
	(void)cache_regions;
	return strategy_not_built(s, "libfabric", "--with-libfabric");
}
#endif
