// SPDX-License-Identifier: BSD-2-Clause
/*
 * Paranoid mode (MRCACHE_CHECK_PFN=N): remember the physical frames under
 * the first N pages of each region at registration and compare them on
 * every hit. A mismatch means the cache is about to hand out a registration
 * whose pages are no longer the ones the application sees, the bug this
 * library exists to prevent, so it aborts loudly rather than let RDMA move
 * the wrong bytes.
 *
 * Frames come from /proc/self/pagemap, which shows them only with
 * CAP_SYS_ADMIN; without it every frame reads as zero and the check is
 * switched off with a warning.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cache.h"
#include "error.h"

#define PAGEMAP_PFN_MASK ((1ull << 55) - 1)
#define PAGEMAP_PRESENT (1ull << 63)

static uint64_t region_pages(const struct mrc_cache *cache,
			     const struct mrc_region *r)
{
	uint64_t pages = (r->node.end - r->node.start) / mrc_page_size();

	return pages < cache->check_pfn ? pages : cache->check_pfn;
}

static int read_frames(uint64_t start, uint64_t pages, uint64_t *frames)
{
	off_t off = (off_t)(start / mrc_page_size() * sizeof(uint64_t));
	size_t len = pages * sizeof(uint64_t);
	ssize_t got;
	int fd;

	fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	got = pread(fd, frames, len, off);
	close(fd);
	if (got != (ssize_t)len)
		return got < 0 ? -errno : -EIO;
	for (uint64_t i = 0; i < pages; i++)
		frames[i] = frames[i] & PAGEMAP_PRESENT ?
			    frames[i] & PAGEMAP_PFN_MASK : 0;
	return 0;
}

static int frames_visible(const uint64_t *frames, uint64_t pages)
{
	for (uint64_t i = 0; i < pages; i++)
		if (frames[i])
			return 1;
	return 0;
}

/**
 * mrc_pfn_record() - remember a new region's frames; cache lock held.
 *
 * Turns the check off for the whole cache when frames cannot be read.
 */
int mrc_pfn_record(struct mrc_cache *cache, struct mrc_region *r)
{
	uint64_t pages = region_pages(cache, r);
	int ret;

	r->pfns = calloc(pages, sizeof(uint64_t));
	if (!r->pfns)
		return -ENOMEM;
	ret = read_frames(r->node.start, pages, r->pfns);
	if (!ret && !frames_visible(r->pfns, pages))
		ret = -EPERM;
	if (ret) {
		mrc_warn("MRCACHE_CHECK_PFN disabled: cannot read frames from /proc/self/pagemap (%s; needs CAP_SYS_ADMIN)",
			 ret == -EPERM ? "frames read as zero" : "read failed");
		mrc_store_relaxed(&cache->check_pfn, 0);
		free(r->pfns);
		r->pfns = NULL;
	}
	return ret;
}

/**
 * mrc_pfn_verify() - abort if a region's pages moved since registration.
 */
void mrc_pfn_verify(const struct mrc_cache *cache, const struct mrc_region *r)
{
	uint64_t pages = region_pages(cache, r);
	uint64_t frames[64];

	if (!r->pfns)
		return;
	if (pages > 64)
		pages = 64;
	if (read_frames(r->node.start, pages, frames))
		return;
	for (uint64_t i = 0; i < pages; i++) {
		if (frames[i] == r->pfns[i])
			continue;
		fprintf(stderr,
			"mrcache: MRCACHE_CHECK_PFN: stale registration! page %" PRIu64
			" of region %#" PRIx64 "-%#" PRIx64 " was frame %#" PRIx64
			" at registration and is %#" PRIx64 " now; the memory changed without an invalidation\n",
			i, r->node.start, r->node.end, r->pfns[i], frames[i]);
		abort();
	}
}
