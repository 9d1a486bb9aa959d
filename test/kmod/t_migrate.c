// SPDX-License-Identifier: GPL-2.0
/*
 * NUMA migration: move_pages() of watched pages to the other node, and
 * mbind(MPOL_MF_MOVE) back, each invalidate before the call returns
 * (reason CLEAR: migration unmaps the old page; MIGRATE is only used for
 * device memory) and the pages really moved (move_pages with NULL nodes).
 * Skips with fewer than two nodes.
 */
#include <numa.h>
#include <numaif.h>
#include "mrc_test.h"

#define NP 4

static int node_of(char *p)
{
	void *page = p;
	int status = -1;

	CHECK(!move_pages(0, 1, &page, NULL, &status, 0), "query node");
	return status;
}

static void place(char *p, int node)
{
	void *pages[NP];
	int nodes[NP], status[NP], i;

	for (i = 0; i < NP; i++) {
		pages[i] = p + i * t_page();
		nodes[i] = node;
	}
	CHECK(!move_pages(0, NP, pages, nodes, status, MPOL_MF_MOVE),
	      "move_pages: %s", strerror(errno));
	for (i = 0; i < NP; i++)
		CHECK(status[i] == node, "page %d status %d", i, status[i]);
}

int main(void)
{
	long pg = t_page();
	unsigned long mask;
	struct mrc_event ev;
	struct mrc_rearm r;
	struct mrct t;
	uint64_t gen;
	uint32_t id;
	char *p;
	int from, to;

	t_name = "t_migrate";
	if (numa_available() < 0 || numa_max_node() < 1)
		SKIP("needs two NUMA nodes");
	mrct_open(&t, 64, 16, 0);
	p = t_anon_guarded(NP * pg);
	place(p, 0);
	from = node_of(p);
	to = !from;

	CHECK(!mrct_watch(&t, p, NP * pg, 5, &id, &gen), "watch");
	place(p, to);
	CHECK(mrct_pop(&t, &ev), "no event after move_pages");
	CHECK(ev.id == id && (ev.reason == MRC_REASON_CLEAR ||
			      ev.reason == MRC_REASON_MIGRATE),
	      "event %s on id %u", t_reason(ev.reason), ev.id);
	CHECK(ev.start >= (uintptr_t)p && ev.end <= (uintptr_t)p + NP * pg &&
	      ev.start < ev.end, "range");
	mrct_expect_empty(&t, "coalescing after move_pages");
	CHECK(mrct_gen(&t, id) != gen, "generation did not move");
	T_LOG("move_pages node %d -> %d: %s event [+%#llx, +%#llx)", from, to,
	      t_reason(ev.reason), (unsigned long long)(ev.start - (uintptr_t)p),
	      (unsigned long long)(ev.end - (uintptr_t)p));

	/* Re-arm, then mbind with MPOL_MF_MOVE takes the pages back. */
	memset(&r, 0, sizeof(r));
	r.id = id;
	CHECK(!t_ioctl(t.fd, MRC_IOC_REARM, &r), "rearm");
	CHECK(r.generation == mrct_gen(&t, id), "rearm generation");
	mask = 1UL << from;
	CHECK(!mbind(p, NP * pg, MPOL_BIND, &mask, 8 * sizeof(mask),
		     MPOL_MF_MOVE | MPOL_MF_STRICT), "mbind: %s",
	      strerror(errno));
	CHECK(node_of(p) == from && node_of(p + (NP - 1) * pg) == from,
	      "mbind did not move the pages");
	CHECK(mrct_pop(&t, &ev) && ev.id == id &&
	      (ev.reason == MRC_REASON_CLEAR || ev.reason == MRC_REASON_MIGRATE),
	      "no event after mbind");
	CHECK(mrct_gen(&t, id) != r.generation, "mbind: generation");
	mrct_close(&t);
	T_LOG("PASS");
	return T_PASS;
}
