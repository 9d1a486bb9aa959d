/*
 * itree_test.c - tests of the interval tree (src/itree.c)
 *
 * 1. Randomized operations checked against a brute-force oracle.
 * 2. Deterministic edge cases and the AVL height bound.
 * 3. One writer racing lock-free find_containing() readers (run under TSan).
 *
 * Environment:
 *   MRCACHE_TEST_SEED    extra seed run through every oracle configuration
 *   MRCACHE_ITREE_OPS    total oracle operations (default 10000000)
 *   MRCACHE_ITREE_CONC_MS  length of the concurrency test (default 1000)
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "itree.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---------- helpers ---------- */

/* splitmix64: tiny, full-period and good enough to drive the tests. */
static uint64_t rng_next(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t rng_below(uint64_t *state, uint64_t bound)
{
	return rng_next(state) % bound;
}

static uint64_t env_u64(const char *name, uint64_t fallback)
{
	const char *text = getenv(name);
	char *end;
	unsigned long long value;

	if (!text || !*text)
		return fallback;
	value = strtoull(text, &end, 0);
	return *end ? fallback : value;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* ---------- 1. randomized oracle test ---------- */

enum shape {
	SHAPE_SMALL,	/* coordinates in [0, 64): duplicates, nesting, adjacency galore */
	SHAPE_MIXED,	/* small, page-aligned, random 64-bit and near UINT64_MAX */
};

struct oracle_config {
	uint64_t seed;
	size_t pool;		/* node array size = maximum live intervals */
	enum shape shape;
	unsigned int weight;	/* share of the total operation budget */
};

static const struct oracle_config oracle_configs[] = {
	{ 0x1,                16,   SHAPE_SMALL, 4 },
	{ 0x5eed0002,         64,   SHAPE_SMALL, 4 },
	{ 0xdeadbeef,         64,   SHAPE_MIXED, 4 },
	{ 0x123456789abcdefULL, 256,  SHAPE_SMALL, 3 },
	{ 0xfeedfacecafe,     256,  SHAPE_MIXED, 3 },
	{ 0x42,               1024, SHAPE_MIXED, 1 },
	{ 0x777,              4096, SHAPE_MIXED, 1 },
};

struct oracle {
	struct mrc_itree tree;
	struct mrc_itree_node *nodes;
	size_t pool;
	size_t *slots;		/* live node indices first, then dead ones */
	size_t *slot_of;	/* node index -> position in slots */
	size_t nlive;
	uint64_t *stamp;	/* per node: last overlap query that returned it */
	uint64_t query_id;
	uint64_t rng;
	uint64_t seed;
	enum shape shape;
	size_t op;
};

static void oracle_fail(const struct oracle *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));

static void oracle_fail(const struct oracle *o, const char *fmt, ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	ck_abort_msg("seed=%" PRIu64 " pool=%zu op=%zu (reproduce with MRCACHE_TEST_SEED=%" PRIu64
		     "): %s", o->seed, o->pool, o->op, o->seed, what);
	abort();	/* not reached: ck_abort_msg does not return */
}

/*
 * ck_assert_msg() records a mark point, a write to Check's log, even when it
 * passes; millions of those dominate the run.  Only call Check on failure.
 */
#define oracle_assert(o, cond, ...)				\
	do {							\
		if (!(cond))					\
			oracle_fail(o, __VA_ARGS__);		\
	} while (0)

static void oracle_init(struct oracle *o, const struct oracle_config *cfg, uint64_t seed)
{
	size_t i;

	memset(o, 0, sizeof(*o));
	mrc_itree_init(&o->tree);
	o->pool = cfg->pool;
	o->shape = cfg->shape;
	o->seed = seed;
	o->rng = seed;
	o->nodes = calloc(o->pool, sizeof(*o->nodes));
	o->slots = calloc(o->pool, sizeof(*o->slots));
	o->slot_of = calloc(o->pool, sizeof(*o->slot_of));
	o->stamp = calloc(o->pool, sizeof(*o->stamp));
	ck_assert(o->nodes && o->slots && o->slot_of && o->stamp);
	for (i = 0; i < o->pool; i++)
		o->slots[i] = o->slot_of[i] = i;
}

static void oracle_fini(struct oracle *o)
{
	free(o->nodes);
	free(o->slots);
	free(o->slot_of);
	free(o->stamp);
}

static size_t node_index(const struct oracle *o, const struct mrc_itree_node *node)
{
	return (size_t)(node - o->nodes);
}

static bool is_live(const struct oracle *o, const struct mrc_itree_node *node)
{
	size_t idx;

	if (node < o->nodes || node >= o->nodes + o->pool)
		return false;
	idx = node_index(o, node);
	return o->slot_of[idx] < o->nlive;
}

static void swap_slots(struct oracle *o, size_t a, size_t b)
{
	size_t na = o->slots[a], nb = o->slots[b];

	o->slots[a] = nb;
	o->slots[b] = na;
	o->slot_of[nb] = a;
	o->slot_of[na] = b;
}

static struct mrc_itree_node *random_live(struct oracle *o)
{
	return &o->nodes[o->slots[rng_below(&o->rng, o->nlive)]];
}

/* A coordinate drawn so that collisions and extremes are common. */
static uint64_t random_point(struct oracle *o)
{
	if (o->shape == SHAPE_SMALL)
		return rng_below(&o->rng, 64);
	switch (rng_below(&o->rng, 5)) {
	case 0:
		return rng_below(&o->rng, 64);
	case 1:
		return rng_below(&o->rng, 256) << 12;
	case 2:
		return rng_next(&o->rng);
	case 3:
		return UINT64_MAX - rng_below(&o->rng, 64);
	default:
		return UINT64_MAX / 2 + rng_below(&o->rng, 1 << 20);
	}
}

static uint64_t random_length(struct oracle *o)
{
	switch (rng_below(&o->rng, 4)) {
	case 0:
		return 1;
	case 1:
		return 1 + rng_below(&o->rng, 16);
	case 2:
		return 1 + rng_below(&o->rng, 1 << 16);
	default:
		return o->shape == SHAPE_SMALL ? 1 + rng_below(&o->rng, 64) : rng_next(&o->rng);
	}
}

/* [start, start + len) clamped so that end never wraps. */
static void fresh_range(struct oracle *o, uint64_t *start, uint64_t *end)
{
	uint64_t len = random_length(o);

	*start = random_point(o);
	if (*start == UINT64_MAX)
		*start = UINT64_MAX - 1;
	if (len == 0)
		len = 1;
	*end = len > UINT64_MAX - *start ? UINT64_MAX : *start + len;
	if (o->shape == SHAPE_MIXED && rng_below(&o->rng, 16) == 0)
		*end = UINT64_MAX;	/* full-range end */
}

/* A sub-range of [lo, hi) with end > start; lo < hi. */
static void nested_range(struct oracle *o, uint64_t lo, uint64_t hi, uint64_t *start, uint64_t *end)
{
	uint64_t span = hi - lo;

	*start = lo + rng_below(&o->rng, span);
	*end = *start + 1 + rng_below(&o->rng, hi - *start);
	if (*end > hi)
		*end = hi;
}

/*
 * Ranges for inserts and queries: mostly fresh, often tied to a live node so
 * that duplicates, nesting and adjacency really occur.
 */
static void random_range(struct oracle *o, uint64_t *start, uint64_t *end)
{
	struct mrc_itree_node *peer;

	if (!o->nlive || rng_below(&o->rng, 2) == 0) {
		fresh_range(o, start, end);
		return;
	}
	peer = random_live(o);
	switch (rng_below(&o->rng, 4)) {
	case 0:		/* same start, maybe same range */
		*start = peer->start;
		*end = rng_below(&o->rng, 2) ? peer->end : peer->start + 1;
		break;
	case 1:		/* nested inside the peer */
		nested_range(o, peer->start, peer->end, start, end);
		break;
	case 2:		/* adjacent after the peer */
		if (peer->end == UINT64_MAX) {
			fresh_range(o, start, end);
			break;
		}
		*start = peer->end;
		*end = *start + 1 + rng_below(&o->rng, UINT64_MAX - *start);
		if (*end - *start > 1000)
			*end = *start + 1 + rng_below(&o->rng, 1000);
		break;
	default:	/* adjacent before the peer */
		if (peer->start == 0) {
			fresh_range(o, start, end);
			break;
		}
		*end = peer->start;
		*start = *end - 1 - rng_below(&o->rng, *end < 1000 ? *end : 1000);
		break;
	}
}

static void op_insert(struct oracle *o)
{
	size_t slot = o->nlive + rng_below(&o->rng, o->pool - o->nlive);
	struct mrc_itree_node *node = &o->nodes[o->slots[slot]];
	uint64_t start, end;

	random_range(o, &start, &end);
	oracle_assert(o, start < end, "generator produced [%" PRIx64 ", %" PRIx64 ")", start, end);
	mrc_itree_node_set_range(node, start, end);
	mrc_itree_insert(&o->tree, node);
	swap_slots(o, slot, o->nlive);
	o->nlive++;
}

static void op_remove(struct oracle *o)
{
	size_t slot = rng_below(&o->rng, o->nlive);

	mrc_itree_remove(&o->tree, &o->nodes[o->slots[slot]]);
	o->nlive--;
	swap_slots(o, slot, o->nlive);
}

static bool node_overlaps(const struct mrc_itree_node *node, uint64_t start, uint64_t end)
{
	return node->start < end && node->end > start;
}

static void check_overlap_query(struct oracle *o, uint64_t start, uint64_t end)
{
	struct mrc_itree_node *node;
	uint64_t prev_start = 0;
	size_t found = 0, expected = 0, i;

	o->query_id++;
	for (node = mrc_itree_first_overlap(&o->tree, start, end); node;
	     node = mrc_itree_next_overlap(node, start, end)) {
		oracle_assert(o, is_live(o, node), "overlap returned a dead node");
		oracle_assert(o, node_overlaps(node, start, end), "non-overlapping result");
		oracle_assert(o, node->start >= prev_start, "results out of start order");
		oracle_assert(o, o->stamp[node_index(o, node)] != o->query_id, "duplicate result");
		o->stamp[node_index(o, node)] = o->query_id;
		prev_start = node->start;
		found++;
	}
	for (i = 0; i < o->nlive; i++) {
		size_t idx = o->slots[i];

		if (!node_overlaps(&o->nodes[idx], start, end))
			continue;
		expected++;
		oracle_assert(o, o->stamp[idx] == o->query_id,
			      "missed [%" PRIx64 ", %" PRIx64 ") for query [%" PRIx64 ", %" PRIx64 ")",
			      o->nodes[idx].start, o->nodes[idx].end, start, end);
	}
	oracle_assert(o, found == expected, "found %zu, expected %zu", found, expected);
}

static void check_containing_query(struct oracle *o, uint64_t start, uint64_t end)
{
	struct mrc_itree_node *node = mrc_itree_find_containing(&o->tree, start, end);
	size_t i;

	if (node) {
		oracle_assert(o, is_live(o, node), "containing returned a dead node");
		oracle_assert(o, node->start <= start && node->end >= end, "result does not contain");
		return;
	}
	for (i = 0; i < o->nlive; i++) {
		const struct mrc_itree_node *cand = &o->nodes[o->slots[i]];

		oracle_assert(o, !(cand->start <= start && cand->end >= end),
			      "missed container [%" PRIx64 ", %" PRIx64 ") of [%" PRIx64 ", %" PRIx64 ")",
			      cand->start, cand->end, start, end);
	}
}

static void query_range(struct oracle *o, uint64_t *start, uint64_t *end)
{
	switch (rng_below(&o->rng, 16)) {
	case 0:		/* everything */
		*start = 0;
		*end = UINT64_MAX;
		return;
	case 1:		/* empty query: still well defined by the formula */
		*start = *end = random_point(o);
		return;
	default:
		random_range(o, start, end);
	}
}

static void check_structure(struct oracle *o)
{
	oracle_assert(o, mrc_itree_check(&o->tree) == 0, "mrc_itree_check failed");
	oracle_assert(o, o->tree.count == o->nlive, "count %zu, live %zu", o->tree.count, o->nlive);
}

/*
 * Alternate growing and shrinking phases so the tree keeps passing through
 * every size between empty and full.
 */
static void oracle_step(struct oracle *o)
{
	bool growing = (o->op / (2 * o->pool)) % 2 == 0;
	uint64_t roll = rng_below(&o->rng, 100), start, end;
	unsigned int insert_pct = growing ? 45 : 15, remove_pct = growing ? 15 : 45;

	if (roll < insert_pct) {
		if (o->nlive < o->pool)
			op_insert(o);
	} else if (roll < insert_pct + remove_pct) {
		if (o->nlive)
			op_remove(o);
	} else if (roll < 80) {
		query_range(o, &start, &end);
		check_overlap_query(o, start, end);
	} else {
		query_range(o, &start, &end);
		check_containing_query(o, start, end);
	}
}

static void run_oracle(const struct oracle_config *cfg, uint64_t seed, size_t ops)
{
	struct oracle o;

	oracle_init(&o, cfg, seed);
	for (o.op = 0; o.op < ops; o.op++) {
		oracle_step(&o);
		if (o.op % 256 == 0)
			check_structure(&o);
	}
	check_structure(&o);
	while (o.nlive)
		op_remove(&o);
	check_structure(&o);
	ck_assert_ptr_null(o.tree.root);
	oracle_fini(&o);
}

static size_t ops_for_config(const struct oracle_config *cfg)
{
	uint64_t total = env_u64("MRCACHE_ITREE_OPS", 10000000);
	unsigned int weights = 0;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(oracle_configs); i++)
		weights += oracle_configs[i].weight;
	return (size_t)(total * cfg->weight / weights) + 1;
}

