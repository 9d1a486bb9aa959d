/*
 * itree.c - augmented AVL interval tree, the index of the registration cache
 *
 * Why AVL: its height bound (about 1.44 log2 n) is tighter than a red-black
 * tree's, which shortens the lock-free hit path, and its rebalancing needs
 * only heights, which we keep next to max_end anyway.
 *
 * Memory ordering.  mrc_itree_find_containing() walks the tree without the
 * writer lock.  Every field it reads (root, left, right, start, end, max_end)
 * is therefore written with an atomic store by all writer code, so the two
 * sides never form a data race.  Child and root pointers are stored with
 * release and loaded with acquire: a reader that follows a freshly linked
 * pointer also sees the fields the writer initialised before linking.  The
 * scalars carry no ordering duty of their own, so relaxed accesses suffice
 * (mrc_itree_node_set_range() is the exception, see there).  The writer reads
 * these fields plainly: only the serialized writer stores to them, so its
 * own reads race with nothing.  parent and height are writer-private.
 *
 * The right spine.  The root and its chain of right children down to the
 * last node hold MRC_ITREE_SPINE as max_end, every other node its exact
 * subtree maximum, and the tree itself the largest end of all (tree->
 * max_end).  Why: ranges registered in address order are each inserted
 * after the last node, and each raised max_end along the whole spine, a
 * chain of about log2 n dependent loads per miss.  With the spine at SPINE,
 * such an insert stops at its parent.  What the queries lose is little.
 * They rely on an exact max_end only for a left child ("the answer, if
 * any, is in there"), and a left child is never on the spine.  A right
 * child's max_end only decides whether to look into it at all, so a bound
 * too high costs a detour, never a wrong answer; on the spine nothing
 * follows that subtree in start order, so a walk that finds nothing there
 * is done.  The root's test, which turns away a query past every end in one
 * load, reads tree->max_end instead.  SPINE is kept by update_summary(): the
 * last node gets it, and a node whose right child has it gets it through
 * the maximum; the nodes a removal brings onto the spine get it at once
 * (join_spine()).
 */
#include "itree.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>

#define itree_store_ptr(field, val) __atomic_store_n(&(field), (val), __ATOMIC_RELEASE)
#define itree_load_ptr(field) __atomic_load_n(&(field), __ATOMIC_ACQUIRE)
#define itree_store_val(field, val) __atomic_store_n(&(field), (val), __ATOMIC_RELAXED)
#define itree_load_val(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)

/*
 * A consistent tree needs at most MAX_HEIGHT steps; a reader racing with
 * rotations may take detours, and with recycled nodes could even chase a
 * cycle, so give up after twice that and let the caller take the slow path.
 */
#define ITREE_MAX_READER_STEPS (2 * MRC_ITREE_MAX_HEIGHT)

typedef struct mrc_itree_node node_t;

static inline int32_t height_of(const node_t *node)
{
	return node ? node->height : 0;
}

/* end > start >= 0, so 0 is below every real max_end. */
static inline uint64_t max_end_of(const node_t *node)
{
	return node ? node->max_end : 0;
}

static inline uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

static void update_height(node_t *node)
{
	int32_t hl = height_of(node->left), hr = height_of(node->right);

	node->height = 1 + (hl > hr ? hl : hr);
}

/*
 * Recompute height and max_end of @node from its children: SPINE for the
 * last node, and through the maximum for every node above it on the spine.
 */
static void update_summary(const struct mrc_itree *tree, node_t *node)
{
	uint64_t max_end;

	update_height(node);
	if (node == tree->rightmost)
		max_end = MRC_ITREE_SPINE;
	else
		max_end = max_u64(node->end, max_u64(max_end_of(node->left),
						     max_end_of(node->right)));
	/* Skip redundant stores: they would bounce the line readers are on. */
	if (max_end != node->max_end)
		itree_store_val(node->max_end, max_end);
}

/* Make @parent (or the root, if @parent is NULL) point to @new instead of @old. */
static void replace_child(struct mrc_itree *tree, node_t *parent, node_t *old, node_t *new)
{
	if (!parent)
		itree_store_ptr(tree->root, new);
	else if (parent->left == old)
		itree_store_ptr(parent->left, new);
	else
		itree_store_ptr(parent->right, new);
}

/*
 * The rotations unhook the pivot from the old subtree root before pointing
 * the pivot back at it, so a concurrent reader can never see a two-node
 * cycle; the price is that the pivot is briefly unreachable from above,
 * which only costs the reader a spurious miss.  Summaries are recomputed
 * before the new subtree root is published so its max_end is already right.
 */
