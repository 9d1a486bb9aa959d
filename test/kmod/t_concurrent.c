// SPDX-License-Identifier: GPL-2.0
/*
 * Requests raced against munmap, close, fork and exit.
 *
 * Each round forks a worker process that sets up one file and starts
 *  - 3 threads hammering WATCH / UNWATCH / QUERY / REARM on it with ids
 *    and ranges that collide, some of the argument structs in a page of
 *    a memfd that is mapped read-only (so WATCH's answer cannot be
 *    copied out and the watch must be undone) that another thread keeps
 *    making inaccessible and readable again;
 *  - a thread that unmaps and maps again the watched ranges, unmaps and
 *    maps again the ring itself, and churns that argument page;
 *  - a thread polling and reading the file;
 *  - a thread that forks children, each of which tries the file (EPERM)
 *    and exits;
 * (first, in the rounds that close: 100 duels of two threads unwatching,
 * or unwatching and querying, one watch at the same moment; exactly one
 * UNWATCH must win) and then, by round: closes the fd while the others run and exits
 * normally, calls exit_group() while they are in the middle of requests,
 * or is killed with SIGKILL by the test.
 *
 * Every request's result is checked: only the errors its arguments and
 * the state allow (EBADF once the fd is closed, EFAULT only for the
 * memfd page, EINVAL only for ids beyond watch_slots, ...), and a watch
 * slot's generation never goes back, across threads.  After every round
 * the module's counters (files, users, watches, ranges, watched_pages,
 * pressure_pages, ring_bytes) are back where they started: nothing
 * leaked.  The VM runner fails the run on any kernel WARNING or BUG.
 * Rounds: 6 x MRCACHE_KFUZZ_SCALE, 300 ms each; seed MRCACHE_FUZZ_SEED.
 */
#include "mrc_test.h"
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>

#define SLOTS 48
#define AREA_PAGES 32
#define HAMMERS 3
#define STORM_MS 300

static const char *counters[] = {
	"files", "users", "watches", "ranges", "watched_pages",
	"pressure_pages", "ring_bytes",
};
#define NCOUNTERS (sizeof(counters) / sizeof(counters[0]))

static struct {
	int fd;
	struct mrc_api api;
	char *area;
	char *arg_rw;		/* memfd page, writable alias */
	char *arg_ro;		/* the same page, read-only; churned */
	int memfd;
	volatile int stop;
	volatile int closed;
	uint64_t maxgen[SLOTS];	/* highest generation seen per slot */
	long calls, ok, efault;
} S;
static long pg;

