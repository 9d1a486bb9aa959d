// SPDX-License-Identifier: GPL-2.0
/*
 * max_user_watches: an unprivileged user spreads watches over several
 * files (each with max_watches slots, so no file runs out of slots) and
 * gets exactly max_user_watches of them; the next WATCH fails with ENOSPC
 * and stats/limit_watches counts it.  Another user can still watch.  An
 * UNWATCH makes room for one more; after close the counters are zero.
 * All watches are of one page, so they fold onto one notifier per file.
 */
#include "mrc_test.h"

static long max_watches, slots;
static int to_child[2], to_parent[2];
static char *page;

static int noisy(void *arg)
{
	long nfiles = max_watches / slots + 1, n = 0, i;
	struct mrct *t = calloc(nfiles, sizeof(*t));
	uint32_t id = 0;
	uint64_t gen;
	int ret = 0;

	(void)arg;
	CHECK(t, "calloc");
	for (i = 0; i < nfiles; i++)
		mrct_open(&t[i], 8, slots, 0);
	for (i = 0; i < nfiles && !ret; i++) {
		long k;

		for (k = 0; k < slots; k++) {
			ret = mrct_watch(&t[i], page, t_page(), n, &id, &gen);
			if (ret)
				break;
			n++;
		}
	}
	CHECK(ret == -ENOSPC && n == max_watches,
	      "%ld watches then %s; wanted %ld then ENOSPC", n,
	      strerror(-ret), max_watches);
	t_signal(to_parent[1]);
	t_wait(to_child[0]);
	CHECK(!mrct_unwatch(&t[0], 0), "unwatch");
	ret = mrct_watch(&t[nfiles - 1], page, t_page(), n, &id, &gen);
	CHECK(ret == 0, "watch after an unwatch: %s", strerror(-ret));
	for (i = 0; i < nfiles; i++)
		mrct_close(&t[i]);
	free(t);
	return T_PASS;
}

static int other(void *arg)
{
	struct mrct t;
	uint32_t id;
	uint64_t gen;

	(void)arg;
	mrct_open(&t, 8, 8, 0);
	CHECK(!mrct_watch(&t, page, t_page(), 1, &id, &gen),
	      "another user's watch");
	mrct_close(&t);
	return T_PASS;
}

int main(void)
{
	double t0;
	long hits;
	pid_t pid;

	t_name = "t_user_watches";
	max_watches = t_param_or("max_user_watches", 262144);
	slots = t_param("max_watches");
	CHECK(max_watches > 0 && slots > 0, "no max_user_watches parameter");
	CHECK(!pipe(to_child) && !pipe(to_parent), "pipe");
	page = t_anon(t_page());
	hits = t_stat("limit_watches");

	t0 = t_now_us();
	pid = t_as_user(T_NOBODY, noisy, NULL);
	t_wait_child(to_parent[0], pid);
	T_LOG("%ld watches in %.1f s", max_watches, (t_now_us() - t0) / 1e6);
	CHECK(t_stat("limit_watches") == hits + 1,
	      "limit_watches %ld, wanted %ld", t_stat("limit_watches"),
	      hits + 1);
	CHECK(t_stat("watches") == max_watches, "stats/watches %ld",
	      t_stat("watches"));
	t_reap(t_as_user(T_OTHER, other, NULL), "another user at the limit");
	t_signal(to_child[1]);
	t_reap(pid, "user at max_user_watches");
	t_expect_idle();
	T_LOG("PASS: %ld watches per user, ENOSPC beyond", max_watches);
	return T_PASS;
}