static node_t *rotate_left(struct mrc_itree *tree, node_t *x)
{
	node_t *y = x->right, *inner = y->left, *parent = x->parent;

	itree_store_ptr(x->right, inner);
	if (inner)
		inner->parent = x;
	update_summary(tree, x);
	itree_store_ptr(y->left, x);
	x->parent = y;
	update_summary(tree, y);
	y->parent = parent;
	replace_child(tree, parent, x, y);
	return y;
}

static node_t *rotate_right(struct mrc_itree *tree, node_t *x)
{
	node_t *y = x->left, *inner = y->right, *parent = x->parent;

	itree_store_ptr(x->left, inner);
	if (inner)
		inner->parent = x;
	update_summary(tree, x);
	itree_store_ptr(y->right, x);
	x->parent = y;
	update_summary(tree, y);
	y->parent = parent;
	replace_child(tree, parent, x, y);
	return y;
}

/* Restore the AVL bound at @node (summary already current); returns the subtree root. */
static node_t *rebalance(struct mrc_itree *tree, node_t *node)
{
	int32_t balance = height_of(node->left) - height_of(node->right);

	if (balance > 1) {
		if (height_of(node->left->left) < height_of(node->left->right))
			rotate_left(tree, node->left);
		return rotate_right(tree, node);
	}
	if (balance < -1) {
		if (height_of(node->right->right) < height_of(node->right->left))
			rotate_right(tree, node->right);
		return rotate_left(tree, node);
	}
	return node;
}

/*
 * After a removal: walk from @node towards the root fixing summaries and
 * balance, up to the first node at or above @settle that keeps its height
 * and max_end without a rotation. A node's summary depends only on its own
 * end and its children's summaries, so nothing above that node changes
 * either. The nodes whose children the removal relinked are all at or
 * below @node; @settle is where stopping becomes sound: the successor that
 * took the removed node's place carries that node's summary, not its own,
 * until it is recomputed. Removing the oldest region (eviction,
 * invalidation in address order) thus settles within a level or two
 * instead of walking the height of the tree.
 */
static void fixup_after_remove(struct mrc_itree *tree, node_t *node,
			       const node_t *settle)
{
	bool may_stop = false;

	while (node) {
		int32_t old_height = node->height;
		uint64_t old_max_end = node->max_end;
		node_t *top;

		may_stop |= node == settle;
		update_summary(tree, node);
		top = rebalance(tree, node);
		if (may_stop && top == node && node->height == old_height &&
		    node->max_end == old_max_end)
			break;
		node = top->parent;
	}
}

/*
 * After an insert only: a new leaf raises max_end exactly along its
 * ancestors whose max_end is below its end (one store each, no height
 * work), and changes heights only up to the first ancestor whose height
 * stays the same or that a rotation brings back to its old height. On a
 * miss this halves the cost of the insert: heights settle within a level
 * or two, and a leaf inserted after the last node finds its parent at
 * SPINE already (regions registered in address order).
 */
static void fixup_after_insert(struct mrc_itree *tree, node_t *leaf)
{
	for (node_t *n = leaf->parent; n && n->max_end < leaf->end; n = n->parent)
		itree_store_val(n->max_end, leaf->end);
	/*
	 * Heights only: max_end is right above, and a rotation below an
	 * ancestor leaves the set of nodes under it, so its max_end, as it was
	 * (rotations recompute the summaries of the nodes they move).
	 */
	for (node_t *n = leaf->parent; n;) {
		int32_t old_height = n->height;
		node_t *top;

		update_height(n);
		top = rebalance(tree, n);
		if (top->height == old_height)
			break;
		n = top->parent;
	}
}

static node_t *leftmost(node_t *node)
{
	while (node->left)
		node = node->left;
	return node;
}

static node_t *rightmost_of(node_t *node)
{
	while (node->right)
		node = node->right;
	return node;
}

/**
 * mrc_itree_init() - make @tree empty
 * @tree: the tree
 */
void mrc_itree_init(struct mrc_itree *tree)
{
	itree_store_ptr(tree->root, NULL);
	tree->count = 0;
	tree->rightmost = NULL;
	itree_store_val(tree->max_end, 0);
}

