/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * One message under one strategy, in either direction. The caller times
 * the call; what is inside is what the strategy costs the application.
 */
#ifndef MRCACHE_BENCH_XFER_H
#define MRCACHE_BENCH_XFER_H

#include "strategy.h"

/* WRITE @size bytes of @w to the peer's target at @raddr. */
int xfer_source(struct bench *b, struct strategy *s, struct wbuf *w, size_t size,
		uint64_t raddr);
/* Have the peer WRITE message @msgno (@size bytes) into @w. */
int xfer_target(struct bench *b, struct strategy *s, struct wbuf *w, size_t size,
		uint64_t msgno);

#endif