START_TEST(test_oracle_fixed_seed)
{
	const struct oracle_config *cfg = &oracle_configs[_i];

	run_oracle(cfg, cfg->seed, ops_for_config(cfg));
}
END_TEST

/* MRCACHE_TEST_SEED replays every configuration with the given seed. */
START_TEST(test_oracle_env_seed)
{
	const struct oracle_config *cfg = &oracle_configs[_i];
	const char *text = getenv("MRCACHE_TEST_SEED");

	if (!text || !*text)
		return;
	run_oracle(cfg, env_u64("MRCACHE_TEST_SEED", 0), ops_for_config(cfg));
}
END_TEST

/* ---------- 2. deterministic edge cases ---------- */

static void set_and_insert(struct mrc_itree *tree, struct mrc_itree_node *node,
			   uint64_t start, uint64_t end)
{
	mrc_itree_node_set_range(node, start, end);
	mrc_itree_insert(tree, node);
	ck_assert_int_eq(mrc_itree_check(tree), 0);
}

START_TEST(test_empty_tree)
{
	struct mrc_itree tree;

	mrc_itree_init(&tree);
	ck_assert_int_eq(mrc_itree_check(&tree), 0);
	ck_assert_ptr_null(mrc_itree_first(&tree));
	ck_assert_ptr_null(mrc_itree_first_overlap(&tree, 0, UINT64_MAX));
	ck_assert_ptr_null(mrc_itree_find_containing(&tree, 0, 1));
	ck_assert_uint_eq(tree.count, 0);
}
END_TEST