/**
 * mrc_itree_node_set_range() - set the range of a node that is not in a tree
 * @node: node, not currently inserted
 * @start: first byte
 * @end: one past the last byte, > @start
 *
 * A removed node may still be under a lock-free reader, so recycling it with
 * plain stores would race.  The stores are release so that a reader who sees
 * the new range also sees everything the caller wrote before; the test uses
 * that to tell a recycled node from a wrong answer.
 */
void mrc_itree_node_set_range(struct mrc_itree_node *node, uint64_t start, uint64_t end)
{
	__atomic_store_n(&node->start, start, __ATOMIC_RELEASE);
	__atomic_store_n(&node->end, end, __ATOMIC_RELEASE);
}

/**
 * mrc_itree_insert() - add @node to @tree
 * @tree: the tree
 * @node: node whose start and end are set (end > start); other fields are
 *	  initialised here
 *
 * Equal starts are allowed and land after the existing ones.  O(log n).
 * Caller holds the writer lock.
 */
void mrc_itree_insert(struct mrc_itree *tree, struct mrc_itree_node *node)
{
	node_t **link = &tree->root, *parent = NULL;
	/* Equal starts land after the existing ones: it becomes the last node. */
	bool last = !tree->rightmost || node->start >= tree->rightmost->start;

	assert(node->start < node->end);
	/* Initialise before the release store below makes the node reachable. */
	itree_store_ptr(node->left, NULL);
	itree_store_ptr(node->right, NULL);
	itree_store_val(node->max_end, last ? MRC_ITREE_SPINE : node->end);
	node->height = 1;
	if (node->end > tree->max_end)
		itree_store_val(tree->max_end, node->end);

	/*
	 * Starting at or after the last node (regions registered in address
	 * order, every miss of a growing buffer pool), the descent would go
	 * right at every level and end under the last node: go there at
	 * once, saving a walk of dependent loads the height of the tree.
	 */
	if (last && tree->rightmost) {
		parent = tree->rightmost;
		link = &parent->right;
	}
	while (*link) {
		parent = *link;
		link = node->start < parent->start ? &parent->left : &parent->right;
	}
	node->parent = parent;
	__atomic_store_n(link, node, __ATOMIC_RELEASE);
	tree->count++;
	if (last)
		tree->rightmost = node;
	fixup_after_insert(tree, node);
}

/* Remove @node, which has at most one child; returns where fixing starts. */
static node_t *unlink_simple(struct mrc_itree *tree, node_t *node)
{
	node_t *child = node->left ? node->left : node->right;

	if (child)
		child->parent = node->parent;
	replace_child(tree, node->parent, node, child);
	return node->parent;
}

/*
 * Remove @node, which has two children, by moving its in-order successor
 * into its place (nodes belong to the caller, so we relink, never copy
 * ranges).  Returns the lowest node whose summary changed.
 */
static node_t *unlink_via_successor(struct mrc_itree *tree, node_t *node)
{
	node_t *succ = leftmost(node->right), *lowest = succ;

	if (succ != node->right) {
		lowest = succ->parent;
		/* Detach succ before it adopts node->right: no reader-visible cycle. */
		itree_store_ptr(lowest->left, succ->right);
		if (succ->right)
			succ->right->parent = lowest;
		itree_store_ptr(succ->right, node->right);
		node->right->parent = succ;
	}
	itree_store_ptr(succ->left, node->left);
	node->left->parent = succ;
	succ->height = node->height;
	/* node's max_end covers succ's new subtree; too big only costs a reader a detour. */
	itree_store_val(succ->max_end, node->max_end);
	succ->parent = node->parent;
	replace_child(tree, node->parent, node, succ);
	return lowest;
}

/*
 * @node and its chain of right children are about to be on the spine (the
 * last node went and @node, its left child, takes its place). Raising a
 * bound is safe for a reader at any time.
 */
static void join_spine(node_t *node)
{
	for (; node; node = node->right)
		itree_store_val(node->max_end, MRC_ITREE_SPINE);
}

/* The largest end in @tree: the spine's own ends and its left subtrees'. */
static uint64_t largest_end(const struct mrc_itree *tree)
{
	uint64_t max_end = 0;

	for (node_t *n = tree->root; n; n = n->right)
		max_end = max_u64(max_end, max_u64(n->end, max_end_of(n->left)));
	return max_end;
}

/**
 * mrc_itree_remove() - take @node out of @tree
 * @tree: the tree
 * @node: a node currently in @tree
 *
 * @node's child pointers are left as they were so that a lock-free reader
 * parked on it can still walk on; its memory must stay valid while readers
 * may run.  O(log n).  Caller holds the writer lock.
 */
