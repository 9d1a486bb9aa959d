/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * libmrcache-ofi.so: mrcache as libfabric's memory monitor (libfabric
 * >= 1.13, fi_import "mr_cache"). Loaded with LD_PRELOAD it imports itself
 * from a constructor; a runtime that links it calls mrc_ofi_import()
 * before it opens its first domain. See mrcache-runtimes(7).
 */
#ifndef MRCACHE_OFI_H
#define MRCACHE_OFI_H

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Make mrcache libfabric's default memory monitor. Idempotent. Returns 0
 * when imported, 1 when FI_MR_CACHE_MONITOR names another monitor (the
 * user's choice wins), or a negative errno / -FI_* value from fi_import
 * (-FI_EBUSY once a domain's cache runs libfabric's own monitor).
 */
int mrc_ofi_import(void);

/*
 * The monitor behind it once libfabric started it ("kmod", "hooks"), or
 * NULL while no domain uses it.
 */
const char *mrc_ofi_monitor(void);

#ifdef __cplusplus
}
#endif

#endif /* MRCACHE_OFI_H */
