// SPDX-License-Identifier: BSD-2-Clause
/*
 * preload_app: an RDMA program that knows nothing of mrcache (linked only
 * against libibverbs) and registers around every transfer, for
 * test/preload.sh to run with and without libmrcache-preload.so.
 *
 *   preload_app reuse  MESSAGES WORKING_SET SIZE
 *       buffers allocated once and each sent once untimed; then message i
 *       uses buffer i % WORKING_SET
 *   preload_app free   MESSAGES SIZE
 *       malloc() a source buffer per message, free() it after
 *   preload_app munmap MESSAGES SIZE
 *       mmap() source and target per message, munmap() both after; the
 *       target is registered per message too (remote write)
 *   preload_app churn ROUNDS SET SIZE
 *       each round malloc() SET buffers, a message from each, free() all
 *   preload_app static MESSAGES WORKING_SET SIZE
 *       the baseline: reuse's buffers, each registered once before the
 *       first message and deregistered after the last
 *   (reuse, churn and static print the median time per message, and the
 *   median part of it spent inside ibv_reg_mr and ibv_dereg_mr)
 *   preload_app rereg SIZE | badinput SIZE | double SIZE
 *       ibv_rereg_mr() cases, bad input, an MR deregistered twice: each
 *       call's result printed, for the script to compare runs
 *   preload_app threads THREADS ROUNDS SIZE [race]
 *       registrations from several threads at once, a PD made and
 *       deallocated beside them (preload_threads.c), then reuse's
 *       messages; race: two threads deregister the same MRs at once (only
 *       under the preload: without it that is a double free)
 *   preload_app fork SIZE safe|unsafe
 *       one message, then fork(); VmPin before and after, and how a
 *       registration in the child went (safe: ibv_fork_init() first)
 *   preload_app idle SIZE MS
 *       one message from a SIZE buffer, then sleep MS milliseconds and
 *       print the process's pinned memory (VmPin) before and after: the
 *       buffer stays allocated, so only an idle bound can unpin it
 *
 * Each message: fill the source with a pattern of its own, register it
 * (local access), RDMA WRITE it into the target, check every byte the
 * application sees in the target, deregister. Exit 0 when every byte
 * arrived, 1 on a wrong byte or an error, 77 without an RDMA device.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <time.h>

#include "preload_threads.h"
#include "rdma_pair.h"
#include "vm_pin.h"

static struct rdma_pair pair;
static double reg_us;		/* time inside ibv_reg_mr + ibv_dereg_mr */

static uint8_t pattern(unsigned long msg, size_t j)
{
	return (uint8_t)(msg * 131 + j * 7 + (j >> 12) + 1);
}

static int check(const uint8_t *dst, size_t size, unsigned long msg)
{
	for (size_t j = 0; j < size; j++) {
		if (dst[j] != pattern(msg, j)) {
			fprintf(stderr, "preload_app: message %lu: byte %zu is %#x, sent %#x\n",
				msg, j, dst[j], pattern(msg, j));
			return 1;
		}
	}
	return 0;
}

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* Write message @msg from @src (@lkey) into @dst (@rkey), check every byte. */
static int write_check(uint8_t *src, uint32_t lkey, uint8_t *dst,
		       uint32_t rkey, size_t size, unsigned long msg)
{
	for (size_t j = 0; j < size; j++)
		src[j] = pattern(msg, j);
	memset(dst, 0, size);
	if (rdma_pair_write(&pair, src, size, lkey, (uintptr_t)dst, rkey)) {
		fprintf(stderr, "preload_app: %s\n", rdma_pair_error(&pair));
		return 1;
	}
	return check(dst, size, msg);
}

/* One message from @src into @dst (whose rkey is @rkey). */
static int transfer(uint8_t *src, uint8_t *dst, uint32_t rkey, size_t size,
		    unsigned long msg)
{
	double start = now_us();
	struct ibv_mr *mr;
	int ret;

	mr = ibv_reg_mr(pair.pd, src, size, IBV_ACCESS_LOCAL_WRITE);
	reg_us += now_us() - start;
	if (!mr) {
		fprintf(stderr, "preload_app: ibv_reg_mr: %s\n", strerror(errno));
		return 1;
	}
	if (mr->addr != src || mr->length != size || mr->pd != pair.pd) {
		fprintf(stderr, "preload_app: the MR says %p+%zu, registered %p+%zu\n",
			mr->addr, mr->length, (void *)src, size);
		return 1;
	}
	ret = write_check(src, mr->lkey, dst, rkey, size, msg);
	start = now_us();
	if (ibv_dereg_mr(mr)) {
		fprintf(stderr, "preload_app: ibv_dereg_mr failed\n");
		return 1;
	}
	reg_us += now_us() - start;
	return ret;
}