START_TEST(test_single_node)
{
	struct mrc_itree tree;
	struct mrc_itree_node node;

	mrc_itree_init(&tree);
	set_and_insert(&tree, &node, 10, 20);
	ck_assert_ptr_eq(mrc_itree_find_containing(&tree, 10, 20), &node);
	ck_assert_ptr_eq(mrc_itree_find_containing(&tree, 12, 15), &node);
	ck_assert_ptr_null(mrc_itree_find_containing(&tree, 9, 15));
	ck_assert_ptr_null(mrc_itree_find_containing(&tree, 15, 21));
	/* Half-open: touching ranges do not overlap. */
	ck_assert_ptr_null(mrc_itree_first_overlap(&tree, 20, 30));
	ck_assert_ptr_null(mrc_itree_first_overlap(&tree, 0, 10));
	ck_assert_ptr_eq(mrc_itree_first_overlap(&tree, 19, 20), &node);
	ck_assert_ptr_eq(mrc_itree_first_overlap(&tree, 0, 11), &node);
	ck_assert_ptr_null(mrc_itree_next_overlap(&node, 0, 100));
	ck_assert_ptr_eq(mrc_itree_first(&tree), &node);
	ck_assert_ptr_null(mrc_itree_next(&node));
	mrc_itree_remove(&tree, &node);
	ck_assert_int_eq(mrc_itree_check(&tree), 0);
	ck_assert_ptr_null(tree.root);
	ck_assert_ptr_null(mrc_itree_find_containing(&tree, 12, 15));
	/* A removed node can come back with a new range. */
	set_and_insert(&tree, &node, 100, 200);
	ck_assert_ptr_eq(mrc_itree_find_containing(&tree, 150, 160), &node);
	ck_assert_ptr_null(mrc_itree_find_containing(&tree, 12, 15));
}
END_TEST

