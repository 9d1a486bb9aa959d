// SPDX-License-Identifier: BSD-2-Clause
/*
 * An RC endpoint brought up by hand, as perftest does it: INIT, then RTR
 * with the peer's address, then RTS. Soft-RoCE on lo has only RoCE GIDs;
 * both processes of a host pick the same one (the IPv4-mapped 127.0.0.1
 * when there is one), so loopback and two-process runs address alike.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "endpoint.h"

static int ep_fail(struct ep *ep, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int ep_fail(struct ep *ep, int err, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(ep->error, sizeof(ep->error), fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < sizeof(ep->error))
		snprintf(ep->error + n, sizeof(ep->error) - (size_t)n, ": %s",
			 strerror(err));
	return -err;
}

static int os_err(int ret)
{
	return ret > 0 ? ret : (errno ? errno : EIO);
}

static int find_device(struct ep *ep, const char *want)
{
	int n, i;

	errno = 0;
	ep->list = ibv_get_device_list(&n);
	if (!ep->list)
		return ep_fail(ep, ENODEV, "no RDMA device (ibv_get_device_list)");
	for (i = 0; i < n; i++)
		if (!want || !strcmp(want, ibv_get_device_name(ep->list[i])))
			break;
	if (i == n)
		return ep_fail(ep, ENODEV, "no RDMA device%s%s", want ? " named " : "",
			       want ? want : "");
	ep->dev = ep->list[i];
	snprintf(ep->device, sizeof(ep->device), "%s", ibv_get_device_name(ep->dev));
	errno = 0;
	ep->ctx = ibv_open_device(ep->dev);
	return ep->ctx ? 0 : ep_fail(ep, os_err(0), "ibv_open_device(%s)", ep->device);
}

/* RoCE v2 first, IPv4-mapped next, 127.0.0.1 best: what rxe on lo has. */
static int gid_rank(const struct ibv_gid_entry *e)
{
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };
	static const uint8_t localhost[4] = { 127, 0, 0, 1 };

	if (e->gid_type != IBV_GID_TYPE_ROCE_V2)
		return 0;
	if (memcmp(e->gid.raw, mapped, sizeof(mapped)))
		return 1;
	return memcmp(e->gid.raw + 12, localhost, 4) ? 2 : 3;
}

static int pick_gid(struct ep *ep, int table_len)
{
	struct ibv_gid_entry e;
	int best = -1, index = -1;

	for (int i = 0; i < table_len && best < 3; i++) {
		if (ibv_query_gid_ex(ep->ctx, ep->port, (uint32_t)i, &e, 0))
			continue;	/* an empty slot */
		if (gid_rank(&e) > best) {
			best = gid_rank(&e);
			index = i;
		}
	}
	if (index < 0)
		return ep_fail(ep, ENODATA, "%s port %u has no usable GID", ep->device, ep->port);
	ep->gid_index = index;
	return 0;
}

static int query_port(struct ep *ep, int gid_index)
{
	struct ibv_port_attr pa;
	union ibv_gid gid;
	int ret = ibv_query_port(ep->ctx, ep->port, &pa);

	if (ret)
		return ep_fail(ep, os_err(ret), "ibv_query_port(%s, %u)", ep->device, ep->port);
	if (pa.state != IBV_PORT_ACTIVE)
		return ep_fail(ep, ENETDOWN, "%s port %u is %s", ep->device, ep->port,
			       ibv_port_state_str(pa.state));
	ep->self.mtu = pa.active_mtu;
	ep->self.lid = pa.lid;
	ep->gid_index = gid_index;
	if (pa.link_layer != IBV_LINK_LAYER_ETHERNET && gid_index < 0)
		return 0;	/* InfiniBand: LID addressing */
	ret = gid_index < 0 ? pick_gid(ep, pa.gid_tbl_len) : 0;
	if (!ret && (ret = ibv_query_gid(ep->ctx, ep->port, ep->gid_index, &gid)))
		return ep_fail(ep, os_err(ret), "ibv_query_gid(%s, index %d)",
			       ep->device, ep->gid_index);
	if (!ret)
		memcpy(ep->self.gid, gid.raw, sizeof(ep->self.gid));
	return ret;
}

