// SPDX-License-Identifier: GPL-2.0
/*
 * max_user_files: an unprivileged user can set up exactly max_user_files
 * files; the next MRC_IOC_API fails with EMFILE (a probe still works, an
 * open does too: only set-up files count) and stats/limit_files counts
 * it.  Another user is not affected.  Closing one file makes room for
 * one more; after everything is closed the counters are back at zero.
 */
#include <sys/resource.h>
#include "mrc_test.h"

static long max_files;
static int to_child[2], to_parent[2];

static int setup_file(int fd)
{
	struct mrc_api api;

	t_api_init(&api, 8, 1, 0);
	return t_ioctl(fd, MRC_IOC_API, &api);
}

static int probe_file(int fd)
{
	struct mrc_api api;

	t_api_init(&api, 8, 1, 0);
	api.flags = MRC_API_PROBE;
	return t_ioctl(fd, MRC_IOC_API, &api);
}

static int noisy(void *arg)
{
	int *fds = calloc(max_files + 1, sizeof(int));
	long i;
	int ret;

	(void)arg;
	CHECK(fds, "calloc");
	for (i = 0; i < max_files; i++) {
		fds[i] = t_open_dev();
		ret = setup_file(fds[i]);
		CHECK(ret == 0, "file %ld of %ld: %s", i, max_files,
		      strerror(-ret));
	}
	fds[max_files] = t_open_dev();
	ret = setup_file(fds[max_files]);
	CHECK(ret == -EMFILE, "file %ld past max_user_files: %s, wanted EMFILE",
	      max_files + 1, strerror(-ret));
	CHECK(probe_file(fds[max_files]) == 0, "probe at the limit");
	t_signal(to_parent[1]);
	t_wait(to_child[0]);
	close(fds[0]);
	ret = setup_file(fds[max_files]);
	CHECK(ret == 0, "after a close: %s", strerror(-ret));
	for (i = 1; i <= max_files; i++)
		close(fds[i]);
	free(fds);
	return T_PASS;
}

static int other(void *arg)
{
	struct mrct t;

	(void)arg;
	mrct_open(&t, 8, 1, 0);
	mrct_close(&t);
	return T_PASS;
}

int main(void)
{
	struct rlimit rl;
	long hits;
	pid_t pid;

	t_name = "t_user_files";
	max_files = t_param_or("max_user_files", 512);
	CHECK(max_files > 0, "no max_user_files parameter");
	rl.rlim_cur = rl.rlim_max = max_files + 64;
	CHECK(!setrlimit(RLIMIT_NOFILE, &rl), "RLIMIT_NOFILE: %s",
	      strerror(errno));
	CHECK(!pipe(to_child) && !pipe(to_parent), "pipe");
	hits = t_stat("limit_files");

	pid = t_as_user(T_NOBODY, noisy, NULL);
	t_wait_child(to_parent[0], pid);
	CHECK(t_stat("limit_files") == hits + 1, "limit_files %ld, wanted %ld",
	      t_stat("limit_files"), hits + 1);
	CHECK(t_stat("users") == 1, "users %ld", t_stat("users"));
	t_reap(t_as_user(T_OTHER, other, NULL), "another user at the limit");
	t_signal(to_child[1]);
	t_reap(pid, "user at max_user_files");
	t_expect_idle();
	T_LOG("PASS: %ld files per user, EMFILE beyond", max_files);
	return T_PASS;
}