void mrc_itree_remove(struct mrc_itree *tree, struct mrc_itree_node *node)
{
	node_t *fix_from, *settle;

	/*
	 * The last node has no right child: the one before it is the last of
	 * its left subtree, or else its parent. Nodes are relinked, never
	 * copied, so that node stays the last whatever the fixup rotates.
	 */
	if (node == tree->rightmost) {
		tree->rightmost = node->left ? rightmost_of(node->left) : node->parent;
		join_spine(node->left);
	}
	if (node->left && node->right) {
		settle = leftmost(node->right);
		fix_from = unlink_via_successor(tree, node);
	} else {
		fix_from = settle = unlink_simple(tree, node);
	}
	tree->count--;
	fixup_after_remove(tree, fix_from, settle);
	if (node->end >= tree->max_end)
		itree_store_val(tree->max_end, largest_end(tree));
}

/*
 * Lowest-start node overlapping [start, end) in the subtree of @node, whose
 * max_end is > start (a bound: on the spine the subtree may hold no end past
 * start, and then the walk ends in NULL).  If the left subtree reaches past
 * start it holds the answer if there is one: any of its nodes with end >
 * start either starts before end (a match, earlier than @node) or starts
 * at/after end, in which case nothing to its right can match either.  A
 * left child is never on the spine, so its max_end is exact.
 */
static node_t *subtree_first_overlap(node_t *node, uint64_t start, uint64_t end)
{
	while (node) {
		if (node->left && node->left->max_end > start) {
			node = node->left;
			continue;
		}
		if (node->start >= end)
			return NULL;
		if (node->end > start)
			return node;
		node = node->right;
		if (node && node->max_end <= start)
			return NULL;
	}
	return NULL;
}

/**
 * mrc_itree_first_overlap() - first node overlapping a range
 * @tree: the tree
 * @start: first byte of the query
 * @end: one past the last byte of the query
 *
 * Return: the node with the lowest start among those with
 * node.start < @end && node.end > @start, or NULL.  O(log n).  Caller holds
 * the writer lock.
 */
struct mrc_itree_node *mrc_itree_first_overlap(const struct mrc_itree *tree,
					       uint64_t start, uint64_t end)
{
	if (!tree->root || tree->max_end <= start)
		return NULL;
	return subtree_first_overlap(tree->root, start, end);
}

/**
 * mrc_itree_next_overlap() - next node overlapping a range, in start order
 * @node: the previous result of first/next_overlap for the same range
 * @start: first byte of the query
 * @end: one past the last byte of the query
 *
 * Subtrees whose max_end does not reach @start are skipped, so listing k
 * results costs O((k + 1) log n).  Caller holds the writer lock.
 *
 * Return: the next overlapping node, or NULL.
 */
struct mrc_itree_node *mrc_itree_next_overlap(const struct mrc_itree_node *node,
					      uint64_t start, uint64_t end)
{
	node_t *cur = (node_t *)node, *parent;

	for (;;) {
		/*
		 * A NULL from a right subtree on the spine is final too: only
		 * the spine's upper nodes are left, and they come before it.
		 */
		if (cur->right && cur->right->max_end > start)
			return subtree_first_overlap(cur->right, start, end);
		/* Climb to the first ancestor that follows cur in order. */
		for (;;) {
			parent = cur->parent;
			if (!parent)
				return NULL;
			if (parent->left == cur)
				break;
			cur = parent;
		}
		cur = parent;
		if (cur->start >= end)
			return NULL;
		if (cur->end > start)
			return cur;
	}
}

/* Read @node's range once, atomically, and test it against the query. */
static bool contains_as_read(const node_t *node, uint64_t start, uint64_t end)
{
	uint64_t node_start = itree_load_val(node->start);
	uint64_t node_end = itree_load_val(node->end);

	return node_start <= start && node_end >= end;
}

/*
 * One reader step.  If cur starts after the query, only its left subtree
 * can hold an answer.  Otherwise every node on the left starts early enough
 * too, so the left subtree holds an answer exactly when its max_end reaches
 * the query end; failing that, only the right subtree is left.
 */
static node_t *containing_step(const node_t *cur, uint64_t start, uint64_t end)
{
	node_t *left = itree_load_ptr(cur->left);

	if (itree_load_val(cur->start) > start)
		return left;
	if (left && itree_load_val(left->max_end) >= end)
		return left;
	return itree_load_ptr(cur->right);
}

