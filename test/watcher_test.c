// SPDX-License-Identifier: BSD-2-Clause
/*
 * The watcher API (mrc_watcher_*) with the monitor named on the command
 * line: "hooks" and "uffd" natively (test/watcher_hooks.sh,
 * test/watcher_uffd.sh), "kmod" in the VM (test/watcher_kmod.sh; exits 77
 * without /dev/mrcache, which the VM harness turns into a failure under
 * MRCACHE_REQUIRE_VM=1).
 *
 * What it proves: a change makes the check say invalid at once, before any
 * drain (the hooks backend through its scan of pending ranges); a drain
 * reports each changed watch once, with its cookie and its whole range,
 * however many times and in however many pieces it changed; untouched and
 * removed watches are not reported; the fd becomes readable on a change
 * and quiet after a drain; a callback may remove watches; bad input gets
 * an error, and a forked child gets -ECHILD. With uffd also: memory a
 * userfaultfd cannot watch is refused, one userfaultfd serves every
 * watcher and cache of the process, and AUTO takes uffd where a W^X
 * seccomp policy keeps the hooks from patching libc.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cache_check.h"
#include "fake_provider.h"
#include "mrcache.h"

static uint32_t monitor;
static const char *monitor_name;
static struct mrc_watcher *w;
static size_t page;

struct report {
	uint64_t cookie;
	uint64_t start;
	uint64_t len;
};

static struct report reports[64];
static int nreports;

static void record(void *arg, uint64_t cookie, void *addr, size_t len)
{
	(void)arg;
	ck_assert_int_lt(nreports, 64);
	reports[nreports++] = (struct report){ cookie, (uintptr_t)addr, len };
}

static int drain(void)
{
	int n;

	nreports = 0;
	n = mrc_watcher_drain(w, record, NULL);
	ck_assert_msg(n >= 0, "drain: %s", mrc_last_error());
	ck_assert_int_eq(n, nreports);
	return n;
}

static char *map_pages(size_t n)
{
	char *p = mmap(NULL, n * page, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	ck_assert(p != MAP_FAILED);
	memset(p, 1, n * page);
	return p;
}

static void watch(struct mrc_watchpoint *wp, void *addr, size_t len,
		  uint64_t cookie)
{
	int ret = mrc_watcher_add(w, addr, len, cookie, wp);

	ck_assert_msg(ret == 0, "add: %s", mrc_last_error());
	ck_assert(mrc_watchpoint_valid(w, wp));
}

static void setup(void)
{
	struct mrc_watcher_attr attr = {
		.comp_mask = MRC_WATCHER_ATTR_MONITOR, .monitor = monitor };
	int ret = mrc_watcher_open(&attr, &w);

	ck_assert_msg(ret == 0, "open: %s", mrc_last_error());
	ck_assert_str_eq(mrc_watcher_monitor(w), monitor_name);
	/* Whatever earlier tests left behind is not ours. */
	drain();
}

static void teardown(void)
{
	ck_assert_int_eq(mrc_watcher_close(w), 0);
	w = NULL;
}

/* The pending check, called and inline, answers @expect. */
static void assert_pending(const struct mrc_watcher_words *words, int expect)
{
	ck_assert_int_eq(!!mrc_watcher_pending(w), expect);
	ck_assert_int_eq(!!mrc_watcher_words_pending(words), expect);
}

/*
 * Two pieces, two calls: invalid at once, one report of the whole range.
 * Pending from the first change until the drain, for both checks.
 */
START_TEST(partial_unmaps_report_whole_range_once)
{
	char *p = map_pages(4);
	struct mrc_watcher_words words;
	struct mrc_watchpoint wp;

	ck_assert_int_eq(mrc_watcher_words(w, &words), 0);
	watch(&wp, p, 4 * page, 7);
	ck_assert_int_eq(drain(), 0);
	assert_pending(&words, 0);
	ck_assert_int_eq(munmap(p + page, page), 0);
	assert_pending(&words, 1);
	ck_assert(!mrc_watchpoint_valid(w, &wp));
	ck_assert_int_eq(munmap(p + 3 * page, page), 0);
	ck_assert_int_eq(drain(), 1);
	ck_assert_int_eq(reports[0].cookie, 7);
	ck_assert_ptr_eq((void *)(uintptr_t)reports[0].start, p);
	ck_assert_int_eq(reports[0].len, 4 * page);
	ck_assert(!mrc_watchpoint_valid(w, &wp));
	assert_pending(&words, 0);
	ck_assert_int_eq(drain(), 0);
	ck_assert_int_eq(mrc_watcher_remove(w, &wp), 0);
	munmap(p, 4 * page);
}
END_TEST

