/*
 * itree.h - augmented AVL interval tree, the index of the registration cache
 *
 * Each node covers the half-open range [start, end).  The tree is ordered by
 * start (equal starts allowed) and every node caches max_end, the largest end
 * in its subtree, so overlap and containment queries can skip whole subtrees.
 * Nodes on the right spine (the root and its chain of right children, down
 * to the last node) hold MRC_ITREE_SPINE instead, and the tree holds the
 * largest end of all: see itree.c, "The right spine".
 *
 * Concurrency: all functions except mrc_itree_find_containing() must be
 * serialized by the caller (the cache mutex).  mrc_itree_find_containing()
 * may run without that lock, concurrently with one writer, provided node
 * memory stays valid for the lifetime of the tree (nodes are type-stable).
 * Under concurrent modification it may miss a node and return NULL; it never
 * returns a node whose range, as it read it, does not contain the query.
 */
#ifndef MRC_ITREE_H
#define MRC_ITREE_H

#include <stdint.h>
#include <stddef.h>

/*
 * An AVL tree of height h holds at least Fib(h + 2) - 1 nodes, so 2^64 nodes
 * fit in height 93.  Bounds the lock-free walk and the validator's recursion.
 */
#define MRC_ITREE_MAX_HEIGHT 96

/* max_end of every node on the right spine: an upper bound never reached. */
#define MRC_ITREE_SPINE UINT64_MAX

/*
 * aux, start and end last, in that order: an owner that keeps a word of
 * its own right after the node (the cache's regions, region.h) has what
 * a lookup reads of a node in 28 bytes.
 */
struct mrc_itree_node {
	struct mrc_itree_node *left, *right, *parent;
	uint64_t max_end;  /* largest end in this subtree (the augmentation), or SPINE */
	int32_t height;
	uint32_t aux;       /* the owner's: the tree never reads or writes it */
	uint64_t start;    /* [start, end), end > start, set by the caller before insert */
	uint64_t end;
};

struct mrc_itree {
	struct mrc_itree_node *root;
	size_t count;
	/* Last node in start order: an insert past it needs no descent. */
	struct mrc_itree_node *rightmost;
	uint64_t max_end;	/* largest end of all nodes, 0 when empty */
};

void mrc_itree_init(struct mrc_itree *tree);
void mrc_itree_node_set_range(struct mrc_itree_node *node, uint64_t start, uint64_t end);
void mrc_itree_insert(struct mrc_itree *tree, struct mrc_itree_node *node);
void mrc_itree_remove(struct mrc_itree *tree, struct mrc_itree_node *node);

struct mrc_itree_node *mrc_itree_first_overlap(const struct mrc_itree *tree,
					       uint64_t start, uint64_t end);
struct mrc_itree_node *mrc_itree_next_overlap(const struct mrc_itree_node *node,
					      uint64_t start, uint64_t end);

struct mrc_itree_node *mrc_itree_find_containing(const struct mrc_itree *tree,
						 uint64_t start, uint64_t end);

struct mrc_itree_node *mrc_itree_first(const struct mrc_itree *tree);
struct mrc_itree_node *mrc_itree_next(const struct mrc_itree_node *node);
int mrc_itree_check(const struct mrc_itree *tree);

#endif /* MRC_ITREE_H */
