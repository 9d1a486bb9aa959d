/* SPDX-License-Identifier: BSD-2-Clause */
/* preload_app threads: registrations from several threads at once. */
#ifndef MRCACHE_TEST_PRELOAD_THREADS_H
#define MRCACHE_TEST_PRELOAD_THREADS_H

#include <stddef.h>

#include <infiniband/verbs.h>

/*
 * @threads threads register and deregister @size buffers on @pd for
 * @rounds rounds, each its own and one they share, half of their MRs
 * deregistered by another thread; meanwhile one more thread allocates a
 * PD, registers on it and deallocates it, over and over. With @race, then
 * two threads deregister the same MRs at once. Return: 0 when every call
 * answered as it must (printed otherwise), 1 else.
 */
int preload_threads(struct ibv_context *ctx, struct ibv_pd *pd,
		    unsigned int threads, unsigned long rounds, size_t size,
		    int race);

#endif
