/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Reuse patterns: the application's working set of buffers, the order it
 * sends from them, and churn (every K messages one buffer is given back
 * and another taken: free+malloc or munmap+mmap). Also the bytes each
 * message carries, so either side can check what arrived without a copy
 * of it: buffer id, generation and message number determine every byte.
 */
#ifndef MRCACHE_BENCH_PATTERN_H
#define MRCACHE_BENCH_PATTERN_H

#include <stddef.h>
#include <stdint.h>

enum order { ORDER_CYCLIC, ORDER_RANDOM, NORDERS };
enum churn { CHURN_NONE, CHURN_MALLOC, CHURN_MMAP, NCHURNS };

extern const char *const order_names[NORDERS];
extern const char *const churn_names[NCHURNS];

struct wbuf {
	unsigned char *p;
	uint32_t id;		/* stable index in the working set */
	uint32_t gen;		/* bumped at every churn: new memory, new bytes */
	void *owner;		/* the strategy's per-buffer state (prereg MR) */
};

struct wset {
	struct wbuf *bufs;
	int n;
	size_t size;
	size_t stride;		/* CHURN_NONE/MMAP: a guard page between buffers */
	unsigned char *arena;
	enum order order;
	enum churn churn;
	uint64_t rng;
};

int wset_create(struct wset *w, int n, size_t size, enum order order, enum churn churn);
void wset_destroy(struct wset *w);
/* Buffer of message @i in the set's order. */
struct wbuf *wset_pick(struct wset *w, uint64_t i);
/* Give @b back and take new memory for it (may land at the same address). */
int wset_churn(struct wset *w, struct wbuf *b);

/* The bytes of buffer (id, gen) carrying message @msgno. */
void pattern_fill(void *p, size_t len, uint32_t id, uint32_t gen);
void pattern_stamp(void *p, size_t len, uint64_t msgno);
/* Return: 1 when @p holds exactly what fill+stamp wrote. */
int pattern_check(const void *p, size_t len, uint32_t id, uint32_t gen, uint64_t msgno);

#endif
