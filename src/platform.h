/* SPDX-License-Identifier: BSD-2-Clause */
/* What the system tells every part of the library: page size, time. */
#ifndef MRC_PLATFORM_H
#define MRC_PLATFORM_H

#include <stdint.h>

uint64_t mrc_page_size(void);
uint64_t mrc_now_ns(void);

/*
 * Ticks: the clock that times provider calls, read twice on every miss
 * and deregistration. The TSC where it runs at a constant rate (x86-64
 * with an invariant TSC), a fraction of clock_gettime()'s cost; else
 * nanoseconds. mrc_ticks_init() once before the first mrc_ticks().
 */
extern int mrc_ticks_are_tsc;
void mrc_ticks_init(void);
uint64_t mrc_ticks_to_ns(uint64_t ticks);

static inline uint64_t mrc_ticks(void)
{
#if defined(__x86_64__)
	if (mrc_ticks_are_tsc)
		return __builtin_ia32_rdtsc();
#endif
	return mrc_now_ns();
}

#endif /* MRC_PLATFORM_H */