static int create_qp(struct ep *ep)
{
	struct ibv_qp_init_attr qa = {
		.qp_type = IBV_QPT_RC,
		.cap = { .max_send_wr = EP_DEPTH, .max_recv_wr = 1,
			 .max_send_sge = 1, .max_recv_sge = 1 },
	};
	struct ibv_qp_attr init = {
		.qp_state = IBV_QPS_INIT,
		.port_num = ep->port,
		.qp_access_flags = IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ,
	};
	int ret;

	errno = 0;
	ep->pd = ibv_alloc_pd(ep->ctx);
	if (!ep->pd)
		return ep_fail(ep, os_err(0), "ibv_alloc_pd(%s)", ep->device);
	ep->cq = ibv_create_cq(ep->ctx, 2 * EP_DEPTH, NULL, NULL, 0);
	if (!ep->cq)
		return ep_fail(ep, os_err(0), "ibv_create_cq(%s)", ep->device);
	qa.send_cq = qa.recv_cq = ep->cq;
	ep->qp = ibv_create_qp(ep->pd, &qa);
	if (!ep->qp)
		return ep_fail(ep, os_err(0), "ibv_create_qp(%s)", ep->device);
	ret = ibv_modify_qp(ep->qp, &init, IBV_QP_STATE | IBV_QP_PKEY_INDEX |
			    IBV_QP_PORT | IBV_QP_ACCESS_FLAGS);
	if (ret)
		return ep_fail(ep, os_err(ret), "QP %u to INIT", ep->qp->qp_num);
	ep->self.qpn = ep->qp->qp_num;
	return 0;
}

int ep_open(struct ep *ep, const char *device, int port, int gid_index, uint32_t psn)
{
	int ret;

	memset(ep, 0, sizeof(*ep));
	ep->port = (uint8_t)port;
	ep->self.psn = psn & 0xffffff;
	ep_set_timeout(ep, 0);
	ret = find_device(ep, device);
	if (!ret)
		ret = query_port(ep, gid_index);
	if (!ret)
		ret = create_qp(ep);
	if (ret) {
		char why[sizeof(ep->error)];

		memcpy(why, ep->error, sizeof(why));
		ep_close(ep);
		memcpy(ep->error, why, sizeof(why));
	}
	return ret;
}

/*
 * 10 s plus 1 s per MiB of the largest write: Soft-RoCE in an emulated
 * guest moves about 10 MB/s, and less when the host is busy.
 */
void ep_set_timeout(struct ep *ep, size_t max_write)
{
	const char *env = getenv("MRCACHE_TEST_WR_TIMEOUT_MS");

	ep->timeout_ms = 10000 + (int)(max_write >> 20) * 1000;
	if (env && atoi(env) > 0)
		ep->timeout_ms = atoi(env);
}

static int to_rtr(struct ep *ep, const struct ep_addr *peer)
{
	struct ibv_qp_attr a = {
		.qp_state = IBV_QPS_RTR,
		.path_mtu = peer->mtu < ep->self.mtu ? peer->mtu : ep->self.mtu,
		.dest_qp_num = peer->qpn,
		.rq_psn = peer->psn,
		.max_dest_rd_atomic = 1,
		.min_rnr_timer = 12,
		.ah_attr = { .port_num = ep->port, .dlid = peer->lid },
	};
	int ret;

	if (ep->gid_index >= 0) {
		a.ah_attr.is_global = 1;
		memcpy(a.ah_attr.grh.dgid.raw, peer->gid, sizeof(peer->gid));
		a.ah_attr.grh.sgid_index = (uint8_t)ep->gid_index;
		a.ah_attr.grh.hop_limit = 64;
	}
	ret = ibv_modify_qp(ep->qp, &a, IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU |
			    IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
			    IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER);
	return ret ? ep_fail(ep, os_err(ret), "QP %u to RTR (peer QPN %u, GID index %d)",
			     ep->qp->qp_num, peer->qpn, ep->gid_index) : 0;
}

