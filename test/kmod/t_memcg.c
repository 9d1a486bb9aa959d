// SPDX-License-Identifier: GPL-2.0
/*
 * Reclaim caused by a memory cgroup's own limit reaches the pressure
 * files of that cgroup, and only those (issue 11).
 *
 * Two sibling cgroup v2 groups A and B under the root, each with
 * memory.max = 48 MiB and no swap.  The test sets up one pressure file
 * while it is in A (fa) and one while it is in B (fb): a file belongs to
 * the memcg of the process that set it up.  Each watches 1 GiB of
 * reserved address space, like t_pressure.  Then, for B and then for A,
 * a child (oom_score_adj 1000) joins the group and allocates until the
 * group's limit makes the kernel reclaim in it and, finding nothing to
 * reclaim, OOM-kill it:
 *  - the file of that group gets a PRESSURE event during the reclaim;
 *  - the file of the sibling group gets none.
 * The machine (1 GiB guest) is never short of memory, so global reclaim
 * plays no part: a shrinker that is not memcg-aware (the module before
 * issue 11) is never called and the first check fails.
 *
 * Mounts cgroup2 on /sys/fs/cgroup if nothing is mounted there.
 */
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include "mrc_test.h"

#define WATCH_LEN	(1UL << 30)
#define CG_ROOT		"/sys/fs/cgroup"
#define CG_LIMIT	"48M"
#define WAIT_MS		60000

static const char *const groups[2] = { CG_ROOT "/mrct_a", CG_ROOT "/mrct_b" };

static int cg_write(const char *dir, const char *file, const char *val)
{
	char path[256];
	int fd, ok;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ok = write(fd, val, strlen(val)) == (ssize_t)strlen(val);
	close(fd);
	return ok ? 0 : -1;
}

/* Mount cgroup2 if needed, enable the memory controller; 0 or skip. */
static void cg_setup(void)
{
	char ctl[256] = "";
	FILE *f;

	if (access(CG_ROOT "/cgroup.controllers", R_OK) &&
	    mount("none", CG_ROOT, "cgroup2", 0, NULL))
		SKIP("cannot mount cgroup2 on " CG_ROOT ": %s",
		     strerror(errno));
	f = fopen(CG_ROOT "/cgroup.controllers", "r");
	if (!f || !fgets(ctl, sizeof(ctl), f) || !strstr(ctl, "memory"))
		SKIP("no memory controller in cgroup v2 (%s)", ctl);
	fclose(f);
	CHECK(!cg_write(CG_ROOT, "cgroup.subtree_control", "+memory"),
	      "enable the memory controller: %s", strerror(errno));
	for (int i = 0; i < 2; i++) {
		rmdir(groups[i]);
		CHECK(!mkdir(groups[i], 0755), "mkdir %s: %s", groups[i],
		      strerror(errno));
		CHECK(!cg_write(groups[i], "memory.max", CG_LIMIT),
		      "%s memory.max: %s", groups[i], strerror(errno));
		/* Absent without swap accounting; then there is no swap. */
		cg_write(groups[i], "memory.swap.max", "0");
	}
}

static void cg_enter(const char *dir)
{
	CHECK(!cg_write(dir, "cgroup.procs", "0"), "join %s: %s", dir,
	      strerror(errno));
}

static long cg_oom_kills(const char *dir)
{
	char path[256], key[64];
	long v, kills = -1;
	FILE *f;

	snprintf(path, sizeof(path), "%s/memory.events", dir);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fscanf(f, "%63s %ld", key, &v) == 2)
		if (!strcmp(key, "oom_kill"))
			kills = v;
	fclose(f);
	return kills;
}

/* A child in @dir that allocates until it is OOM-killed there. */
static pid_t hog(const char *dir)
{
	pid_t pid = fork();

	CHECK(pid >= 0, "fork");
	if (pid)
		return pid;
	if (cg_write(dir, "cgroup.procs", "0"))
		_exit(2);
	t_hog_forever(4UL << 20);
	return 0;
}

