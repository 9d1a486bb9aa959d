/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The merge-fallback cases, shared by the fake-provider test (cache_test)
 * and the real-verbs test (verbs_test): a buffer next to a cached neighbour
 * that a merged registration cannot cover.
 */
#ifndef MRC_TEST_MERGE_CASES_H
#define MRC_TEST_MERGE_CASES_H

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

#endif
