// SPDX-License-Identifier: BSD-2-Clause
/*
 * Which cells a run measures, in which order: for each group (one
 * direction, size, working set, order and churn) every strategy in turn,
 * so the figures a table sets side by side were measured minutes apart at
 * most, on the same wire and the same peer buffers.
 */
#include <errno.h>
#include <stdlib.h>

#include "strategy.h"

const char *const direction_names[NDIRS] = { "source", "target" };
const char *const sweep_names[NSWEEPS] = { "size", "wset", "churn", "regcost" };

struct planner {
	struct bench *b;
	int cap;
};

static int add_group(struct planner *p, struct cell_spec spec)
{
	for (int s = 0; s < NSTRATEGIES; s++) {
		if (!p->b->strategies[s].available)
			continue;
		if (p->b->ncells == p->cap) {
			struct cell *c = realloc(p->b->cells, (size_t)(p->cap *= 2) * sizeof(*c));

			if (!c)
				return -ENOMEM;
			p->b->cells = c;
		}
		spec.strategy = s;
		p->b->cells[p->b->ncells++] = (struct cell){ .spec = spec };
	}
	return 0;
}

static int plan_sizes(struct planner *p, enum direction d)
{
	const struct options *o = &p->b->opt;
	int ret = 0;

	/* Two buffers: the working set fits every cache. */
	for (int i = 0; i < o->nsizes && !ret; i++)
		ret = add_group(p, (struct cell_spec){ SWEEP_SIZE, d, 0, o->sizes[i], 2,
						      ORDER_CYCLIC, CHURN_NONE, 0 });
	return ret;
}

static int plan_wsets(struct planner *p, enum direction d)
{
	const struct options *o = &p->b->opt;
	int ret = 0;

	for (int i = 0; i < o->nwsets && !ret; i++)
		for (int ord = 0; ord < NORDERS && !ret; ord++)
			ret = add_group(p, (struct cell_spec){ SWEEP_WSET, d, 0, o->ws_size,
							      o->wsets[i], (enum order)ord,
							      CHURN_NONE, 0 });
	return ret;
}

static int plan_churn(struct planner *p, enum direction d)
{
	const struct options *o = &p->b->opt;
	int ret = 0;

	for (int ch = CHURN_MALLOC; ch < NCHURNS && !ret; ch++)
		ret = add_group(p, (struct cell_spec){ SWEEP_CHURN, d, 0, o->ws_size, 4,
						      ORDER_CYCLIC, (enum churn)ch, 0 });
	return ret;
}

int plan_cells(struct bench *b)
{
	static int (*const planners[])(struct planner *, enum direction) = {
		[SWEEP_SIZE] = plan_sizes, [SWEEP_WSET] = plan_wsets,
		[SWEEP_CHURN] = plan_churn,
	};
	struct planner p = { b, 64 };
	int ret = 0;

	b->cells = malloc((size_t)p.cap * sizeof(*b->cells));
	if (!b->cells)
		return -ENOMEM;
	for (int sw = 0; sw < SWEEP_REGCOST && !ret; sw++) {
		int dirs = 0;

		for (int d = 0; d < NDIRS && !ret; d++) {
			if (!(b->opt.sweeps & (1u << sw) && b->opt.dirs & (1u << d)))
				continue;
			/* The reuse sweep in one direction: the caches see the same. */
			if (sw == SWEEP_WSET && dirs++)
				continue;
			ret = planners[sw](&p, (enum direction)d);
		}
	}
	return ret;
}

const char *cell_strategy_name(const struct cell *c)
{
	return c->spec.sweep == SWEEP_REGCOST ? "reg_dereg" : strategy_names[c->spec.strategy];
}
