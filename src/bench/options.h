/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * mrcache-bench's command line: what to measure, between which hosts, and
 * where the results go. One struct, filled once by options_parse().
 */
#ifndef MRCACHE_BENCH_OPTIONS_H
#define MRCACHE_BENCH_OPTIONS_H

#include <stddef.h>

#define KiB ((size_t)1024)
#define MiB (KiB * KiB)
#define MAX_SIZES 32
#define MAX_WSETS 16
#define MAX_BUFS 256

struct options {
	const char *host;	/* peer's address; NULL: loopback in one process */
	int server;		/* --server: wait for one client, then serve it */
	const char *tcp_port;	/* -p: out-of-band TCP port */
	const char *device;	/* -d: NULL takes the first device */
	int ib_port;		/* -i */
	int gid_index;		/* -x; -1 chooses (RoCE v2, IPv4-mapped) */
	size_t sizes[MAX_SIZES];
	int nsizes;
	int wsets[MAX_WSETS];	/* working sets (buffers) of the reuse sweep */
	int nwsets;
	size_t ws_size;		/* message size of the reuse and churn sweeps */
	int churn_every;	/* K: a buffer is replaced every K messages */
	int cache_regions;	/* every cache's bound on idle regions */
	size_t chunk;		/* pipelined chunk */
	unsigned int strategies;/* bit per enum strategy_id */
	unsigned int dirs;	/* bit per enum direction */
	unsigned int sweeps;	/* bit per enum sweep */
	double budget_s;	/* measuring time of all cells together */
	int quick;
	int cpu, numa;		/* placement overrides, -1: the NIC's node */
	const char *json, *csv;	/* files; "-" is stdout */
	const char *plot_dir;	/* PNG and SVG go here */
	int progress;		/* progress line on stderr */
};

/* Fill @o from argv. Return: 0, 1 after --help, or -EINVAL (usage printed). */
int options_parse(int argc, char **argv, struct options *o);
int parse_size(const char *text, size_t *out);
void format_size(char *out, size_t n, size_t size);

#endif
