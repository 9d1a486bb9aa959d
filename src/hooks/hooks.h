/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The libc calls that change a mapping, hooked at their entry points (so
 * glibc's own calls from free(), realloc(), malloc_trim() and heap
 * shrinking are seen too): munmap, mremap, madvise (the advice values that
 * drop or replace pages), brk, sbrk, shmdt, mmap with MAP_FIXED,
 * and syscall() with any of their numbers. dlopen is hooked to put our
 * patches back when a library loaded later wrote its own over them.
 *
 * A hook records the range (record.h) before the call and, when a
 * registration may have raced with it, again after. It takes no lock,
 * allocates nothing and calls nothing of the cache; with no monitor
 * attached it is a load and a branch.
 */
#ifndef MRC_HOOKS_HOOKS_H
#define MRC_HOOKS_HOOKS_H

/*
 * Patch every entry point, once per process; later calls only put back
 * patches another library overwrote. Return: 0 or -errno (mrc_error set).
 */
int mrc_hooks_install(void);

/* Are all our patches still in place? Cheap: a compare per function. */
int mrc_hooks_intact(void);

#endif /* MRC_HOOKS_HOOKS_H */
