// SPDX-License-Identifier: BSD-2-Clause
/*
 * The userfaultfd monitor natively, with the fake provider (the host's
 * kernel is enough; no module, no RDMA device).
 *
 * The change table of monitor_cases.h: every change the kernel reports to
 * a userfaultfd drops the cached registration before the call returns
 * (made by this program or by a library dlopen'ed later), and
 * the one it does not report (shmdt) is served stale, as doc/mrcache.3
 * says. (monitor_hooks_test runs the same table with the manual monitor:
 * each scenario can fail.)
 *
 * Then what this monitor must survive: a page fault in a registered range
 * whose pages madvise(DONTNEED) dropped, touched by several threads and by
 * the kernel (a monitor registered for missing pages hangs there); a
 * change made by a thread that holds the cache lock; registrations racing
 * munmap; many threads; signal handlers; a record that overflows; fork,
 * with the child and the parent each going on; caches destroyed while
 * other threads' changes wait for the reader; memory it cannot watch; and
 * a process without privileges where vm.unprivileged_userfaultfd is 0.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "monitor_cases.h"

/*
 * Scenarios map new memory where the old was, without MAP_FIXED, and
 * expect the hole to stay free. Under ASan the reader thread's first
 * intercepted calls map ASan's per-thread memory, and the kernel puts it
 * in the hole just made: let the reader take a first event before.
 */
static void warm_up_reader(void)
{
	for (int i = 0; i < 2; i++) {
		char *p = map_pages(1);

		cached(p, page);
		ck_assert_int_eq(munmap(p, page), 0);
		cache_stats_ok(cache);
	}
}

#ifdef __SANITIZE_THREAD__
#define TSAN 1
#else
#define TSAN 0
#endif

static void make_uffd_cache(void)
{
	refuses_unmapped = 1;
	make_cache(MRC_MONITOR_UFFD);
	warm_up_reader();
}

static void setup_uffd(void)
{
	setup_common();
	make_uffd_cache();
}

START_TEST(uffd_drop_stale)
{
	const struct scenario *s = &scenarios[_i];

	if (skipped(s))
		return;
	if (s->uffd_refused) {
		fprintf(stderr, "uffd: refuses the memory (sysv_shm_refused): %s\n",
			s->name);
		return;
	}
	check_dropped(s, "uffd");
}
END_TEST

/*
 * SysV shared memory is shmem behind the IPC layer's own mapping, which
 * UFFDIO_REGISTER refuses (and shmdt reports no event): not cacheable.
 */
START_TEST(sysv_shm_refused)
{
	char *p = shm_pages(4);
	struct mrc_region *r;

	ck_assert_int_eq(mrc_get(cache, p, 4 * page, 1, &r), -EOPNOTSUPP);
	ck_assert_ptr_nonnull(strstr(mrc_last_error(), "userfaultfd cannot watch"));
	ck_assert_uint_eq(fake.live, 0);
	shmdt(p);
}
END_TEST

/*
 * madvise(DONTNEED) drops the pages of a registered range; the next touch
 * faults. Registered for missing pages, that fault would wait for the
 * reader to fill the page, which a monitor does not do: every thread here
 * would hang (and the read() into the range would fail with EFAULT, since
 * a user-mode-only userfaultfd cannot serve the kernel's own access).
 */
struct toucher {
	char *p;
	size_t len;
	unsigned char seed;
};

static void *touch_all(void *arg)
{
	struct toucher *t = arg;

	for (size_t off = 0; off < t->len; off += page)
		ck_assert_int_eq(t->p[off], 0);	/* a fresh zero page */
	for (size_t off = 0; off < t->len; off += page)
		t->p[off + t->seed] = (char)t->seed;
	return NULL;
}

