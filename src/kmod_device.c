// SPDX-License-Identifier: BSD-2-Clause
/* Opening /dev/mrcache and its handshake (see kmod_device.h). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "mrcache_abi.h"
#include "error.h"
#include "kmod_device.h"

int mrc_kmod_open(void)
{
	int fd = open(MRC_DEVICE_PATH, O_RDWR | O_CLOEXEC);

	if (fd >= 0)
		return fd;
	if (errno == ENOENT || errno == ENXIO || errno == ENODEV)
		return mrc_error(ENODEV, "%s not present (is the mrcache module loaded?)",
				 MRC_DEVICE_PATH);
	return mrc_error(errno, "cannot open %s", MRC_DEVICE_PATH);
}

int mrc_kmod_api(int fd, struct mrc_api *api, uint32_t flags,
		 uint64_t features, uint32_t watch_slots,
		 uint32_t ring_entries)
{
	memset(api, 0, sizeof(*api));
	api->abi_version = MRC_ABI_VERSION;
	api->flags = flags;
	api->features = features;
	api->watch_slots = watch_slots;
	api->ring_entries = ring_entries;
	if (ioctl(fd, MRC_IOC_API, api))
		return mrc_error(errno, "MRC_IOC_API handshake with %s failed (module ABI %d expected)",
				 MRC_DEVICE_PATH, MRC_ABI_VERSION);
	return 0;
}