START_TEST(test_remove_root)
{
	struct mrc_itree tree;
	struct mrc_itree_node n[7];
	static const uint64_t starts[7] = { 40, 20, 60, 10, 30, 50, 70 };
	int i;

	mrc_itree_init(&tree);
	for (i = 0; i < 7; i++)
		set_and_insert(&tree, &n[i], starts[i], starts[i] + 5);
	ck_assert_ptr_eq(tree.root, &n[0]);
	/* Root with two children whose successor is deeper down. */
	mrc_itree_remove(&tree, &n[0]);
	ck_assert_int_eq(mrc_itree_check(&tree), 0);
	ck_assert_ptr_eq(tree.root, &n[5]);
	/* Successor is the root's direct right child now. */
	mrc_itree_remove(&tree, tree.root);
	ck_assert_int_eq(mrc_itree_check(&tree), 0);
	while (tree.root) {
		mrc_itree_remove(&tree, tree.root);
		ck_assert_int_eq(mrc_itree_check(&tree), 0);
	}
	ck_assert_uint_eq(tree.count, 0);
}
END_TEST

START_TEST(test_extreme_ranges)
{
	struct mrc_itree tree;
	struct mrc_itree_node all, top, bottom, *first;

	mrc_itree_init(&tree);
	set_and_insert(&tree, &top, UINT64_MAX - 1, UINT64_MAX);
	set_and_insert(&tree, &bottom, 0, 1);
	ck_assert_ptr_eq(mrc_itree_find_containing(&tree, UINT64_MAX - 1, UINT64_MAX), &top);
	ck_assert_ptr_eq(mrc_itree_find_containing(&tree, 0, 1), &bottom);
	ck_assert_ptr_null(mrc_itree_find_containing(&tree, 0, 2));
	set_and_insert(&tree, &all, 0, UINT64_MAX);
	ck_assert_ptr_nonnull(mrc_itree_find_containing(&tree, 0, 2));
	ck_assert_ptr_eq(mrc_itree_find_containing(&tree, 0, UINT64_MAX), &all);
	/* Equal starts: [0, 1) and [0, MAX) both come back, in insertion order. */
	first = mrc_itree_first_overlap(&tree, 0, 1);
	ck_assert_ptr_eq(first, &bottom);
	ck_assert_ptr_eq(mrc_itree_next_overlap(first, 0, 1), &all);
	ck_assert_ptr_null(mrc_itree_next_overlap(&all, 0, 1));
	/* Only the full range reaches the top byte besides top itself. */
	ck_assert_ptr_eq(mrc_itree_first_overlap(&tree, UINT64_MAX - 1, UINT64_MAX), &all);
	ck_assert_ptr_eq(mrc_itree_next_overlap(&all, UINT64_MAX - 1, UINT64_MAX), &top);
}
END_TEST

