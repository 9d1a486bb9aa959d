// SPDX-License-Identifier: GPL-2.0
/*
 * madvise(MADV_DONTNEED) delivers CLEAR for the zapped part.  mprotect()
 * does not invalidate: no event and no generation change by default; with
 * MRC_FEAT_INFO_EVENTS an informational event (flag INFO) and still no
 * generation change.
 */
#include "mrc_test.h"

static void dontneed(void)
{
	long pg = t_page();
	struct mrct t;
	uint64_t gen;
	uint32_t id;
	char *p = t_anon_guarded(8 * pg);

	mrct_open(&t, 64, 16, 0);
	CHECK(!mrct_watch(&t, p, 8 * pg, 3, &id, &gen), "watch");
	CHECK(!madvise(p + pg, 2 * pg, MADV_DONTNEED), "madvise");
	mrct_expect(&t, id, 3, MRC_REASON_CLEAR, p + pg, p + 3 * pg);
	CHECK(mrct_gen(&t, id) != gen, "generation did not move");
	mrct_close(&t);
	munmap(p, 8 * pg);
}

static void protect(uint64_t features)
{
	long pg = t_page();
	long filtered = t_stat("filtered");
	struct mrc_event ev;
	struct mrc_query q;
	struct mrct t;
	uint64_t gen;
	uint32_t id;
	char *p = t_anon_guarded(4 * pg);

	mrct_open(&t, 64, 16, features);
	CHECK(!mrct_watch(&t, p, 4 * pg, 4, &id, &gen), "watch");
	CHECK(!mprotect(p, 4 * pg, PROT_READ), "mprotect ro");
	CHECK(!mprotect(p, 4 * pg, PROT_READ | PROT_WRITE), "mprotect rw");
	CHECK(mrct_gen(&t, id) == gen, "mprotect moved the generation");
	CHECK(!mrct_query(&t, id, &q) && q.state == MRC_STATE_ARMED,
	      "state %u after mprotect", q.state);
	if (features & MRC_FEAT_INFO_EVENTS) {
		CHECK(mrct_pop(&t, &ev), "no info event");
		CHECK(ev.reason == MRC_REASON_PROTECTION_VMA &&
		      ev.flags == MRC_EVENT_F_INFO && ev.id == id,
		      "event %s flags %#x", t_reason(ev.reason), ev.flags);
		mrct_drain(&t);
	} else {
		mrct_expect_empty(&t, "mprotect");
		if (filtered >= 0)
			CHECK(t_stat("filtered") >= filtered + 2,
			      "filtered counter did not move");
	}
	/* The watch is still armed: a real invalidation still reports. */
	CHECK(!madvise(p, pg, MADV_DONTNEED), "madvise");
	mrct_expect(&t, id, 4, MRC_REASON_CLEAR, p, p + pg);
	mrct_close(&t);
	munmap(p, 4 * pg);
}

int main(void)
{
	t_name = "t_madvise";
	dontneed();
	protect(0);
	protect(MRC_FEAT_INFO_EVENTS);
	T_LOG("PASS");
	return T_PASS;
}