/* What a runtime's own hooks may miss: the raw system call. */
START_TEST(raw_syscall_munmap_fires)
{
	char *p = map_pages(2);
	struct mrc_watchpoint wp;

	watch(&wp, p, 2 * page, 9);
	ck_assert_int_eq(syscall(SYS_munmap, p, 2 * page), 0);
	ck_assert(!mrc_watchpoint_valid(w, &wp));
	ck_assert_int_eq(drain(), 1);
	ck_assert_int_eq(reports[0].cookie, 9);
	mrc_watcher_remove(w, &wp);
}
END_TEST

START_TEST(madvise_dontneed_fires)
{
	char *p = map_pages(2);
	struct mrc_watchpoint wp;

	watch(&wp, p + 10, page, 11);	/* rounded out to two pages */
	ck_assert_int_eq(wp.start, (uintptr_t)p);
	ck_assert_int_eq(wp.end - wp.start, 2 * page);
	ck_assert_int_eq(madvise(p + page, page, MADV_DONTNEED), 0);
	ck_assert(!mrc_watchpoint_valid(w, &wp));
	ck_assert_int_eq(drain(), 1);
	ck_assert_int_eq(reports[0].len, 2 * page);
	/* A dropped page reads as zeroes (no fault waits for anyone). */
	ck_assert_int_eq(p[page], 0);
	mrc_watcher_remove(w, &wp);
	munmap(p, 2 * page);
}
END_TEST

START_TEST(only_changed_watches_are_reported)
{
	char *a = map_pages(1), *b = map_pages(1);
	struct mrc_watchpoint wa, wb, wr;

	watch(&wa, a, page, 1);
	watch(&wb, b, page, 2);
	watch(&wr, b, page, 3);	/* removed: never reported */
	ck_assert_int_eq(mrc_watcher_remove(w, &wr), 0);
	ck_assert_int_eq(mrc_watcher_remove(w, &wr), -EINVAL);
	ck_assert_int_eq(mprotect(a, page, PROT_READ), 0);	/* same pages */
	ck_assert(mrc_watchpoint_valid(w, &wa));
	ck_assert_int_eq(munmap(b, page), 0);
	ck_assert(mrc_watchpoint_valid(w, &wa));
	ck_assert(!mrc_watchpoint_valid(w, &wb));
	ck_assert_int_eq(drain(), 1);
	ck_assert_int_eq(reports[0].cookie, 2);
	mrc_watcher_remove(w, &wa);
	mrc_watcher_remove(w, &wb);
	munmap(a, page);
}
END_TEST

static int readable(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN);
}

START_TEST(fd_wakes_on_change_and_quiets_after_drain)
{
	char *p = map_pages(1);
	struct mrc_watchpoint wp;
	int fd = mrc_watcher_fd(w);

	ck_assert_msg(fd >= 0, "fd: %s", mrc_last_error());
	ck_assert_int_eq(mrc_watcher_fd(w), fd);
	watch(&wp, p, page, 5);
	ck_assert(!readable(fd, 50));
	ck_assert_int_eq(munmap(p, page), 0);
	ck_assert(readable(fd, 5000));
	ck_assert_int_eq(drain(), 1);
	usleep(10000);	/* a signal decided before the drain lands now */
	drain();
	ck_assert(!readable(fd, 50));
	mrc_watcher_remove(w, &wp);
}
END_TEST

static struct mrc_watchpoint cb_wps[3];

static void remove_in_callback(void *arg, uint64_t cookie, void *addr,
			       size_t len)
{
	(void)addr;
	(void)len;
	ck_assert_int_eq(mrc_watcher_remove(arg, &cb_wps[cookie]), 0);
	nreports++;
}

START_TEST(callback_may_remove_watches)
{
	char *p = map_pages(3);

	for (int i = 0; i < 3; i++)
		watch(&cb_wps[i], p + i * page, page, i);
	ck_assert_int_eq(munmap(p, 3 * page), 0);
	nreports = 0;
	ck_assert_int_eq(mrc_watcher_drain(w, remove_in_callback, w), 3);
	ck_assert_int_eq(nreports, 3);
}
END_TEST

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