static struct ibv_mr *target(void *buf, size_t size)
{
	struct ibv_mr *mr = ibv_reg_mr(pair.pd, buf, size,
				       IBV_ACCESS_LOCAL_WRITE |
				       IBV_ACCESS_REMOTE_WRITE);

	if (!mr)
		fprintf(stderr, "preload_app: ibv_reg_mr(target): %s\n",
			strerror(errno));
	return mr;
}

/*
 * Each timed message's time and the part inside ibv_reg_mr + ibv_dereg_mr:
 * medians, because a VM's vCPU descheduled for milliseconds lands in
 * whichever message was running (means are printed too).
 */
#define MAX_TIMED 100000
static double msg_total[MAX_TIMED], msg_reg[MAX_TIMED];
static unsigned long timed;
static double msg_start, msg_reg_start;

static void message_start(void)
{
	msg_start = now_us();
	msg_reg_start = reg_us;
}

static void message_end(void)
{
	if (timed == MAX_TIMED)
		return;
	msg_total[timed] = now_us() - msg_start;
	msg_reg[timed] = reg_us - msg_reg_start;
	timed++;
}

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double mean_and_median(double *v, unsigned long n, double *median)
{
	double sum = 0;

	for (unsigned long i = 0; i < n; i++)
		sum += v[i];
	qsort(v, n, sizeof(*v), by_value);
	*median = n ? v[n / 2] : 0;
	return n ? sum / (double)n : 0;
}

static void per_message(const char *what, size_t size)
{
	double total, reg, total_mean, reg_mean;

	total_mean = mean_and_median(msg_total, timed, &total);
	reg_mean = mean_and_median(msg_reg, timed, &reg);
	printf("preload_app: %s: %lu messages of %zu bytes, %.1f us per message, %.2f us of it registering (medians; means %.1f, %.2f)\n",
	       what, timed, size, total, reg, total_mean, reg_mean);
}

/* One untimed pass over the working set first: reuse is the steady state. */
static int run_reuse(unsigned long n, unsigned long ws, size_t size)
{
	uint8_t **bufs = calloc(ws, sizeof(*bufs));
	uint8_t *dst = malloc(size);
	struct ibv_mr *tmr = dst ? target(dst, size) : NULL;
	int ret = !bufs || !tmr;

	for (unsigned long i = 0; i < ws && !ret; i++)
		ret = !(bufs[i] = malloc(size)) ||
		      transfer(bufs[i], dst, tmr->rkey, size, i);
	for (unsigned long i = 0; i < n && !ret; i++) {
		message_start();
		ret = transfer(bufs[i % ws], dst, tmr->rkey, size, i);
		message_end();
	}
	per_message("reuse", size);
	if (tmr)
		ibv_dereg_mr(tmr);
	for (unsigned long i = 0; bufs && i < ws; i++)
		free(bufs[i]);
	free(bufs);
	free(dst);
	return ret;
}

static int run_free(unsigned long n, size_t size)
{
	uint8_t *dst = malloc(size);
	struct ibv_mr *tmr = dst ? target(dst, size) : NULL;
	int ret = !tmr;

	for (unsigned long i = 0; i < n && !ret; i++) {
		uint8_t *src = malloc(size);

		ret = !src || transfer(src, dst, tmr->rkey, size, i);
		free(src);
	}
	if (tmr)
		ibv_dereg_mr(tmr);
	free(dst);
	return ret;
}

/*
 * Allocation churn: each round mallocs @ws buffers, sends one message
 * from each, and frees them all; whether the next round's buffers land on
 * pages still registered is the allocator's doing.
 */
static int run_churn(unsigned long rounds, unsigned long ws, size_t size)
{
	uint8_t **bufs = calloc(ws, sizeof(*bufs)), *dst = malloc(size);
	struct ibv_mr *tmr = dst ? target(dst, size) : NULL;
	unsigned long msg = 0;
	int ret = !bufs || !tmr;

	for (unsigned long r = 0; r < rounds && !ret; r++) {
		for (unsigned long i = 0; i < ws && !ret; i++) {
			message_start();
			ret = !(bufs[i] = malloc(size)) ||
			      transfer(bufs[i], dst, tmr->rkey, size, msg++);
			message_end();
		}
		for (unsigned long i = 0; i < ws; i++) {
			free(bufs[i]);
			bufs[i] = NULL;
		}
	}
	per_message("churn", size);
	if (tmr)
		ibv_dereg_mr(tmr);
	free(bufs);
	free(dst);
	return ret;
}

