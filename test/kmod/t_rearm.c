// SPDX-License-Identifier: GPL-2.0
/*
 * REARM with an expected generation refuses a watch that was invalidated
 * again after user space re-registered.
 *
 * An INVALID watch posts no events, but its generation still moves.  The
 * sequence a cache follows: the watch fires; it reads the generation g,
 * re-registers (pins) the range, and rearms expecting g.  If the range
 * changed in between (here: a second madvise), REARM must fail with
 * -ESTALE and leave the watch INVALID; without the expectation it would
 * hand out the new generation and the stale registration would validate.
 */
#include "mrc_test.h"

static int rearm(struct mrct *t, uint32_t id, uint32_t flags,
		 uint64_t expected, uint64_t *gen)
{
	struct mrc_rearm r = { .id = id, .flags = flags, .expected = expected };
	int ret = t_ioctl(t->fd, MRC_IOC_REARM, &r);

	*gen = r.generation;
	return ret;
}

static uint32_t state_of(struct mrct *t, uint32_t id)
{
	struct mrc_query q;

	CHECK(!mrct_query(t, id, &q), "query");
	return q.state;
}

int main(void)
{
	long pg = t_page();
	uint64_t gen, g, now;
	struct mrct t;
	uint32_t id;
	char *p;

	t_name = "t_rearm";
	mrct_open(&t, 8, 8, 0);
	p = t_anon_guarded(pg);
	CHECK(!mrct_watch(&t, p, pg, 1, &id, &gen), "watch");

	CHECK(!madvise(p, pg, MADV_DONTNEED), "madvise");
	CHECK(state_of(&t, id) == MRC_STATE_INVALID, "not invalid");
	g = mrct_gen(&t, id);		/* read before re-registering */
	p[0] = 1;			/* "re-register": fault the page in */
	CHECK(!madvise(p, pg, MADV_DONTNEED), "second madvise");

	CHECK(rearm(&t, id, MRC_REARM_EXPECT, g, &now) == -ESTALE,
	      "rearm accepted a generation that moved");
	CHECK(now == mrct_gen(&t, id) && now != g, "generation %llu copied out",
	      (unsigned long long)now);
	CHECK(state_of(&t, id) == MRC_STATE_INVALID, "ESTALE armed the watch");

	CHECK(!rearm(&t, id, MRC_REARM_EXPECT, now, &gen), "rearm");
	CHECK(gen == now, "rearm generation");
	CHECK(state_of(&t, id) == MRC_STATE_ARMED, "not armed");

	CHECK(rearm(&t, id, 2, 0, &gen) == -EINVAL, "unknown flag accepted");
	CHECK(rearm(&t, id, 0, 5, &gen) == -EINVAL,
	      "expected without MRC_REARM_EXPECT accepted");
	mrct_close(&t);
	T_LOG("PASS");
	return T_PASS;
}
