/* SPDX-License-Identifier: GPL-2.0 */
/*
 * mrc_test.h - small helpers shared by the /dev/mrcache tests
 *
 * Each test is one program: exit 0 pass, 1 fail, 77 skip.  The helpers
 * drive the ABI of include/mrcache_abi.h directly (no library), so these
 * tests check the module and nothing else.
 */
#ifndef MRC_TEST_H
#define MRC_TEST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mrcache_abi.h"

#define T_PASS 0
#define T_FAIL 1
#define T_SKIP 77

static const char *t_name = "test";

#define T_LOG(...) do { \
	fprintf(stderr, "%s: ", t_name); \
	fprintf(stderr, __VA_ARGS__); \
	fputc('\n', stderr); \
} while (0)

#define CHECK(cond, ...) do { \
	if (!(cond)) { \
		fprintf(stderr, "%s: FAIL %s:%d: %s: ", t_name, __FILE__, \
			__LINE__, #cond); \
		fprintf(stderr, __VA_ARGS__); \
		fputc('\n', stderr); \
		exit(T_FAIL); \
	} \
} while (0)

#define SKIP(...) do { \
	fprintf(stderr, "%s: SKIP: ", t_name); \
	fprintf(stderr, __VA_ARGS__); \
	fputc('\n', stderr); \
	exit(T_SKIP); \
} while (0)

/* A file set up and mapped, with the ring decoded from the offsets. */
struct mrct {
	int fd;
	struct mrc_api api;
	void *map;
	uint32_t *producer;
	uint32_t *consumer;
	uint64_t *overflow;
	uint64_t *overflow_seen;
	uint32_t *sequence;
	uint64_t *pressure;
	uint64_t *pressure_seen;
	struct mrc_event *events;
	uint64_t *gens;
	uint32_t mask;
};

static inline long t_page(void)
{
	return sysconf(_SC_PAGESIZE);
}

static inline int t_ioctl(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) ? -errno : 0;
}

/* open /dev/mrcache or skip the test */
static inline int t_open_dev(void)
{
	int fd = open(MRC_DEVICE_PATH, O_RDWR | O_CLOEXEC);

	if (fd < 0 && (errno == ENOENT || errno == ENODEV || errno == ENXIO))
		SKIP("%s not present (module not loaded)", MRC_DEVICE_PATH);
	CHECK(fd >= 0, "open: %s", strerror(errno));
	return fd;
}

static inline void t_api_init(struct mrc_api *api, uint32_t entries,
			      uint32_t slots, uint64_t features)
{
	memset(api, 0, sizeof(*api));
	api->abi_version = MRC_ABI_VERSION;
	api->ring_entries = entries;
	api->watch_slots = slots;
	api->features = features;
}

/* Decode the ring at @m, a mapping of t->fd made elsewhere. */
static inline void mrct_point(struct mrct *t, char *m)
{
	t->map = m;
	t->producer = (uint32_t *)(m + t->api.off.producer);
	t->consumer = (uint32_t *)(m + t->api.off.consumer);
	t->overflow = (uint64_t *)(m + t->api.off.overflow);
	t->overflow_seen = (uint64_t *)(m + t->api.off.overflow_seen);
	t->sequence = (uint32_t *)(m + t->api.off.sequence);
	t->pressure = (uint64_t *)(m + t->api.off.pressure);
	t->pressure_seen = (uint64_t *)(m + t->api.off.pressure_seen);
	t->events = (struct mrc_event *)(m + t->api.off.events);
	t->gens = (uint64_t *)(m + t->api.off.generations);
	t->mask = *(uint32_t *)(m + t->api.off.mask);
	CHECK(t->mask + 1 == t->api.ring_entries, "mask %u entries %u",
	      t->mask, t->api.ring_entries);
}

static inline void mrct_map(struct mrct *t)
{
	char *m;

	m = mmap(NULL, t->api.mmap_length, PROT_READ | PROT_WRITE, MAP_SHARED,
		 t->fd, 0);
	CHECK(m != MAP_FAILED, "mmap ring: %s", strerror(errno));
	mrct_point(t, m);
}

