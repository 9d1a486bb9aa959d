// SPDX-License-Identifier: BSD-2-Clause
/*
 * The shims' lock-free index of watched ranges (see index.h).
 *
 * Seqlock per slot: a writer makes the slot's sequence odd, writes the
 * fields, then makes it even again; a lookup reads the sequence, the
 * fields, and the sequence again, and retries when they differ or the
 * first was odd. A table-wide count does the same for removals, which
 * move entries: a lookup that missed while one ran looks again, so a
 * watched range is always found. Every field is read and written with atomics, so
 * ThreadSanitizer sees each race this allows.
 */
#include <errno.h>
#include <stdlib.h>

#include "shim/index.h"

#define INDEX_MIN_SLOTS 64u

struct slot {
	uint64_t seq;		/* odd while a writer is in the slot */
	uint64_t addr;
	uint64_t len;		/* 0: empty */
	uint64_t start;		/* the watchpoint's, as a check reads it */
	uint64_t end;
	uint64_t generation;
	const uint64_t *word;
};

struct mrc_index_table {
	size_t mask;		/* slots - 1, a power of two less one */
	uint64_t moves;		/* odd while a removal shifts entries */
	struct mrc_index_table *older;	/* retired list */
	struct slot slots[];
};

/* The key as a slot reads it: what a lookup compares. */
struct entry {
	uint64_t addr, len, start, end, generation;
	const uint64_t *word;
};

#define load(p)		__atomic_load_n((p), __ATOMIC_RELAXED)
#define store(p, v)	__atomic_store_n((p), (v), __ATOMIC_RELAXED)
/* A slot's fields: see the top of the file. */
#define load_field(p)		__atomic_load_n((p), __ATOMIC_ACQUIRE)
#define store_field(p, v)	__atomic_store_n((p), (v), __ATOMIC_RELEASE)

static size_t home(const struct mrc_index_table *t, uint64_t addr,
		   uint64_t len)
{
	uint64_t h = (addr ^ (len * 0x9e3779b97f4a7c15ull)) *
		     0xff51afd7ed558ccdull;

	return (h ^ (h >> 29)) & t->mask;
}

/* Lock held: the only writer. */
static void slot_write(struct slot *s, const struct entry *e)
{
	uint64_t seq = load(&s->seq);

	store(&s->seq, seq + 1);
	/* Each after the odd sequence: pairs with snapshot()'s field loads. */
	store_field(&s->addr, e->addr);
	store_field(&s->len, e->len);
	store_field(&s->start, e->start);
	store_field(&s->end, e->end);
	store_field(&s->generation, e->generation);
	store_field(&s->word, e->word);
	/* The fields before the even sequence: pairs with snapshot()'s acquire. */
	__atomic_store_n(&s->seq, seq + 2, __ATOMIC_RELEASE);
}

/* Lock-free: the slot's fields from one moment. */
static void snapshot(const struct slot *s, struct entry *e)
{
	uint64_t seq;

	do {
		seq = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
		e->addr = load_field(&s->addr);
		e->len = load_field(&s->len);
		e->start = load_field(&s->start);
		e->end = load_field(&s->end);
		e->generation = load_field(&s->generation);
		/* Acquire: the second sequence load comes after the fields. */
		e->word = load_field(&s->word);
	} while ((seq & 1) || load(&s->seq) != seq);
}

static struct mrc_index_table *new_table(size_t slots)
{
	struct mrc_index_table *t = calloc(1, sizeof(*t) +
					   slots * sizeof(t->slots[0]));

	if (t)
		t->mask = slots - 1;
	return t;
}

/* Lock held: the slot holding (addr, len), or the empty slot ending its probe. */
static size_t probe(const struct mrc_index_table *t, uint64_t addr,
		    uint64_t len)
{
	size_t i = home(t, addr, len);

	while (t->slots[i].len &&
	       (t->slots[i].addr != addr || t->slots[i].len != len))
		i = (i + 1) & t->mask;
	return i;
}

static void put(struct mrc_index_table *t, const struct entry *e)
{
	slot_write(&t->slots[probe(t, e->addr, e->len)], e);
}

