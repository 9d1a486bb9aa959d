// SPDX-License-Identifier: BSD-2-Clause
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "hints.h"
#include "platform.h"

#define MRC_HINTS_MIN_SLOTS (1u << 10)
#define MRC_HINTS_MAX_SLOTS (1u << MRC_HINT_MAX_BITS)

static size_t hints_bytes(uint64_t slots)
{
	return sizeof(struct mrc_hints) + slots * sizeof(uint32_t);
}

/*
 * Anonymous memory: zero-filled, and it can be emptied in place later.
 * @populate: fault every page in with the mapping (one call instead of a
 * fault per page), for a table about to be seeded.
 */
static struct mrc_hints *hints_map(unsigned int bits, int populate,
				   size_t *len)
{
	uint64_t slots = 1ull << bits;
	struct mrc_hints *h;

	*len = hints_bytes(slots);
	h = mmap(NULL, *len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | (populate ? MAP_POPULATE : 0),
		 -1, 0);
	if (h == MAP_FAILED)
		return NULL;
	h->mult = mrc_hints_mult(bits);
	h->set_mask = slots - MRC_HINT_WAYS;
	return h;
}

static unsigned int bits_for(uint64_t slots)
{
	unsigned int bits = 0;

	while ((1ull << bits) < slots && bits < MRC_HINT_MAX_BITS)
		bits++;
	return bits;
}

int mrc_hints_init(struct mrc_hint_table *table)
{
	*table = (struct mrc_hint_table){ 0 };
	table->retired = calloc(1, sizeof(*table->retired));
	if (!table->retired)
		return -ENOMEM;
	table->current = hints_map(bits_for(MRC_HINTS_MIN_SLOTS), 0,
				   &table->current_len);
	if (!table->current) {
		free(table->retired);
		return -ENOMEM;
	}
	return 0;
}

/*
 * At most three regions for every four slots: with 4-way sets about 10 % of
 * keys then find their set full (Poisson), against 20 % at one region per
 * slot. It costs 5.3 to 10.7 bytes per region.
 */
static int too_full(uint64_t slots, size_t regions)
{
	return (uint64_t)regions * 4 > slots * 3;
}

/*
 * Give a replaced table's memory back but for its first page, which holds
 * the header: a late reader must still find the table's own set mask,
 * which alone keeps its set index inside the table. The hints left on
 * that page are stale guesses, which a reader checks like any other.
 */
static void empty_retired(struct mrc_hints *old, size_t len)
{
	size_t page = mrc_page_size();

	if (len > page)
		madvise((char *)old + page, len - page, MADV_DONTNEED);
}

/**
 * mrc_hints_grow() - keep 4/3 to 8/3 slots per cached region.
 * @table: the cache's table; cache lock held.
 * @regions: regions cached now.
 *
 * Failing to grow only costs hit speed, so errors are not reported.
 */
void mrc_hints_grow(struct mrc_hint_table *table, size_t regions,
		    mrc_hints_seed_fn seed, void *arg)
{
	struct mrc_hints_retired *retired = table->retired;
	struct mrc_hints *old = table->current, *h;
	uint64_t slots = old->set_mask + MRC_HINT_WAYS;
	size_t len;

	if (!too_full(slots, regions) || slots >= MRC_HINTS_MAX_SLOTS ||
	    retired->count == MRC_HINTS_MAX_RETIRED)
		return;
	/*
	 * Seeding hashes every cached region into the new table, at least
	 * 3/8 of a region per slot, hundreds per page: every page is written
	 * at once anyway, so populating costs no memory.
	 */
	h = hints_map(bits_for((uint64_t)regions * 4 / 3 + 1), 1, &len);
	if (!h)
		return;
	/* Not published yet: filling it races with nobody. */
	seed(h, arg);
	/* Pairs with the acquire load of readers: they see h filled. */
	mrc_store_release(&table->current, h);
	empty_retired(old, table->current_len);
	retired->table[retired->count] = old;
	retired->len[retired->count++] = table->current_len;
	table->current_len = len;
}

void mrc_hints_destroy(struct mrc_hint_table *table)
{
	for (unsigned int i = 0; table->retired && i < table->retired->count; i++)
		munmap(table->retired->table[i], table->retired->len[i]);
	free(table->retired);
	if (table->current)
		munmap(table->current, table->current_len);
	*table = (struct mrc_hint_table){ 0 };
}