/*
 * New pages at @p. Under a sanitizer its own memory sometimes lands in the
 * hole munmap leaves (seen once in six ASan runs with uffd, whose reader
 * thread runs meanwhile), so there the mapping is replaced without a hole
 * (MAP_FIXED: an unmap to every monitor); the plain build unmaps.
 */
static char *remap_pages(char *p, size_t n)
{
	char *q;

	if (!SANITIZED)
		ck_assert_int_eq(munmap(p, n * page), 0);
	q = mmap(p, n * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS |
		 (SANITIZED ? MAP_FIXED : MAP_FIXED_NOREPLACE), -1, 0);
	ck_assert(q == p);
	return q;
}

/* An address reused for new memory: the old watch stays invalid. */
START_TEST(remap_at_same_address_stays_invalid)
{
	char *p = map_pages(2), *q;
	struct mrc_watchpoint old, fresh;

	watch(&old, p, 2 * page, 1);
	q = remap_pages(p, 2);
	ck_assert(!mrc_watchpoint_valid(w, &old));
	watch(&fresh, q, 2 * page, 2);
	ck_assert_int_eq(drain(), 1);
	ck_assert_int_eq(reports[0].cookie, 1);
	ck_assert(mrc_watchpoint_valid(w, &fresh));
	mrc_watcher_remove(w, &old);
	mrc_watcher_remove(w, &fresh);
	munmap(q, 2 * page);
}
END_TEST

START_TEST(bad_input_is_refused)
{
	struct mrc_watcher_attr attr = { .comp_mask = 1u << 5 };
	struct mrc_watcher_words words;
	struct mrc_watcher *x;
	struct mrc_watchpoint wp;
	char c;

	ck_assert_int_eq(mrc_watcher_open(&attr, &x), -EINVAL);
	attr = (struct mrc_watcher_attr){ .reserved = 1 };
	ck_assert_int_eq(mrc_watcher_open(&attr, &x), -EINVAL);
	attr = (struct mrc_watcher_attr){ MRC_WATCHER_ATTR_MONITOR,
					  MRC_MONITOR_MANUAL, 0 };
	ck_assert_int_eq(mrc_watcher_open(&attr, &x), -ENOTSUP);
	ck_assert(strstr(mrc_last_error(), "manual"));
	attr.monitor = 99;
	ck_assert_int_eq(mrc_watcher_open(&attr, &x), -EINVAL);
	ck_assert_int_eq(mrc_watcher_open(NULL, NULL), -EINVAL);
	ck_assert_int_eq(mrc_watcher_add(w, &c, 0, 0, &wp), -EINVAL);
	ck_assert_int_eq(mrc_watcher_add(w, (void *)-4096L, 8192, 0, &wp), -EINVAL);
	ck_assert_int_eq(mrc_watcher_add(w, &c, 1, 0, NULL), -EINVAL);
	ck_assert_int_eq(mrc_watcher_drain(w, NULL, NULL), -EINVAL);
	ck_assert_int_eq(mrc_watcher_words(NULL, &words), -EINVAL);
	ck_assert_int_eq(mrc_watcher_words(w, NULL), -EINVAL);
	ck_assert_int_eq(mrc_watcher_close(NULL), -EINVAL);
	wp = (struct mrc_watchpoint){ .slot = 12345 };
	ck_assert_int_eq(mrc_watcher_remove(w, &wp), -EINVAL);
}
END_TEST

