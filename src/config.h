/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef MRC_CONFIG_H
#define MRC_CONFIG_H

#include <stdint.h>

#include "mrcache.h"

/* The longest idle bound: region idle stamps are 32-bit milliseconds. */
#define MRC_IDLE_TIMEOUT_MAX_MS (24u * 24 * 3600 * 1000)

/* The cache's settings after defaults, environment and attributes. */
struct mrc_config {
	uint64_t max_bytes;	/* 0: no bound */
	uint64_t max_regions;	/* 0: no bound */
	uint32_t merge;		/* enum mrc_merge */
	uint32_t memlock;
	uint32_t check_pfn;
	uint32_t default_access;
	uint32_t monitor;	/* enum mrc_monitor_kind */
	uint32_t print_stats;
	uint32_t progress_thread;
	uint32_t thread_refs;	/* hits through per-thread slots */
	uint64_t idle_timeout_ms;	/* 0: idle regions stay */
};

int mrc_config_load(const struct mrc_cache_attr *attr,
		    struct mrc_config *config);
const char *mrc_monitor_kind_name(uint32_t kind);

#endif /* MRC_CONFIG_H */
