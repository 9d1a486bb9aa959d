// SPDX-License-Identifier: GPL-2.0
/*
 * Pinned pages and migration.  Register 4 pages with ibv_reg_mr on the
 * first RDMA device (rxe0 in the VM): move_pages to the other node fails
 * while the pages are pinned, yet the kernel invalidates (CLEAR) on every
 * attempt; the module turns those many callbacks into ONE event.  After
 * ibv_dereg_mr the same move_pages succeeds, as move_pages(NULL nodes)
 * confirms.  Skips without two NUMA nodes or without an RDMA device.
 */
#include <infiniband/verbs.h>
#include <numa.h>
#include <numaif.h>
#include "mrc_test.h"

#define NP 4

/* Move all pages to @node; returns how many are on @node afterwards. */
static int try_place(char *p, int node, long *ret)
{
	void *pages[NP];
	int nodes[NP], status[NP], i, n = 0;

	for (i = 0; i < NP; i++) {
		pages[i] = p + i * t_page();
		nodes[i] = node;
	}
	*ret = move_pages(0, NP, pages, nodes, status, MPOL_MF_MOVE);
	CHECK(!move_pages(0, NP, pages, NULL, status, 0), "query");
	for (i = 0; i < NP; i++)
		n += status[i] == node;
	return n;
}

static struct ibv_pd *open_pd(struct ibv_context **ctx)
{
	struct ibv_device **list;
	struct ibv_pd *pd;
	int n;

	list = ibv_get_device_list(&n);
	if (!list || n == 0)
		SKIP("no RDMA device");
	*ctx = ibv_open_device(list[0]);
	CHECK(*ctx, "ibv_open_device %s", ibv_get_device_name(list[0]));
	T_LOG("device %s", ibv_get_device_name(list[0]));
	ibv_free_device_list(list);
	pd = ibv_alloc_pd(*ctx);
	CHECK(pd, "ibv_alloc_pd");
	return pd;
}

int main(void)
{
	long pg = t_page(), ret, cb0, cb1, ev0, ev1;
	struct ibv_context *ctx;
	struct mrc_event ev;
	struct ibv_mr *mr;
	struct ibv_pd *pd;
	struct mrct t;
	uint64_t gen;
	uint32_t id;
	char *p;
	int moved;

	t_name = "t_pinned";
	if (numa_available() < 0 || numa_max_node() < 1)
		SKIP("needs two NUMA nodes");
	pd = open_pd(&ctx);
	mrct_open(&t, 64, 16, 0);
	p = t_anon_guarded(NP * pg);
	CHECK(try_place(p, 0, &ret) == NP, "initial placement on node 0");
	CHECK(!mrct_watch(&t, p, NP * pg, 11, &id, &gen), "watch");
	mr = ibv_reg_mr(pd, p, NP * pg, IBV_ACCESS_LOCAL_WRITE);
	CHECK(mr, "ibv_reg_mr: %s", strerror(errno));

	cb0 = t_stat("callbacks");
	ev0 = t_stat("events");
	moved = try_place(p, 1, &ret);
	cb1 = t_stat("callbacks");
	ev1 = t_stat("events");
	CHECK(moved == 0, "%d pinned pages moved (move_pages %ld)", moved, ret);
	CHECK(mrct_pop(&t, &ev) && ev.id == id &&
	      ev.reason == MRC_REASON_CLEAR, "no CLEAR for the pinned pages");
	mrct_expect_empty(&t, "coalescing");
	CHECK(mrct_gen(&t, id) != gen, "generation did not move");
	T_LOG("pinned: move_pages returned %ld, 0/%d pages moved, %ld "
	      "callbacks -> %ld event(s)", ret, NP, cb1 - cb0, ev1 - ev0);

	CHECK(!ibv_dereg_mr(mr), "ibv_dereg_mr");
	moved = try_place(p, 1, &ret);
	CHECK(ret == 0 && moved == NP, "after dereg: %d moved, move_pages %ld",
	      moved, ret);
	T_LOG("after ibv_dereg_mr: move_pages returned 0, %d/%d pages on node 1",
	      moved, NP);
	mrct_close(&t);
	ibv_dealloc_pd(pd);
	ibv_close_device(ctx);
	T_LOG("PASS");
	return T_PASS;
}
