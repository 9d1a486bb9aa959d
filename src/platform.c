// SPDX-License-Identifier: BSD-2-Clause
#include <time.h>
#include <unistd.h>

#include "atomics.h"
#include "platform.h"

uint64_t mrc_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t mrc_page_size(void)
{
	static uint64_t size;

	if (!mrc_load_relaxed(&size))
		mrc_store_relaxed(&size, (uint64_t)sysconf(_SC_PAGESIZE));
	return mrc_load_relaxed(&size);
}