/* The baseline: reuse's working set, registered once outside the loop. */
static int run_static(unsigned long n, unsigned long ws, size_t size)
{
	uint8_t **bufs = calloc(ws, sizeof(*bufs)), *dst = malloc(size);
	struct ibv_mr **mrs = calloc(ws, sizeof(*mrs));
	struct ibv_mr *tmr = dst ? target(dst, size) : NULL;
	int ret = !bufs || !mrs || !tmr || !ws;

	for (unsigned long i = 0; i < ws && !ret; i++) {
		bufs[i] = malloc(size);
		mrs[i] = bufs[i] ? ibv_reg_mr(pair.pd, bufs[i], size,
					      IBV_ACCESS_LOCAL_WRITE) : NULL;
		ret = !mrs[i];
	}
	for (unsigned long i = 0; i < n && !ret; i++) {
		message_start();
		ret = write_check(bufs[i % ws], mrs[i % ws]->lkey, dst,
				  tmr->rkey, size, i);
		message_end();
	}
	per_message("static", size);
	for (unsigned long i = 0; mrs && i < ws; i++)
		if (mrs[i])
			ibv_dereg_mr(mrs[i]);
	if (tmr)
		ibv_dereg_mr(tmr);
	for (unsigned long i = 0; bufs && i < ws; i++)
		free(bufs[i]);
	free(bufs);
	free(mrs);
	free(dst);
	return ret;
}

static void *map(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static int run_munmap(unsigned long n, size_t size)
{
	int ret = 0;

	for (unsigned long i = 0; i < n && !ret; i++) {
		uint8_t *src = map(size), *dst = map(size);
		struct ibv_mr *tmr = dst ? target(dst, size) : NULL;

		ret = !src || !tmr || transfer(src, dst, tmr->rkey, size, i);
		if (tmr && ibv_dereg_mr(tmr))
			ret = 1;
		if (src)
			munmap(src, size);
		if (dst)
			munmap(dst, size);
	}
	return ret;
}

static int run_idle(size_t size, unsigned long ms)
{
	uint8_t *src = malloc(size), *dst = malloc(size);
	struct ibv_mr *tmr = dst ? target(dst, size) : NULL;
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000 };
	long before;
	int ret = !src || !tmr || transfer(src, dst, tmr->rkey, size, 0);

	if (tmr && ibv_dereg_mr(tmr))
		ret = 1;
	before = vm_pin_kib();
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
	printf("preload_app: idle: VmPin %ld kB after the deregistrations, %ld kB %lu ms later\n",
	       before, vm_pin_kib(), ms);
	free(src);
	free(dst);
	return ret;
}

/* Print one call's outcome in a form both runs (with, without) share. */
static void outcome(const char *what, int ret, int err)
{
	printf("preload_app: %s: %d errno %s\n", what, ret,
	       ret ? strerror(err) : "-");
}

/* A re-registration and, if it worked, a transfer through the MR. */
static int rereg_step(const char *what, struct ibv_mr *mr, int flags,
		      struct ibv_pd *pd, uint8_t *addr, size_t size, int access,
		      uint8_t *dst, uint32_t rkey, unsigned long msg)
{
	int ret;

	errno = 0;
	ret = ibv_rereg_mr(mr, flags, pd, addr, size, access);
	outcome(what, ret, errno);
	if (ret || pd != pair.pd)
		return 0;
	if ((flags & IBV_REREG_MR_CHANGE_TRANSLATION) &&
	    (mr->addr != addr || mr->length != size)) {
		fprintf(stderr, "preload_app: %s: the MR says %p+%zu\n", what,
			mr->addr, mr->length);
		return 1;
	}
	return write_check(mr->addr, mr->lkey, dst, rkey, size, msg);
}