static inline void mrct_open(struct mrct *t, uint32_t entries, uint32_t slots,
			     uint64_t features)
{
	int ret;

	memset(t, 0, sizeof(*t));
	t->fd = t_open_dev();
	t_api_init(&t->api, entries, slots, features);
	ret = t_ioctl(t->fd, MRC_IOC_API, &t->api);
	CHECK(ret == 0, "MRC_IOC_API: %s", strerror(-ret));
	mrct_map(t);
}

static inline void mrct_close(struct mrct *t)
{
	munmap(t->map, t->api.mmap_length);
	close(t->fd);
}

static inline int mrct_watch(struct mrct *t, const void *addr, size_t len,
			     uint64_t cookie, uint32_t *id, uint64_t *gen)
{
	struct mrc_watch w = {
		.start = (uintptr_t)addr, .length = len, .cookie = cookie,
	};
	int ret = t_ioctl(t->fd, MRC_IOC_WATCH, &w);

	if (!ret) {
		*id = w.id;
		*gen = w.generation;
	}
	return ret;
}

static inline int mrct_unwatch(struct mrct *t, uint32_t id)
{
	struct mrc_unwatch u = { .id = id };

	return t_ioctl(t->fd, MRC_IOC_UNWATCH, &u);
}

static inline int mrct_query(struct mrct *t, uint32_t id, struct mrc_query *q)
{
	memset(q, 0, sizeof(*q));
	q->id = id;
	return t_ioctl(t->fd, MRC_IOC_QUERY, q);
}

/* One load: the whole validity check of a cached registration. */
static inline uint64_t mrct_gen(struct mrct *t, uint32_t id)
{
	return __atomic_load_n(&t->gens[id], __ATOMIC_ACQUIRE);
}

static inline uint32_t mrct_pending(struct mrct *t)
{
	/* Pairs with the kernel's store-release in mrc_ring_post(). */
	uint32_t prod = __atomic_load_n(t->producer, __ATOMIC_ACQUIRE);

	return prod - *t->consumer;
}

/* Pop one event; false if the ring is empty. */
static inline bool mrct_pop(struct mrct *t, struct mrc_event *ev)
{
	/* Pairs with the kernel's store-release in mrc_ring_post(). */
	uint32_t prod = __atomic_load_n(t->producer, __ATOMIC_ACQUIRE);
	uint32_t cons = *t->consumer;

	if (prod == cons)
		return false;
	*ev = t->events[cons & t->mask];
	/* Pairs with the kernel's load-acquire in mrc_ring_full(). */
	__atomic_store_n(t->consumer, cons + 1, __ATOMIC_RELEASE);
	return true;
}

static inline uint64_t mrct_overflow(struct mrct *t)
{
	return __atomic_load_n(t->overflow, __ATOMIC_ACQUIRE);
}

static inline uint32_t mrct_sequence(struct mrct *t)
{
	/* Pairs with the kernel's store-release in mrc_ring_tick(). */
	return __atomic_load_n(t->sequence, __ATOMIC_ACQUIRE);
}

static inline void mrct_drain(struct mrct *t)
{
	struct mrc_event ev;

	while (mrct_pop(t, &ev))
		;
}

static inline const char *t_reason(unsigned int r)
{
	static const char *names[] = {
		"0?", "UNMAP", "CLEAR", "PROTECTION_VMA", "PROTECTION_PAGE",
		"SOFT_DIRTY", "RELEASE", "MIGRATE", "EXCLUSIVE",
	};

	if (r < sizeof(names) / sizeof(names[0]))
		return names[r];
	if (r == MRC_REASON_PRESSURE)
		return "PRESSURE";
	return "UNKNOWN";
}

