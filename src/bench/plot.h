/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Plots of a finished run, drawn by gnuplot: latency against size per
 * strategy (each direction), bandwidth against working set (each order),
 * registration cost against size. DIR gets the data (.dat), the script
 * (plots.gp, to redraw or restyle) and each plot as PNG and SVG.
 */
#ifndef MRCACHE_BENCH_PLOT_H
#define MRCACHE_BENCH_PLOT_H

#include "bench.h"

/* Return: 0, or -errno when a file could not be written or gnuplot failed. */
int plot_run(const struct bench *b, const char *dir);

#endif
