/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The merge-fallback cases, shared by the fake-provider test (cache_test)
 * and the real-verbs test (verbs_test): a buffer next to a cached neighbour
 * that a merged registration cannot cover.
 */
#ifndef MRC_TEST_MERGE_CASES_H
#define MRC_TEST_MERGE_CASES_H

#include <check.h>
#include <errno.h>
#include <stddef.h>
#include <sys/mman.h>

enum neighbour {
	NB_READ_ONLY,		/* cached for reading over read-only memory */
	NB_PROT_NONE,		/* cached, then made PROT_NONE */
	NB_UNMAPPED,		/* cached, then unmapped unreported: stale */
	NB_OTHER_ACCESS,	/* cached writable; the request is read-only */
};

static const struct merge_case {
	const char *name;
	enum neighbour kind;
	int above;		/* the neighbour is above the request */
} merge_cases[] = {
	{ "read-only below", NB_READ_ONLY, 0 },
	{ "read-only above", NB_READ_ONLY, 1 },
	{ "PROT_NONE below", NB_PROT_NONE, 0 },
	{ "PROT_NONE above", NB_PROT_NONE, 1 },
	{ "unmapped below", NB_UNMAPPED, 0 },
	{ "unmapped above", NB_UNMAPPED, 1 },
	{ "other access below", NB_OTHER_ACCESS, 0 },
	{ "other access above", NB_OTHER_ACCESS, 1 },
};

/*
 * Pages a mapping keeps above an unmapped neighbour (DECOY_PAGES), and the
 * unmapping itself. A one-page hole is where the kernel puts the next
 * one-page mmap when it is the highest free gap that fits (it searches top
 * down), and the get under test makes such mmaps (ASan's allocator, the
 * verbs library): the neighbour was mapped again in 2 of 5 ASan runs, and
 * the cache rightly saw nothing stale. So a larger hole is opened above it
 * first, where those mmaps go instead.
 */
#define DECOY_PAGES 32

static inline void unmap_neighbour(void *nb, size_t page, void *decoy)
{
	ck_assert((char *)decoy > (char *)nb);
	ck_assert_int_eq(munmap(decoy, DECOY_PAGES * page), 0);
	ck_assert_int_eq(munmap(nb, page), 0);
}

/* The case's precondition, checked after the get: the page is still a hole. */
static inline void assert_still_unmapped(void *nb, size_t page)
{
	unsigned char v;

	ck_assert_msg(mincore(nb, page, &v) == -1 && errno == ENOMEM,
		      "the unmapped neighbour %p was mapped again during the get: the case did not happen",
		      nb);
}

#endif
