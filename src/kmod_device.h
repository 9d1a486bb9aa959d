/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Opening /dev/mrcache and its MRC_IOC_API handshake, for every user of
 * the module in the library (the cache's kernel monitor, the watcher's
 * kernel backend).
 */
#ifndef MRC_KMOD_DEVICE_H
#define MRC_KMOD_DEVICE_H

#include <stdint.h>

struct mrc_api;

/* Return: an fd, -ENODEV when the module is not loaded, or -errno. */
int mrc_kmod_open(void);

/*
 * MRC_IOC_API on @fd asking for @features (MRC_FEAT_*); @flags
 * MRC_API_PROBE only asks. Return: 0 or -errno (mrc_error set).
 */
int mrc_kmod_api(int fd, struct mrc_api *api, uint32_t flags,
		 uint64_t features, uint32_t watch_slots,
		 uint32_t ring_entries);

#endif /* MRC_KMOD_DEVICE_H */
