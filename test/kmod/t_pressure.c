// SPDX-License-Identifier: GPL-2.0
/*
 * Memory pressure reaches user space as a PRESSURE event.
 *
 * What calls a shrinker's scan_objects in 6.1: shrink_slab(), from
 *  - kswapd and direct reclaim (shrink_node -> shrink_node_memcgs ->
 *    shrink_slab for every memcg; this test's files are on the root
 *    memcg's list, see t_memcg for a cgroup's own limit), and
 *  - drop_caches with bit 2 set (drop_slab -> shrink_slab, priority 0).
 * Both are exercised: first "echo 2 > /proc/sys/vm/drop_caches" (twice,
 * to check that an unconsumed PRESSURE event is not duplicated), then
 * real pressure: a child (oom_score_adj 1000) allocates and touches
 * memory until the kernel reclaims (zram swap in the VM) and the parent,
 * asleep in poll(), is woken by a PRESSURE event.
 *
 * A file without MRC_FEAT_PRESSURE never gets one.  The watched range is
 * 1 GiB of reserved address space: the shrinker reports watched pages,
 * resident or not, and reclaim scans a shrinker in proportion to that.
 */
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include "mrc_test.h"

#define WATCH_LEN (1UL << 30)

static void expect_pressure(struct mrct *t, const char *what)
{
	struct mrc_event ev;

	CHECK(mrct_pop(t, &ev), "%s: no PRESSURE event", what);
	CHECK(ev.reason == MRC_REASON_PRESSURE && ev.id == MRC_WATCH_NONE &&
	      ev.start == 0 && ev.end > 0 &&
	      ev.end <= WATCH_LEN / (uint64_t)t_page(),
	      "%s: event %s id %#x [%llu, %llu)", what, t_reason(ev.reason),
	      ev.id, (unsigned long long)ev.start, (unsigned long long)ev.end);
	T_LOG("%s: PRESSURE event, %llu pages wanted", what,
	      (unsigned long long)ev.end);
}

static pid_t hog(void)
{
	pid_t pid = fork();

	CHECK(pid >= 0, "fork");
	if (!pid)
		t_hog_forever(16UL << 20);
	return pid;
}

static void real_pressure(struct mrct *t)
{
	struct pollfd pfd = { .fd = t->fd, .events = POLLIN };
	long scans = t_stat("shrinker_scans");
	double t0 = t_now_us();
	pid_t pid = hog();
	int n;

	n = poll(&pfd, 1, 60000);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	CHECK(n == 1, "no PRESSURE event within 60 s of memory pressure");
	expect_pressure(t, "reclaim");
	T_LOG("reclaim: woke after %.1f s, %ld shrinker scans",
	      (t_now_us() - t0) / 1e6, t_stat("shrinker_scans") - scans);
}

int main(void)
{
	struct mrct t, quiet;
	uint64_t gen;
	uint32_t id, qid;
	void *area;

	t_name = "t_pressure";
	if (access("/proc/sys/vm/drop_caches", W_OK))
		SKIP("needs root (drop_caches)");
	if (!getenv("MRCACHE_IN_VM") && !getenv("MRCACHE_PRESSURE_OK"))
		SKIP("puts the machine under memory pressure; runs in the VM "
		     "or with MRCACHE_PRESSURE_OK=1");
	area = mmap(NULL, WATCH_LEN, PROT_NONE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	CHECK(area != MAP_FAILED, "reserve");
	mrct_open(&t, 64, 16, MRC_FEAT_PRESSURE);
	mrct_open(&quiet, 64, 16, 0);
	CHECK(!mrct_watch(&t, area, WATCH_LEN, 1, &id, &gen), "watch");
	CHECK(!mrct_watch(&quiet, area, WATCH_LEN, 2, &qid, &gen), "watch");

	CHECK(!t_drop_slab() && !t_drop_slab(), "drop_caches");
	expect_pressure(&t, "drop_caches");
	mrct_expect_empty(&t, "second drop_caches (coalesced)");

	real_pressure(&t);
	mrct_expect_empty(&quiet, "file without MRC_FEAT_PRESSURE");
	mrct_close(&quiet);
	mrct_close(&t);
	T_LOG("PASS");
	return T_PASS;
}