START_TEST(fault_after_dontneed)
{
	enum { THREADS = 4, PAGES = 64 };
	char *p = map_pages(PAGES);
	struct toucher t[THREADS];
	pthread_t th[THREADS];
	int fds[2];

	cached(p, PAGES * page);
	ck_assert_int_eq(madvise(p, PAGES * page, MADV_DONTNEED), 0);
	for (int i = 0; i < THREADS; i++) {
		t[i] = (struct toucher){ p, PAGES * page, (unsigned char)(i + 1) };
		ck_assert_int_eq(pthread_create(&th[i], NULL, touch_all, &t[i]), 0);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	/* The kernel touching a dropped page: a read() into the range. */
	ck_assert_int_eq(madvise(p, PAGES * page, MADV_DONTNEED), 0);
	ck_assert_int_eq(pipe(fds), 0);
	ck_assert_int_eq(write(fds[1], "abc", 3), 3);
	ck_assert_int_eq(read(fds[0], p + page, 3), 3);
	ck_assert_int_eq(memcmp(p + page, "abc", 3), 0);
	close(fds[0]);
	close(fds[1]);
	munmap(p, PAGES * page);
}
END_TEST

START_TEST(record_overflow)
{
	check_overflow(1);
}
END_TEST

/* Two caches share the process's userfaultfd; each sees every change. */
START_TEST(two_caches_one_buffer)
{
	struct mrc_cache *first = cache;
	char *p = map_pages(4);
	void *h1 = cached(p, 4 * page), *h2;

	make_uffd_cache();
	h2 = cached(p, 4 * page);
	ck_assert_int_eq(munmap(p, 4 * page), 0);
	remap(p, 4);
	ck_assert(!served_again(p, 4 * page, h2));
	ck_assert_int_eq(mrc_cache_destroy(cache), 0);
	cache = first;
	ck_assert(!served_again(p, 4 * page, h1));
	/* The first cache still sees changes after the second went. */
	ck_assert(!sc_munmap());
}
END_TEST

/* Run @fn in a child; it must exit 0 within @seconds. */
static void in_child(void (*fn)(void), unsigned seconds)
{
	int status;
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		alarm(seconds);
		fn();
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "child failed (status %#x; signal %d: 14 is SIGALRM, a hang)",
		      status, WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

static char *inherited;

/*
 * The child's mappings lost their registration at fork: changing them
 * waits for nobody. Its inherited cache refuses; a cache of its own works.
 */
static void child_goes_on(void)
{
	struct mrc_region *r;

	if (mrc_get(cache, inherited, page, 1, &r) != -EPERM)
		_exit(2);
	if (madvise(inherited, 4 * page, MADV_DONTNEED) ||
	    munmap(inherited, 4 * page))
		_exit(3);
	mrc_cache_destroy(cache);
	if (TSAN) {
		fprintf(stderr, "*** NOT RUN under TSan: a cache of the child's own (TSan cannot start a thread in a child forked from a threaded process; the plain and ASan builds run it) ***\n");
		return;
	}
	fake_init(&fake);
	make_uffd_cache();
	if (sc_munmap() || sc_madv_dontneed() || sc_mremap_move())
		_exit(4);
	mrc_cache_destroy(cache);
}

START_TEST(fork_child_and_parent)
{
	void *h;

	inherited = map_pages(4);
	h = cached(inherited, 4 * page);
	in_child(child_goes_on, 30);
	/* The parent's registration and reader are untouched. */
	ck_assert(served_again(inherited, 4 * page, h));
	ck_assert_int_eq(munmap(inherited, 4 * page), 0);
	remap(inherited, 4);
	ck_assert(!served_again(inherited, 4 * page, h));
	ck_assert(!sc_madv_dontneed());
}
END_TEST

/*
 * A child that outlives the parent's userfaultfd: had it kept its copy of
 * the descriptor, the parent's munmap of a range registered there would
 * wait for a reader that is gone, until the child exits.
 */
START_TEST(fork_child_outlives_uffd)
{
	char *p = map_pages(4);
	int go[2], status;
	pid_t pid;

	cached(p, 4 * page);
	ck_assert_int_eq(pipe(go), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char c;

		close(go[1]);
		(void)!read(go[0], &c, 1);	/* until the parent is done */
		_exit(0);
	}
	close(go[0]);
	ck_assert_int_eq(mrc_cache_destroy(cache), 0);
	cache = NULL;
	alarm(20);
	ck_assert_int_eq(munmap(p, 4 * page), 0);
	alarm(0);
	close(go[1]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
}
END_TEST

/*
 * Destroying caches while other threads' changes of registered ranges
 * wait for the reader: every call returns, nothing leaks, a new cache
 * works.
 */
#define BUSY_THREADS 4

static int busy_stop;
static int busy_started;

static void *keep_changing(void *arg)
{
	char *p = arg;
	long n = 0;

	do {
		ck_assert_int_eq(madvise(p, 2 * page, MADV_DONTNEED), 0);
		if (!n++)
			__atomic_fetch_add(&busy_started, 1, __ATOMIC_RELAXED);
	} while (!__atomic_load_n(&busy_stop, __ATOMIC_RELAXED));
	return (void *)n;
}

START_TEST(destroy_with_events_in_flight)
{
	pthread_t t[BUSY_THREADS];
	char *p[BUSY_THREADS];
	void *n;

	for (int round = 0; round < 20; round++) {
		__atomic_store_n(&busy_stop, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&busy_started, 0, __ATOMIC_RELAXED);
		for (int i = 0; i < BUSY_THREADS; i++) {
			p[i] = map_pages(2);
			cached(p[i], 2 * page);
			ck_assert_int_eq(pthread_create(&t[i], NULL, keep_changing, p[i]), 0);
		}
		while (__atomic_load_n(&busy_started, __ATOMIC_RELAXED) < BUSY_THREADS)
			usleep(100);
		ck_assert_int_eq(mrc_cache_destroy(cache), 0);
		usleep(1000);
		__atomic_store_n(&busy_stop, 1, __ATOMIC_RELAXED);
		for (int i = 0; i < BUSY_THREADS; i++) {
			pthread_join(t[i], &n);
			ck_assert_int_gt((long)n, 0);
			munmap(p[i], 2 * page);
		}
		ck_assert_uint_eq(fake.live, 0);
		make_uffd_cache();
	}
	ck_assert(!sc_munmap());
}
END_TEST

/* Memory a userfaultfd cannot watch is refused, never cached unwatched. */
START_TEST(unwatchable_memory)
{
	char path[] = "/tmp/mrc_uffd_XXXXXX";
	int fd = mkstemp(path);
	char *file, *hole;
	struct mrc_region *r = NULL;

	ck_assert_int_ge(fd, 0);
	unlink(path);
	ck_assert_int_eq(ftruncate(fd, 4 * page), 0);
	file = mmap(NULL, 4 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	ck_assert_ptr_ne(file, MAP_FAILED);
	ck_assert_int_eq(mrc_get(cache, file, 4 * page, 1, &r), -EOPNOTSUPP);
	ck_assert_ptr_nonnull(strstr(mrc_last_error(), "use MRCACHE_MONITOR=kmod or hooks"));
	hole = map_pages(4);
	munmap(hole, 4 * page);
	ck_assert_int_eq(mrc_get(cache, hole, 4 * page, 1, &r), -EFAULT);
	ck_assert_ptr_nonnull(strstr(mrc_last_error(), "not mapped"));
	ck_assert_uint_eq(fake.live, 0);
	ck_assert_uint_eq(cache_stats_ok(cache).regions, 0);
	munmap(file, 4 * page);
	close(fd);
}
END_TEST

/*
 * Without privileges (no CAP_SYS_PTRACE) where vm.unprivileged_userfaultfd
 * is 0, only a user-mode-only userfaultfd may be opened.
 */
static void unprivileged_cache(void)
{
	fake_init(&fake);
	make_uffd_cache();
	if (sc_munmap() || sc_madv_dontneed())
		_exit(6);
	mrc_cache_destroy(cache);
}

static void drop_privileges_then_cache(void)
{
	if (setgid(65534) || setuid(65534))
		_exit(5);
	unprivileged_cache();
}

START_TEST(unprivileged)
{
	FILE *f = fopen("/proc/sys/vm/unprivileged_userfaultfd", "r");
	int allowed = -1;

	if (f) {
		ck_assert_int_eq(fscanf(f, "%d", &allowed), 1);
		fclose(f);
	}
	if (geteuid() != 0) {
		fprintf(stderr, "unprivileged: already unprivileged (vm.unprivileged_userfaultfd=%d)\n",
			allowed);
		unprivileged_cache();
		return;
	}
	fprintf(stderr, "unprivileged: as uid 65534, vm.unprivileged_userfaultfd=%d\n",
		allowed);
	/* The fixture's reader goes first: the child forks single-threaded. */
	ck_assert_int_eq(mrc_cache_destroy(cache), 0);
	cache = NULL;
	in_child(drop_privileges_then_cache, 30);
}
END_TEST

static Suite *uffd_suite(void)
{
	Suite *s = suite_create("monitor_uffd");
	const TTest *own[] = {
		fault_after_dontneed, record_overflow, two_caches_one_buffer,
		fork_child_and_parent, fork_child_outlives_uffd,
		destroy_with_events_in_flight, unwatchable_memory,
		sysv_shm_refused, unprivileged,
	};

	add_table_case(s, "changes", setup_uffd, uffd_drop_stale);
	add_hard_cases(s, setup_uffd, own, sizeof(own) / sizeof(own[0]));
	return s;
}

/*
 * Where no userfaultfd can be opened (seccomp, an old kernel) every test
 * would fail the same way: say why once, and fail.
 */
static int probe(void)
{
	struct fake_provider f;
	struct mrc_provider prov;
	struct mrc_cache_attr attr = {
		.comp_mask = MRC_ATTR_MONITOR, .monitor = MRC_MONITOR_UFFD,
	};
	struct mrc_cache *c;

	fake_init(&f);
	prov = fake_provider(&f);
	if (mrc_cache_create(&prov, &attr, &c)) {
		printf("monitor_uffd_test: FAIL: the userfaultfd monitor cannot start here: %s\n",
		       mrc_last_error());
		return 1;
	}
	mrc_cache_destroy(c);
	fake_fini(&f);
	return 0;
}

int main(void)
{
	return probe() || check_run_suite(uffd_suite());
}
