/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Two connected libfabric MSG endpoints in one process on one verbs
 * domain, through rdma_cm at an address of an RDMA device (in the VM: rxe1
 * on dummy0, see test/vm/README.md). Any failure exits the test.
 */
#ifndef MRC_TEST_OFI_PAIR_H
#define MRC_TEST_OFI_PAIR_H

#include <stddef.h>
#include <stdint.h>

#include <rdma/fabric.h>

struct ofi_pair {
	struct fid_fabric *fabric;
	struct fid_domain *domain;
	struct fid_eq *eq;
	struct fid_pep *pep;
	struct fid_ep *client, *server;
	struct fid_cq *client_cq, *server_cq;
};

void ofi_pair_open(struct ofi_pair *p, const char *addr);
/* RDMA write from the client's @src (@desc) to the server's @dst (@key). */
void ofi_pair_write(struct ofi_pair *p, const void *src, size_t len,
		    void *desc, uint64_t dst, uint64_t key);
void ofi_pair_close(struct ofi_pair *p);

#endif /* MRC_TEST_OFI_PAIR_H */
