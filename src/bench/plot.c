// SPDX-License-Identifier: BSD-2-Clause
/* Data files and a gnuplot script per run; gnuplot draws PNG and SVG. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "plot.h"
#include "strategy.h"

/* One plot: its cells share sweep, dir and order; a series per strategy. */
struct figure {
	const char *name, *title, *xlabel, *ylabel;
	enum sweep sweep;
	int dir, order;		/* -1: any */
	int y_mbps;		/* y is MB/s rather than usec */
	int x_wset;		/* x is the working set rather than the size */
};

static const struct figure figures[] = {
	{ "latency_size_source", "Latency against size, our buffer is the WRITE source",
	  "message size (bytes)", "median usec per message", SWEEP_SIZE, DIR_SOURCE, -1, 0, 0 },
	{ "latency_size_target", "Latency against size, our buffer is the WRITE target",
	  "message size (bytes)", "median usec per message", SWEEP_SIZE, DIR_TARGET, -1, 0, 0 },
	{ "bandwidth_wset_cyclic", "Bandwidth against working set, cyclic reuse",
	  "working set (buffers)", "MB/s (median)", SWEEP_WSET, DIR_SOURCE, ORDER_CYCLIC, 1, 1 },
	{ "bandwidth_wset_random", "Bandwidth against working set, random reuse",
	  "working set (buffers)", "MB/s (median)", SWEEP_WSET, DIR_SOURCE, ORDER_RANDOM, 1, 1 },
	{ "regcost", "ibv_reg_mr + ibv_dereg_mr against size",
	  "buffer size (bytes)", "median usec", SWEEP_REGCOST, -1, -1, 0, 0 },
};

static int in_figure(const struct figure *f, const struct cell *c)
{
	return c->spec.sweep == f->sweep && (f->dir < 0 || (int)c->spec.dir == f->dir) &&
	       (f->order < 0 || (int)c->spec.order == f->order);
}

static const char *series_name(const struct cell *c)
{
	if (c->spec.sweep == SWEEP_REGCOST)
		return c->spec.thp ? "THP" : "4KiB_pages";
	return cell_strategy_name(c);
}

/* Write the series of @f; Return: how many series have points. */
static int write_series(const struct bench *b, const struct figure *f, const char *dir,
			FILE *gp)
{
	int nseries = 0;

	for (int i = 0; i < b->ncells; i++) {
		const struct cell *c = &b->cells[i];
		char path[4096];
		FILE *d;
		int seen = 0;

		if (!in_figure(f, c))
			continue;
		for (int j = 0; j < i && !seen; j++)
			seen = in_figure(f, &b->cells[j]) &&
			       !strcmp(series_name(&b->cells[j]), series_name(c));
		if (seen)
			continue;
		snprintf(path, sizeof(path), "%s/%s-%s.dat", dir, f->name, series_name(c));
		d = fopen(path, "w");
		if (!d)
			return -errno;
		for (int j = i; j < b->ncells; j++) {
			const struct cell *e = &b->cells[j];

			if (in_figure(f, e) && !strcmp(series_name(e), series_name(c)))
				fprintf(d, "%zu %g %g %g\n", f->x_wset ? (size_t)e->spec.nbufs : e->spec.size,
					f->y_mbps ? (double)e->spec.size / e->res.median_us : e->res.median_us,
					f->y_mbps ? (double)e->spec.size / e->res.p90_us : e->res.p10_us,
					f->y_mbps ? (double)e->spec.size / e->res.p10_us : e->res.p90_us);
		}
		fclose(d);
		fprintf(gp, "%s '%s' using 1:2 with linespoints title '%s'", nseries ? ", \\\n  " : "plot ",
			path, series_name(c));
		nseries++;
	}
	if (nseries)
		fputc('\n', gp);
	return nseries;
}

static int write_figure(const struct bench *b, const struct figure *f, const char *dir, FILE *gp)
{
	static const char *const terms[][2] = {
		{ "pngcairo size 900,600 noenhanced", "png" },
		{ "svg size 900,600 noenhanced", "svg" },
	};
	int ret = 0, any = 0;

	for (int i = 0; i < b->ncells && !any; i++)
		any = in_figure(f, &b->cells[i]);
	for (int t = 0; t < 2 && any && ret >= 0; t++) {
		fprintf(gp, "set terminal %s\nset output '%s/%s.%s'\n", terms[t][0], dir,
			f->name, terms[t][1]);
		fprintf(gp, "set title '%s (%s, %s)'\nset xlabel '%s'\nset ylabel '%s'\n",
			f->title, b->ep.device, b->opt.host ? "two processes" : "loopback",
			f->xlabel, f->ylabel);
		fprintf(gp, "set logscale x 2\nset format x '%s'\n%s\nset key outside right\nset grid\n",
			f->x_wset ? "%g" : "%.0b %BB",
			f->y_mbps ? "unset logscale y" : "set logscale y 10");
		ret = write_series(b, f, dir, gp);
		fprintf(gp, "unset output\n");
	}
	return ret < 0 ? ret : 0;
}

int plot_run(const struct bench *b, const char *dir)
{
	char path[4096], cmd[4200];
	FILE *gp;
	int ret = 0, st;

	if (mkdir(dir, 0755) && errno != EEXIST)
		return -errno;
	snprintf(path, sizeof(path), "%s/plots.gp", dir);
	gp = fopen(path, "w");
	if (!gp)
		return -errno;
	for (size_t i = 0; i < sizeof(figures) / sizeof(figures[0]) && !ret; i++)
		ret = write_figure(b, &figures[i], dir, gp);
	fclose(gp);
	if (ret)
		return ret;
	snprintf(cmd, sizeof(cmd), "gnuplot '%s'", path);
	st = system(cmd);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st)) {
		fprintf(stderr, "mrcache-bench: gnuplot %s failed (Debian: apt-get install gnuplot-nox); "
			"the data and script are in %s\n", path, dir);
		return -EIO;
	}
	fprintf(stderr, "mrcache-bench: plots in %s (PNG and SVG)\n", dir);
	return 0;
}