START_TEST(forked_child_gets_echild)
{
	char *p = map_pages(1);
	struct mrc_watchpoint wp;
	pid_t pid = fork();
	int status;

	ck_assert(pid >= 0);
	if (!pid) {
		int bad = mrc_watcher_add(w, p, page, 0, &wp) != -ECHILD ||
			  mrc_watcher_close(w) != 0;
		_exit(bad);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	watch(&wp, p, page, 1);	/* the parent's watcher still works */
	ck_assert_int_eq(munmap(p, page), 0);
	ck_assert_int_eq(drain(), 1);
	mrc_watcher_remove(w, &wp);
}
END_TEST

static int has_cookie(uint64_t cookie)
{
	for (int i = 0; i < nreports; i++)
		if (reports[i].cookie == cookie)
			return 1;
	return 0;
}

/*
 * A record (the hooks' or userfaultfd's, 4096 ranges) that lapped the
 * watcher lost ranges: report every watch, the untouched one too. The
 * noise is madvise on watched memory, which both record (userfaultfd
 * records only registered ranges).
 */
START_TEST(lost_ranges_report_every_watch)
{
	char *p = map_pages(1), *noise = map_pages(1);
	struct mrc_watchpoint wp, wn;

	watch(&wp, p, page, 4);
	watch(&wn, noise, page, 5);
	for (int i = 0; i < 5000; i++)
		ck_assert_int_eq(madvise(noise, page, MADV_DONTNEED), 0);
	ck_assert(!mrc_watchpoint_valid(w, &wp));
	ck_assert_int_eq(drain(), 2);
	ck_assert(has_cookie(4) && has_cookie(5));
	mrc_watcher_remove(w, &wp);
	mrc_watcher_remove(w, &wn);
	munmap(p, page);
	munmap(noise, page);
}
END_TEST

static int checker_stop;

/* Checks an untouched watch while the main thread changes other memory. */
static void *check_untouched(void *arg)
{
	const struct mrc_watchpoint *wp = arg;
	long bad = 0;

	while (!__atomic_load_n(&checker_stop, __ATOMIC_ACQUIRE)) {
		bad += !mrc_watchpoint_valid(w, wp);
		(void)mrc_watcher_pending(w);
	}
	return (void *)bad;
}

/* Checks on one thread, changes, adds, drains and removes on another. */
START_TEST(checks_race_changes_and_drains)
{
	char *stable = map_pages(1);
	struct mrc_watchpoint keep, wp;
	pthread_t checker;
	void *bad;

	watch(&keep, stable, page, 1);
	checker_stop = 0;
	ck_assert_int_eq(pthread_create(&checker, NULL, check_untouched, &keep), 0);
	for (int i = 0; i < 300; i++) {
		char *p = map_pages(2);

		watch(&wp, p, 2 * page, 2);
		ck_assert_int_eq(munmap(p, 2 * page), 0);
		ck_assert(!mrc_watchpoint_valid(w, &wp));
		ck_assert_int_eq(drain(), 1);
		ck_assert_int_eq(reports[0].cookie, 2);
		ck_assert_int_eq(mrc_watcher_remove(w, &wp), 0);
	}
	__atomic_store_n(&checker_stop, 1, __ATOMIC_RELEASE);
	ck_assert_int_eq(pthread_join(checker, &bad), 0);
	ck_assert_int_eq((long)bad, 0);
	ck_assert(mrc_watchpoint_valid(w, &keep));
	mrc_watcher_remove(w, &keep);
	munmap(stable, page);
}
END_TEST

/* What a userfaultfd cannot register is refused, never watched blind. */
START_TEST(uffd_refuses_what_it_cannot_watch)
{
	char path[] = "/tmp/mrcache-watcher-XXXXXX";
	int fd = mkstemp(path);
	char *f, *gone = map_pages(1);
	struct mrc_watchpoint wp;

	ck_assert(fd >= 0);
	unlink(path);
	ck_assert_int_eq(ftruncate(fd, page), 0);
	f = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	ck_assert(f != MAP_FAILED);
	ck_assert_int_eq(mrc_watcher_add(w, f, page, 1, &wp), -EOPNOTSUPP);
	ck_assert(strstr(mrc_last_error(), "kmod"));
	munmap(gone, page);
	ck_assert_int_eq(mrc_watcher_add(w, gone, page, 2, &wp), -EFAULT);
	ck_assert_int_eq(drain(), 0);
	munmap(f, page);
	close(fd);
}
END_TEST

/*
 * A range can be registered with one userfaultfd only: a second watcher
 * and a uffd cache over the same buffer work only if the process's one
 * userfaultfd serves them all. Each sees the change.
 */
START_TEST(uffd_one_userfaultfd_for_watchers_and_caches)
{
	struct mrc_cache_attr attr = {
		.comp_mask = MRC_ATTR_MONITOR, .monitor = MRC_MONITOR_UFFD };
	struct mrc_watcher_attr wattr = {
		.comp_mask = MRC_WATCHER_ATTR_MONITOR, .monitor = MRC_MONITOR_UFFD };
	struct fake_provider f;
	struct mrc_provider prov;
	struct mrc_cache *c;
	struct mrc_watcher *w2;
	struct mrc_watchpoint wp, wp2;
	char *p = map_pages(2);

	fake_init(&f);
	prov = fake_provider(&f);
	ck_assert_int_eq(mrc_cache_create(&prov, &attr, &c), 0);
	cache_put_ok(c, cache_get_ok(c, p, 2 * page, 1));
	ck_assert_int_eq(mrc_watcher_open(&wattr, &w2), 0);
	watch(&wp, p, 2 * page, 1);
	ck_assert_msg(mrc_watcher_add(w2, p, page, 2, &wp2) == 0, "add: %s",
		      mrc_last_error());
	ck_assert_int_eq(munmap(p, 2 * page), 0);
	ck_assert(!mrc_watchpoint_valid(w, &wp));
	ck_assert(!mrc_watchpoint_valid(w2, &wp2));
	ck_assert_int_eq(drain(), 1);
	ck_assert_int_eq(mrc_cache_progress(c), 0);
	ck_assert_int_eq(cache_stats_ok(c).invalidations, 1);
	ck_assert_int_eq(mrc_watcher_close(w2), 0);
	fake_teardown(c, &f);
	mrc_watcher_remove(w, &wp);
}
END_TEST

/*
 * `watcher_test MODE` in a fresh process, which must exit 0: for cases
 * that need a process of their own (a setting read when the userfaultfd
 * opens, a seccomp policy), and new threads, which a sanitizer's runtime
 * refuses in the child of a threaded fork. Check's asserts are only here.
 */
static void run_fresh(const char *mode)
{
	pid_t pid = fork();
	int status;

	ck_assert(pid >= 0);
	if (!pid) {
		execl("/proc/self/exe", "watcher_test", mode, (char *)NULL);
		_exit(127);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "watcher_test %s: status %#x", mode, status);
}

static int noise_stop;

/* Events for the userfaultfd reader to signal, as fast as they come. */
static void *madvise_noise(void *arg)
{
	while (!__atomic_load_n(&noise_stop, __ATOMIC_ACQUIRE))
		madvise(arg, page, MADV_DONTNEED);
	return NULL;
}

/* One round: open, take the fd, close; does the fd's number get a write? */
static int stray_signal_round(const struct mrc_watcher_attr *attr)
{
	struct mrc_watcher *x;
	uint64_t count;
	int fd, stray;

	if (mrc_watcher_open(attr, &x) || mrc_watcher_fd(x) < 0)
		return -1;
	usleep(100);	/* the reader is inside its delay now and then */
	mrc_watcher_close(x);
	fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	usleep(3000);	/* past the reader's delay: its write, if any, landed */
	stray = read(fd, &count, sizeof(count)) == sizeof(count);
	close(fd);
	return stray;
}

/*
 * `watcher_test stray-signal`, with the reader pausing 1 ms between
 * claiming a watcher's wakeup and writing it: closing that watcher must
 * wait the write out, or the write lands on the fd number the process
 * reuses at once (here an eventfd nobody signals). No ck_assert here.
 */
static int stray_signal(void)
{
	struct mrc_watcher_attr attr = {
		.comp_mask = MRC_WATCHER_ATTR_MONITOR, .monitor = MRC_MONITOR_UFFD };
	struct mrc_watchpoint wn;
	pthread_t t;
	char *noise;
	int stray = 0, ret = 0;

	page = sysconf(_SC_PAGESIZE);
	noise = mmap(NULL, page, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (noise == MAP_FAILED || mrc_watcher_open(&attr, &w) ||
	    mrc_watcher_add(w, noise, page, 1, &wn) ||
	    pthread_create(&t, NULL, madvise_noise, noise))
		return 2;
	for (int i = 0; i < 200 && ret >= 0; i++)
		stray += ret = stray_signal_round(&attr);
	__atomic_store_n(&noise_stop, 1, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	fprintf(stderr, "stray signals after close: %d of 200 rounds\n", stray);
	return ret < 0 ? 2 : stray != 0;
}

/* In a fresh process: the delay must be set before the reader starts. */
START_TEST(uffd_closed_fd_gets_no_stray_signal)
{
	setenv("MRCACHE_TEST_WAKEUP_DELAY_US", "1000", 1);
	run_fresh("stray-signal");
}
END_TEST

/* A W^X policy: mprotect asking for write and execute fails with EPERM. */
static int forbid_writable_code(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 5),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_mprotect, 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[2])),
		BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, PROT_EXEC, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { sizeof(f) / sizeof(f[0]), f };

	return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
	       syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
}

