// SPDX-License-Identifier: BSD-2-Clause
/*
 * Accessors of a referenced region. A region's fields do not change while
 * the caller holds a reference, so these need no lock.
 */
#include "mrcache.h"
#include "region.h"

void *mrc_region_addr(const struct mrc_region *region)
{
	return (void *)(uintptr_t)mrc_region_start(region);
}

size_t mrc_region_length(const struct mrc_region *region)
{
	return mrc_region_end(region) - mrc_region_start(region);
}

uint32_t mrc_region_access(const struct mrc_region *region)
{
	return mrc_region_access_flags(region);
}

void *mrc_region_handle(const struct mrc_region *region)
{
	return region->handle;
}
