// SPDX-License-Identifier: BSD-2-Clause
/*
 * The human tables: one per sweep and direction, a row per group of cells
 * that differ only in strategy, a column per strategy. A cell reads
 * "median usec (MB/s)"; "BAD" marks wrong bytes, "stale*" the manual
 * monitor's expected failure under churn.
 */
#include <stdio.h>
#include <string.h>

#include "output.h"
#include "strategy.h"

static int same_group(const struct cell_spec *a, const struct cell_spec *b)
{
	return a->sweep == b->sweep && a->dir == b->dir && a->size == b->size &&
	       a->nbufs == b->nbufs && a->order == b->order && a->churn == b->churn &&
	       a->thp == b->thp;
}

static void row_label(char *out, size_t n, const struct cell_spec *s)
{
	char sz[32];

	format_size(sz, sizeof(sz), s->size);
	if (s->sweep == SWEEP_SIZE)
		snprintf(out, n, "%s", sz);
	else if (s->sweep == SWEEP_WSET)
		snprintf(out, n, "%s x%d %s", sz, s->nbufs, order_names[s->order]);
	else
		snprintf(out, n, "%s x%d %s", sz, s->nbufs, churn_names[s->churn]);
}

static void print_value(FILE *f, const struct cell *c)
{
	char v[48];

	if (c->res.bad && !c->res.expected_stale)
		snprintf(v, sizeof(v), "BAD %llu/%llu", (unsigned long long)c->res.bad,
			 (unsigned long long)c->res.messages);
	else if (c->res.bad)
		snprintf(v, sizeof(v), "stale* %llu/%llu", (unsigned long long)c->res.bad,
			 (unsigned long long)c->res.messages);
	else
		snprintf(v, sizeof(v), "%.1f (%.0f)", c->res.median_us,
			 c->res.median_us > 0 ? (double)c->spec.size / c->res.median_us : 0);
	fprintf(f, " %16s", v);
}

static void print_header(FILE *f, const struct bench *b, const struct cell *first)
{
	static const char *const what[] = {
		[SWEEP_SIZE] = "latency against size, 2 buffers (fit every cache)",
		[SWEEP_WSET] = "reuse: working set against the caches' bound",
		[SWEEP_CHURN] = "churn: a buffer replaced every K messages",
	};

	fprintf(f, "#\n# %s, our buffer is the WRITE's %s; median usec (MB/s)\n# %-22s",
		what[first->spec.sweep], direction_names[first->spec.dir], "");
	for (int s = 0; s < NSTRATEGIES; s++)
		if (b->strategies[s].available)
			fprintf(f, " %16s", strategy_names[s]);
	fputc('\n', f);
}

void output_tables(struct output *o, const struct bench *b)
{
	const struct cell *prev = NULL;
	int row_open = 0;
	char label[64];

	for (int i = 0; i < b->ncells; i++) {
		const struct cell *c = &b->cells[i];
		int new_table = !prev || prev->spec.sweep != c->spec.sweep ||
				prev->spec.dir != c->spec.dir;

		if (c->spec.sweep == SWEEP_REGCOST)
			continue;
		if (row_open && (new_table || !same_group(&prev->spec, &c->spec)))
			fputc('\n', o->table), row_open = 0;
		if (new_table)
			print_header(o->table, b, c);
		if (!row_open) {
			row_label(label, sizeof(label), &c->spec);
			fprintf(o->table, "# %-22s", label);
			row_open = 1;
		}
		print_value(o->table, c);
		prev = c;
	}
	if (row_open)
		fputc('\n', o->table);
	fprintf(o->table, "# stale*: the manual monitor, no mrc_invalidate() at churn: "
		"stale bytes are the expected result, not a failure\n");
}

/* The cost curve: a row per size, 4 KiB pages and THP side by side. */
void output_regcost_table(struct output *o, const struct bench *b)
{
	const struct cell *c4[64], *ct[64];
	int n4 = 0, nt = 0;
	char sz[32];

	for (int i = 0; i < b->ncells; i++) {
		const struct cell *c = &b->cells[i];

		if (c->spec.sweep != SWEEP_REGCOST)
			continue;
		if (c->spec.thp && nt < 64)
			ct[nt++] = c;
		else if (!c->spec.thp && n4 < 64)
			c4[n4++] = c;
	}
	if (!n4)
		return;
	fprintf(o->table, "#\n# ibv_reg_mr + ibv_dereg_mr, median usec (p10-p90)\n# %-10s %24s %24s\n",
		"size", "4 KiB pages", "THP asked for");
	for (int i = 0; i < n4; i++) {
		char a[48], t[48] = "-";

		format_size(sz, sizeof(sz), c4[i]->spec.size);
		snprintf(a, sizeof(a), "%.1f (%.1f-%.1f)", c4[i]->res.median_us,
			 c4[i]->res.p10_us, c4[i]->res.p90_us);
		if (i < nt)
			snprintf(t, sizeof(t), "%.1f (%.1f-%.1f)", ct[i]->res.median_us,
				 ct[i]->res.p10_us, ct[i]->res.p90_us);
		fprintf(o->table, "# %-10s %24s %24s\n", sz, a, t);
	}
}