/* Sorted insertion is the classic worst case of an unbalanced tree. */
static void check_sorted_insert(bool ascending)
{
	enum { N = 1 << 16 };
	struct mrc_itree tree;
	struct mrc_itree_node *nodes = calloc(N, sizeof(*nodes));
	double bound;
	size_t i;

	ck_assert_ptr_nonnull(nodes);
	mrc_itree_init(&tree);
	for (i = 0; i < N; i++) {
		uint64_t start = ascending ? i * 16 : (N - i) * 16;

		mrc_itree_node_set_range(&nodes[i], start, start + 8);
		mrc_itree_insert(&tree, &nodes[i]);
		if ((i & (i + 1)) == 0) {	/* at sizes 2^k - 1 */
			bound = 1.45 * __builtin_log2((double)(i + 1)) + 2;
			ck_assert_int_eq(mrc_itree_check(&tree), 0);
			ck_assert_msg(tree.root->height <= bound, "height %d > %.1f at n=%zu",
				      tree.root->height, bound, i + 1);
		}
	}
	bound = 1.45 * __builtin_log2((double)N) + 2;
	ck_assert_msg(tree.root->height <= bound, "height %d > %.1f", tree.root->height, bound);
	ck_assert_int_eq(mrc_itree_check(&tree), 0);
	for (i = 0; i < N; i++) {
		/* Plain tests in the loop: a passing ck_assert costs a syscall. */
		if (mrc_itree_find_containing(&tree, nodes[i].start + 1, nodes[i].end) != &nodes[i])
			ck_abort_msg("node %zu not found", i);
		if (mrc_itree_find_containing(&tree, nodes[i].end, nodes[i].end + 1))
			ck_abort_msg("gap after node %zu reported as covered", i);
	}
	for (i = 0; i < N; i++) {
		mrc_itree_remove(&tree, &nodes[i]);
		if (i % 4096 == 0)
			ck_assert_int_eq(mrc_itree_check(&tree), 0);
	}
	ck_assert_ptr_null(tree.root);
	free(nodes);
}

