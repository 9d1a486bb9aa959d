// SPDX-License-Identifier: BSD-2-Clause
#include <pthread.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

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

int mrc_ticks_are_tsc;

/* A TSC reading and the clock beside it, taken once: the rate's origin. */
static uint64_t origin_ns, origin_ticks;
static pthread_once_t ticks_once = PTHREAD_ONCE_INIT;

/*
 * Invariant TSC: CPUID 0x80000007, EDX bit 8 (the rate does not change
 * with P- or C-states). Hypervisors hide it where the TSC is not stable.
 */
static void ticks_setup(void)
{
#if defined(__x86_64__)
	unsigned int a, b, c, d;

	if (__get_cpuid(0x80000007, &a, &b, &c, &d) && (d & (1u << 8)))
		mrc_ticks_are_tsc = 1;
#endif
	origin_ns = mrc_now_ns();
	origin_ticks = mrc_ticks();
}

void mrc_ticks_init(void)
{
	pthread_once(&ticks_once, ticks_setup);
}

/*
 * Nanoseconds in @ticks, at the rate measured from the origin to now:
 * exact but for the two clock readings' own error, which a process that
 * has run a few milliseconds makes negligible.
 */
uint64_t mrc_ticks_to_ns(uint64_t ticks)
{
	uint64_t ns, elapsed;

	if (!mrc_ticks_are_tsc)
		return ticks;
	ns = mrc_now_ns() - origin_ns;
	elapsed = mrc_ticks() - origin_ticks;
	if (!elapsed)
		return 0;
	return (uint64_t)((double)ticks * (double)ns / (double)elapsed);
}
