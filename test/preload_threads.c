// SPDX-License-Identifier: BSD-2-Clause
/*
 * preload_app threads: what the preload's lock-free hit path must stand.
 * Workers register and deregister at once, on buffers of their own and
 * one they all share (one cached registration, many references); half of
 * each worker's MRs go through a mailbox and are deregistered by another
 * worker (a copy recycled by another thread than the one that took it).
 * Meanwhile a churner allocates a PD, registers on it and deallocates it
 * (a cache made and destroyed while the workers look theirs up). With
 * race, two threads then deregister the same MRs at once: each MR must be
 * deregistered exactly once (0) and refused once (EINVAL), which needs
 * the preload (without it the second call is a double free).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "preload_threads.h"

#define OWN 4		/* buffers of each worker */
#define RACE_MRS 64
#define RACE_ROUNDS 200
#define MAILBOX 8
#define CHURN_PDS 8
#define MIN_CHURNED (8 * CHURN_PDS)	/* makes and deallocations */

static struct {
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	size_t size;
	unsigned long rounds;
	uint8_t *shared;
	pthread_mutex_t lock;	/* the mailbox */
	struct ibv_mr *mailbox[MAILBOX];
	unsigned int mailed, next_mail;
	int stop;		/* the workers are done: the churner stops */
	unsigned long churned;	/* PDs made or deallocated */
	int failed;
	struct ibv_mr *race[RACE_MRS];
	int race_ok[RACE_MRS], race_einval[RACE_MRS];
	pthread_barrier_t race_start, race_end;
} t;

static void *fail(const char *what, int err)
{
	fprintf(stderr, "preload_app: threads: %s: %d\n", what, err);
	__atomic_store_n(&t.failed, 1, __ATOMIC_RELAXED);
	return NULL;
}

static struct ibv_mr *reg(struct ibv_pd *pd, uint8_t *buf)
{
	struct ibv_mr *mr = ibv_reg_mr(pd, buf, t.size, IBV_ACCESS_LOCAL_WRITE);

	if (!mr)
		return fail("ibv_reg_mr", errno);
	if (mr->addr != buf || mr->length != t.size || mr->pd != pd || !mr->lkey)
		return fail("an MR with the wrong addr, length, pd or lkey", 0);
	return mr;
}

static void dereg(struct ibv_mr *mr)
{
	int ret = ibv_dereg_mr(mr);

	if (ret)
		fail("ibv_dereg_mr", ret);
}

/* Post @mr for another worker; take one posted earlier (maybe ours). */
static struct ibv_mr *swap_mail(struct ibv_mr *mr)
{
	struct ibv_mr *got = NULL;
	unsigned int i;

	pthread_mutex_lock(&t.lock);
	if (t.mailed < MAILBOX) {
		t.mailbox[t.mailed++] = mr;
	} else {
		i = t.next_mail++ % MAILBOX;
		got = t.mailbox[i];
		t.mailbox[i] = mr;
	}
	pthread_mutex_unlock(&t.lock);
	return got;
}

/* Round @r of a worker: until the churner went round its PDs a few times too. */
static int more(unsigned long r)
{
	if (__atomic_load_n(&t.failed, __ATOMIC_RELAXED))
		return 0;
	return r < t.rounds ||
	       __atomic_load_n(&t.churned, __ATOMIC_RELAXED) < MIN_CHURNED;
}

static void *worker(void *arg)
{
	uint8_t *own[OWN];
	struct ibv_mr *mr, *got;

	(void)arg;
	for (int i = 0; i < OWN; i++)
		if (!(own[i] = malloc(t.size)))
			return fail("malloc", ENOMEM);
	for (unsigned long r = 0; more(r); r++) {
		mr = reg(t.pd, own[r % OWN]);
		if (mr)
			dereg(mr);
		mr = reg(t.pd, r & 1 ? t.shared : own[(r + 1) % OWN]);
		got = mr ? swap_mail(mr) : NULL;
		if (got)
			dereg(got);
	}
	for (int i = 0; i < OWN; i++)
		free(own[i]);
	return NULL;
}

/* One PD of the churner's: made, registered on, deallocated. */
static int churn_pd(struct ibv_pd **pd, uint8_t *buf)
{
	struct ibv_mr *mr;
	int ret;

	if (!*pd) {
		*pd = ibv_alloc_pd(t.ctx);
		if (!*pd)
			return fail("ibv_alloc_pd", errno), 1;
		for (int i = 0; i < 4 && (mr = reg(*pd, buf)); i++)
			dereg(mr);
		return 0;
	}
	ret = ibv_dealloc_pd(*pd);
	*pd = NULL;
	if (ret)
		fail("ibv_dealloc_pd", ret);
	return ret != 0;
}