static int run_rereg(size_t size)
{
	uint8_t *a = malloc(size), *b = malloc(size), *dst = malloc(size);
	struct ibv_mr *tmr = dst ? target(dst, size) : NULL;
	struct ibv_pd *pd2 = ibv_alloc_pd(pair.ctx);
	struct ibv_mr *mr = a ? ibv_reg_mr(pair.pd, a, size, IBV_ACCESS_LOCAL_WRITE) : NULL;
	const int lw = IBV_ACCESS_LOCAL_WRITE;
	int ret = !b || !tmr || !pd2 || !mr;

	ret = ret || rereg_step("rereg unknown flag", mr, 1 << 6, NULL, NULL, 0, 0, dst, 0, 0);
	ret = ret || rereg_step("rereg translation without address", mr,
				IBV_REREG_MR_CHANGE_TRANSLATION, NULL, NULL, 0, 0, dst, 0, 0);
	ret = ret || rereg_step("rereg access without CHANGE_ACCESS", mr,
				IBV_REREG_MR_CHANGE_PD, pd2, NULL, 0, lw, dst, 0, 0);
	ret = ret || rereg_step("rereg pd to a second pd", mr, IBV_REREG_MR_CHANGE_PD,
				pd2, NULL, 0, 0, dst, 0, 0);
	if (!ret && mr->pd == pd2)
		ret = rereg_step("rereg pd back", mr, IBV_REREG_MR_CHANGE_PD, pair.pd,
				 a, size, 0, dst, tmr->rkey, 1);
	ret = ret || rereg_step("rereg access", mr, IBV_REREG_MR_CHANGE_ACCESS, pair.pd,
				a, size, lw | IBV_ACCESS_REMOTE_READ, dst, tmr->rkey, 2);
	ret = ret || rereg_step("rereg translation", mr, IBV_REREG_MR_CHANGE_TRANSLATION,
				pair.pd, b, size, 0, dst, tmr->rkey, 3);
	if (mr && ibv_dereg_mr(mr))
		ret = 1;
	if (tmr)
		ibv_dereg_mr(tmr);
	if (pd2 && ibv_dealloc_pd(pd2))
		ret = 1;
	free(a);
	free(b);
	free(dst);
	return ret;
}

static int try_reg(const char *what, struct ibv_pd *pd, void *addr,
		   size_t size, int access, struct ibv_mr **mrp)
{
	struct ibv_mr *mr;

	errno = 0;
	mr = ibv_reg_mr(pd, addr, size, access);
	outcome(what, mr ? 0 : -1, errno);
	if (mrp)
		*mrp = mr;
	else if (mr)
		ibv_dereg_mr(mr);
	return 0;
}

/* Bad input the program gets the same answer to, with or without the preload. */
static int run_badinput(size_t size)
{
	uint8_t *gone = map(size), *ro = map(size), *buf = malloc(size);
	struct ibv_pd *pd2 = ibv_alloc_pd(pair.ctx);
	struct ibv_mr *mr = NULL;
	int ret = !gone || !ro || !buf || !pd2;

	if (ret)
		return 1;
	/*
	 * A registration first, so anything the preload maps for its cache
	 * (tables, the module's ring) exists before the hole below is made:
	 * mapped later it could land in the hole.
	 */
	try_reg("reg mapped, local write", pair.pd, buf, size, IBV_ACCESS_LOCAL_WRITE, NULL);
	munmap(gone, size);
	mprotect(ro, size, PROT_READ);
	try_reg("reg unmapped, local write", pair.pd, gone, size, IBV_ACCESS_LOCAL_WRITE, NULL);
	try_reg("reg read-only, local write", pair.pd, ro, size, IBV_ACCESS_LOCAL_WRITE, NULL);
	try_reg("reg read-only, read only", pair.pd, ro, size, 0, NULL);
	try_reg("reg on a second pd", pd2, buf, size, IBV_ACCESS_LOCAL_WRITE, &mr);
	ret = ibv_dealloc_pd(pd2);
	outcome("dealloc pd holding an MR", ret, ret);
	ret = mr ? ibv_dereg_mr(mr) : -1;
	outcome("dereg that MR", ret, ret);
	ret = ibv_dealloc_pd(pd2);
	outcome("dealloc pd after the dereg", ret, ret);
	munmap(ro, size);
	free(buf);
	return ret != 0;
}

/* An MR deregistered twice: the second call's answer (libibverbs reads freed memory). */
static int run_double(size_t size)
{
	uint8_t *buf = malloc(size);
	struct ibv_mr *mr = buf ? ibv_reg_mr(pair.pd, buf, size, IBV_ACCESS_LOCAL_WRITE) : NULL;
	int ret;

	if (!mr)
		return 1;
	ret = ibv_dereg_mr(mr);
	outcome("dereg once", ret, ret);
	fflush(stdout);
	ret = ibv_dereg_mr(mr);
	outcome("dereg twice", ret, ret);
	free(buf);
	return 0;
}

/*
 * One message (its registration cached and idle), then fork(): the
 * child registers a page of its own and says how that went; the parent
 * prints its pinned memory before and after. @safe: ibv_fork_init() first.
 */
