// SPDX-License-Identifier: GPL-2.0
/*
 * Two files in one process are independent: the same range watched on
 * both produces one event in each ring; UNWATCH on one does not touch
 * the other; ids are per file.
 */
#include "mrc_test.h"

int main(void)
{
	long pg = t_page();
	struct mrc_query q;
	struct mrct a, b;
	uint64_t ga, gb, gb2;
	uint32_t ia, ib, ib2;
	char *p;

	t_name = "t_two_files";
	mrct_open(&a, 64, 16, 0);
	mrct_open(&b, 64, 16, 0);
	p = t_anon_guarded(4 * pg);
	CHECK(!mrct_watch(&a, p, 4 * pg, 1, &ia, &ga), "watch a");
	CHECK(!mrct_watch(&b, p, 4 * pg, 2, &ib, &gb), "watch b");
	CHECK(!mrct_watch(&b, p + pg, pg, 3, &ib2, &gb2), "watch b2");
	CHECK(ia == ib, "ids are per file (%u, %u)", ia, ib);

	CHECK(!mrct_unwatch(&a, ia), "unwatch a");
	CHECK(!mrct_query(&b, ib, &q) && q.state == MRC_STATE_ARMED,
	      "b lost its watch");
	CHECK(!madvise(p + pg, pg, MADV_DONTNEED), "madvise");
	mrct_expect_empty(&a, "a after unwatch");
	mrct_expect(&b, ib, 2, MRC_REASON_CLEAR, p + pg, p + 2 * pg);
	mrct_expect(&b, ib2, 3, MRC_REASON_CLEAR, p + pg, p + 2 * pg);

	CHECK(!mrct_watch(&a, p, 4 * pg, 4, &ia, &ga), "watch a again");
	mrct_close(&b);
	CHECK(!munmap(p, 4 * pg), "munmap");
	mrct_expect(&a, ia, 4, MRC_REASON_UNMAP, p, p + 4 * pg);
	mrct_close(&a);
	T_LOG("PASS");
	return T_PASS;
}
