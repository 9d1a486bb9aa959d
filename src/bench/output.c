// SPDX-License-Identifier: BSD-2-Clause
/* JSON lines, CSV rows, the progress line and the summary tables. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "output.h"
#include "strategy.h"

static const char csv_header[] =
	"sweep,dir,strategy,size,working_set,order,churn,churn_every,pages,usec,p10_usec,"
	"p90_usec,min_usec,first_usec,MBps,reps,messages,bad,hits,misses,verdict,device,mode\n";

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

static void json_cell(struct output *o, const struct cell *c)
{
	const struct cell_spec *s = &c->spec;
	const struct cell_result *r = &c->res;

	fprintf(o->json, "{\"bench\":\"mrcache-bench\",\"sweep\":\"%s\",\"dir\":\"%s\","
		"\"strategy\":\"%s\",\"size\":%zu,\"working_set\":%d,\"order\":\"%s\","
		"\"churn\":\"%s\",\"churn_every\":%d,\"pages\":\"%s\",\"usec\":%.3f,"
		"\"p10_usec\":%.3f,\"p90_usec\":%.3f,\"min_usec\":%.3f,\"first_usec\":%.3f,"
		"\"MBps\":%.2f,\"reps\":%d,\"messages\":%llu,\"bad\":%llu,\"hits\":%llu,"
		"\"misses\":%llu,\"verdict\":\"%s\",\"device\":\"%s\",\"mode\":\"%s\"}\n",
		sweep_names[s->sweep], direction_names[s->dir], cell_strategy_name(c), s->size,
		s->nbufs, order_names[s->order], churn_names[s->churn],
		s->churn ? o->churn_every : 0, pages_name(c), r->median_us, r->p10_us,
		r->p90_us, r->min_us, r->first_us, mbps(c), r->reps,
		(unsigned long long)r->messages, (unsigned long long)r->bad,
		(unsigned long long)r->hits, (unsigned long long)r->misses, cell_verdict(c),
		o->device, o->mode);
	fflush(o->json);
}

static void csv_cell(struct output *o, const struct cell *c)
{
	const struct cell_spec *s = &c->spec;
	const struct cell_result *r = &c->res;

	fprintf(o->csv, "%s,%s,%s,%zu,%d,%s,%s,%d,%s,%.3f,%.3f,%.3f,%.3f,%.3f,%.2f,%d,"
		"%llu,%llu,%llu,%llu,%s,%s,%s\n",
		sweep_names[s->sweep], direction_names[s->dir], cell_strategy_name(c), s->size,
		s->nbufs, order_names[s->order], churn_names[s->churn],
		s->churn ? o->churn_every : 0, pages_name(c), r->median_us, r->p10_us,
		r->p90_us, r->min_us, r->first_us, mbps(c), r->reps,
		(unsigned long long)r->messages, (unsigned long long)r->bad,
		(unsigned long long)r->hits, (unsigned long long)r->misses, cell_verdict(c),
		o->device, o->mode);
	fflush(o->csv);
}

void output_cell(struct output *o, const struct cell *c)
{
	if (o->json)
		json_cell(o, c);
	if (o->csv)
		csv_cell(o, c);
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