/* Per-thread xorshift: threads must not share t_rnd()'s state. */
static uint64_t trnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* A generation seen for slot @id must not be below what was seen before. */
static void gen_seen(uint32_t id, uint64_t floor, uint64_t gen, bool moved)
{
	uint64_t old;

	CHECK(gen > floor || (!moved && gen == floor),
	      "slot %u: generation %llu after %llu", id,
	      (unsigned long long)gen, (unsigned long long)floor);
	old = __atomic_load_n(&S.maxgen[id], __ATOMIC_RELAXED);
	while (old < gen && !__atomic_compare_exchange_n(&S.maxgen[id], &old,
				gen, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
}

/* Errors every request may return in this test, whatever it was. */
static bool common_error(int ret, bool in_memfd)
{
	return ret == -EBADF || (in_memfd && ret == -EFAULT) ||
	       ret == -ENOMEM;
}

static void do_watch(uint64_t *rs, struct mrc_watch *w, bool in_memfd)
{
	uint32_t first = trnd(rs) % AREA_PAGES;
	uint32_t n = 1 + trnd(rs) % 4;
	uint64_t floor[SLOTS];
	int ret;

	if (first + n > AREA_PAGES)
		first = AREA_PAGES - n;
	memset(w, 0, sizeof(*w));
	w->start = (uintptr_t)S.area + first * pg;
	w->length = n * pg;
	w->cookie = first;
	memcpy(floor, S.maxgen, sizeof(floor));
	ret = t_ioctl(S.fd, MRC_IOC_WATCH, in_memfd ? (void *)(S.arg_ro +
		      ((char *)w - S.arg_rw)) : w);
	if (!ret) {
		CHECK(w->id < SLOTS && w->start == (uintptr_t)S.area +
		      first * pg && w->length == (uint64_t)n * pg,
		      "WATCH answer");
		gen_seen(w->id, floor[w->id], w->generation, true);
		__atomic_add_fetch(&S.ok, 1, __ATOMIC_RELAXED);
		return;
	}
	CHECK(ret == -ENOSPC || common_error(ret, in_memfd),
	      "WATCH: %s", strerror(-ret));
}

/* UNWATCH, QUERY or REARM of a random id, valid or one past the slots. */
static void do_id_op(uint64_t *rs, void *buf, bool in_memfd)
{
	uint32_t id = trnd(rs) % (SLOTS + 4), op = trnd(rs) % 3;
	uint64_t floor = id < SLOTS ?
		__atomic_load_n(&S.maxgen[id], __ATOMIC_RELAXED) : 0;
	union {
		struct mrc_unwatch u;
		struct mrc_query q;
		struct mrc_rearm r;
	} *a = buf;
	static const unsigned long cmds[] = {
		MRC_IOC_UNWATCH, MRC_IOC_QUERY, MRC_IOC_REARM,
	};
	int ret;

	memset(a, 0, sizeof(*a));
	a->u.id = id;
	if (op == 2 && trnd(rs) % 2) {
		a->r.flags = MRC_REARM_EXPECT;
		a->r.expected = floor;
	}
	ret = t_ioctl(S.fd, cmds[op], in_memfd ? (void *)(S.arg_ro +
		      ((char *)buf - S.arg_rw)) : buf);
	if (common_error(ret, in_memfd))
		return;
	if (id >= SLOTS) {
		CHECK(ret == -EINVAL, "id %u beyond the slots: %d", id, ret);
		return;
	}
	CHECK(ret != -EINVAL, "op %u id %u: EINVAL", op, id);
	if (ret == -ENOENT)
		return;
	if (op == 2 && ret == -ESTALE)
		CHECK(a->r.flags & MRC_REARM_EXPECT, "ESTALE without EXPECT");
	else
		CHECK(!ret, "op %u id %u: %s", op, id, strerror(-ret));
	__atomic_add_fetch(&S.ok, 1, __ATOMIC_RELAXED);
	if (op == 0 || in_memfd)	/* UNWATCH, or no answer copied out */
		return;
	if (op == 1) {
		CHECK(a->q.id == id && a->q.length > 0 &&
		      (a->q.state == MRC_STATE_ARMED ||
		       a->q.state == MRC_STATE_INVALID), "QUERY answer");
		gen_seen(id, floor, a->q.generation, false);
	} else {
		gen_seen(id, floor, a->r.generation, false);
	}
}

static void *hammer(void *arg)
{
	uint64_t rs = 0x9e3779b97f4a7c15ULL * (1 + (uintptr_t)arg) ^ t_rng_state;
	char *mine = S.arg_rw + (uintptr_t)arg * 256;
	struct mrc_watch w;
	bool in_memfd;

	while (!S.stop) {
		in_memfd = trnd(&rs) % 8 == 0;
		if (trnd(&rs) % 2)
			do_watch(&rs, in_memfd ? (struct mrc_watch *)mine : &w,
				 in_memfd);
		else
			do_id_op(&rs, in_memfd ? mine : (void *)&w, in_memfd);
		__atomic_add_fetch(&S.calls, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void churn_area(uint64_t *rs)
{
	uint32_t first = trnd(rs) % AREA_PAGES, n = 1 + trnd(rs) % 4;
	char *p;

	if (first + n > AREA_PAGES)
		first = AREA_PAGES - n;
	p = S.area + first * pg;
	if (trnd(rs) % 2) {
		CHECK(!madvise(p, n * pg, MADV_DONTNEED), "madvise");
	} else {
		CHECK(mmap(p, n * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE |
			   MAP_ANONYMOUS | MAP_FIXED, -1, 0) == p, "remap");
		p[0] = 1;
	}
}

/* Unmap the ring and map it again (EBADF once the fd is closed). */
static void churn_ring(void **ring)
{
	void *m;

	if (*ring)
		CHECK(!munmap(*ring, S.api.mmap_length), "munmap ring");
	*ring = NULL;
	m = mmap(NULL, S.api.mmap_length, PROT_READ | PROT_WRITE, MAP_SHARED,
		 S.fd, 0);
	if (m == MAP_FAILED) {
		CHECK(errno == EBADF, "mmap ring: %s", strerror(errno));
		return;
	}
	*ring = m;
}

/* The read-only view of the argument page comes and goes. */
static void churn_arg_page(uint64_t *rs)
{
	CHECK(!mprotect(S.arg_ro, pg, trnd(rs) % 2 ? PROT_READ : PROT_NONE),
	      "mprotect arg page: %s", strerror(errno));
}

static void *mapper(void *arg)
{
	uint64_t rs = 0xabcdef ^ t_rng_state;
	void *ring = arg;

	while (!S.stop) {
		churn_area(&rs);
		if (trnd(&rs) % 4 == 0)
			churn_ring(&ring);
		if (trnd(&rs) % 4 == 0)
			churn_arg_page(&rs);
	}
	if (ring)
		munmap(ring, S.api.mmap_length);
	return NULL;
}

static void *poller(void *arg)
{
	struct pollfd pfd = { .fd = S.fd, .events = POLLIN };
	struct mrc_read_info info;
	ssize_t r;

	(void)arg;
	while (!S.stop) {
		if (poll(&pfd, 1, 5) < 0)
			continue;
		if (pfd.revents & POLLNVAL)
			break;
		r = read(S.fd, &info, sizeof(info));
		CHECK(r == (ssize_t)sizeof(info) || errno == EAGAIN ||
		      errno == EBADF, "read: %s", strerror(errno));
	}
	return NULL;
}

/* A forked child shares nothing: EPERM (EBADF once closed), then exit. */
static void *forker(void *arg)
{
	struct mrc_query q = { .id = 0 };
	int st, ret;
	pid_t pid;

	(void)arg;
	while (!S.stop) {
		pid = fork();
		CHECK(pid >= 0, "fork: %s", strerror(errno));
		if (!pid) {
			ret = t_ioctl(S.fd, MRC_IOC_QUERY, &q);
			_exit(ret == -EPERM || ret == -EBADF ? 0 : 1);
		}
		CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
		      WEXITSTATUS(st) == 0, "forked child: status %#x", st);
		usleep(10000);
	}
	return NULL;
}

static void setup_worker(void)
{
	int ret;

	S.fd = t_open_dev();
	t_api_init(&S.api, 16, SLOTS, MRC_FEAT_PRESSURE);
	ret = t_ioctl(S.fd, MRC_IOC_API, &S.api);
	CHECK(!ret, "setup: %s", strerror(-ret));
	S.area = t_anon(AREA_PAGES * pg);
	S.memfd = memfd_create("t_concurrent", MFD_CLOEXEC);
	CHECK(S.memfd >= 0 && !ftruncate(S.memfd, pg), "memfd");
	S.arg_rw = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_SHARED,
			S.memfd, 0);
	S.arg_ro = mmap(NULL, pg, PROT_READ, MAP_SHARED, S.memfd, 0);
	CHECK(S.arg_rw != MAP_FAILED && S.arg_ro != MAP_FAILED, "memfd map");
}

/*
 * Two threads UNWATCH (or one UNWATCHes, one QUERYs) the same watch at
 * the same moment: exactly one UNWATCH succeeds, the other sees ENOENT,
 * a QUERY sees the watch whole or ENOENT.
 */
#define DUELS 100

static struct {
	uint32_t id;
	int go;			/* duel number the duelists may start */
	int done;		/* duelists finished with this duel */
	int ret[2];
} D;

/* Spin, not sleep, to the start line: both must be in the kernel at once. */
static void *duelist(void *arg)
{
	uintptr_t me = (uintptr_t)arg;
	struct mrc_unwatch u = { 0 };
	struct mrc_query q;
	int i;

	for (i = 1; i <= DUELS; i++) {
		while (__atomic_load_n(&D.go, __ATOMIC_ACQUIRE) != i)
			;
		u.id = D.id;
		if (me == 1 && i % 2) {
			D.ret[me] = mrct_query(&(struct mrct){ .fd = S.fd },
					       u.id, &q);
			CHECK(D.ret[me] == -ENOENT || (!D.ret[me] &&
			      q.length == (uint64_t)pg), "racing QUERY: %d",
			      D.ret[me]);
			D.ret[me] = -ENOENT;	/* not an UNWATCH */
		} else {
			D.ret[me] = t_ioctl(S.fd, MRC_IOC_UNWATCH, &u);
		}
		__atomic_add_fetch(&D.done, 1, __ATOMIC_RELEASE);
	}
	return NULL;
}

static void duel(void)
{
	pthread_t th[2];
	uint64_t gen;
	uint32_t id;
	int i;

	for (i = 0; i < 2; i++)
		CHECK(!pthread_create(&th[i], NULL, duelist,
				      (void *)(uintptr_t)i), "thread");
	for (i = 1; i <= DUELS; i++) {
		CHECK(!mrct_watch(&(struct mrct){ .fd = S.fd }, S.area, pg, i,
				  &id, &gen), "duel watch");
		D.id = id;
		__atomic_store_n(&D.done, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&D.go, i, __ATOMIC_RELEASE);
		while (__atomic_load_n(&D.done, __ATOMIC_ACQUIRE) != 2)
			sched_yield();
		CHECK((D.ret[0] == 0) + (D.ret[1] == 0) == 1 &&
		      (D.ret[0] == -ENOENT || D.ret[1] == -ENOENT),
		      "duel %d: the racing UNWATCHes returned %d and %d", i,
		      D.ret[0], D.ret[1]);
	}
	for (i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
}

enum ending { END_CLOSE, END_EXIT, END_KILLED };

/* The worker process: storm, then end as @how says. */
static int worker(enum ending how)
{
	pthread_t th[HAMMERS + 3];
	void *ring;
	int i, n = 0;

	setup_worker();
	if (how == END_CLOSE)
		duel();
	ring = mmap(NULL, S.api.mmap_length, PROT_READ | PROT_WRITE,
		    MAP_SHARED, S.fd, 0);
	CHECK(ring != MAP_FAILED, "mmap ring");
	for (i = 0; i < HAMMERS; i++)
		CHECK(!pthread_create(&th[n++], NULL, hammer,
				      (void *)(uintptr_t)i), "thread");
	CHECK(!pthread_create(&th[n++], NULL, mapper, ring), "thread");
	CHECK(!pthread_create(&th[n++], NULL, poller, NULL), "thread");
	CHECK(!pthread_create(&th[n++], NULL, forker, NULL), "thread");
	usleep(STORM_MS * 1000 / 2);
	if (how == END_CLOSE) {
		/* Nothing in this process opens a file from here on. */
		CHECK(!close(S.fd), "close");
		usleep(STORM_MS * 1000 / 2);
		S.stop = 1;
		for (i = 0; i < n; i++)
			pthread_join(th[i], NULL);
		T_LOG("worker: %ld requests, %ld succeeded", S.calls, S.ok);
		return T_PASS;
	}
	if (how == END_EXIT)
		syscall(SYS_exit_group, T_PASS);
	pause();	/* END_KILLED */
	return T_FAIL;
}

static void read_counters(long *v)
{
	unsigned int i;

	for (i = 0; i < NCOUNTERS; i++)
		v[i] = t_stat(counters[i]);
}

static void expect_counters(const long *base, const char *what)
{
	long now[NCOUNTERS];
	unsigned int i;

	read_counters(now);
	for (i = 0; i < NCOUNTERS; i++)
		CHECK(now[i] == base[i], "%s: stats/%s is %ld, was %ld", what,
		      counters[i], now[i], base[i]);
}

static void round_once(long n, const long *base)
{
	static const char *names[] = { "close", "exit_group", "SIGKILL" };
	enum ending how = n % 3;
	int st;
	pid_t pid, w;

	pid = fork();
	CHECK(pid >= 0, "fork");
	if (!pid) {
		t_rng_state ^= (uint64_t)n * 0x2545f4914f6cdd1dULL;
		_exit(worker(how));
	}
	if (how == END_KILLED) {
		usleep(STORM_MS * 1000);
		kill(pid, SIGKILL);
	}
	CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
	if (how == END_KILLED)
		CHECK((WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) ||
		      (WIFEXITED(st) && WEXITSTATUS(st) == 0),
		      "round %ld (%s): worker status %#x", n, names[how], st);
	else
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		      "round %ld (%s): worker status %#x", n, names[how], st);
	/* Forked grandchildren orphaned by the worker come to us. */
	while ((w = waitpid(-1, &st, 0)) > 0)
		;
	expect_counters(base, names[how]);
}

int main(void)
{
	long base[NCOUNTERS], n, rounds;
	int fd;

	t_name = "t_concurrent";
	pg = t_page();
	t_seed(0xc0c0);
	rounds = 6 * t_scale();
	fd = t_open_dev();
	close(fd);
	read_counters(base);
	CHECK(base[0] >= 0, "no stats in sysfs (not root?)");
	CHECK(!prctl(PR_SET_CHILD_SUBREAPER, 1), "subreaper");
	for (n = 0; n < rounds; n++)
		round_once(n, base);
	T_LOG("PASS (%ld rounds)", rounds);
	return T_PASS;
}
