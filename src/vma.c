// SPDX-License-Identifier: BSD-2-Clause
/*
 * What the address space holds under a range, from /proc/self/maps.
 *
 * Read only after a registration failed (miss.c): the provider says only
 * that it could not pin something, and this tells which cached regions
 * are over memory that is gone or not writable. Slow (the kernel formats
 * every mapping), so never on a path that succeeds.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include "cache.h"
#include "error.h"

static void note_hole(struct mrc_vma_state *st, uint64_t from, uint64_t to)
{
	if (st->hole_start == st->hole_end)
		st->hole_start = from;
	st->hole_end = to;
}

/* One mapping [vs, ve) with permissions @perms, in address order. */
static void note_mapping(struct mrc_vma_state *st, uint64_t *cursor,
			 uint64_t vs, uint64_t ve, const char *perms)
{
	if (ve <= *cursor)
		return;
	if (vs > *cursor)
		note_hole(st, *cursor, vs);
	if (perms[1] != 'w')
		st->unwritable = true;
	*cursor = ve;
}

/**
 * mrc_vma_state() - unmapped and unwritable parts of [start, end).
 * @start, @end: the range, start < end.
 * @st: receives the smallest range covering every unmapped part (empty
 *      when all is mapped) and whether a mapped part lacks write permission.
 *
 * Return: 0, or -errno when /proc/self/maps cannot be read.
 */
int mrc_vma_state(uint64_t start, uint64_t end, struct mrc_vma_state *st)
{
	FILE *f = fopen("/proc/self/maps", "re");
	uint64_t vs, ve, cursor = start;
	char perms[5];

	*st = (struct mrc_vma_state){ 0 };
	if (!f)
		return mrc_error(errno, "cannot read /proc/self/maps");
	/* Lines are in address order: "start-end perms offset dev inode path". */
	while (cursor < end &&
	       fscanf(f, "%" SCNx64 "-%" SCNx64 " %4s%*[^\n]", &vs, &ve,
		      perms) == 3 && vs < end)
		note_mapping(st, &cursor, vs, ve, perms);
	fclose(f);
	if (cursor < end)
		note_hole(st, cursor, end);
	return 0;
}
