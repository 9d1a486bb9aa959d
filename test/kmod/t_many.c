// SPDX-License-Identifier: GPL-2.0
/*
 * 5,000 watches on one file: all inserted, one madvise over the whole
 * area delivers exactly one event per watch (ring of 8192), each with
 * its own page; unwatching them all works.  Prints the timings.
 */
#include "mrc_test.h"

#define NW 5000

int main(void)
{
	long pg = t_page();
	static uint32_t id[NW];
	static uint64_t gen[NW];
	static unsigned char seen[NW];
	double t0, t1, t2, t3;
	struct mrc_event ev;
	struct mrct t;
	int i, n = 0;
	char *p;

	t_name = "t_many";
	mrct_open(&t, 8192, 8192, 0);
	p = t_anon_guarded((size_t)NW * pg);
	t0 = t_now_us();
	for (i = 0; i < NW; i++)
		CHECK(!mrct_watch(&t, p + (size_t)i * pg, pg, i, &id[i],
				  &gen[i]), "watch %d", i);
	t1 = t_now_us();
	CHECK(!madvise(p, (size_t)NW * pg, MADV_DONTNEED), "madvise");
	t2 = t_now_us();
	while (mrct_pop(&t, &ev)) {
		CHECK(ev.cookie < NW && !seen[ev.cookie], "cookie %llu",
		      (unsigned long long)ev.cookie);
		CHECK(ev.start == (uintptr_t)p + ev.cookie * pg &&
		      ev.end == ev.start + pg, "range of %llu",
		      (unsigned long long)ev.cookie);
		seen[ev.cookie] = 1;
		n++;
	}
	CHECK(n == NW && mrct_overflow(&t) == 0, "%d events, overflow %llu", n,
	      (unsigned long long)mrct_overflow(&t));
	for (i = 0; i < NW; i++)
		CHECK(mrct_gen(&t, id[i]) != gen[i], "generation %d", i);
	for (i = 0; i < NW; i++)
		CHECK(!mrct_unwatch(&t, id[i]), "unwatch %d", i);
	t3 = t_now_us();
	mrct_close(&t);
	T_LOG("PASS: %d watches: watch %.1f us each, madvise of all %.0f us, "
	      "unwatch+drain %.1f us each", NW, (t1 - t0) / NW, t2 - t1,
	      (t3 - t2) / NW);
	return T_PASS;
}