static int run_fork(size_t size, int safe)
{
	uint8_t *src = malloc(size), *dst = malloc(size), page[4096];
	struct ibv_mr *tmr = dst ? target(dst, size) : NULL;
	int ret = !src || !tmr, status = 0;
	long before;
	pid_t pid;

	if (safe)
		outcome("ibv_fork_init", ibv_fork_init(), errno);
	ret = ret || transfer(src, dst, tmr->rkey, size, 0);
	before = vm_pin_kib();
	fflush(stdout);
	pid = ret ? -1 : fork();
	if (pid == 0) {
		struct ibv_mr *mr = ibv_reg_mr(pair.pd, page, sizeof(page), 0);

		outcome("child: reg", mr ? 0 : -1, errno);
		if (mr)
			outcome("child: dereg", ibv_dereg_mr(mr), errno);
		fflush(stdout);
		_exit(0);
	}
	if (pid > 0 && (waitpid(pid, &status, 0) != pid || status))
		ret = 1;
	printf("preload_app: fork: VmPin %ld kB before fork, %ld kB after\n",
	       before, vm_pin_kib());
	if (tmr)
		ibv_dereg_mr(tmr);
	free(src);
	free(dst);
	return ret || pid < 0;
}

static unsigned long arg(char **argv, int i)
{
	return strtoul(argv[i], NULL, 0);
}

static int m_reuse(char **a) { return run_reuse(arg(a, 2), arg(a, 3), arg(a, 4)); }
static int m_free(char **a) { return run_free(arg(a, 2), arg(a, 3)); }
static int m_munmap(char **a) { return run_munmap(arg(a, 2), arg(a, 3)); }
static int m_idle(char **a) { return run_idle(arg(a, 2), arg(a, 3)); }
static int m_churn(char **a) { return run_churn(arg(a, 2), arg(a, 3), arg(a, 4)); }
static int m_static(char **a) { return run_static(arg(a, 2), arg(a, 3), arg(a, 4)); }
static int m_rereg(char **a) { return run_rereg(arg(a, 2)); }
static int m_badinput(char **a) { return run_badinput(arg(a, 2)); }
static int m_double(char **a) { return run_double(arg(a, 2)); }
static int m_fork(char **a) { return run_fork(arg(a, 2), !strcmp(a[3], "safe")); }

/* Then messages through the caches the threads used. */
static int m_threads(char **a)
{
	int race = a[5] && !strcmp(a[5], "race");

	return preload_threads(pair.ctx, pair.pd, (unsigned int)arg(a, 2),
			       arg(a, 3), arg(a, 4), race) ||
	       run_reuse(8, 2, arg(a, 4));
}

static const struct mode {
	const char *name;
	int argc;
	int (*run)(char **argv);
	const char *usage;
} modes[] = {
	{ "reuse", 5, m_reuse, "MESSAGES WORKING_SET SIZE" },
	{ "free", 4, m_free, "MESSAGES SIZE" },
	{ "munmap", 4, m_munmap, "MESSAGES SIZE" },
	{ "idle", 4, m_idle, "SIZE MS" },
	{ "churn", 5, m_churn, "ROUNDS SET SIZE" },
	{ "static", 5, m_static, "MESSAGES WORKING_SET SIZE" },
	{ "rereg", 3, m_rereg, "SIZE" },
	{ "badinput", 3, m_badinput, "SIZE" },
	{ "double", 3, m_double, "SIZE" },
	{ "fork", 4, m_fork, "SIZE safe|unsafe" },
	{ "threads", 5, m_threads, "THREADS ROUNDS SIZE" },
	{ "threads", 6, m_threads, "THREADS ROUNDS SIZE race" },
};

static int run(int argc, char **argv)
{
	const size_t n = sizeof(modes) / sizeof(modes[0]);

	for (size_t i = 0; i < n; i++)
		if (argc == modes[i].argc && !strcmp(argv[1], modes[i].name))
			return modes[i].run(argv);
	fprintf(stderr, "usage:\n");
	for (size_t i = 0; i < n; i++)
		fprintf(stderr, "  preload_app %s %s\n", modes[i].name, modes[i].usage);
	return 2;
}

int main(int argc, char **argv)
{
	int ret = rdma_pair_open(&pair);

	if (ret == -ENODEV) {
		fprintf(stderr, "preload_app: SKIP: %s\n", rdma_pair_error(&pair));
		return 77;
	}
	if (ret) {
		fprintf(stderr, "preload_app: %s\n", rdma_pair_error(&pair));
		return 1;
	}
	ret = run(argc, argv);
	rdma_pair_close(&pair);
	if (!ret)
		printf("preload_app: %s: every byte arrived\n", argv[1]);
	return ret;
}
