// SPDX-License-Identifier: BSD-2-Clause
/*
 * mrcache-bench: which registration strategy should an RDMA application
 * use? Every strategy on the same wire and buffers, in both directions,
 * over message sizes, reuse patterns and churn, with every message's
 * bytes checked. See mrcache-bench(1).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "bench.h"
#include "output.h"
#include "placement.h"
#include "plot.h"
#include "strategy.h"

#define PEER_MIN_TARGET (4 * MiB)

static struct bench_link link_of(const struct options *o, size_t max_size)
{
	return (struct bench_link){
		.host = o->host, .port = o->tcp_port, .device = o->device,
		.ib_port = o->ib_port, .gid_index = o->gid_index,
		.src_len = max_size,
		.dst_len = max_size > PEER_MIN_TARGET ? max_size : PEER_MIN_TARGET,
	};
}

static size_t largest_size(const struct options *o)
{
	size_t m = o->ws_size;

	for (int i = 0; i < o->nsizes; i++)
		m = o->sizes[i] > m ? o->sizes[i] : m;
	return m;
}

static int setup(struct bench *b)
{
	struct bench_link l = link_of(&b->opt, b->max_size);
	int ret = peer_open(&b->peer, &b->ep, &l);

	if (ret)
		return ret;
	b->target = &b->peer->target;
	b->bounce = mmap(NULL, b->max_size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (b->bounce == MAP_FAILED) {
		b->bounce = NULL;
		return -ENOMEM;
	}
	b->bounce_mr = ibv_reg_mr(b->ep.pd, b->bounce, b->max_size, BENCH_ACCESS);
	if (!b->bounce_mr) {
		fprintf(stderr, "mrcache-bench: registering the bounce buffer: %s\n", strerror(errno));
		return -EIO;
	}
	placement_apply(b->ep.dev, b->opt.cpu, b->opt.numa, b->out->table);
	fprintf(b->out->table, "# mrcache-bench %s on %s port %d, GID index %d, QPN %u; "
		"peer target %llu B; mrcache thread refs %s\n", b->opt.host ? "client" : "loopback",
		b->ep.device, b->opt.ib_port, b->ep.gid_index, b->ep.self.qpn,
		(unsigned long long)b->target->len, b->out->thread_refs);
	return strategies_init(b->strategies, &b->ep, b->opt.strategies, b->opt.cache_regions);
}

static void teardown(struct bench *b)
{
	strategies_fini(b->strategies);
	if (b->bounce_mr)
		ibv_dereg_mr(b->bounce_mr);
	if (b->bounce)
		munmap(b->bounce, b->max_size);
	if (b->peer)
		b->peer->ops->close(b->peer);
	ep_close(&b->ep);
	free(b->cells);
}

/* Return: how many cells delivered wrong bytes unexpectedly, or -errno. */
int bench_run(struct bench *b)
{
	int ret = plan_cells(b), bad = 0;
	double per_cell = b->ncells ? b->opt.budget_s / b->ncells : 0;

	for (int i = 0; i < b->ncells && !ret; i++) {
		struct cell *c = &b->cells[i];

		output_progress(b->out, i + 1, b->ncells, c);
		ret = run_cell(b, c, per_cell);
		if (ret)
			fprintf(stderr, "mrcache-bench: cell %d (%s %s %s %zu B) failed\n", i,
				sweep_names[c->spec.sweep], direction_names[c->spec.dir],
				cell_strategy_name(c), c->spec.size);
		else
			output_cell(b->out, c);
		bad += c->res.bad && !c->res.expected_stale;
	}
	if (!ret && b->opt.sweeps & (1u << SWEEP_REGCOST))
		ret = regcost_run(b);
	return ret ? ret : bad;
}

static int report(struct bench *b, int bad)
{
	output_tables(b->out, b);
	output_regcost_table(b->out, b);
	if (b->opt.plot_dir && plot_run(b, b->opt.plot_dir))
		return 1;
	if (bad)
		fprintf(stderr, "mrcache-bench: FAILED: %d cell(s) delivered wrong bytes (BAD in the table)\n", bad);
	return bad ? 1 : 0;
}

static int client(struct bench *b)
{
	struct output out;
	int ret;

	b->max_size = largest_size(&b->opt);
	if (output_open(&out, &b->opt, "", b->opt.host ? "remote" : "loopback"))
		return 1;
	b->out = &out;
	ret = setup(b);
	out.device = b->ep.device;
	if (!ret)
		ret = bench_run(b);
	if (ret >= 0)
		ret = report(b, ret);
	teardown(b);
	output_close(&out);
	if (ret == -ENODEV) {
		fprintf(stderr, "mrcache-bench: SKIP: no RDMA device\n");
		return 77;
	}
	return ret ? 1 : 0;
}

int main(int argc, char **argv)
{
	static struct strategy strategies[NSTRATEGIES];
	struct bench b = { .strategies = strategies };
	int ret = options_parse(argc, argv, &b.opt);

	if (ret)
		return ret > 0 ? 0 : 1;
	if (b.opt.server) {
		struct bench_link l = link_of(&b.opt, 0);

		ret = server_run(&l);
		return ret == -ENODEV ? 77 : ret ? 1 : 0;
	}
	return client(&b);
}