/* Pop exactly one event and check every field we can predict. */
static inline void mrct_expect(struct mrct *t, uint32_t id, uint64_t cookie,
			       unsigned int reason, const void *start,
			       const void *end)
{
	struct mrc_event ev;

	CHECK(mrct_pop(t, &ev), "no event in the ring (wanted %s on id %u)",
	      t_reason(reason), id);
	CHECK(ev.id == id && ev.cookie == cookie,
	      "event id %u cookie %llu, wanted id %u cookie %llu", ev.id,
	      (unsigned long long)ev.cookie, id, (unsigned long long)cookie);
	CHECK(ev.reason == reason, "reason %s, wanted %s", t_reason(ev.reason),
	      t_reason(reason));
	CHECK(ev.start == (uintptr_t)start && ev.end == (uintptr_t)end,
	      "range [%#llx,%#llx), wanted [%p,%p)",
	      (unsigned long long)ev.start, (unsigned long long)ev.end, start,
	      end);
	CHECK(ev.flags == 0, "flags %#x", ev.flags);
}

static inline void mrct_expect_empty(struct mrct *t, const char *what)
{
	struct mrc_event ev;

	if (mrct_pop(t, &ev))
		CHECK(0, "%s: unexpected %s event id %u [%#llx,%#llx)", what,
		      t_reason(ev.reason), ev.id, (unsigned long long)ev.start,
		      (unsigned long long)ev.end);
}

/* Anonymous memory, touched so page tables exist. */
static inline char *t_anon(size_t len)
{
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK(p != MAP_FAILED, "mmap %zu: %s", len, strerror(errno));
	memset(p, 0x5a, len);
	return p;
}

