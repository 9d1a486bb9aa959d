// SPDX-License-Identifier: GPL-2.0
/*
 * munmap of part of a watched range and of a whole one: the UNMAP event
 * with the unmapped part of the range is in the ring when munmap returns,
 * and the generation has moved.
 */
#include "mrc_test.h"

int main(void)
{
	long pg = t_page();
	struct mrc_query q;
	struct mrct t;
	uint64_t gen_a, gen_b;
	uint32_t a, b;
	char *pa, *pb;

	t_name = "t_munmap";
	mrct_open(&t, 64, 16, 0);
	pa = t_anon(8 * pg);
	pb = t_anon_guarded(4 * pg);
	CHECK(!mrct_watch(&t, pa, 8 * pg, 0xa, &a, &gen_a), "watch a");
	CHECK(!mrct_watch(&t, pb, 4 * pg, 0xb, &b, &gen_b), "watch b");
	CHECK(a != b && mrct_gen(&t, a) == gen_a && mrct_gen(&t, b) == gen_b,
	      "ids %u %u generations", a, b);
	mrct_expect_empty(&t, "after watch");

	/* Partial: pages 2..3 of a. */
	CHECK(!munmap(pa + 2 * pg, 2 * pg), "munmap");
	mrct_expect(&t, a, 0xa, MRC_REASON_UNMAP, pa + 2 * pg, pa + 4 * pg);
	CHECK(mrct_gen(&t, a) != gen_a, "generation of a did not move");
	CHECK(mrct_gen(&t, b) == gen_b, "generation of b moved");
	CHECK(!mrct_query(&t, a, &q) && q.state == MRC_STATE_INVALID &&
	      q.last_reason == MRC_REASON_UNMAP, "query a: state %u", q.state);

	/* The rest of a: coalesced, no second event for an invalid watch. */
	CHECK(!munmap(pa, 8 * pg), "munmap rest");
	mrct_expect_empty(&t, "second munmap of an invalid watch");

	/* Full: b and its guard pages. */
	CHECK(!munmap(pb - pg, 6 * pg), "munmap b");
	mrct_expect(&t, b, 0xb, MRC_REASON_UNMAP, pb, pb + 4 * pg);
	CHECK(mrct_gen(&t, b) != gen_b, "generation of b did not move");
	CHECK(mrct_overflow(&t) == 0, "overflow %llu",
	      (unsigned long long)mrct_overflow(&t));

	CHECK(!mrct_unwatch(&t, a) && !mrct_unwatch(&t, b), "unwatch");
	CHECK(mrct_unwatch(&t, a) == -ENOENT, "double unwatch");
	mrct_close(&t);
	T_LOG("PASS");
	return T_PASS;
}
