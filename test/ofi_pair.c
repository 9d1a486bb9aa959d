// SPDX-License-Identifier: BSD-2-Clause
/* Two connected libfabric MSG endpoints in one process (see ofi_pair.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rdma/fi_cm.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_rma.h>

#include "ofi_pair.h"

#define SERVICE "7471"

static void check(int ret, const char *what)
{
	if (ret) {
		fprintf(stderr, "ofi_pair: %s: %s\n", what, fi_strerror(-ret));
		exit(1);
	}
}

static struct fi_info *info_for(const char *addr, uint64_t flags)
{
	struct fi_info *hints = fi_allocinfo(), *info;

	hints->fabric_attr->prov_name = strdup("verbs");
	hints->ep_attr->type = FI_EP_MSG;
	hints->caps = FI_MSG | FI_RMA;
	hints->domain_attr->mr_mode = FI_MR_LOCAL | FI_MR_VIRT_ADDR |
				      FI_MR_ALLOCATED | FI_MR_PROV_KEY;
	check(fi_getinfo(FI_VERSION(1, 13), addr, SERVICE, flags, hints, &info),
	      "fi_getinfo (is there an RDMA device with this address?)");
	fi_freeinfo(hints);
	return info;
}

/* Wait for @want on the EQ; return the info of a connection request. */
static struct fi_info *wait_event(struct ofi_pair *p, uint32_t want)
{
	struct fi_eq_cm_entry entry;
	uint32_t event;
	ssize_t n = fi_eq_sread(p->eq, &event, &entry, sizeof(entry), 10000, 0);

	if (n < 0 || event != want) {
		fprintf(stderr, "ofi_pair: waited for event %u, got %u (%s)\n",
			want, event, n < 0 ? fi_strerror((int)-n) : "ok");
		exit(1);
	}
	return entry.info;
}

static struct fid_ep *endpoint(struct ofi_pair *p, struct fi_info *info,
			       struct fid_cq **cq)
{
	struct fi_cq_attr cq_attr = { .format = FI_CQ_FORMAT_CONTEXT,
				      .size = 16 };
	struct fid_ep *ep;

	check(fi_endpoint(p->domain, info, &ep, NULL), "fi_endpoint");
	check(fi_cq_open(p->domain, &cq_attr, cq, NULL), "fi_cq_open");
	check(fi_ep_bind(ep, &p->eq->fid, 0), "fi_ep_bind eq");
	check(fi_ep_bind(ep, &(*cq)->fid, FI_TRANSMIT | FI_RECV), "fi_ep_bind cq");
	check(fi_enable(ep), "fi_enable");
	return ep;
}

void ofi_pair_open(struct ofi_pair *p, const char *addr)
{
	struct fi_info *listen = info_for(addr, FI_SOURCE), *conn, *req;
	struct fi_eq_attr eq_attr = { .wait_obj = FI_WAIT_UNSPEC };

	memset(p, 0, sizeof(*p));
	check(fi_fabric(listen->fabric_attr, &p->fabric, NULL), "fi_fabric");
	check(fi_eq_open(p->fabric, &eq_attr, &p->eq, NULL), "fi_eq_open");
	check(fi_passive_ep(p->fabric, listen, &p->pep, NULL), "fi_passive_ep");
	check(fi_pep_bind(p->pep, &p->eq->fid, 0), "fi_pep_bind");
	check(fi_listen(p->pep), "fi_listen");
	conn = info_for(addr, 0);
	check(fi_domain(p->fabric, conn, &p->domain, NULL), "fi_domain");
	printf("ofi_pair: provider %s, domain %s, %s\n",
	       conn->fabric_attr->prov_name, conn->domain_attr->name, addr);
	p->client = endpoint(p, conn, &p->client_cq);
	check(fi_connect(p->client, conn->dest_addr, NULL, 0), "fi_connect");
	req = wait_event(p, FI_CONNREQ);
	p->server = endpoint(p, req, &p->server_cq);
	check(fi_accept(p->server, NULL, 0), "fi_accept");
	wait_event(p, FI_CONNECTED);
	wait_event(p, FI_CONNECTED);
	fi_freeinfo(req);
	fi_freeinfo(conn);
	fi_freeinfo(listen);
}

void ofi_pair_write(struct ofi_pair *p, const void *src, size_t len,
		    void *desc, uint64_t dst, uint64_t key)
{
	struct fi_cq_entry done;
	ssize_t n;

	check((int)fi_write(p->client, src, len, desc, 0, dst, key, NULL),
	      "fi_write");
	while ((n = fi_cq_read(p->client_cq, &done, 1)) == -FI_EAGAIN)
		;
	if (n != 1) {
		fprintf(stderr, "ofi_pair: write completion: %s\n",
			fi_strerror((int)-n));
		exit(1);
	}
}

void ofi_pair_close(struct ofi_pair *p)
{
	fi_close(&p->client->fid);
	fi_close(&p->server->fid);
	fi_close(&p->client_cq->fid);
	fi_close(&p->server_cq->fid);
	fi_close(&p->pep->fid);
	fi_close(&p->eq->fid);
	fi_close(&p->domain->fid);
	fi_close(&p->fabric->fid);
}