/* Like t_anon(), with one PROT_NONE guard page of our own on each side. */
static inline char *t_anon_guarded(size_t len)
{
	long pg = t_page();
	char *g = mmap(NULL, len + 2 * pg, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *p;

	CHECK(g != MAP_FAILED, "mmap guard: %s", strerror(errno));
	p = mmap(g + pg, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	CHECK(p == g + pg, "mmap fixed: %s", strerror(errno));
	memset(p, 0x5a, len);
	return p;
}

/* The number in sysfs file @path, or -1. */
static inline long t_read_long(const char *path)
{
	long v = -1;
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

/* A module counter from /sys/class/misc/mrcache/stats/NAME, or -1. */
static inline long t_stat(const char *name)
{
	char path[256];

	snprintf(path, sizeof(path), "/sys/class/misc/mrcache/stats/%s", name);
	return t_read_long(path);
}

/* A module parameter from /sys/module/mrcache/parameters/NAME, or -1. */
static inline long t_param(const char *name)
{
	char path[256];

	snprintf(path, sizeof(path), "/sys/module/mrcache/parameters/%s",
		 name);
	return t_read_long(path);
}

/*
 * In a forked child: the first candidate of the OOM killer, allocating
 * and touching @chunk bytes at a time until it is killed (or, when mmap
 * fails, waiting to be). The content is incompressible-ish, so zram has
 * work to do.
 */
static inline void t_hog_forever(size_t chunk)
{
	FILE *f = fopen("/proc/self/oom_score_adj", "w");

	if (f) {
		fputs("1000", f);
		fclose(f);
	}
	for (;;) {
		char *p = mmap(NULL, chunk, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED)
			pause();
		for (size_t i = 0; i < chunk; i += 4096)
			*(uint64_t *)(p + i) = i * 0x9e3779b97f4a7c15ULL;
	}
}

/*
 * A module parameter, or @dflt where the module has no such parameter:
 * run against a module without per-user limits, a test then fails on
 * what the module does, not on a missing file.
 */
static inline long t_param_or(const char *name, long dflt)
{
	long v = t_param(name);

	return v < 0 ? dflt : v;
}

/* The user every per-user test runs its unprivileged side as. */
#define T_NOBODY 65534
/* Another unprivileged user, to show that limits are per user. */
#define T_OTHER 12345

/*
 * Fork a child that drops to @uid (and gid) and returns fn(arg) as its
 * exit status.  The tests that use this run as root (they do in the VM);
 * not being root is a failure, never a skip, so they cannot pass by not
 * running.
 */
static inline pid_t t_as_user(uid_t uid, int (*fn)(void *), void *arg)
{
	pid_t pid;

	CHECK(geteuid() == 0, "needs root to switch users (the VM runs "
	      "tests as root)");
	/* What the udev rule does; the VM has no udev. */
	CHECK(!chmod(MRC_DEVICE_PATH, 0666), "chmod %s: %s", MRC_DEVICE_PATH,
	      strerror(errno));
	pid = fork();
	CHECK(pid >= 0, "fork: %s", strerror(errno));
	if (pid)
		return pid;
	/* A failing parent must not leave children holding files. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (setgroups(0, NULL) || setgid(uid) || setuid(uid)) {
		fprintf(stderr, "%s: setuid %u: %s\n", t_name, uid,
			strerror(errno));
		_exit(T_FAIL);
	}
	_exit(fn(arg));
}

/* Wait for a child of t_as_user() and check that it passed. */
static inline void t_reap(pid_t pid, const char *what)
{
	int st;

	CHECK(waitpid(pid, &st, 0) == pid, "waitpid %s", what);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == T_PASS,
	      "%s: child status %#x", what, st);
}

/* One byte through a pipe: the handshakes between a test's processes. */
static inline void t_signal(int fd)
{
	CHECK(write(fd, "x", 1) == 1, "pipe write: %s", strerror(errno));
}

/* Wait for a byte from child @pid; fail at once if it dies instead. */
static inline void t_wait_child(int fd, pid_t pid)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int st;
	char c;

	while (poll(&pfd, 1, 100) == 0)
		CHECK(waitpid(pid, &st, WNOHANG) != pid,
		      "child %d ended with status %#x", (int)pid, st);
	CHECK(read(fd, &c, 1) == 1, "pipe read: %s", strerror(errno));
}

/* In a child: wait for a byte from the parent (it kills us if it dies). */
static inline void t_wait(int fd)
{
	char c;

	CHECK(read(fd, &c, 1) == 1, "pipe read: %s", strerror(errno));
}

/* Global counters that must be back to zero once every file is closed. */
static inline void t_expect_idle(void)
{
	static const char *names[] = {
		"files", "users", "watches", "ranges", "watched_pages",
		"pressure_pages", "ring_bytes",
	};
	unsigned int i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		CHECK(t_stat(names[i]) == 0, "stats/%s is %ld with no file open",
		      names[i], t_stat(names[i]));
}

/*
 * How much longer than the CI default the hostile-user-space tests
 * (t_fuzz, t_scribble, t_concurrent) run: MRCACHE_KFUZZ_SCALE, default 1.
 */
static inline long t_scale(void)
{
	const char *s = getenv("MRCACHE_KFUZZ_SCALE");
	long v = s && *s ? strtol(s, NULL, 0) : 1;

	return v > 0 ? v : 1;
}

/* xorshift64: reproducible pseudo-random numbers for the fuzzing tests. */
static uint64_t t_rng_state = 12345;

static inline uint64_t t_rnd(void)
{
	t_rng_state ^= t_rng_state << 13;
	t_rng_state ^= t_rng_state >> 7;
	t_rng_state ^= t_rng_state << 17;
	return t_rng_state;
}

/* Seed t_rnd() with MRCACHE_FUZZ_SEED, or @dflt; log it for a rerun. */
static inline void t_seed(uint64_t dflt)
{
	const char *s = getenv("MRCACHE_FUZZ_SEED");

	t_rng_state = s && *s ? strtoull(s, NULL, 0) | 1 : dflt;
	T_LOG("seed %#llx (MRCACHE_FUZZ_SEED), scale %ld "
	      "(MRCACHE_KFUZZ_SCALE)", (unsigned long long)t_rng_state,
	      t_scale());
}

/* Reclaim slab objects, which runs every shrinker (root only); 0 or -1. */
static inline int t_drop_slab(void)
{
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
	int ok;

	if (fd < 0)
		return -1;
	ok = write(fd, "2", 1) == 1;
	close(fd);
	return ok ? 0 : -1;
}

static inline double t_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

#endif /* MRC_TEST_H */