static void expect_pressure(struct mrct *t, const char *what)
{
	struct mrc_event ev;

	CHECK(mrct_pop(t, &ev), "%s: no PRESSURE event", what);
	CHECK(ev.reason == MRC_REASON_PRESSURE && ev.id == MRC_WATCH_NONE &&
	      ev.end > 0 && ev.end <= WATCH_LEN / (uint64_t)t_page(),
	      "%s: event %s id %#x end %llu", what, t_reason(ev.reason),
	      ev.id, (unsigned long long)ev.end);
	T_LOG("%s: PRESSURE event, %llu pages wanted", what,
	      (unsigned long long)ev.end);
}

/*
 * Run a hog in group @g; the file @mine (set up in @g) must be asked,
 * @other (set up in the sibling) must not, even after the hog was
 * OOM-killed by its group's limit.
 */
static void squeeze(int g, struct mrct *mine, struct mrct *other)
{
	struct pollfd pfd = { .fd = mine->fd, .events = POLLIN };
	long kills = cg_oom_kills(groups[g]);
	long scans = t_stat("shrinker_scans");
	double t0 = t_now_us();
	pid_t pid = hog(groups[g]);
	int n, status;

	n = poll(&pfd, 1, WAIT_MS);
	T_LOG("%s: poll %d after %.1f s, %ld shrinker scans", groups[g], n,
	      (t_now_us() - t0) / 1e6, t_stat("shrinker_scans") - scans);
	/* Let the hog run into its limit: reclaim there must not reach us. */
	for (int i = 0; i < WAIT_MS / 100 && waitpid(pid, &status, WNOHANG) == 0;
	     i++)
		usleep(100000);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	T_LOG("%s: hog ended (%s), oom_kill %ld -> %ld", groups[g],
	      WIFSIGNALED(status) ? strsignal(WTERMSIG(status)) : "exit",
	      kills, cg_oom_kills(groups[g]));
	CHECK(n == 1, "%s: no PRESSURE event within %d s of reclaim at the "
	      "group's memory.max (is the shrinker memcg-aware?)", groups[g],
	      WAIT_MS / 1000);
	expect_pressure(mine, groups[g]);
	mrct_expect_empty(other, "file of the sibling group");
}

int main(void)
{
	struct mrct fa, fb;
	uint64_t gen;
	uint32_t id;
	void *area;

	t_name = "t_memcg";
	if (geteuid())
		SKIP("needs root (cgroups)");
	if (!getenv("MRCACHE_IN_VM") && !getenv("MRCACHE_PRESSURE_OK"))
		SKIP("makes cgroups and OOM-kills in them; runs in the VM "
		     "or with MRCACHE_PRESSURE_OK=1");
	cg_setup();
	area = mmap(NULL, WATCH_LEN, PROT_NONE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	CHECK(area != MAP_FAILED, "reserve");
	cg_enter(groups[0]);
	mrct_open(&fa, 64, 16, MRC_FEAT_PRESSURE);
	cg_enter(groups[1]);
	mrct_open(&fb, 64, 16, MRC_FEAT_PRESSURE);
	cg_enter(CG_ROOT);
	CHECK(!mrct_watch(&fa, area, WATCH_LEN, 1, &id, &gen), "watch");
	CHECK(!mrct_watch(&fb, area, WATCH_LEN, 2, &id, &gen), "watch");

	squeeze(1, &fb, &fa);
	squeeze(0, &fa, &fb);

	/* Global reclaim (drop_caches walks every memcg) reaches both. */
	CHECK(!t_drop_slab(), "drop_caches");
	expect_pressure(&fa, "drop_caches, file of A");
	expect_pressure(&fb, "drop_caches, file of B");

	mrct_close(&fa);
	mrct_close(&fb);
	for (int i = 0; i < 2; i++)
		rmdir(groups[i]);
	T_LOG("PASS");
	return T_PASS;
}