int ep_connect(struct ep *ep, const struct ep_addr *peer)
{
	struct ibv_qp_attr a = {
		.qp_state = IBV_QPS_RTS,
		.timeout = 14, .retry_cnt = 7, .rnr_retry = 7,
		.sq_psn = ep->self.psn,
		.max_rd_atomic = 1,
	};
	int ret = to_rtr(ep, peer);

	if (ret)
		return ret;
	ret = ibv_modify_qp(ep->qp, &a, IBV_QP_STATE | IBV_QP_TIMEOUT |
			    IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY |
			    IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC);
	return ret ? ep_fail(ep, os_err(ret), "QP %u to RTS", ep->qp->qp_num) : 0;
}

void ep_close(struct ep *ep)
{
	if (ep->qp)
		ibv_destroy_qp(ep->qp);
	if (ep->cq)
		ibv_destroy_cq(ep->cq);
	if (ep->pd)
		ibv_dealloc_pd(ep->pd);
	if (ep->ctx)
		ibv_close_device(ep->ctx);
	if (ep->list)
		ibv_free_device_list(ep->list);
	memset(ep, 0, sizeof(*ep));
}

int ep_post_write(struct ep *ep, const void *laddr, size_t len, uint32_t lkey,
		  uint64_t raddr, uint32_t rkey)
{
	struct ibv_sge sge = { .addr = (uintptr_t)laddr, .length = (uint32_t)len, .lkey = lkey };
	struct ibv_send_wr wr = {
		.wr_id = ep->posted + 1,
		.sg_list = &sge, .num_sge = 1,
		.opcode = IBV_WR_RDMA_WRITE,
		.send_flags = IBV_SEND_SIGNALED,
		.wr.rdma = { .remote_addr = raddr, .rkey = rkey },
	}, *bad;
	int ret;

	if (len > UINT32_MAX || ep->outstanding >= EP_DEPTH)
		return ep_fail(ep, EINVAL, "write of %zu B with %u in flight", len,
			       ep->outstanding);
	ret = ibv_post_send(ep->qp, &wr, &bad);
	if (ret)
		return ep_fail(ep, os_err(ret), "ibv_post_send(WRITE %zu B to %#llx rkey %#x)",
			       len, (unsigned long long)raddr, rkey);
	ep->posted++;
	ep->outstanding++;
	return 0;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int ep_wait(struct ep *ep, unsigned int count)
{
	uint64_t deadline = now_ms() + (uint64_t)ep->timeout_ms;
	unsigned int idle = 0;
	struct ibv_wc wc;
	int ret = 0, n;

	while (count) {
		n = ibv_poll_cq(ep->cq, 1, &wc);
		if (n < 0)
			return ep_fail(ep, EIO, "ibv_poll_cq");
		if (n == 1) {
			count--;
			ep->outstanding--;
			if (wc.status != IBV_WC_SUCCESS && !ret)
				ret = ep_fail(ep, EIO, "WRITE completed with %s (vendor error %#x)",
					      ibv_wc_status_str(wc.status), wc.vendor_err);
		} else if (++idle % 256 == 0 && now_ms() > deadline) {
			return ep_fail(ep, ETIMEDOUT, "%u WRITEs did not complete in %d ms",
				       count, ep->timeout_ms);
		}
	}
	return ret;
}

int ep_write(struct ep *ep, const void *laddr, size_t len, uint32_t lkey,
	     uint64_t raddr, uint32_t rkey)
{
	int ret = ep_post_write(ep, laddr, len, lkey, raddr, rkey);

	return ret ? ret : ep_wait(ep, 1);
}
