// SPDX-License-Identifier: BSD-2-Clause
/*
 * The registration cost curve: ibv_reg_mr + ibv_dereg_mr of one buffer
 * against its size, on 4 KiB pages and on transparent huge pages, and the
 * least-squares line through it: a fixed cost plus a cost per 4 KiB page,
 * the two numbers a registration strategy's break-even depends on.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "output.h"
#include "strategy.h"

#define HUGE_2M ((size_t)2 << 20)
#define MAX_REPS 200
#define PAGE_4K 4096.0

struct mapping {
	unsigned char *base, *p;
	size_t len;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Huge-page aligned, faulted in, with or without THP asked for. */
static int map_buffer(struct mapping *m, size_t len, int thp)
{
	m->len = len + HUGE_2M;
	m->base = mmap(NULL, m->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m->base == MAP_FAILED)
		return -ENOMEM;
	m->p = (unsigned char *)(((uintptr_t)m->base + HUGE_2M - 1) & ~(HUGE_2M - 1));
	madvise(m->p, len, thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	memset(m->p, 0x5a, len);
	return 0;
}

static void summarize(struct cell *c, double *samples, int n)
{
	qsort(samples, (size_t)n, sizeof(samples[0]), cmp_double);
	c->res = (struct cell_result){ .median_us = samples[n / 2], .p10_us = samples[n / 10],
				       .p90_us = samples[n * 9 / 10], .min_us = samples[0],
				       .first_us = samples[0], .reps = n, .messages = (uint64_t)n };
}

static int time_size(struct bench *b, struct cell *c, double budget_s)
{
	static double samples[MAX_REPS];
	struct mapping m;
	uint64_t stop = now_ns() + (uint64_t)(budget_s * 1e9);
	int n = 0, err = 0;

	if (map_buffer(&m, c->spec.size, c->spec.thp))
		return -ENOMEM;
	while (n < MAX_REPS && (n < 3 || now_ns() < stop)) {
		uint64_t t0 = now_ns();
		struct ibv_mr *mr = ibv_reg_mr(b->ep.pd, m.p, c->spec.size, BENCH_ACCESS);

		if (!mr) {
			err = errno ? errno : EIO;
			break;
		}
		ibv_dereg_mr(mr);
		samples[n++] = (double)(now_ns() - t0) / 1e3;
	}
	munmap(m.base, m.len);
	if (err) {
		fprintf(stderr, "mrcache-bench: ibv_reg_mr(%zu B): %s\n", c->spec.size, strerror(err));
		return -err;
	}
	summarize(c, samples, n);
	return 0;
}

/* Least squares through (pages, median usec) of the cells [first, last). */
static void fit(struct output *o, const struct cell *cells, int first, int last, int thp)
{
	double sx = 0, sy = 0, sxx = 0, sxy = 0, n = last - first, a, k;

	for (int i = first; i < last; i++) {
		double x = (double)cells[i].spec.size / PAGE_4K, y = cells[i].res.median_us;

		sx += x, sy += y, sxx += x * x, sxy += x * y;
	}
	k = n * sxx - sx * sx != 0 ? (n * sxy - sx * sy) / (n * sxx - sx * sx) : 0;
	a = (sy - k * sx) / n;
	output_fit(o, thp, a, k, (int)n);
}

static int add_cell(struct bench *b, size_t size, int thp)
{
	struct cell *c = realloc(b->cells, (size_t)(b->ncells + 1) * sizeof(*c));

	if (!c)
		return -ENOMEM;
	b->cells = c;
	c[b->ncells++] = (struct cell){ .spec = { .sweep = SWEEP_REGCOST, .size = size,
						  .nbufs = 1, .thp = thp } };
	return 0;
}

int regcost_run(struct bench *b)
{
	size_t top = b->max_size > 4096 ? b->max_size : 4096;
	double per = b->opt.quick ? 0.05 : 0.3;
	int ret = 0;

	for (int thp = 0; thp < 2 && !ret; thp++) {
		int first = b->ncells;

		for (size_t s = 4096; s <= top && !ret; s *= 4) {
			ret = add_cell(b, s, thp);
			if (!ret)
				ret = time_size(b, &b->cells[b->ncells - 1], per);
			if (!ret) {
				output_cell(b->out, &b->cells[b->ncells - 1]);
				output_progress(b->out, b->ncells - first, 0, &b->cells[b->ncells - 1]);
			}
		}
		if (!ret)
			fit(b->out, b->cells, first, b->ncells, thp);
	}
	return ret;
}