START_TEST(test_ascending_height)
{
	check_sorted_insert(true);
}
END_TEST

START_TEST(test_descending_height)
{
	check_sorted_insert(false);
}
END_TEST

/* The validator itself must be able to fail, or the oracle proves nothing. */
START_TEST(test_check_detects_corruption)
{
	struct mrc_itree tree;
	struct mrc_itree_node n[3];
	struct mrc_itree_node *root, *leaf;
	uint64_t saved;

	mrc_itree_init(&tree);
	set_and_insert(&tree, &n[0], 10, 20);
	set_and_insert(&tree, &n[1], 0, 5);
	set_and_insert(&tree, &n[2], 30, 40);
	root = tree.root;
	leaf = root->left;

	/* The spine holds SPINE, not its exact maximum... */
	saved = root->max_end;
	ck_assert_uint_eq(saved, MRC_ITREE_SPINE);
	root->max_end = 40;
	ck_assert_int_eq(mrc_itree_check(&tree), -EINVAL);
	root->max_end = saved;

	/* ...the nodes off it their exact maximum, and the tree the largest end. */
	saved = leaf->max_end;
	leaf->max_end = saved + 1;
	ck_assert_int_eq(mrc_itree_check(&tree), -EINVAL);
	leaf->max_end = saved;
	ck_assert_uint_eq(tree.max_end, 40);
	tree.max_end = 41;
	ck_assert_int_eq(mrc_itree_check(&tree), -EINVAL);
	tree.max_end = 40;

	root->height++;
	ck_assert_int_eq(mrc_itree_check(&tree), -EINVAL);
	root->height--;

	leaf->parent = NULL;
	ck_assert_int_eq(mrc_itree_check(&tree), -EINVAL);
	leaf->parent = root;

	saved = leaf->start;
	leaf->start = 15;	/* out of order, max_end still fine */
	ck_assert_int_eq(mrc_itree_check(&tree), -EINVAL);
	leaf->start = saved;

	tree.count++;
	ck_assert_int_eq(mrc_itree_check(&tree), -EINVAL);
	tree.count--;

	ck_assert_int_eq(mrc_itree_check(&tree), 0);
}
END_TEST

/* ---------- 3. writer vs. lock-free readers ---------- */

enum { CONC_POOL = 512, CONC_SPACE = 4096, CONC_READERS = 2 };

