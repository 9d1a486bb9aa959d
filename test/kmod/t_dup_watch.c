// SPDX-License-Identifier: GPL-2.0
/*
 * Watches of exactly the same range within one file are folded onto one
 * notifier: 1,000 watches of one range make stats/ranges 1, and one
 * madvise(DONTNEED) makes one callback (not 1,000) that still gives every
 * watch its own event (own id, own cookie) and moves every generation.
 * After unwatching all but one, the last still works; after the last,
 * the range is gone.  Watches of different ranges are not folded.
 */
#include "mrc_test.h"

#define NDUP 1000

int main(void)
{
	long pg = t_page();
	static uint32_t id[NDUP];
	static uint64_t gen[NDUP];
	static unsigned char seen[NDUP];
	struct mrc_event ev;
	uint32_t other;
	struct mrct t;
	long callbacks;
	uint64_t g;
	int i, n = 0;
	char *p;

	t_name = "t_dup_watch";
	mrct_open(&t, 2048, 2048, 0);
	p = t_anon_guarded(4 * pg);
	for (i = 0; i < NDUP; i++)
		CHECK(!mrct_watch(&t, p, 2 * pg, i, &id[i], &gen[i]),
		      "watch %d", i);
	CHECK(!mrct_watch(&t, p, 3 * pg, NDUP, &other, &g), "longer range");

	callbacks = t_stat("callbacks");
	CHECK(!madvise(p, pg, MADV_DONTNEED), "madvise");
	CHECK(t_stat("callbacks") - callbacks == 2,
	      "%ld callbacks for one invalidation of 2 ranges",
	      t_stat("callbacks") - callbacks);
	CHECK(t_stat("ranges") == 2 && t_stat("watches") == NDUP + 1,
	      "ranges %ld watches %ld; wanted 2 and %d", t_stat("ranges"),
	      t_stat("watches"), NDUP + 1);
	while (mrct_pop(&t, &ev)) {
		CHECK(ev.reason == MRC_REASON_CLEAR && ev.start == (uintptr_t)p &&
		      ev.end == (uintptr_t)p + pg, "event %s", t_reason(ev.reason));
		if (ev.cookie == NDUP) {
			CHECK(ev.id == other, "id of the longer range");
			continue;
		}
		CHECK(ev.cookie < NDUP && !seen[ev.cookie] &&
		      ev.id == id[ev.cookie], "cookie %llu id %u",
		      (unsigned long long)ev.cookie, ev.id);
		seen[ev.cookie] = 1;
		n++;
	}
	CHECK(n == NDUP, "%d events for %d folded watches", n, NDUP);
	for (i = 0; i < NDUP; i++)
		CHECK(mrct_gen(&t, id[i]) != gen[i], "generation of %d", i);

	for (i = 1; i < NDUP; i++)
		CHECK(!mrct_unwatch(&t, id[i]), "unwatch %d", i);
	CHECK(t_stat("ranges") == 2, "ranges %ld", t_stat("ranges"));
	{
		struct mrc_rearm r = { .id = id[0] };

		CHECK(!t_ioctl(t.fd, MRC_IOC_REARM, &r), "rearm");
	}
	CHECK(!madvise(p + pg, pg, MADV_DONTNEED), "madvise");
	mrct_expect(&t, id[0], 0, MRC_REASON_CLEAR, p + pg, p + 2 * pg);
	mrct_expect_empty(&t, "the longer range is INVALID");
	CHECK(!mrct_unwatch(&t, id[0]) && !mrct_unwatch(&t, other), "unwatch");
	CHECK(t_stat("ranges") == 0 && t_stat("watched_pages") == 0,
	      "ranges %ld watched_pages %ld after unwatching all",
	      t_stat("ranges"), t_stat("watched_pages"));
	mrct_close(&t);
	T_LOG("PASS: %d watches of one range: one notifier, %d events", NDUP, n);
	return T_PASS;
}
