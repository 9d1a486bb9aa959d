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
 *
 * The frames are kept aside in a small hash table keyed by region (regions
 * themselves stay within 128 bytes); its lock is taken only in this mode.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cache.h"
#include "error.h"

#define PAGEMAP_PFN_MASK ((1ull << 55) - 1)
#define PAGEMAP_PRESENT (1ull << 63)
#define PFN_BUCKETS 1024
#define PFN_VERIFY_MAX 64

struct pfn_record {
	struct pfn_record *next;
	const struct mrc_region *region;
	uint64_t pages;
	uint64_t frames[];
};

struct mrc_pfn_table {
	pthread_rwlock_t lock;
	struct pfn_record *bucket[PFN_BUCKETS];
};

static struct pfn_record **bucket_of(struct mrc_pfn_table *t,
				     const struct mrc_region *r)
{
	return &t->bucket[((uintptr_t)r >> 7) % PFN_BUCKETS];
}

static uint64_t region_pages(const struct mrc_cache *cache,
			     const struct mrc_region *r)
{
	uint64_t pages = (r->node.end - r->node.start) / mrc_page_size();
	uint64_t want = mrc_load_relaxed(&cache->check_pfn);

	pages = pages < want ? pages : want;
	return pages < PFN_VERIFY_MAX ? pages : PFN_VERIFY_MAX;
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

static void disable(struct mrc_cache *cache, int ret)
{
	mrc_warn("MRCACHE_CHECK_PFN disabled: cannot read frames from /proc/self/pagemap (%s; needs CAP_SYS_ADMIN)",
		 ret == -EPERM ? "frames read as zero" : "read failed");
	mrc_store_relaxed(&cache->check_pfn, 0);
}

static struct mrc_pfn_table *table_of(struct mrc_cache *cache)
{
	struct mrc_pfn_table *t = cache->pfns;

	if (t)
		return t;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	pthread_rwlock_init(&t->lock, NULL);
	mrc_store_release(&cache->pfns, t);
	return t;
}

/**
 * mrc_pfn_record() - remember a new region's frames; cache lock held.
 *
 * Turns the check off for the whole cache when frames cannot be read.
 */
int mrc_pfn_record(struct mrc_cache *cache, struct mrc_region *r)
{
	uint64_t pages = region_pages(cache, r);
	struct mrc_pfn_table *t = table_of(cache);
	struct pfn_record *rec, **head;
	int ret;

	rec = t ? malloc(sizeof(*rec) + pages * sizeof(uint64_t)) : NULL;
	if (!rec)
		return -ENOMEM;
	rec->region = r;
	rec->pages = pages;
	ret = read_frames(r->node.start, pages, rec->frames);
	if (!ret && !frames_visible(rec->frames, pages))
		ret = -EPERM;
	if (ret) {
		disable(cache, ret);
		free(rec);
		return ret;
	}
	head = bucket_of(t, r);
	pthread_rwlock_wrlock(&t->lock);
	rec->next = *head;
	*head = rec;
	pthread_rwlock_unlock(&t->lock);
	return 0;
}

/* Drop a region's record when it is deregistered; cache lock held. */
void mrc_pfn_forget(struct mrc_cache *cache, const struct mrc_region *r)
{
	struct mrc_pfn_table *t = cache->pfns;
	struct pfn_record **p, *rec = NULL;

	pthread_rwlock_wrlock(&t->lock);
	for (p = bucket_of(t, r); *p; p = &(*p)->next) {
		if ((*p)->region == r) {
			rec = *p;
			*p = rec->next;
			break;
		}
	}
	pthread_rwlock_unlock(&t->lock);
	free(rec);
}

static void report_stale(const struct mrc_region *r, uint64_t page,
			 uint64_t then, uint64_t now)
{
	fprintf(stderr,
		"mrcache: MRCACHE_CHECK_PFN: stale registration! page %" PRIu64
		" of region %#" PRIx64 "-%#" PRIx64 " was frame %#" PRIx64
		" at registration and is %#" PRIx64 " now; the memory changed without an invalidation\n",
		page, r->node.start, r->node.end, then, now);
	abort();
}

/**
 * mrc_pfn_verify() - abort if a region's pages moved since registration.
 *
 * Runs on hits, without the cache lock; the caller holds a reference.
 */
void mrc_pfn_verify(struct mrc_cache *cache, const struct mrc_region *r)
{
	struct mrc_pfn_table *t = mrc_load_acquire(&cache->pfns);
	uint64_t frames[PFN_VERIFY_MAX];
	struct pfn_record *rec;

	if (!t)
		return;
	pthread_rwlock_rdlock(&t->lock);
	for (rec = *bucket_of(t, r); rec && rec->region != r; rec = rec->next)
		;
	if (rec && !read_frames(r->node.start, rec->pages, frames)) {
		for (uint64_t i = 0; i < rec->pages; i++)
			if (frames[i] != rec->frames[i])
				report_stale(r, i, rec->frames[i], frames[i]);
	}
	pthread_rwlock_unlock(&t->lock);
}

/* Free every record with the cache. */
void mrc_pfn_destroy(struct mrc_cache *cache)
{
	struct mrc_pfn_table *t = cache->pfns;

	if (!t)
		return;
	for (size_t i = 0; i < PFN_BUCKETS; i++) {
		while (t->bucket[i]) {
			struct pfn_record *rec = t->bucket[i];

			t->bucket[i] = rec->next;
			free(rec);
		}
	}
	pthread_rwlock_destroy(&t->lock);
	free(t);
	cache->pfns = NULL;
}
