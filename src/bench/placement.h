/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Where the benchmark runs: on the cores and memory of the RDMA device's
 * NUMA node (hwloc's OpenFabrics helper), or where --cpu/--numa say.
 */
#ifndef MRCACHE_BENCH_PLACEMENT_H
#define MRCACHE_BENCH_PLACEMENT_H

#include <stdio.h>

#include <infiniband/verbs.h>

/* Bind this process; print what was used to @f. Return: 0 or -errno. */
int placement_apply(struct ibv_device *dev, int cpu, int numa, FILE *f);

#endif
