/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * mrcache-bench: the client's state and the cell it measures.
 *
 * A cell is one (sweep, direction, strategy, size, working set, order,
 * churn) combination. The client (or the single loopback process) runs
 * every cell on the same endpoint and the same peer buffers, one after
 * the other, and checks the bytes each message delivered.
 */
#ifndef MRCACHE_BENCH_BENCH_H
#define MRCACHE_BENCH_BENCH_H

#include <stdint.h>

#include "endpoint.h"
#include "options.h"
#include "pattern.h"
#include "peer.h"

/* Which side's buffer goes through the strategy. */
enum direction {
	DIR_SOURCE,	/* our buffer is the RDMA WRITE's source */
	DIR_TARGET,	/* our buffer is the target of the peer's WRITE */
	NDIRS
};

enum sweep {
	SWEEP_SIZE,	/* latency against message size, small working set */
	SWEEP_WSET,	/* bandwidth against working set, cyclic and random */
	SWEEP_CHURN,	/* buffers replaced every K messages */
	SWEEP_REGCOST,	/* ibv_reg_mr + ibv_dereg_mr alone, 4K and THP */
	NSWEEPS
};

extern const char *const direction_names[NDIRS];
extern const char *const sweep_names[NSWEEPS];

/* Registration of the whole buffer of every strategy: both directions. */
#define BENCH_ACCESS (IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE)

struct cell_spec {
	enum sweep sweep;
	enum direction dir;
	int strategy;		/* enum strategy_id */
	size_t size;
	int nbufs;
	enum order order;
	enum churn churn;
	int thp;		/* regcost: transparent huge pages asked for */
};

struct cell_result {
	double median_us, p10_us, p90_us, min_us, first_us;
	int reps;
	uint64_t messages;	/* every message sent, timed or not */
	uint64_t bad;		/* messages whose bytes did not arrive */
	uint64_t hits, misses;	/* the cache's, during the cell */
	int expected_stale;	/* manual monitor under churn: bad is the point */
};

struct cell {
	struct cell_spec spec;
	struct cell_result res;
};

struct strategy;
struct output;

struct bench {
	struct options opt;
	struct ep ep;
	struct peer *peer;
	const struct peer_target *target;	/* the peer's buffer for our WRITEs */
	struct strategy *strategies;
	unsigned char *bounce;	/* static strategy's registered copy buffer */
	struct ibv_mr *bounce_mr;
	size_t max_size;
	uint64_t msgno;		/* every message of the run has its own number */
	struct output *out;
	struct cell *cells;	/* every cell of the run, in order */
	int ncells;
};

/* The cells the options ask for, strategies side by side in each group. */
int plan_cells(struct bench *b);
/* Measure one cell: @budget_s of wall time at most, beyond its minimum. */
int run_cell(struct bench *b, struct cell *c, double budget_s);
/* The registration cost curve (its cells are appended to b->cells). */
int regcost_run(struct bench *b);
/* Name of a cell's strategy ("reg_dereg" for the cost curve). */
const char *cell_strategy_name(const struct cell *c);

/* Run every cell the options ask for; results go to the outputs. */
int bench_run(struct bench *b);

#endif
