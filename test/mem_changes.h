/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The memory changes the runtime tests (ofi_test, ucx_test) put under a
 * cached registration, and which monitor sees each.
 */
#ifndef MRC_TEST_MEM_CHANGES_H
#define MRC_TEST_MEM_CHANGES_H

#include <stddef.h>

struct mem_change {
	const char *name;
	/*
	 * 0, or -1 when another thread mapped something into the hole
	 * between the munmap and the new mapping (run the case again).
	 */
	int (*apply)(char *p, size_t len, int fill);
	int runtime_sees;	/* the runtime's own hooks see it */
	int hooks_see;		/* mrcache's libc hooks see it (the module sees all) */
	int uffd_sees;		/* the kernel reports it to a userfaultfd */
	/*
	 * An unseen change leaves a stale registration. Not so for
	 * move_pages: a pinned page cannot move, so the old registration
	 * still maps what the program sees; a monitor that sees the attempt
	 * makes the runtime let go of its pin (a fresh registration).
	 */
	int stale_if_missed;
};

extern const struct mem_change mem_changes[];
extern const size_t n_mem_changes;

/*
 * A new anonymous mapping (at @where exactly, if given) filled with @fill;
 * NULL when @where is taken.
 */
char *mem_map(void *where, size_t len, int fill);
/* Every page on the first page's node (unregistered memory); that node. */
int mem_gather(char *p, size_t len);
/* The NUMA node of the page holding @p. */
int mem_node(char *p);
/*
 * move_pages of every page of [p, p + len) to @node (the VM's --numa);
 * return how many are on @node afterwards. A pinned page does not move.
 */
int mem_move(char *p, size_t len, int node);
/* This process's pinned memory (VmPin: what registrations hold), in KiB. */
long mem_pinned_kib(void);
/*
 * A runtime frees the registrations its cache dropped at its next
 * registration, and the shim's drain thread may report late on a loaded
 * host: call @send (a registration and a send from another buffer) until
 * VmPin is below @pinned + @len, every 20 ms for two seconds at most.
 * Return: 1 once it is, 0 when it stays (without the module it does, for
 * good) or @send returned nonzero.
 */
int mem_send_until_unpinned(long pinned, size_t len, int (*send)(void *arg),
			    void *arg);
/*
 * Should a run with this monitor ("kmod", "hooks", "uffd"; NULL: the
 * runtime's own) see @c?
 */
int mem_change_seen(const struct mem_change *c, const char *monitor);

#endif /* MRC_TEST_MEM_CHANGES_H */
