/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * rdma_pair: two RC queue pairs of one process, connected to each other
 * through one RDMA device, for tests and benchmarks that need real RDMA
 * WRITEs without a second process or a connection manager.
 *
 * Environment:
 *   MRCACHE_TEST_DEVICE     device name (default: the first device)
 *   MRCACHE_TEST_PORT       port number (default 1)
 *   MRCACHE_TEST_GID_INDEX  GID index on RoCE (default: a RoCE v2 GID
 *                           mapping an IPv4 address, 127.0.0.1 preferred)
 *   MRCACHE_TEST_WR_TIMEOUT_MS  how long to wait for a completion
 *                           (default 10000; TCG guests are slow)
 *
 * Functions return 0 or a negative errno value; rdma_pair_error() then
 * says what went wrong.
 */
#ifndef MRCACHE_TEST_RDMA_PAIR_H
#define MRCACHE_TEST_RDMA_PAIR_H

#include <stddef.h>
#include <stdint.h>

#include <infiniband/verbs.h>

#define RDMA_PAIR_DEPTH 64	/* send queue slots of the writing QP */

struct rdma_pair {
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	struct ibv_qp *qp[2];	/* qp[0] writes, qp[1] is its target */
	uint8_t port;
	int gid_index;		/* -1 on InfiniBand (LID addressing) */
	enum ibv_mtu mtu;
	unsigned int outstanding;	/* writes posted, not yet completed */
	uint64_t posted;	/* wr_id of the last posted write */
	int timeout_ms;
	char device[IBV_SYSFS_NAME_MAX];
	char error[256];
};

/*
 * Open the device, create PD, CQ and both QPs and bring them to RTS.
 * Return: 0; -ENODEV when there is no RDMA device (callers skip);
 * another -errno on failure. On failure nothing is left allocated.
 */
int rdma_pair_open(struct rdma_pair *pair);
void rdma_pair_close(struct rdma_pair *pair);

/* Post one signaled RDMA WRITE and wait for its completion. */
int rdma_pair_write(struct rdma_pair *pair, const void *laddr, size_t len,
		    uint32_t lkey, uint64_t raddr, uint32_t rkey);

/* Post a signaled RDMA WRITE without waiting (at most RDMA_PAIR_DEPTH). */
int rdma_pair_post_write(struct rdma_pair *pair, const void *laddr,
			 size_t len, uint32_t lkey, uint64_t raddr,
			 uint32_t rkey);
/* Wait until @count posted writes completed successfully. */
int rdma_pair_wait(struct rdma_pair *pair, unsigned int count);

const char *rdma_pair_error(const struct rdma_pair *pair);

#endif /* MRCACHE_TEST_RDMA_PAIR_H */