static void count_cookie_3(void *arg, uint64_t cookie, void *addr, size_t len)
{
	(void)arg;
	(void)addr;
	(void)len;
	nreports += cookie == 3;
}

/*
 * `watcher_test auto-without-hooks`, a process that cannot patch libc:
 * AUTO's watcher, and a change seen by it. The module when there is one.
 */
static int auto_without_hooks(void)
{
	const char *want = access("/dev/mrcache", R_OK | W_OK) ? "uffd" : "kmod";
	struct mrc_watcher *x;
	struct mrc_watchpoint wp;
	char *p;

	/* No ck_assert here: this process runs no check test. */
	page = sysconf(_SC_PAGESIZE);
	p = mmap(NULL, page, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	unsetenv("MRCACHE_MONITOR");
	if (p == MAP_FAILED || forbid_writable_code() ||
	    mrc_watcher_open(NULL, &x))
		return 1;
	fprintf(stderr, "AUTO without the hooks: %s\n", mrc_watcher_monitor(x));
	if (strcmp(mrc_watcher_monitor(x), want) ||
	    mrc_watcher_add(x, p, page, 3, &wp) || munmap(p, page) ||
	    mrc_watchpoint_valid(x, &wp))
		return 1;
	return mrc_watcher_drain(x, count_cookie_3, NULL) != 1 || nreports != 1 ||
	       mrc_watcher_close(x);
}

/* AUTO takes the module, else the hooks, else userfaultfd. */
START_TEST(auto_falls_back_to_uffd_without_hooks)
{
	run_fresh("auto-without-hooks");
}
END_TEST

static uint32_t parse_monitor(const char *name)
{
	monitor_name = name;
	if (!strcmp(name, "kmod"))
		return MRC_MONITOR_KMOD;
	if (!strcmp(name, "hooks"))
		return MRC_MONITOR_HOOKS;
	if (!strcmp(name, "uffd"))
		return MRC_MONITOR_UFFD;
	fprintf(stderr, "usage: watcher_test hooks|kmod|uffd\n");
	exit(2);
}

int main(int argc, char **argv)
{
	Suite *s;
	TCase *tc;

	if (argc > 1 && !strcmp(argv[1], "auto-without-hooks"))
		return auto_without_hooks();
	if (argc > 1 && !strcmp(argv[1], "stray-signal"))
		return stray_signal();
	s = suite_create("watcher");
	tc = tcase_create("watcher");
	monitor = parse_monitor(argc > 1 ? argv[1] : "hooks");
	page = sysconf(_SC_PAGESIZE);
	if (monitor == MRC_MONITOR_KMOD && access("/dev/mrcache", R_OK | W_OK)) {
		/* 77: the VM harness turns it into a failure where it must run. */
		fprintf(stderr, "watcher_test kmod: no /dev/mrcache here (%s)\n",
			strerror(errno));
		return 77;
	}
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, partial_unmaps_report_whole_range_once);
	tcase_add_test(tc, raw_syscall_munmap_fires);
	tcase_add_test(tc, madvise_dontneed_fires);
	tcase_add_test(tc, only_changed_watches_are_reported);
	tcase_add_test(tc, fd_wakes_on_change_and_quiets_after_drain);
	tcase_add_test(tc, callback_may_remove_watches);
	tcase_add_test(tc, remap_at_same_address_stays_invalid);
	tcase_add_test(tc, bad_input_is_refused);
	tcase_add_test(tc, forked_child_gets_echild);
	tcase_add_test(tc, checks_race_changes_and_drains);
	if (monitor != MRC_MONITOR_KMOD)	/* the module's ring is per watch */
		tcase_add_test(tc, lost_ranges_report_every_watch);
	if (monitor == MRC_MONITOR_UFFD) {
		tcase_add_test(tc, uffd_refuses_what_it_cannot_watch);
		tcase_add_test(tc, uffd_one_userfaultfd_for_watchers_and_caches);
		tcase_add_test(tc, auto_falls_back_to_uffd_without_hooks);
		tcase_add_test(tc, uffd_closed_fd_gets_no_stray_signal);
	}
	suite_add_tcase(s, tc);
	return check_run_suite(s);
}
