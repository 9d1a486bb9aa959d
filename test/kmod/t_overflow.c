// SPDX-License-Identifier: GPL-2.0
/*
 * A full ring loses nothing: 64 watches, 8 ring entries, one madvise that
 * invalidates them all.  8 events are queued, the overflow counter says
 * 56, and every one of the 64 generations moved.  poll() reports
 * EPOLLIN until overflow_seen is written back.
 */
#include <poll.h>
#include "mrc_test.h"

#define NW 64

int main(void)
{
	long pg = t_page();
	struct pollfd pfd;
	struct mrc_event ev;
	uint64_t gen[NW];
	uint32_t id[NW];
	struct mrct t;
	int i, n = 0;
	char *p;

	t_name = "t_overflow";
	mrct_open(&t, 8, NW, 0);
	p = t_anon_guarded(NW * pg);
	for (i = 0; i < NW; i++)
		CHECK(!mrct_watch(&t, p + i * pg, pg, i, &id[i], &gen[i]),
		      "watch %d", i);
	CHECK(!madvise(p, NW * pg, MADV_DONTNEED), "madvise");

	CHECK(mrct_overflow(&t) == NW - 8, "overflow %llu, wanted %d",
	      (unsigned long long)mrct_overflow(&t), NW - 8);
	for (i = 0; i < NW; i++)
		CHECK(mrct_gen(&t, id[i]) != gen[i], "generation %d kept", i);
	while (mrct_pop(&t, &ev)) {
		CHECK(ev.reason == MRC_REASON_CLEAR, "reason %u", ev.reason);
		n++;
	}
	CHECK(n == 8, "%d events queued", n);

	pfd = (struct pollfd){ .fd = t.fd, .events = POLLIN };
	CHECK(poll(&pfd, 1, 0) == 1, "poll after drain with overflow unseen");
	*t.overflow_seen = mrct_overflow(&t);
	CHECK(poll(&pfd, 1, 0) == 0, "poll after overflow_seen");
	mrct_close(&t);
	T_LOG("PASS (8 queued, %d counted as overflow, %d generations moved)",
	      NW - 8, NW);
	return T_PASS;
}
