/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Entry-point patching on x86-64: make every call of a function, from any
 * library including the one that defines it, go to a hook first.
 *
 * The first instructions of the function are overwritten with a 5-byte
 * `jmp rel32` to a pad near the function that jumps on to the hook. The
 * instructions that were overwritten are copied (relocated) into a
 * trampoline that continues in the function after them: calling
 * patch->orig runs the function as it was. When the entry already starts
 * with another library's jump (UCX's bistro patches, for one), the
 * trampoline is that jump, so both hooks run, ours first.
 */
#ifndef MRC_HOOKS_PATCH_H
#define MRC_HOOKS_PATCH_H

#include <stdint.h>

struct mrc_patch {
	const char *symbol;	/* libc's own definition is patched */
	void *hook;
	void *orig;		/* the function as it was; set by install */
	uint8_t *entry;		/* where the jump is written */
	uint8_t jump[5];	/* what we wrote there */
	uint8_t installed;
};

/*
 * Patch libc's @p->symbol to jump to @p->hook. Not thread-safe against another
 * install (callers serialize); safe against threads calling the function.
 * Return: 0, or -errno with mrc_error() set: -ENOENT (no such symbol),
 * -ENOTSUP (an instruction the relocator does not know), or the errno of
 * mprotect/mmap.
 */
int mrc_patch_install(struct mrc_patch *p);

/*
 * Is our jump still at the entry? A library loaded later may have written
 * its own over it (and then calls the function some other way).
 */
int mrc_patch_intact(const struct mrc_patch *p);

/*
 * Put our jump back in front of whatever replaced it, chaining to it.
 * Return: 0 or -errno as for install.
 */
int mrc_patch_repair(struct mrc_patch *p);

#endif /* MRC_HOOKS_PATCH_H */
