/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The range shmdt(addr) will detach, found without libc (for the hooks).
 */
#ifndef MRC_HOOKS_SHM_RANGE_H
#define MRC_HOOKS_SHM_RANGE_H

#include <stdint.h>

#include "hooks/record.h"

/*
 * How many bytes from @addr up shmdt(@addr) may unmap: up to the end of
 * the last mapping of the segment attached at @addr, as /proc/self/maps
 * shows it; everything from @addr up when that cannot be read. Never too
 * short. Allocates nothing, calls no libc function.
 */
MRC_HOOK_PATH uint64_t mrc_shm_detach_len(uint64_t addr);

#endif /* MRC_HOOKS_SHM_RANGE_H */
