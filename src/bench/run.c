// SPDX-License-Identifier: BSD-2-Clause
/*
 * Measuring one cell. A cell allocates its working set, sends one untimed
 * message from every buffer (the first one, cold, is reported as
 * first_usec), then timed messages until its time is used up. Every
 * message is checked: the buffers we receive into right after the WRITE,
 * the peer's target slots whenever they have all been written (so no
 * message is overwritten before it was looked at).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "strategy.h"
#include "xfer.h"

#define MAX_SAMPLES 2000
#define MAX_SLOTS 64

struct cell_run {
	struct bench *b;
	struct cell *c;
	struct strategy *s;
	struct wset ws;
	struct slot_log log[MAX_SLOTS];
	size_t nslots, used, stride;
	double samples[MAX_SAMPLES];
	int n;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int flush_slots(struct cell_run *r)
{
	uint64_t bad = 0;
	int ret;

	if (!r->used)
		return 0;
	ret = r->b->peer->ops->verify(r->b->peer, r->log, r->used, &bad);
	if (ret)
		fprintf(stderr, "mrcache-bench: asking the peer to check: %s\n", strerror(-ret));
	r->c->res.bad += bad;
	r->used = 0;
	return ret;
}

static int send_source(struct cell_run *r, struct wbuf *w, uint64_t msg, double *us)
{
	size_t size = r->c->spec.size, off = r->used * r->stride;
	uint64_t t0;
	int ret;

	pattern_stamp(w->p, size, msg);
	t0 = now_ns();
	ret = xfer_source(r->b, r->s, w, size, r->b->target->addr + off);
	*us = (double)(now_ns() - t0) / 1e3;
	if (ret)
		return ret;
	r->log[r->used++] = (struct slot_log){ off, size, msg, w->id, w->gen };
	return r->used == r->nslots ? flush_slots(r) : 0;
}

static int receive_target(struct cell_run *r, struct wbuf *w, uint64_t msg, double *us)
{
	size_t size = r->c->spec.size;
	uint64_t t0;
	int ret;

	/* Not what the peer sends: a WRITE that missed us is seen. */
	pattern_stamp(w->p, size, ~msg);
	t0 = now_ns();
	ret = xfer_target(r->b, r->s, w, size, msg);
	*us = (double)(now_ns() - t0) / 1e3;
	if (!ret && !pattern_check(w->p, size, PEER_SOURCE_ID, 0, msg))
		r->c->res.bad++;
	return ret;
}

static int churn(struct cell_run *r, struct wbuf *w)
{
	size_t size = r->c->spec.size;
	int ret;

	if (r->s->tracks_churn && r->s->detach)
		r->s->detach(r->s, w, size);
	ret = wset_churn(&r->ws, w);
	if (!ret && r->s->tracks_churn && r->s->attach)
		ret = r->s->attach(r->s, w, size);
	if (ret)
		fprintf(stderr, "mrcache-bench: churn (%s): %s\n",
			churn_names[r->ws.churn], strerror(-ret));
	return ret;
}

static int one_message(struct cell_run *r, uint64_t i, int warm)
{
	const struct cell_spec *sp = &r->c->spec;
	struct wbuf *w = warm ? &r->ws.bufs[i] : wset_pick(&r->ws, i);
	uint64_t msg = ++r->b->msgno;
	double us;
	int ret = 0;

	/* Counted over the whole cell, warm-up included: every K-th message. */
	if (sp->churn != CHURN_NONE && r->c->res.messages &&
	    r->c->res.messages % (uint64_t)r->b->opt.churn_every == 0)
		ret = churn(r, w);
	if (!ret)
		ret = sp->dir == DIR_SOURCE ? send_source(r, w, msg, &us)
					    : receive_target(r, w, msg, &us);
	if (ret)
		return ret;
	r->c->res.messages++;
	if (warm && i == 0)
		r->c->res.first_us = us;
	else if (!warm)
		r->samples[r->n++] = us;
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void summarize(struct cell_run *r)
{
	struct cell_result *res = &r->c->res;
	int n = r->n;

	qsort(r->samples, (size_t)n, sizeof(r->samples[0]), cmp_double);
	res->reps = n;
	res->min_us = r->samples[0];
	res->p10_us = r->samples[n / 10];
	res->p90_us = r->samples[(n * 9) / 10 < n ? (n * 9) / 10 : n - 1];
	res->median_us = n % 2 ? r->samples[n / 2]
			       : (r->samples[n / 2 - 1] + r->samples[n / 2]) / 2;
}

static int measure(struct cell_run *r, double budget_s)
{
	int min_reps = r->b->opt.quick ? 3 : 5;
	uint64_t stop, i;

	/* A churn cell sees at least two churns, however short its time. */
	if (r->c->spec.churn != CHURN_NONE && min_reps < 2 * r->b->opt.churn_every + 1)
		min_reps = 2 * r->b->opt.churn_every + 1;
	int ret = 0;

	for (i = 0; i < (uint64_t)r->ws.n && !ret; i++)
		ret = one_message(r, i, 1);
	stop = now_ns() + (uint64_t)(budget_s * 1e9);
	for (i = 0; !ret && r->n < MAX_SAMPLES && (r->n < min_reps || now_ns() < stop); i++)
		ret = one_message(r, i, 0);
	if (!ret)
		ret = flush_slots(r);
	return ret;
}

static int setup_wset(struct cell_run *r)
{
	const struct cell_spec *sp = &r->c->spec;
	int ret = wset_create(&r->ws, sp->nbufs, sp->size, sp->order, sp->churn);

	for (int i = 0; i < r->ws.n && !ret && r->s->attach; i++)
		ret = r->s->attach(r->s, &r->ws.bufs[i], sp->size);
	r->stride = (sp->size + 63) & ~(size_t)63;
	r->nslots = r->b->target->len / r->stride;
	r->nslots = r->nslots > MAX_SLOTS ? MAX_SLOTS : r->nslots;
	return ret;
}

static void drop_wset(struct cell_run *r)
{
	for (int i = 0; i < r->ws.n && r->s->detach; i++)
		if (r->ws.bufs[i].p)
			r->s->detach(r->s, &r->ws.bufs[i], r->c->spec.size);
	wset_destroy(&r->ws);
}

int run_cell(struct bench *b, struct cell *c, double budget_s)
{
	static struct cell_run r;
	uint64_t h0 = 0, m0 = 0, h1 = 0, m1 = 0;
	int ret;

	memset(&r, 0, sizeof(r));
	r.b = b;
	r.c = c;
	r.s = &b->strategies[c->spec.strategy];
	c->res.expected_stale = c->spec.strategy == ST_MRC_MANUAL && c->spec.churn != CHURN_NONE;
	if (r.s->counts)
		r.s->counts(r.s, &h0, &m0);
	ret = setup_wset(&r);
	if (!ret)
		ret = measure(&r, budget_s);
	if (r.s->counts)
		r.s->counts(r.s, &h1, &m1);
	c->res.hits = h1 - h0;
	c->res.misses = m1 - m0;
	drop_wset(&r);
	if (!ret)
		summarize(&r);
	return ret;
}
