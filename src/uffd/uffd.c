// SPDX-License-Identifier: BSD-2-Clause
/*
 * The process's userfaultfd and its reader thread (uffd.h says why there
 * is one per process and why the reader may take no lock).
 *
 * No page fault is ever left waiting. A range registered for missing
 * pages (UFFDIO_REGISTER_MODE_MISSING, as libfabric's monitor does) makes
 * the next touch of a page dropped by madvise(DONTNEED) wait for someone
 * to fill it; a monitor that only reads events never does, and the
 * process hangs. Here ranges are registered in write-protect mode, the
 * one fault mode the kernel accepts on anonymous memory that faults only
 * on pages made write-protected with UFFDIO_WRITEPROTECT, which this code
 * never does; events (unmap, remove, remap) come whatever the mode. Should
 * a fault arrive all the same, the reader resolves it (resolve_fault).
 *
 * Fork: the child's mappings lose their registration (no EVENT_FORK,
 * which needs CAP_SYS_PTRACE), and the child closes its copy of the
 * descriptor at once (after_fork_child): a copy left open would keep the
 * parent's userfaultfd alive after the parent closed it, and the parent's
 * next munmap of a registered range would wait for a reader that is gone.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "atomics.h"
#include "error.h"
#include "platform.h"
#include "uffd/ranges.h"
#include "uffd/uffd.h"
#include "uffd/wakeups.h"

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif

/* The events the monitor exists for. */
#define UFFD_EVENTS \
	(UFFD_FEATURE_EVENT_UNMAP | UFFD_FEATURE_EVENT_REMOVE | \
	 UFFD_FEATURE_EVENT_REMAP)
/* Write-protect registration, which never faults by itself. */
#define UFFD_NEEDED (UFFD_EVENTS | UFFD_FEATURE_PAGEFAULT_FLAG_WP)
/* Write-protect registration of shmem and hugetlbfs (Linux 6.0). */
#ifdef UFFD_FEATURE_WP_HUGETLBFS_SHMEM
#define UFFD_WP_SHARED UFFD_FEATURE_WP_HUGETLBFS_SHMEM
#else
#define UFFD_WP_SHARED 0
#endif

static pthread_mutex_t uffd_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static int users;		/* attached monitors, under uffd_lock */
static int uffd = -1;		/* valid while users > 0 */
static int stop_fd = -1;	/* eventfd that stops the reader */
static pthread_t reader;
static uint64_t page_mask;
/* Odd while the reader holds events it has not recorded (uffd.h). */
static uint32_t event_word;

/* userfaultfd(2), user-mode faults only where the kernel knows the flag. */
static int open_syscall(void)
{
	int fd = (int)syscall(SYS_userfaultfd,
			      O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);

	/* Before Linux 5.11 the flag is unknown: ask without it. */
	if (fd < 0 && errno == EINVAL)
		fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	return fd;
}

