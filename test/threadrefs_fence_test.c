// SPDX-License-Identifier: BSD-2-Clause
/*
 * What a reclaimer does when its membarrier fails (MRCACHE_THREAD_REFS=1).
 * Without the fence a scan may miss a slot store still in flight, so
 * deregistering would risk a region a hit is using. ENOMEM (the kernel
 * could not allocate its cpumask) passes: the call is made again until it
 * succeeds. Any other failure cannot be waited out, and the library stops
 * with a message rather than deregister.
 *
 * Built from the library's sources and linked with --wrap=syscall, so the
 * library's syscall() comes here first: the fence's membarrier calls fail
 * as the case asks, every other call goes through. The abort case runs in
 * a child that is this program started again (not a fork: under TSan a
 * forked child of a threaded process cannot start the owner thread).
 *
 * Both cases fail on a fence that ignores what membarrier returned, as the
 * library's first thread-refs fence did: the first sees one call and not
 * four, the second a deregistration and no abort.
 */
#include <check.h>
#include <errno.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cache.h"
#include "cache_check.h"
#include "mrcache.h"

#define ENOMEM_FAILURES 3
#define DEREG_MARK "fence test: deregistered"

/* The fence's membarrier calls: how many were made, how many to fail. */
static atomic_int fence_calls, failures_left, fail_errno;

long __real_syscall(long nr, ...);

