// SPDX-License-Identifier: GPL-2.0
/*
 * max_user_pages: the pages of an unprivileged user's distinct watched
 * ranges add up to at most max_user_pages.  One watch of exactly that
 * many pages succeeds (ranges need not be mapped); one more page fails
 * with ENOSPC and stats/limit_pages counts it; a second watch of the same
 * range is folded and costs no pages.  Another user can watch the same
 * amount.  An UNWATCH gives the pages back.
 */
#include "mrc_test.h"

static long max_pages;
static int to_child[2], to_parent[2];
/* Far above anything mapped; the range need not be mapped. */
#define BASE (1ULL << 40)

static int user_side(void *arg)
{
	bool wait_parent = arg != NULL;
	size_t big = (size_t)max_pages * t_page();
	uint32_t id, dup, small;
	struct mrct t;
	uint64_t gen;
	int ret;

	mrct_open(&t, 8, 8, 0);
	ret = mrct_watch(&t, (void *)BASE, big, 1, &id, &gen);
	CHECK(ret == 0, "watch of max_user_pages pages: %s", strerror(-ret));
	ret = mrct_watch(&t, (void *)(BASE + big), t_page(), 2, &small, &gen);
	CHECK(ret == -ENOSPC, "one page more: %s, wanted ENOSPC",
	      strerror(-ret));
	ret = mrct_watch(&t, (void *)BASE, big, 3, &dup, &gen);
	CHECK(ret == 0 && dup != id, "same range again: %s", strerror(-ret));
	if (wait_parent) {
		t_signal(to_parent[1]);
		t_wait(to_child[0]);
	}
	CHECK(!mrct_unwatch(&t, id), "unwatch");
	ret = mrct_watch(&t, (void *)(BASE + big), t_page(), 2, &small, &gen);
	CHECK(ret == -ENOSPC, "folded duplicate still holds the pages: %s",
	      strerror(-ret));
	CHECK(!mrct_unwatch(&t, dup), "unwatch");
	ret = mrct_watch(&t, (void *)(BASE + big), t_page(), 2, &small, &gen);
	CHECK(ret == 0, "after unwatching: %s", strerror(-ret));
	mrct_close(&t);
	return T_PASS;
}

int main(void)
{
	long hits;
	pid_t pid;

	t_name = "t_user_pages";
	max_pages = t_param_or("max_user_pages", 1L << 28);
	CHECK(max_pages > 0, "no max_user_pages parameter");
	CHECK((double)max_pages * t_page() < (double)(1ULL << 46),
	      "max_user_pages %ld too large for this test", max_pages);
	CHECK(!pipe(to_child) && !pipe(to_parent), "pipe");
	hits = t_stat("limit_pages");

	pid = t_as_user(T_NOBODY, user_side, "wait");
	t_wait_child(to_parent[0], pid);
	CHECK(t_stat("watched_pages") == max_pages, "watched_pages %ld",
	      t_stat("watched_pages"));
	t_reap(t_as_user(T_OTHER, user_side, NULL), "another user");
	t_signal(to_child[1]);
	t_reap(pid, "user at max_user_pages");
	CHECK(t_stat("limit_pages") == hits + 4, "limit_pages %ld, wanted %ld",
	      t_stat("limit_pages"), hits + 4);
	t_expect_idle();
	T_LOG("PASS: %ld pages per user, ENOSPC beyond", max_pages);
	return T_PASS;
}