/**
 * mrc_itree_find_containing() - any node covering a whole range
 * @tree: the tree
 * @start: first byte of the query
 * @end: one past the last byte of the query
 *
 * Safe without the writer lock (see the top of itree.h): it only loads, with
 * atomic loads, bounds its steps, and checks the range of the node it
 * returns as it read it.  O(height).
 *
 * Return: a node with node.start <= @start && node.end >= @end, or NULL
 * (possibly spuriously while a writer is active).
 */
struct mrc_itree_node *mrc_itree_find_containing(const struct mrc_itree *tree,
						 uint64_t start, uint64_t end)
{
	node_t *cur = itree_load_ptr(tree->root);
	unsigned int steps;

	/* The root's max_end is SPINE: the tree's own bound turns this away. */
	if (itree_load_val(tree->max_end) < end)
		return NULL;
	for (steps = 0; cur && steps < ITREE_MAX_READER_STEPS; steps++) {
		/* The answer, if any, is in cur's subtree: prune on its max_end. */
		if (itree_load_val(cur->max_end) < end)
			return NULL;
		if (contains_as_read(cur, start, end))
			return cur;
		cur = containing_step(cur, start, end);
	}
	return NULL;
}

/**
 * mrc_itree_first() - node with the lowest start
 * @tree: the tree
 *
 * Return: the first node in order, or NULL if @tree is empty.
 */
struct mrc_itree_node *mrc_itree_first(const struct mrc_itree *tree)
{
	return tree->root ? leftmost(tree->root) : NULL;
}

/**
 * mrc_itree_next() - in-order successor
 * @node: a node in a tree
 *
 * Return: the next node in start order, or NULL after the last.
 */
struct mrc_itree_node *mrc_itree_next(const struct mrc_itree_node *node)
{
	node_t *cur = (node_t *)node;

	if (cur->right)
		return leftmost(cur->right);
	while (cur->parent && cur->parent->right == cur)
		cur = cur->parent;
	return cur->parent;
}

struct check_walk {
	size_t seen;
	size_t limit;
	uint64_t max_end;	/* largest end seen */
};

/*
 * Height, balance and max_end of @node agree with its (already checked)
 * children: SPINE on the spine, else the exact maximum (the children are
 * then off the spine too, so theirs are exact).
 */
static bool summary_ok(const node_t *node, bool spine)
{
	int32_t hl = height_of(node->left), hr = height_of(node->right);
	uint64_t max_end = max_u64(node->end, max_u64(max_end_of(node->left),
						      max_end_of(node->right)));

	return node->height == 1 + (hl > hr ? hl : hr) && hl - hr <= 1 && hr - hl <= 1 &&
	       node->max_end == (spine ? MRC_ITREE_SPINE : max_end);
}

/* Check the subtree of @node, whose starts must lie in [lo, hi]. */
static int check_subtree(const node_t *node, const node_t *parent, uint64_t lo, uint64_t hi,
			 int depth, bool spine, struct check_walk *walk)
{
	if (!node)
		return 0;
	/* Depth and count limits keep a corrupted (cyclic) tree from hanging us. */
	if (depth > MRC_ITREE_MAX_HEIGHT || ++walk->seen > walk->limit)
		return -EINVAL;
	if (node->parent != parent || node->start >= node->end ||
	    node->start < lo || node->start > hi)
		return -EINVAL;
	walk->max_end = max_u64(walk->max_end, node->end);
	if (check_subtree(node->left, node, lo, node->start, depth + 1, false, walk) ||
	    check_subtree(node->right, node, node->start, hi, depth + 1, spine, walk))
		return -EINVAL;
	return summary_ok(node, spine) ? 0 : -EINVAL;
}

/**
 * mrc_itree_check() - validate the whole tree, for tests and debugging
 * @tree: the tree
 *
 * Checks parent links, start order, start < end, heights, the AVL balance
 * bound, every max_end (SPINE exactly on the right spine), the tree's
 * largest end, the node count and the last node.  O(n).  Caller holds the
 * writer lock.
 *
 * Return: 0 if consistent, -EINVAL otherwise.
 */
int mrc_itree_check(const struct mrc_itree *tree)
{
	struct check_walk walk = { .seen = 0, .limit = tree->count };

	if (check_subtree(tree->root, NULL, 0, UINT64_MAX, 1, true, &walk))
		return -EINVAL;
	if (tree->rightmost != (tree->root ? rightmost_of(tree->root) : NULL) ||
	    tree->max_end != walk.max_end)
		return -EINVAL;
	return walk.seen == tree->count ? 0 : -EINVAL;
}