long __wrap_syscall(long nr, ...)
{
	long a[6];
	va_list ap;

	/* As glibc's syscall(): six argument registers, used or not. */
	va_start(ap, nr);
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	if (nr == __NR_membarrier && a[0] == MEMBARRIER_CMD_PRIVATE_EXPEDITED) {
		atomic_fetch_add(&fence_calls, 1);
		if (atomic_load(&failures_left) > 0) {
			atomic_fetch_sub(&failures_left, 1);
			errno = atomic_load(&fail_errno);
			return -1;
		}
	}
	return __real_syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

static size_t page;
static char *pages;			/* page 0 the reclaimer's, 1 the owner's */
static struct mrc_cache *cache;
static atomic_int deregs;

static int f_reg(void *ctx, void *addr, size_t len, uint32_t access,
		 void **handle)
{
	(void)ctx, (void)addr, (void)len, (void)access;
	*handle = NULL;
	return 0;
}

static int f_dereg(void *ctx, void *handle)
{
	(void)ctx, (void)handle;
	atomic_fetch_add(&deregs, 1);
	fprintf(stderr, DEREG_MARK "\n");
	return 0;
}

/* Another thread owning a record: the fence runs only then. */
static atomic_int owner_state;		/* 1 owns, 2 leave, -1 failed */

static void *owner_thread(void *arg)
{
	struct mrc_region *r;

	(void)arg;
	if (mrc_get(cache, pages + page, page, 0, &r) || mrc_put(cache, r)) {
		atomic_store(&owner_state, -1);
		return NULL;
	}
	atomic_store(&owner_state, 1);
	while (atomic_load(&owner_state) != 2)
		sched_yield();
	return NULL;
}

/*
 * Setup runs in the child too, where a check assertion has no test to end:
 * there a failed step exits with 2, which the parent reports.
 */
static int in_child;

static void require(int ok, const char *what)
{
	if (!in_child)
		ck_assert_msg(ok, "%s failed: %s", what, strerror(errno));
	else if (!ok) {
		fprintf(stderr, "fence test: %s failed: %s\n", what, strerror(errno));
		exit(2);
	}
}

static void setup(pthread_t *owner)
{
	struct mrc_region *r;
	struct mrc_provider prov = {
		.name = "threadrefs_fence", .reg = f_reg, .dereg = f_dereg,
	};
	struct mrc_cache_attr attr = {
		.comp_mask = MRC_ATTR_MONITOR | MRC_ATTR_MERGE,
		.monitor = MRC_MONITOR_MANUAL,
		/* Two regions, not one: the owner's stays its own. */
		.merge = MRC_MERGE_NONE,
	};

	page = (size_t)sysconf(_SC_PAGESIZE);
	pages = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	require(pages != MAP_FAILED, "mmap");
	require(!mrc_cache_create(&prov, &attr, &cache), "mrc_cache_create");
	require(cache->thread_refs, "thread refs (membarrier registration)");
	require(!pthread_create(owner, NULL, owner_thread, NULL), "pthread_create");
	while (atomic_load(&owner_state) == 0)
		sched_yield();
	require(atomic_load(&owner_state) == 1, "the owner thread's get");
	require(!mrc_get(cache, pages, page, 0, &r) && !mrc_put(cache, r),
		"mrc_get and mrc_put");
}

static void teardown(pthread_t owner)
{
	atomic_store(&owner_state, 2);
	pthread_join(owner, NULL);
	ck_assert_int_eq(mrc_cache_destroy(cache), 0);
	munmap(pages, 2 * page);
}

START_TEST(enomem_is_retried_until_the_fence_runs)
{
	unsigned long fences;
	int calls, deregistered;
	pthread_t owner;

	setup(&owner);
	fences = __atomic_load_n(&mrc_trefs_fences, __ATOMIC_RELAXED);
	deregistered = atomic_load(&deregs);
	atomic_store(&fence_calls, 0);
	atomic_store(&fail_errno, ENOMEM);
	atomic_store(&failures_left, ENOMEM_FAILURES);
	ck_assert_int_eq(mrc_invalidate(cache, pages, page), 0);
	calls = atomic_load(&fence_calls);
	ck_assert_int_eq(calls, ENOMEM_FAILURES + 1);
	fences = __atomic_load_n(&mrc_trefs_fences, __ATOMIC_RELAXED) - fences;
	ck_assert_uint_eq(fences, 1);
	deregistered = atomic_load(&deregs) - deregistered;
	ck_assert_int_eq(deregistered, 1);
	teardown(owner);
}
END_TEST

/* The child's part of the next case: it must not come back. */
static int einval_child(void)
{
	pthread_t owner;

	in_child = 1;
	setup(&owner);
	atomic_store(&fail_errno, EINVAL);
	atomic_store(&failures_left, 1 << 30);
	mrc_invalidate(cache, pages, page);
	fprintf(stderr, "fence test: mrc_invalidate returned\n");
	return 0;
}

/* Runs this program as the EINVAL child; its stderr into @out. */
static int run_child(char *out, size_t size)
{
	int fds[2], status;
	size_t n = 0;
	ssize_t got;
	pid_t pid;

	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (!pid) {
		dup2(fds[1], STDERR_FILENO);
		execl("/proc/self/exe", "threadrefs_fence_test", "einval-child",
		      (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	while (n + 1 < size && (got = read(fds[0], out + n, size - 1 - n)) > 0)
		n += (size_t)got;
	out[n] = '\0';
	close(fds[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	return status;
}

START_TEST(another_failure_stops_before_any_deregistration)
{
	char out[8192];
	int status = run_child(out, sizeof(out));

	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
		      "the child was not aborted (status %#x); its stderr:\n%s",
		      status, out);
	ck_assert_msg(strstr(out, "cannot deregister safely"),
		      "no message naming the failure; the child's stderr:\n%s", out);
	ck_assert_msg(strstr(out, "Invalid argument"),
		      "the message does not give the errno; the child's stderr:\n%s", out);
	/* One deregistration would be the owner's region at exit: none. */
	ck_assert_msg(!strstr(out, DEREG_MARK),
		      "a region was deregistered without the fence; the child's stderr:\n%s",
		      out);
}
END_TEST

int main(int argc, char **argv)
{
	Suite *s = suite_create("threadrefs_fence");
	TCase *tc = tcase_create("fence");

	setenv("MRCACHE_THREAD_REFS", "1", 1);
	if (argc == 2 && !strcmp(argv[1], "einval-child"))
		return einval_child();
	tcase_add_test(tc, enomem_is_retried_until_the_fence_runs);
	tcase_add_test(tc, another_failure_stops_before_any_deregistration);
	suite_add_tcase(s, tc);
	return check_run_suite_nofork(s);
}
