// SPDX-License-Identifier: GPL-2.0
/* Shrinking the heap with a negative sbrk() delivers UNMAP for the tail. */
#include "mrc_test.h"

int main(void)
{
	long pg = t_page();
	uintptr_t cur;
	struct mrct t;
	uint64_t gen;
	uint32_t id;
	char *top;

	t_name = "t_brk";
	mrct_open(&t, 64, 16, 0);
	/* Page-align the break, then grow it by 8 pages. */
	cur = (uintptr_t)sbrk(0);
	CHECK(sbrk((pg - cur % pg) % pg) != (void *)-1, "sbrk align");
	top = sbrk(8 * pg);
	CHECK(top != (void *)-1, "sbrk grow: %s", strerror(errno));
	memset(top, 1, 8 * pg);
	CHECK(!mrct_watch(&t, top, 8 * pg, 7, &id, &gen), "watch heap");

	CHECK(sbrk(-4 * pg) != (void *)-1, "sbrk shrink: %s", strerror(errno));
	mrct_expect(&t, id, 7, MRC_REASON_UNMAP, top + 4 * pg, top + 8 * pg);
	CHECK(mrct_gen(&t, id) != gen, "generation did not move");
	mrct_close(&t);
	T_LOG("PASS");
	return T_PASS;
}