struct conc_node {
	struct mrc_itree_node node;	/* first: a tree node pointer is a conc_node pointer */
	bool fixed_range;		/* range never changes: results always checkable */
	bool live;			/* writer-private */
};

struct conc_state {
	struct mrc_itree tree;
	struct conc_node nodes[CONC_POOL];
	/*
	 * Seqlock over range changes: odd while the writer rewrites a recycled
	 * node's range.  A reader that sees the same even value before its
	 * query and after re-reading the result's range knows no range
	 * changed in between, so the re-read is what the query saw.
	 */
	uint64_t range_seq;
	int stop;
	uint64_t deadline_ns;
};

struct reader_result {
	struct conc_state *state;
	uint64_t seed;
	uint64_t queries, hits, checked, bad;
	uint64_t bad_start, bad_end, query_start, query_end;
};

static void conc_random_range(uint64_t *rng, uint64_t *start, uint64_t *end)
{
	*start = rng_below(rng, CONC_SPACE);
	*end = *start + 1 + rng_below(rng, 256);
}

static void writer_recycle_range(struct conc_state *s, struct conc_node *cn, uint64_t *rng)
{
	uint64_t start, end, seq = s->range_seq;

	conc_random_range(rng, &start, &end);
	/* Pairs with the readers' acquire loads of range_seq. */
	__atomic_store_n(&s->range_seq, seq + 1, __ATOMIC_RELEASE);
	/* set_range's release stores keep the odd seq visible before the new range. */
	mrc_itree_node_set_range(&cn->node, start, end);
	__atomic_store_n(&s->range_seq, seq + 2, __ATOMIC_RELEASE);
}

static void writer_step(struct conc_state *s, uint64_t *rng)
{
	struct conc_node *cn = &s->nodes[rng_below(rng, CONC_POOL)];

	if (cn->live) {
		mrc_itree_remove(&s->tree, &cn->node);
		cn->live = false;
		return;
	}
	if (!cn->fixed_range)
		writer_recycle_range(s, cn, rng);
	mrc_itree_insert(&s->tree, &cn->node);
	cn->live = true;
}

static void *writer_thread(void *arg)
{
	struct conc_state *s = arg;
	uint64_t rng = 0xabcdef, steps = 0;

	while (now_ns() < s->deadline_ns) {
		writer_step(s, &rng);
		steps++;
	}
	__atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
	return (void *)(uintptr_t)steps;
}

static void reader_check(struct reader_result *r, struct mrc_itree_node *found,
			 uint64_t seq_before, uint64_t start, uint64_t end)
{
	struct conc_state *s = r->state;
	uint64_t node_start, node_end, seq_after;

	/* Acquire: the seq load below cannot move above these. */
	node_start = __atomic_load_n(&found->start, __ATOMIC_ACQUIRE);
	node_end = __atomic_load_n(&found->end, __ATOMIC_ACQUIRE);
	seq_after = __atomic_load_n(&s->range_seq, __ATOMIC_ACQUIRE);
	r->hits++;
	if (!((struct conc_node *)found)->fixed_range &&
	    (seq_before != seq_after || (seq_before & 1)))
		return;		/* range may have been rewritten since the query read it */
	r->checked++;
	if (node_start <= start && node_end >= end)
		return;
	if (!r->bad++) {
		r->bad_start = node_start;
		r->bad_end = node_end;
		r->query_start = start;
		r->query_end = end;
	}
}

static void *reader_thread(void *arg)
{
	struct reader_result *r = arg;
	struct conc_state *s = r->state;
	uint64_t rng = r->seed, start, end, seq_before;
	struct mrc_itree_node *found;

	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
		start = rng_below(&rng, CONC_SPACE);
		end = start + 1 + rng_below(&rng, 16);
		seq_before = __atomic_load_n(&s->range_seq, __ATOMIC_ACQUIRE);
		found = mrc_itree_find_containing(&s->tree, start, end);
		r->queries++;
		if (found)
			reader_check(r, found, seq_before, start, end);
	}
	return NULL;
}

