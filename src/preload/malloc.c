// SPDX-License-Identifier: BSD-2-Clause
/*
 * Registration-friendly allocation, opt-in (MRCACHE_PRELOAD_MALLOC=1).
 *
 * A program that mallocs and frees its transfer buffers gets a cache hit
 * only if the next buffer lands on pages that are still registered. With
 * glibc's defaults it often does not: blocks from 128 KiB up (the mmap
 * threshold, raised at run time as mmapped blocks are freed) are mmapped
 * and munmapped, and a free that leaves more than the trim threshold
 * (twice the mmap threshold) at the top of the heap gives it back with
 * brk. Either way the monitor invalidates the registration and the next
 * message registers again. MPI libraries long answered that by turning
 * both off for good; this keeps a bound:
 *
 *   M_MMAP_THRESHOLD  32 MiB, glibc's largest: blocks up to that come from
 *                     the heap, so free() does not unmap them;
 *   M_TRIM_THRESHOLD  the cap (MRCACHE_PRELOAD_MALLOC_CAP, default
 *                     256 MiB): free memory at the top of a heap is given
 *                     back only beyond it.
 *
 * Setting either turns off glibc's dynamic threshold. Freed memory kept
 * is at most the cap per heap top (plus what fragmentation holds anyway),
 * and unlike a cached registration it is not pinned until registered.
 * Larger blocks are still mmapped. Only glibc's malloc reads mallopt():
 * under a sanitizer's allocator this does nothing.
 */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "preload.h"

#define MMAP_THRESHOLD_MAX (32ul << 20)	/* glibc: HEAP_MAX_SIZE / 2 */
#define DEFAULT_CAP (256ul << 20)

/* "256M", "1G", "65536": bytes. Return: 0, or -EINVAL. */
static int parse_bytes(const char *text, unsigned long *bytes)
{
	char *end;
	unsigned long v;
	int shift = 0;

	errno = 0;
	v = strtoul(text, &end, 10);
	if (errno || end == text || text[0] == '-')
		return -EINVAL;
	if (*end) {
		const char *u = strchr("kmg", *end | 0x20);

		if (!u || end[1])
			return -EINVAL;
		shift = 10 * (int)(u - "kmg" + 1);
	}
	if (v > (~0ul >> shift) || (v << shift) > (unsigned long)INT32_MAX)
		return -EINVAL;
	*bytes = v << shift;
	return 0;
}

static int wanted(void)
{
	const char *v = getenv("MRCACHE_PRELOAD_MALLOC");

	return v && (!strcmp(v, "1") || !strcasecmp(v, "yes") ||
		     !strcasecmp(v, "on") || !strcasecmp(v, "true"));
}

/* Before the program's own constructors: its first buffers count too. */
__attribute__((constructor)) static void preload_malloc_tune(void)
{
	const char *text = getenv("MRCACHE_PRELOAD_MALLOC_CAP");
	unsigned long cap = DEFAULT_CAP;

	if (!wanted())
		return;
	if (text && parse_bytes(text, &cap)) {
		fprintf(stderr, "mrcache-preload: MRCACHE_PRELOAD_MALLOC_CAP=\"%s\" is not a size up to 2G (bytes, K, M, G); using %lu MiB\n",
			text, DEFAULT_CAP >> 20);
		cap = DEFAULT_CAP;
	}
	if (!mallopt(M_MMAP_THRESHOLD, (int)MMAP_THRESHOLD_MAX) ||
	    !mallopt(M_TRIM_THRESHOLD, (int)cap))
		fprintf(stderr, "mrcache-preload: MRCACHE_PRELOAD_MALLOC=1: mallopt() refused; allocation left as it was\n");
}
