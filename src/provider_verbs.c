// SPDX-License-Identifier: BSD-2-Clause
/*
 * The ibverbs provider: regions are ibv_mr objects of one protection domain.
 */
#include <errno.h>
#include <infiniband/verbs.h>

#include "mrcache.h"
#include "error.h"

static int verbs_reg(void *ctx, void *addr, size_t len, uint32_t access,
		     void **handle)
{
	struct ibv_mr *mr;

	errno = 0;
	mr = ibv_reg_mr(ctx, addr, len, (int)access);
	if (!mr)
		return errno ? -errno : -EIO;
	*handle = mr;
	return 0;
}

static int verbs_dereg(void *ctx, void *handle)
{
	int ret;

	(void)ctx;
	ret = ibv_dereg_mr(handle);
	return ret > 0 ? -ret : ret;
}

/**
 * mrc_cache_create_verbs() - a cache registering with ibv_reg_mr() on @pd.
 * @pd: protection domain; must outlive the cache.
 * @default_access: IBV_ACCESS_* used when mrc_get() is given access 0
 *                  (overrides attr's default_access).
 * @attr: optional parameters, or NULL.
 * @cache: receives the cache.
 */
int mrc_cache_create_verbs(struct ibv_pd *pd, uint32_t default_access,
			   const struct mrc_cache_attr *attr,
			   struct mrc_cache **cache)
{
	struct mrc_provider provider = {
		.name = "verbs",
		.reg = verbs_reg,
		.dereg = verbs_dereg,
		.ctx = pd,
	};
	struct mrc_cache_attr a = { 0 };

	if (!pd)
		return mrc_error(EINVAL, "protection domain is NULL");
	if (attr)
		a = *attr;
	a.comp_mask |= MRC_ATTR_DEFAULT_ACCESS;
	a.default_access = default_access;
	return mrc_cache_create(&provider, &a, cache);
}

struct ibv_mr *mrc_region_mr(const struct mrc_region *region)
{
	return mrc_region_handle(region);
}

uint32_t mrc_region_lkey(const struct mrc_region *region)
{
	return mrc_region_mr(region)->lkey;
}

uint32_t mrc_region_rkey(const struct mrc_region *region)
{
	return mrc_region_mr(region)->rkey;
}