/* Lock held: a table twice the size, published whole; the old one retired. */
static int grow(struct mrc_index *x)
{
	struct mrc_index_table *old = x->table, *t;
	size_t slots = old ? 2 * (old->mask + 1) : INDEX_MIN_SLOTS;
	struct entry e;

	t = new_table(slots);
	if (!t)
		return -ENOMEM;
	for (size_t i = 0; old && i <= old->mask; i++) {
		snapshot(&old->slots[i], &e);
		if (e.len)
			put(t, &e);
	}
	/* Filled before published: pairs with mrc_index_find()'s acquire. */
	__atomic_store_n(&x->table, t, __ATOMIC_RELEASE);
	if (old) {
		old->older = x->retired;
		x->retired = old;
	}
	return 0;
}

void mrc_index_init(struct mrc_index *x)
{
	*x = (struct mrc_index){ 0 };
}

void mrc_index_destroy(struct mrc_index *x)
{
	struct mrc_index_table *t = x->retired, *older;

	for (; t; t = older) {
		older = t->older;
		free(t);
	}
	free(x->table);
	*x = (struct mrc_index){ 0 };
}

int mrc_index_insert(struct mrc_index *x, uintptr_t addr, size_t len,
		     const struct mrc_watchpoint *wp)
{
	struct entry e = { addr, len, wp->start, wp->end, wp->generation,
			   wp->word };

	/* At most half full: probes stay short. */
	if ((!x->table || 2 * (x->count + 1) > x->table->mask + 1) && grow(x))
		return -ENOMEM;
	put(x->table, &e);
	x->count++;
	return 0;
}

/* May the entry at @j, whose probe starts at @k, move back to the hole @i? */
static int movable(size_t i, size_t j, size_t k)
{
	return i <= j ? (k <= i || k > j) : (k <= i && k > j);
}

/*
 * Lock held. Backward shift: entries after the hole that may fill it move
 * back one at a time (copied, then their old slot becomes the next hole),
 * so no probe ever needs a tombstone.
 */
void mrc_index_remove(struct mrc_index *x, uintptr_t addr, size_t len)
{
	static const struct entry empty;
	struct mrc_index_table *t = x->table;
	struct entry e;
	size_t i, j;

	if (!t)
		return;
	i = probe(t, addr, len);
	if (!t->slots[i].len)
		return;
	/* Before any slot moves (slot_write's release stores). */
	store(&t->moves, t->moves + 1);
	for (j = (i + 1) & t->mask; t->slots[j].len; j = (j + 1) & t->mask) {
		snapshot(&t->slots[j], &e);
		if (!movable(i, j, home(t, e.addr, e.len)))
			continue;
		slot_write(&t->slots[i], &e);
		i = j;
	}
	slot_write(&t->slots[i], &empty);
	/* Every move before the even count: pairs with find()'s acquire. */
	__atomic_store_n(&t->moves, t->moves + 1, __ATOMIC_RELEASE);
	x->count--;
}

/* Lock-free: 1 and the entry when found; 0 when not, -EAGAIN when unsure. */
static int find_once(const struct mrc_index_table *t, uint64_t addr,
		     uint64_t len, struct entry *e)
{
	uint64_t moves = __atomic_load_n(&t->moves, __ATOMIC_ACQUIRE);

	for (size_t i = home(t, addr, len), n = 0; n <= t->mask;
	     i = (i + 1) & t->mask, n++) {
		snapshot(&t->slots[i], e);
		if (e->addr == addr && e->len == len)
			return 1;
		if (!e->len)
			break;
	}
	/*
	 * A miss counts only if no removal moved entries meanwhile: this load
	 * comes after the slots' acquire loads, and sees the odd count if
	 * any of them saw a move.
	 */
	return (moves & 1) || load(&t->moves) != moves ? -EAGAIN : 0;
}

int mrc_index_find(const struct mrc_index *x, uintptr_t addr, size_t len,
		   struct mrc_watchpoint *wp)
{
	const struct mrc_index_table *t;
	struct entry e;
	int ret;

	do {
		t = __atomic_load_n(&x->table, __ATOMIC_ACQUIRE);
		if (!t)
			return 0;
		ret = find_once(t, addr, len, &e);
	} while (ret == -EAGAIN);
	if (ret)
		*wp = (struct mrc_watchpoint){ .start = e.start, .end = e.end,
			.word = e.word, .generation = e.generation };
	return ret;
}
