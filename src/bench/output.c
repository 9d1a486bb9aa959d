// SPDX-License-Identifier: BSD-2-Clause
/* JSON lines, CSV rows, the progress line and the summary tables. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "output.h"
#include "strategy.h"
#include "threadrefs/mode.h"

static const char csv_header[] =
	"sweep,dir,strategy,size,working_set,order,churn,churn_every,pages,usec,p10_usec,"
	"p90_usec,min_usec,first_usec,MBps,reps,messages,bad,hits,misses,verdict,device,mode,"
	"thread_refs\n";

static FILE *open_out(const char *path)
{
	FILE *f;

	if (!path)
		return NULL;
	if (!strcmp(path, "-"))
		return stdout;
	f = fopen(path, "w");
	if (!f)
		fprintf(stderr, "mrcache-bench: %s: %s\n", path, strerror(errno));
	return f;
}

int output_open(struct output *o, const struct options *opt, const char *device,
		const char *mode)
{
	int to_stdout = (opt->json && !strcmp(opt->json, "-")) ||
			(opt->csv && !strcmp(opt->csv, "-"));

	*o = (struct output){ .device = device, .mode = mode, .churn_every = opt->churn_every,
			      .progress = opt->progress };
	/* The library does not say which references its caches use: as it decides. */
	o->thread_refs = mrc_trefs_expected() ? "on" : "off";
	o->json = open_out(opt->json);
	o->csv = open_out(opt->csv);
	if ((opt->json && !o->json) || (opt->csv && !o->csv))
		return -EIO;
	/* Machine-readable output on stdout: the tables go to stderr. */
	o->table = to_stdout ? stderr : stdout;
	if (o->csv)
		fputs(csv_header, o->csv);
	return 0;
}

void output_close(struct output *o)
{
	if (o->json && o->json != stdout)
		fclose(o->json);
	if (o->csv && o->csv != stdout)
		fclose(o->csv);
}

const char *cell_verdict(const struct cell *c)
{
	if (!c->res.bad)
		return "ok";
	return c->res.expected_stale ? "stale-expected" : "BAD";
}

static double mbps(const struct cell *c)
{
	return c->res.median_us > 0 ? (double)c->spec.size / c->res.median_us : 0;
}

static const char *pages_name(const struct cell *c)
{
	return c->spec.sweep != SWEEP_REGCOST ? "" : c->spec.thp ? "thp" : "4k";
}

/* One cell's fields, in the schema's order: name, value, quoted or not. */
struct field {
	const char *name;
	char value[48];
	int quoted;
};

#define NFIELDS 22

static void set(struct field *f, const char *name, int quoted, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void set(struct field *f, const char *name, int quoted, const char *fmt, ...)
{
	va_list ap;

	f->name = name;
	f->quoted = quoted;
	va_start(ap, fmt);
	vsnprintf(f->value, sizeof(f->value), fmt, ap);
	va_end(ap);
}

static void cell_fields(const struct output *o, const struct cell *c, struct field *f)
{
	const struct cell_spec *s = &c->spec;
	const struct cell_result *r = &c->res;

	set(f++, "sweep", 1, "%s", sweep_names[s->sweep]);
	set(f++, "dir", 1, "%s", direction_names[s->dir]);
	set(f++, "strategy", 1, "%s", cell_strategy_name(c));
	set(f++, "size", 0, "%zu", s->size);
	set(f++, "working_set", 0, "%d", s->nbufs);
	set(f++, "order", 1, "%s", order_names[s->order]);
	set(f++, "churn", 1, "%s", churn_names[s->churn]);
	set(f++, "churn_every", 0, "%d", s->churn ? o->churn_every : 0);
	set(f++, "pages", 1, "%s", pages_name(c));
	set(f++, "usec", 0, "%.3f", r->median_us);
	set(f++, "p10_usec", 0, "%.3f", r->p10_us);
	set(f++, "p90_usec", 0, "%.3f", r->p90_us);
	set(f++, "min_usec", 0, "%.3f", r->min_us);
	set(f++, "first_usec", 0, "%.3f", r->first_us);
	set(f++, "MBps", 0, "%.2f", mbps(c));
	set(f++, "reps", 0, "%d", r->reps);
	set(f++, "messages", 0, "%llu", (unsigned long long)r->messages);
	set(f++, "bad", 0, "%llu", (unsigned long long)r->bad);
	set(f++, "hits", 0, "%llu", (unsigned long long)r->hits);
	set(f++, "misses", 0, "%llu", (unsigned long long)r->misses);
	set(f++, "verdict", 1, "%s", cell_verdict(c));
	set(f++, "device", 1, "%s", o->device);
}

static void json_cell(struct output *o, const struct field *f)
{
	fprintf(o->json, "{\"bench\":\"mrcache-bench\"");
	for (int i = 0; i < NFIELDS; i++)
		fprintf(o->json, f[i].quoted ? ",\"%s\":\"%s\"" : ",\"%s\":%s", f[i].name,
			f[i].value);
	fprintf(o->json, ",\"mode\":\"%s\",\"thread_refs\":\"%s\"}\n", o->mode,
		o->thread_refs);
	fflush(o->json);
}

static void csv_cell(struct output *o, const struct field *f)
{
	for (int i = 0; i < NFIELDS; i++)
		fprintf(o->csv, "%s,", f[i].value);
	fprintf(o->csv, "%s,%s\n", o->mode, o->thread_refs);
	fflush(o->csv);
}

void output_cell(struct output *o, const struct cell *c)
{
	struct field f[NFIELDS];

	cell_fields(o, c, f);
	if (o->json)
		json_cell(o, f);
	if (o->csv)
		csv_cell(o, f);
}

void output_fit(struct output *o, int thp, double fixed_us, double per_page_us, int points)
{
	fprintf(o->table, "# registration cost fit (%s pages asked for, %d sizes): "
		"%.2f usec + %.4f usec per 4 KiB page\n", thp ? "transparent huge" : "4 KiB",
		points, fixed_us, per_page_us);
	if (o->json)
		fprintf(o->json, "{\"bench\":\"mrcache-bench\",\"sweep\":\"regcost_fit\","
			"\"pages\":\"%s\",\"fixed_usec\":%.3f,\"per_page_usec\":%.5f,"
			"\"points\":%d,\"device\":\"%s\",\"mode\":\"%s\"}\n",
			thp ? "thp" : "4k", fixed_us, per_page_us, points, o->device, o->mode);
}

void output_progress(struct output *o, int done, int total, const struct cell *c)
{
	char sz[32];

	if (!o->progress)
		return;
	format_size(sz, sizeof(sz), c->spec.size);
	fprintf(stderr, "\r\033[K[%d/%d] %s %s %s %s ws %d %s %s", done, total,
		sweep_names[c->spec.sweep], direction_names[c->spec.dir],
		cell_strategy_name(c), sz, c->spec.nbufs, order_names[c->spec.order],
		churn_names[c->spec.churn]);
	if (done == total)
		fputc('\n', stderr);
	fflush(stderr);
}
