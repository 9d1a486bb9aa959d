/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Results: one JSON line and one CSV row per cell as it finishes (the
 * schema is in mrcache-bench(1)), a progress line on stderr, and at the
 * end human tables with the strategies side by side.
 */
#ifndef MRCACHE_BENCH_OUTPUT_H
#define MRCACHE_BENCH_OUTPUT_H

#include <stdio.h>

#include "bench.h"

struct output {
	FILE *json, *csv, *table;
	const char *device, *mode;
	const char *thread_refs;	/* "on" or "off": mrcache's references */
	int churn_every;
	int progress;
};

int output_open(struct output *o, const struct options *opt, const char *device,
		const char *mode);
void output_close(struct output *o);
void output_cell(struct output *o, const struct cell *c);
void output_fit(struct output *o, int thp, double fixed_us, double per_page_us, int points);
void output_progress(struct output *o, int done, int total, const struct cell *c);
void output_tables(struct output *o, const struct bench *b);
void output_regcost_table(struct output *o, const struct bench *b);
/* Verdict of a cell: "ok", "BAD" or "stale-expected". */
const char *cell_verdict(const struct cell *c);

#endif
