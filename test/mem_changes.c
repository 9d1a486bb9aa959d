// SPDX-License-Identifier: BSD-2-Clause
/* The memory changes of the runtime tests (see mem_changes.h). */
#include <errno.h>
#include <numaif.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mem_changes.h"

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

/* A page that cannot move (pinned) stays: its status names its old node. */
static void report_moved(int n, const int *status, const int *nodes)
{
	int moved = 0, stayed = 0, failed = 0;

	for (int i = 0; i < n; i++) {
		if (status[i] == nodes[i])
			moved++;
		else if (status[i] >= 0)
			stayed++;
		else
			failed++;
	}
	printf("     move_pages to node %d: %d of %d pages moved, %d stayed, %d failed\n",
	       nodes[0], moved, n, stayed, failed);
}

/* Every page to the other NUMA node (the VM's --numa), then new bytes. */
static int move_pages_refill(char *p, size_t len, int fill)
{
	long page = sysconf(_SC_PAGESIZE);
	int n = len / page, *status = calloc(n, sizeof(int)),
	    *nodes = calloc(n, sizeof(int));
	void **pages = calloc(n, sizeof(void *));

	if (!status || !nodes || !pages)
		exit(1);
	for (int i = 0; i < n; i++)
		pages[i] = p + i * page;
	syscall(SYS_move_pages, 0, n, pages, NULL, status, 0);
	for (int i = 0; i < n; i++)
		nodes[i] = status[i] == 0 ? 1 : 0;
	if (syscall(SYS_move_pages, 0, n, pages, nodes, status, MPOL_MF_MOVE) < 0) {
		perror("move_pages (the VM needs --numa)");
		exit(1);
	}
	report_moved(n, status, nodes);
	memset(p, fill, len);
	free(status);
	free(nodes);
	free(pages);
	return 0;
}

const struct mem_change mem_changes[] = {
	{ "munmap+mmap", munmap_remap, 1, 1, 1 },
	{ "syscall(SYS_munmap)+mmap", raw_munmap_remap, 0, 1, 1 },
	{ "move_pages", move_pages_refill, 0, 0, 0 },
};
const size_t n_mem_changes = sizeof(mem_changes) / sizeof(mem_changes[0]);

int mem_change_seen(const struct mem_change *c, const char *monitor)
{
	if (!monitor)
		return c->runtime_sees;
	return strcmp(monitor, "hooks") || c->hooks_see;
}
