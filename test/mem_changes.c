// SPDX-License-Identifier: BSD-2-Clause
/* The memory changes of the runtime tests (see mem_changes.h). */
#include <errno.h>
#include <numaif.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mem_changes.h"
#include "vm_pin.h"

char *mem_map(void *where, size_t len, int fill)
{
	char *p = mmap(where, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS |
		       (where ? MAP_FIXED_NOREPLACE : 0), -1, 0);

	if (where && p == MAP_FAILED && errno == EEXIST)
		return NULL;
	if (p == MAP_FAILED || (where && p != where)) {
		perror("mmap");
		exit(1);
	}
	memset(p, fill, len);
	return p;
}

static int munmap_remap(char *p, size_t len, int fill)
{
	munmap(p, len);
	return mem_map(p, len, fill) ? 0 : -1;
}

/* What a runtime's libc hooks cannot patch: the system call itself. */
static int raw_munmap_remap(char *p, size_t len, int fill)
{
	syscall(SYS_munmap, p, len);
	return mem_map(p, len, fill) ? 0 : -1;
}

static void **page_list(char *p, size_t len, int *n)
{
	long page = sysconf(_SC_PAGESIZE);
	void **pages;

	*n = len / page;
	pages = calloc(*n, sizeof(void *));
	if (!pages)
		exit(1);
	for (int i = 0; i < *n; i++)
		pages[i] = p + i * page;
	return pages;
}

int mem_node(char *p)
{
	void *page = (void *)((uintptr_t)p & ~(uintptr_t)(sysconf(_SC_PAGESIZE) - 1));
	int status = -1;

	if (syscall(SYS_move_pages, 0, 1, &page, NULL, &status, 0) < 0 ||
	    status < 0) {
		fprintf(stderr, "move_pages cannot tell the node of %p: %s\n", page,
			strerror(status < 0 ? -status : errno));
		exit(1);
	}
	return status;
}

/* How many of the @n pages are on @node (asked after the move: the status a
 * failed move leaves behind is not the page's node). */
static int count_on(void **pages, int n, int node)
{
	int *status = calloc(n, sizeof(int)), on = 0;

	if (!status ||
	    syscall(SYS_move_pages, 0, n, pages, NULL, status, 0) < 0) {
		perror("move_pages");
		exit(1);
	}
	for (int i = 0; i < n; i++)
		on += status[i] == node;
	free(status);
	return on;
}

int mem_move(char *p, size_t len, int node)
{
	int n, *nodes, *status, on;
	void **pages = page_list(p, len, &n);
	long left;

	nodes = calloc(n, sizeof(int));
	status = calloc(n, sizeof(int));
	if (!nodes || !status)
		exit(1);
	for (int i = 0; i < n; i++)
		nodes[i] = node;
	/* Positive: that many pages did not move (pinned ones cannot). */
	left = syscall(SYS_move_pages, 0, n, pages, nodes, status, MPOL_MF_MOVE);
	if (left < 0) {
		perror("move_pages (the VM needs --numa)");
		exit(1);
	}
	on = count_on(pages, n, node);
	printf("     move_pages to node %d: %d of %d pages there after, %ld not moved\n",
	       node, on, n, left);
	free(nodes);
	free(status);
	free(pages);
	return on;
}

/*
 * Put every page of [p, p + len) on the node of its first page, before
 * anything registers it. The pages of a fresh buffer are where the
 * faulting CPU was: a thread that changed node halfway leaves them split,
 * and a later count of pages "moved" to the other node would count those
 * that were there from the start (37 of 256 once, with nothing moved).
 */
int mem_gather(char *p, size_t len)
{
	int node = mem_node(p), on = mem_move(p, len, node);

	if ((size_t)on != len / sysconf(_SC_PAGESIZE)) {
		fprintf(stderr, "only %d pages of %p gathered on node %d\n", on,
			(void *)p, node);
		exit(1);
	}
	return node;
}

long mem_pinned_kib(void)
{
	long kib = vm_pin_kib();

	if (kib < 0) {
		fprintf(stderr, "no VmPin in /proc/self/status\n");
		exit(1);
	}
	return kib;
}

int mem_send_until_unpinned(long pinned, size_t len, int (*send)(void *arg),
			    void *arg)
{
	for (int i = 0; i < 100; i++) {
		if (send(arg))
			return 0;
		if (mem_pinned_kib() < pinned + (long)(len / 1024))
			return 1;
		usleep(20000);
	}
	return 0;
}

/* Every page to the other NUMA node (the VM's --numa), then new bytes. */
static int move_pages_refill(char *p, size_t len, int fill)
{
	mem_move(p, len, !mem_node(p));
	memset(p, fill, len);
	return 0;
}

const struct mem_change mem_changes[] = {
	{ "munmap+mmap", munmap_remap, 1, 1, 1, 1 },
	/* The kernel reports the unmap to a userfaultfd, whoever called. */
	{ "syscall(SYS_munmap)+mmap", raw_munmap_remap, 0, 1, 1, 1 },
	/* Migration is the kernel's own doing: no userfaultfd event. */
	{ "move_pages", move_pages_refill, 0, 0, 0, 0 },
};
const size_t n_mem_changes = sizeof(mem_changes) / sizeof(mem_changes[0]);

int mem_change_seen(const struct mem_change *c, const char *monitor)
{
	if (!monitor)
		return c->runtime_sees;
	if (!strcmp(monitor, "hooks"))
		return c->hooks_see;
	if (!strcmp(monitor, "uffd"))
		return c->uffd_sees;
	return 1;
}