static void conc_setup(struct conc_state *s)
{
	uint64_t rng = 0x5151, start, end;
	size_t i;

	memset(s, 0, sizeof(*s));
	mrc_itree_init(&s->tree);
	for (i = 0; i < CONC_POOL; i++) {
		s->nodes[i].fixed_range = i % 2 == 0;
		conc_random_range(&rng, &start, &end);
		mrc_itree_node_set_range(&s->nodes[i].node, start, end);
		if (i % 4 < 2) {	/* start half full */
			mrc_itree_insert(&s->tree, &s->nodes[i].node);
			s->nodes[i].live = true;
		}
	}
}

START_TEST(test_concurrent_readers)
{
	static struct conc_state state;
	struct reader_result results[CONC_READERS];
	pthread_t writer, readers[CONC_READERS];
	uint64_t hits = 0, checked = 0, queries = 0;
	void *writer_steps;
	size_t i, live = 0;

	conc_setup(&state);
	state.deadline_ns = now_ns() + env_u64("MRCACHE_ITREE_CONC_MS", 1000) * 1000000ULL;
	for (i = 0; i < CONC_READERS; i++) {
		results[i] = (struct reader_result){ .state = &state, .seed = 1000 + i };
		ck_assert_int_eq(pthread_create(&readers[i], NULL, reader_thread, &results[i]), 0);
	}
	ck_assert_int_eq(pthread_create(&writer, NULL, writer_thread, &state), 0);
	ck_assert_int_eq(pthread_join(writer, &writer_steps), 0);
	for (i = 0; i < CONC_READERS; i++) {
		struct reader_result *r = &results[i];

		ck_assert_int_eq(pthread_join(readers[i], NULL), 0);
		ck_assert_msg(r->bad == 0, "reader %zu: %" PRIu64 " bad results, first [%" PRIu64
			      ", %" PRIu64 ") for query [%" PRIu64 ", %" PRIu64 ")", i, r->bad,
			      r->bad_start, r->bad_end, r->query_start, r->query_end);
		hits += r->hits;
		checked += r->checked;
		queries += r->queries;
	}
	for (i = 0; i < CONC_POOL; i++)
		live += state.nodes[i].live;
	ck_assert_int_eq(mrc_itree_check(&state.tree), 0);
	ck_assert_uint_eq(state.tree.count, live);
	/* The race must really have been exercised. */
	ck_assert_uint_gt((uintptr_t)writer_steps, 1000);
	ck_assert_uint_gt(checked, 100);
	fprintf(stderr, "itree concurrency: %" PRIuPTR " writer ops, %" PRIu64 " queries, %" PRIu64
		" hits, %" PRIu64 " checked\n", (uintptr_t)writer_steps, queries, hits, checked);
}
END_TEST

/* ---------- runner ---------- */

static Suite *itree_suite(void)
{
	Suite *suite = suite_create("itree");
	TCase *edge = tcase_create("edge");
	TCase *oracle = tcase_create("oracle");
	TCase *conc = tcase_create("concurrency");

	tcase_add_test(edge, test_empty_tree);
	tcase_add_test(edge, test_single_node);
	tcase_add_test(edge, test_remove_root);
	tcase_add_test(edge, test_extreme_ranges);
	tcase_add_test(edge, test_ascending_height);
	tcase_add_test(edge, test_descending_height);
	tcase_add_test(edge, test_check_detects_corruption);
	tcase_set_timeout(edge, 120);
	suite_add_tcase(suite, edge);

	tcase_add_loop_test(oracle, test_oracle_fixed_seed, 0, ARRAY_SIZE(oracle_configs));
	tcase_add_loop_test(oracle, test_oracle_env_seed, 0, ARRAY_SIZE(oracle_configs));
	/* Sanitizer builds are several times slower; the harness owns the overall limit. */
	tcase_set_timeout(oracle, 600);
	suite_add_tcase(suite, oracle);

	tcase_add_test(conc, test_concurrent_readers);
	tcase_set_timeout(conc, 120);
	suite_add_tcase(suite, conc);
	return suite;
}

int main(void)
{
	SRunner *runner = srunner_create(itree_suite());
	int failed;

	srunner_run_all(runner, CK_NORMAL);
	failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed ? 1 : 0;
}
