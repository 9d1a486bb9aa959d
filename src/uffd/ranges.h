/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The record of changed ranges that the userfaultfd reader writes and
 * every uffd monitor reads with its own cursor. One producer (the reader
 * thread), any number of readers, no locks: a reader that falls more than
 * the record's size behind has lost ranges and is told so.
 */
#ifndef MRC_UFFD_RANGES_H
#define MRC_UFFD_RANGES_H

#include <stdint.h>

#include "uffd/uffd.h"

/* Append [start, end); the reader thread only. Never blocks. */
void mrc_uffd_ranges_push(uint64_t start, uint64_t end);

/* The position after the last range appended. */
uint64_t mrc_uffd_ranges_end(void);

/* Report ranges from *cursor on, move it to the end; nonzero: some lost. */
int mrc_uffd_ranges_read(uint64_t *cursor, mrc_uffd_range_fn fn, void *arg);

/* Does a range appended from @from on overlap [start, end)? Lost: yes. */
int mrc_uffd_ranges_overlap(uint64_t from, uint64_t start, uint64_t end);

#endif /* MRC_UFFD_RANGES_H */