/*
 * CHURN_PDS PDs made, used and deallocated in turn, over and over, beside
 * the workers: their caches go in and out of the preload's index, some
 * into the slot the workers' cache is in.
 */
static void *churner(void *arg)
{
	struct ibv_pd *pd[CHURN_PDS] = { NULL };
	uint8_t *buf = malloc(t.size);
	unsigned int i = 0;

	(void)arg;
	while (buf && !__atomic_load_n(&t.stop, __ATOMIC_ACQUIRE) &&
	       !churn_pd(&pd[i++ % CHURN_PDS], buf))
		__atomic_fetch_add(&t.churned, 1, __ATOMIC_RELAXED);
	for (i = 0; i < CHURN_PDS; i++)
		if (pd[i])
			churn_pd(&pd[i], buf);
	free(buf);
	return NULL;
}

static void *racer(void *arg)
{
	(void)arg;
	for (int r = 0; r < RACE_ROUNDS; r++) {
		pthread_barrier_wait(&t.race_start);
		for (int i = 0; i < RACE_MRS; i++) {
			int ret = ibv_dereg_mr(t.race[i]);

			if (!ret)
				__atomic_fetch_add(&t.race_ok[i], 1, __ATOMIC_RELAXED);
			else if (ret == EINVAL)
				__atomic_fetch_add(&t.race_einval[i], 1, __ATOMIC_RELAXED);
		}
		pthread_barrier_wait(&t.race_end);
	}
	return NULL;
}

/* One round: RACE_MRS MRs of one buffer, let go; those not deregistered once. */
static int race_round(uint8_t *buf)
{
	int bad = 0;

	for (int i = 0; i < RACE_MRS; i++) {
		t.race_ok[i] = t.race_einval[i] = 0;
		t.race[i] = reg(t.pd, buf);
	}
	pthread_barrier_wait(&t.race_start);
	pthread_barrier_wait(&t.race_end);
	for (int i = 0; i < RACE_MRS; i++)
		bad += !t.race[i] || t.race_ok[i] != 1 || t.race_einval[i] != 1;
	return bad;
}

/* Two threads deregister the same MRs, started together: once each, never twice. */
static int race_dereg(void)
{
	uint8_t *buf = malloc(t.size);
	pthread_t th[2];
	int bad = 0;

	if (!buf)
		return 1;
	pthread_barrier_init(&t.race_start, NULL, 3);
	pthread_barrier_init(&t.race_end, NULL, 3);
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, racer, NULL);
	for (int r = 0; r < RACE_ROUNDS; r++)
		bad += race_round(buf);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	printf("preload_app: threads: %d MRs deregistered by two threads at once, %d not exactly once\n",
	       RACE_ROUNDS * RACE_MRS, bad);
	free(buf);
	return bad != 0;
}

static int run_workers(unsigned int threads)
{
	pthread_t th[64], ch;

	for (unsigned int i = 0; i < threads; i++)
		pthread_create(&th[i], NULL, worker, NULL);
	pthread_create(&ch, NULL, churner, NULL);
	for (unsigned int i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	__atomic_store_n(&t.stop, 1, __ATOMIC_RELEASE);
	pthread_join(ch, NULL);
	for (unsigned int i = 0; i < t.mailed; i++)
		dereg(t.mailbox[i]);
	return t.failed;
}

int preload_threads(struct ibv_context *ctx, struct ibv_pd *pd,
		    unsigned int threads, unsigned long rounds, size_t size,
		    int race)
{
	int ret;

	if (!threads || threads > 64 || !size)
		return fail("threads 1..64, size > 0", EINVAL), 1;
	t.ctx = ctx;
	t.pd = pd;
	t.size = size;
	t.rounds = rounds;
	t.shared = malloc(size);
	pthread_mutex_init(&t.lock, NULL);
	ret = !t.shared || run_workers(threads);
	if (!ret)
		printf("preload_app: threads: %u threads, %lu rounds each, %lu PDs made and deallocated beside them: every call answered right\n",
		       threads, rounds, t.churned / 2);
	ret = ret || (race && race_dereg());
	free(t.shared);
	return ret;
}
