/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * One RC queue pair on one device port, connected to a peer's queue pair
 * whose address (QPN, PSN, GID or LID, MTU) came out of band: from the TCP
 * exchange between two processes, or straight from a second endpoint of
 * the same process in loopback mode.
 *
 * Functions return 0 or a negative errno; ep->error says what went wrong.
 */
#ifndef MRCACHE_BENCH_ENDPOINT_H
#define MRCACHE_BENCH_ENDPOINT_H

#include <stddef.h>
#include <stdint.h>

#include <infiniband/verbs.h>

#define EP_DEPTH 64	/* writes in flight at most */

struct ep_addr {
	uint32_t qpn, psn;
	uint16_t lid;
	uint8_t gid[16];
	uint32_t mtu;		/* enum ibv_mtu */
};

struct ep {
	struct ibv_device *dev;	/* for hwloc's locality query */
	struct ibv_device **list;
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	struct ibv_qp *qp;
	uint8_t port;
	int gid_index;		/* -1 on InfiniBand */
	struct ep_addr self;
	unsigned int outstanding;
	uint64_t posted;
	int timeout_ms;
	char device[IBV_SYSFS_NAME_MAX];
	char error[256];
};

/* Return: 0; -ENODEV when there is no such device; another -errno. */
int ep_open(struct ep *ep, const char *device, int port, int gid_index, uint32_t psn);
/* How long ep_wait() waits for writes of up to @max_write bytes. */
void ep_set_timeout(struct ep *ep, size_t max_write);
int ep_connect(struct ep *ep, const struct ep_addr *peer);
void ep_close(struct ep *ep);

int ep_post_write(struct ep *ep, const void *laddr, size_t len, uint32_t lkey,
		  uint64_t raddr, uint32_t rkey);
int ep_wait(struct ep *ep, unsigned int count);
int ep_write(struct ep *ep, const void *laddr, size_t len, uint32_t lkey,
	     uint64_t raddr, uint32_t rkey);

#endif
