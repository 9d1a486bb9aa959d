/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Whether caches use thread refs: the two facts that decide it, for the
 * library (records_init() in threadrefs.c asks the kernel through here)
 * and for the programs that must say which references they measured or
 * what counters to expect (bench/hit_bench, mrcache-bench, the tests),
 * which cannot ask a cache. Thread refs are the default; a cache created
 * while MRCACHE_THREAD_REFS reads as false, or in a process whose kernel
 * has no private expedited membarrier, uses compare-and-swap references.
 * test/cache_test checks this prediction against what a cache reports in
 * its MRCACHE_STATS line.
 */
#ifndef MRC_TREFS_MODE_H
#define MRC_TREFS_MODE_H

#include <linux/membarrier.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bool_words.h"

/* The kernel can run the reclaimer's fence (registering may still fail). */
static inline bool mrc_trefs_membarrier_ok(void)
{
	long cmds = syscall(__NR_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);

	return cmds >= 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED);
}

/* @text is a value src/config.c reads as false. */
static inline bool mrc_trefs_env_off(const char *text)
{
	return text && mrc_bool_no(text);
}

/* Caches created now use them. */
static inline bool mrc_trefs_expected(void)
{
	return !mrc_trefs_env_off(getenv("MRCACHE_THREAD_REFS")) &&
	       mrc_trefs_membarrier_ok();
}

#endif /* MRC_TREFS_MODE_H */