/* /dev/userfaultfd (Linux 6.1): allowed by file permission, not sysctl. */
static int open_device(void)
{
#ifdef USERFAULTFD_IOC_NEW
	int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	int fd, err;

	if (dev < 0)
		return -1;
	fd = ioctl(dev, USERFAULTFD_IOC_NEW,
		   O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	err = errno;
	close(dev);
	errno = err;
	return fd;
#else
	errno = ENOENT;
	return -1;
#endif
}

static int open_uffd(void)
{
	int fd = open_syscall(), err = errno;

	if (fd >= 0)
		return fd;
	fd = open_device();
	if (fd >= 0)
		return fd;
	return mrc_error(err, "userfaultfd() failed: %s (vm.unprivileged_userfaultfd, a seccomp policy, or a kernel without CONFIG_USERFAULTFD), and so did /dev/userfaultfd: %s",
			 strerror(err), strerror(errno));
}

static int handshake(int fd, uint64_t features, struct uffdio_api *api)
{
	memset(api, 0, sizeof(*api));
	api->api = UFFD_API;
	api->features = features;
	if (ioctl(fd, UFFDIO_API, api))
		return mrc_error(errno, "UFFDIO_API with features %#" PRIx64 " failed",
				 features);
	return 0;
}

/*
 * Ask a throw-away descriptor what the kernel offers (a failed handshake
 * may leave a descriptor unusable on older kernels), then open the real
 * one with what is needed.
 */
static int open_with_features(void)
{
	struct uffdio_api api;
	int fd = open_uffd(), ret;

	if (fd < 0)
		return fd;
	ret = handshake(fd, 0, &api);
	close(fd);
	if (ret)
		return ret;
	if ((api.features & UFFD_NEEDED) != UFFD_NEEDED)
		return mrc_error(EOPNOTSUPP, "this kernel's userfaultfd lacks unmap, remove or remap events or write-protect mode (features %#llx, needs %#llx; Linux 5.7 or later)",
				 (unsigned long long)api.features,
				 (unsigned long long)UFFD_NEEDED);
	fd = open_uffd();
	if (fd < 0)
		return fd;
	ret = handshake(fd, UFFD_EVENTS | (api.features & UFFD_WP_SHARED), &api);
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}

/*
 * Never expected (nothing is write-protected, nothing registered for
 * missing pages), but a thread waiting on a fault nobody resolves would
 * hang for good: un-protect the page, or fill it with zeroes as the kernel
 * would have, and wake the thread in any case.
 */
static void resolve_fault(int fd, const struct uffd_msg *m)
{
	struct uffdio_range r = {
		.start = m->arg.pagefault.address & ~page_mask,
		.len = page_mask + 1,
	};
	struct uffdio_writeprotect wp = { .range = r, .mode = 0 };
	struct uffdio_zeropage zero = { .range = r, .mode = 0 };

	if (m->arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP) {
		if (!ioctl(fd, UFFDIO_WRITEPROTECT, &wp))
			return;
	} else if (!ioctl(fd, UFFDIO_ZEROPAGE, &zero)) {
		return;
	}
	ioctl(fd, UFFDIO_WAKE, &r);
}

static void handle_message(int fd, const struct uffd_msg *m)
{
	switch (m->event) {
	case UFFD_EVENT_UNMAP:
	case UFFD_EVENT_REMOVE:
		mrc_uffd_ranges_push(m->arg.remove.start, m->arg.remove.end);
		break;
	case UFFD_EVENT_REMAP:
		/* The pages left [from, from + len); "to" was unmapped first. */
		mrc_uffd_ranges_push(m->arg.remap.from,
				     m->arg.remap.from + m->arg.remap.len);
		break;
	case UFFD_EVENT_PAGEFAULT:
		resolve_fault(fd, m);
		break;
	case UFFD_EVENT_FORK:	/* not asked for; do not leak the child's */
		close((int)m->arg.fork.ufd);
		break;
	}
}

/*
 * One read() of up to 32 events, bracketed by the event word: odd before
 * (the read releases the threads that made the changes, which may return
 * at once), even after they are recorded.
 */
static void take_events(int fd)
{
	struct uffd_msg msg[32];
	uint64_t recorded = mrc_uffd_ranges_end();
	ssize_t n;

	/*
	 * A full barrier: the odd word is visible before the read() lets a
	 * changing thread return. Pairs with the load-acquire in
	 * wait_recorded() and the hit path's load of the word.
	 */
	__atomic_fetch_add(&event_word, 1, __ATOMIC_SEQ_CST);
	n = read(fd, msg, sizeof(msg));
	for (ssize_t i = 0; i < n / (ssize_t)sizeof(msg[0]); i++)
		handle_message(fd, &msg[i]);
	/* Events taken but unreadable: anything may have changed. */
	if (n < 0 && errno != EAGAIN && errno != EINTR)
		mrc_uffd_ranges_push(0, UINT64_MAX);
	/* Pairs with the load-acquire in wait_recorded(). */
	__atomic_fetch_add(&event_word, 1, __ATOMIC_RELEASE);
	/* After the word: a woken drain finds the ranges recorded. */
	if (mrc_uffd_ranges_end() != recorded)
		mrc_uffd_wakeups_signal();
}

/* The reader: no lock, no allocation, no call into the cache (uffd.h). */
static void *reader_main(void *arg)
{
	struct pollfd fds[2] = {
		{ .fd = uffd, .events = POLLIN },
		{ .fd = stop_fd, .events = POLLIN },
	};
	struct timespec pause = { 0, 1000000 };

	(void)arg;
	for (;;) {
		if (poll(fds, 2, -1) < 0) {
			if (errno != EINTR)
				nanosleep(&pause, NULL);
			continue;
		}
		if (fds[1].revents)
			return NULL;
		if (fds[0].revents & POLLIN)
			take_events(fds[0].fd);
	}
}

/* The reader takes no signals: handlers run on the application's threads. */
static int start_reader(void)
{
	sigset_t all, old;
	int ret;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = pthread_create(&reader, NULL, reader_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret)
		return mrc_error(ret, "cannot start the userfaultfd reader thread");
	pthread_setname_np(reader, "mrc-uffd");
	return 0;
}

static void close_fds(void)
{
	if (uffd >= 0)
		close(uffd);
	if (stop_fd >= 0)
		close(stop_fd);
	uffd = stop_fd = -1;
}

static int open_all(void)
{
	int ret;

	page_mask = mrc_page_size() - 1;
	mrc_uffd_wakeups_init();
	uffd = open_with_features();
	if (uffd < 0) {
		ret = uffd;
		uffd = -1;
		return ret;
	}
	stop_fd = eventfd(0, EFD_CLOEXEC);
	ret = stop_fd < 0 ? mrc_error(errno, "eventfd for the userfaultfd reader") :
			    start_reader();
	if (ret)
		close_fds();
	return ret;
}

/*
 * Stop the reader, then close: a thread that changed a registered range
 * after the reader's last read is released by the close.
 */
static void close_all(void)
{
	uint64_t one = 1;

	if (write(stop_fd, &one, sizeof(one)) == sizeof(one))
		pthread_join(reader, NULL);
	else
		mrc_warn("cannot stop the userfaultfd reader: %s", strerror(errno));
	close_fds();
}

static void before_fork(void)
{
	pthread_mutex_lock(&uffd_lock);
}

static void after_fork_parent(void)
{
	pthread_mutex_unlock(&uffd_lock);
}

/*
 * The child has no reader and its mappings are unregistered: drop the
 * copies of the descriptors (see the top of this file) and start afresh.
 * A fork while the reader held events leaves the word odd: make it even.
 */
static void after_fork_child(void)
{
	close_fds();
	mrc_uffd_wakeups_forget();
	users = 0;
	if (event_word & 1)
		event_word++;
	pthread_mutex_unlock(&uffd_lock);
}

static void install_atfork(void)
{
	pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

int mrc_uffd_attach(uint64_t *cursor)
{
	int ret = 0;

	pthread_once(&atfork_once, install_atfork);
	pthread_mutex_lock(&uffd_lock);
	if (!users)
		ret = open_all();
	if (!ret) {
		users++;
		*cursor = mrc_uffd_ranges_end();
	}
	pthread_mutex_unlock(&uffd_lock);
	return ret;
}

void mrc_uffd_detach(void)
{
	pthread_mutex_lock(&uffd_lock);
	if (users > 0 && --users == 0)
		close_all();
	pthread_mutex_unlock(&uffd_lock);
}

const uint32_t *mrc_uffd_event_word(void)
{
	return &event_word;
}

static int register_failed(uint64_t start, uint64_t end, int err)
{
	if (err == EINVAL || err == EPERM)
		return mrc_error(EOPNOTSUPP, "userfaultfd cannot watch %#" PRIx64 "-%#" PRIx64 " (%s): only private anonymous and writable shared memory, not file, device or System V shared memory; use MRCACHE_MONITOR=kmod or hooks",
				 start, end, strerror(err));
	if (err == EBUSY)
		return mrc_error(EBUSY, "%#" PRIx64 "-%#" PRIx64 " is watched by another userfaultfd (another library's memory monitor?); use MRCACHE_MONITOR=kmod or hooks",
				 start, end);
	if (err == ENOMEM)
		return mrc_error(ENOMEM, "cannot watch %#" PRIx64 "-%#" PRIx64 ": splitting its mappings would pass vm.max_map_count",
				 start, end);
	return mrc_error(err, "UFFDIO_REGISTER of %#" PRIx64 "-%#" PRIx64 " failed",
			 start, end);
}

/* msync() with no flags only checks that the whole range is mapped. */
static int mapped(uint64_t start, uint64_t end)
{
	return !msync((void *)(uintptr_t)start, end - start, 0) || errno != ENOMEM;
}

/*
 * EINVAL and ENOMEM mean "not (all) mapped" as well as "memory that
 * cannot be watched" and "too many mappings". Look whether the range is
 * mapped; if it is, another thread may have been replacing the mapping
 * under the call, so ask again (a few times) before calling it the kind
 * of memory.
 */
int mrc_uffd_register(uint64_t start, uint64_t end)
{
	struct uffdio_register reg = {
		.range = { .start = start, .len = end - start },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};
	int err;

	for (int attempt = 0; ioctl(uffd, UFFDIO_REGISTER, &reg); attempt++) {
		err = errno;
		if (err != EINVAL && err != ENOMEM)
			return register_failed(start, end, err);
		if (!mapped(start, end))
			return mrc_error(EFAULT, "%#" PRIx64 "-%#" PRIx64 " is not mapped (all of it)",
					 start, end);
		if (attempt == 2)
			return register_failed(start, end, err);
	}
	return 0;
}

uint64_t mrc_uffd_position(void)
{
	return mrc_uffd_ranges_end();
}

/*
 * The reader may have let a changing thread return before recording its
 * range (the word is odd then): wait, never long, since the reader holds
 * no lock and does not block between the two moves of the word.
 */
static uint32_t wait_recorded(void)
{
	uint32_t word;

	/* Pairs with the release increment in take_events(). */
	while ((word = mrc_load_acquire(&event_word)) & 1)
		sched_yield();
	return word;
}

uint32_t mrc_uffd_read(uint64_t *cursor, mrc_uffd_range_fn fn, void *arg,
		       int *lost)
{
	uint32_t word = wait_recorded();

	*lost = mrc_uffd_ranges_read(cursor, fn, arg);
	return word;
}

int mrc_uffd_overlaps(uint64_t from, uint64_t start, uint64_t end)
{
	(void)wait_recorded();
	return mrc_uffd_ranges_overlap(from, start, end);
}

int mrc_uffd_wakeup_open(struct mrc_uffd_wakeup **wk)
{
	int ret;

	pthread_mutex_lock(&uffd_lock);
	ret = mrc_uffd_wakeups_add(wk);
	pthread_mutex_unlock(&uffd_lock);
	return ret;
}

void mrc_uffd_wakeup_close(struct mrc_uffd_wakeup *wk)
{
	pthread_mutex_lock(&uffd_lock);
	mrc_uffd_wakeups_remove(wk);
	pthread_mutex_unlock(&uffd_lock);
}
