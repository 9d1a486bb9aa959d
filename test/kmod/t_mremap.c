// SPDX-License-Identifier: GPL-2.0
/*
 * mremap: moving a watched range unmaps the old addresses (UNMAP of the
 * whole old range); shrinking in place unmaps the tail.
 */
#include "mrc_test.h"

int main(void)
{
	long pg = t_page();
	struct mrct t;
	uint64_t ga, gb;
	uint32_t a, b;
	char *pa, *pb, *dst, *moved;

	t_name = "t_mremap";
	mrct_open(&t, 64, 16, 0);

	pa = t_anon_guarded(4 * pg);
	dst = t_anon_guarded(4 * pg);
	CHECK(!mrct_watch(&t, pa, 4 * pg, 1, &a, &ga), "watch a");
	moved = mremap(pa, 4 * pg, 4 * pg, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
	CHECK(moved == dst, "mremap move: %s", strerror(errno));
	mrct_expect(&t, a, 1, MRC_REASON_UNMAP, pa, pa + 4 * pg);
	CHECK(mrct_gen(&t, a) != ga, "generation of a did not move");

	pb = t_anon_guarded(8 * pg);
	CHECK(!mrct_watch(&t, pb, 8 * pg, 2, &b, &gb), "watch b");
	CHECK(mremap(pb, 8 * pg, 3 * pg, 0) == pb, "mremap shrink: %s",
	      strerror(errno));
	mrct_expect(&t, b, 2, MRC_REASON_UNMAP, pb + 3 * pg, pb + 8 * pg);
	CHECK(mrct_gen(&t, b) != gb, "generation of b did not move");
	mrct_expect_empty(&t, "end");
	mrct_close(&t);
	T_LOG("PASS");
	return T_PASS;
}
