// SPDX-License-Identifier: BSD-2-Clause
/*
 * Two RC QPs of one process connected to each other through one device.
 *
 * Both QPs share a PD, so a registration made for one side is valid for the
 * other; qp[0] issues RDMA WRITEs that qp[1]'s side of the PD receives. On
 * RoCE the QPs address each other by one local GID: with Soft-RoCE on lo
 * that is the RoCE v2 GID ::ffff:127.0.0.1, and rxe loops the packets back
 * inside the kernel.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rdma_pair.h"

#define DEFAULT_TIMEOUT_MS 10000

static int fail(struct rdma_pair *pair, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct rdma_pair *pair, int err, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(pair->error, sizeof(pair->error), fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < sizeof(pair->error))
		snprintf(pair->error + n, sizeof(pair->error) - (size_t)n,
			 " (%s)", strerror(err));
	return -err;
}

/* Verbs calls report errors through errno or their return value. */
static int verbs_errno(int ret)
{
	if (ret > 0)
		return ret;
	return errno ? errno : EIO;
}

static int env_int(const char *name, int fallback)
{
	const char *text = getenv(name);
	char *end;
	long v;

	if (!text || !*text)
		return fallback;
	v = strtol(text, &end, 0);
	return (*end || v < 0 || v > 1 << 30) ? fallback : (int)v;
}

static int open_device(struct rdma_pair *pair)
{
	const char *want = getenv("MRCACHE_TEST_DEVICE");
	struct ibv_device **list;
	int n, i, err;

	errno = 0;
	list = ibv_get_device_list(&n);
	/* Without the uverbs driver (no /dev/infiniband) the list fails. */
	if (!list)
		return fail(pair, ENODEV, "no RDMA device: ibv_get_device_list: %s",
			    strerror(verbs_errno(0)));
	for (i = 0; i < n; i++)
		if (!want || !*want || !strcmp(want, ibv_get_device_name(list[i])))
			break;
	if (i == n) {
		ibv_free_device_list(list);
		if (want && *want)
			return fail(pair, ENODEV, "no RDMA device named '%s' (MRCACHE_TEST_DEVICE)", want);
		return fail(pair, ENODEV, "no RDMA device");
	}
	snprintf(pair->device, sizeof(pair->device), "%s",
		 ibv_get_device_name(list[i]));
	errno = 0;
	pair->ctx = ibv_open_device(list[i]);
	err = pair->ctx ? 0 : verbs_errno(0);
	ibv_free_device_list(list);
	if (err)
		return fail(pair, err, "ibv_open_device(%s) failed", pair->device);
	return 0;
}

static int is_ipv4_mapped(const union ibv_gid *gid)
{
	static const uint8_t prefix[12] = { [10] = 0xff, [11] = 0xff };

	return !memcmp(gid->raw, prefix, sizeof(prefix));
}

/*
 * Rank a GID for talking to ourselves: a RoCE v2 GID works through the IP
 * stack, an IPv4-mapped one has a route, and 127.0.0.1 is what rxe on lo has.
 */
static int gid_score(const struct ibv_gid_entry *e)
{
	static const uint8_t localhost[4] = { 127, 0, 0, 1 };

	if (e->gid_type != IBV_GID_TYPE_ROCE_V2)
		return 0;
	if (!is_ipv4_mapped(&e->gid))
		return 1;
	return memcmp(e->gid.raw + 12, localhost, 4) ? 2 : 3;
}

static int choose_gid(struct rdma_pair *pair, int table_len)
{
	struct ibv_gid_entry e;
	int best = -1, best_score = -1;

	pair->gid_index = env_int("MRCACHE_TEST_GID_INDEX", -1);
	if (pair->gid_index >= 0)
		return 0;
	for (int i = 0; i < table_len; i++) {
		/* Empty slots fail with ENODATA: skip them. */
		if (ibv_query_gid_ex(pair->ctx, pair->port, (uint32_t)i, &e, 0))
			continue;
		if (gid_score(&e) > best_score) {
			best = i;
			best_score = gid_score(&e);
		}
	}
	if (best < 0)
		return fail(pair, ENODATA, "%s port %u has no usable GID",
			    pair->device, pair->port);
	pair->gid_index = best;
	return 0;
}

static int query_port(struct rdma_pair *pair)
{
	struct ibv_port_attr attr;
	int ret;

	pair->port = (uint8_t)env_int("MRCACHE_TEST_PORT", 1);
	ret = ibv_query_port(pair->ctx, pair->port, &attr);
	if (ret)
		return fail(pair, verbs_errno(ret), "ibv_query_port(%s, %u) failed",
			    pair->device, pair->port);
	if (attr.state != IBV_PORT_ACTIVE)
		return fail(pair, ENETDOWN, "%s port %u is %s, not active",
			    pair->device, pair->port,
			    ibv_port_state_str(attr.state));
	pair->mtu = attr.active_mtu;
	if (attr.link_layer != IBV_LINK_LAYER_ETHERNET) {
		pair->gid_index = -1;
		return 0;
	}
	return choose_gid(pair, attr.gid_tbl_len);
}

static int create_qp(struct rdma_pair *pair, int i)
{
	struct ibv_qp_init_attr attr = {
		.send_cq = pair->cq,
		.recv_cq = pair->cq,
		.qp_type = IBV_QPT_RC,
		.sq_sig_all = 0,
		.cap = {
			.max_send_wr = RDMA_PAIR_DEPTH,
			.max_recv_wr = 1,
			.max_send_sge = 1,
			.max_recv_sge = 1,
		},
	};

	errno = 0;
	pair->qp[i] = ibv_create_qp(pair->pd, &attr);
	if (!pair->qp[i])
		return fail(pair, verbs_errno(0), "ibv_create_qp on %s failed",
			    pair->device);
	return 0;
}

static int to_init(struct rdma_pair *pair, struct ibv_qp *qp)
{
	struct ibv_qp_attr attr = {
		.qp_state = IBV_QPS_INIT,
		.pkey_index = 0,
		.port_num = pair->port,
		.qp_access_flags = IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ,
	};
	int ret;

	ret = ibv_modify_qp(qp, &attr, IBV_QP_STATE | IBV_QP_PKEY_INDEX |
			    IBV_QP_PORT | IBV_QP_ACCESS_FLAGS);
	if (ret)
		return fail(pair, verbs_errno(ret), "QP %u to INIT failed", qp->qp_num);
	return 0;
}

static int to_rtr(struct rdma_pair *pair, struct ibv_qp *qp, uint32_t peer)
{
	struct ibv_qp_attr attr = {
		.qp_state = IBV_QPS_RTR,
		.path_mtu = pair->mtu,
		.dest_qp_num = peer,
		.rq_psn = 0,
		.max_dest_rd_atomic = 1,
		.min_rnr_timer = 12,
		.ah_attr = { .port_num = pair->port },
	};
	union ibv_gid gid;
	int ret;

	if (pair->gid_index >= 0) {
		ret = ibv_query_gid(pair->ctx, pair->port, pair->gid_index, &gid);
		if (ret)
			return fail(pair, verbs_errno(ret), "ibv_query_gid(%s, index %d) failed",
				    pair->device, pair->gid_index);
		attr.ah_attr.is_global = 1;
		attr.ah_attr.grh.dgid = gid;
		attr.ah_attr.grh.sgid_index = (uint8_t)pair->gid_index;
		attr.ah_attr.grh.hop_limit = 64;
	} else {
		struct ibv_port_attr pa;

		ret = ibv_query_port(pair->ctx, pair->port, &pa);
		if (ret)
			return fail(pair, verbs_errno(ret), "ibv_query_port failed");
		attr.ah_attr.dlid = pa.lid;
	}
	ret = ibv_modify_qp(qp, &attr, IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU |
			    IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
			    IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER);
	if (ret)
		return fail(pair, verbs_errno(ret), "QP %u to RTR (peer %u, GID index %d) failed",
			    qp->qp_num, peer, pair->gid_index);
	return 0;
}

static int to_rts(struct rdma_pair *pair, struct ibv_qp *qp)
{
	struct ibv_qp_attr attr = {
		.qp_state = IBV_QPS_RTS,
		.timeout = 14,
		.retry_cnt = 7,
		.rnr_retry = 7,
		.sq_psn = 0,
		.max_rd_atomic = 1,
	};
	int ret;

	ret = ibv_modify_qp(qp, &attr, IBV_QP_STATE | IBV_QP_TIMEOUT |
			    IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY |
			    IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC);
	if (ret)
		return fail(pair, verbs_errno(ret), "QP %u to RTS failed", qp->qp_num);
	return 0;
}

static int connect_pair(struct rdma_pair *pair)
{
	int ret = 0;

	for (int i = 0; i < 2 && !ret; i++)
		ret = to_init(pair, pair->qp[i]);
	for (int i = 0; i < 2 && !ret; i++)
		ret = to_rtr(pair, pair->qp[i], pair->qp[1 - i]->qp_num);
	for (int i = 0; i < 2 && !ret; i++)
		ret = to_rts(pair, pair->qp[i]);
	return ret;
}

static int create_resources(struct rdma_pair *pair)
{
	int ret;

	errno = 0;
	pair->pd = ibv_alloc_pd(pair->ctx);
	if (!pair->pd)
		return fail(pair, verbs_errno(0), "ibv_alloc_pd on %s failed", pair->device);
	errno = 0;
	pair->cq = ibv_create_cq(pair->ctx, 2 * RDMA_PAIR_DEPTH, NULL, NULL, 0);
	if (!pair->cq)
		return fail(pair, verbs_errno(0), "ibv_create_cq on %s failed", pair->device);
	ret = create_qp(pair, 0);
	if (!ret)
		ret = create_qp(pair, 1);
	return ret;
}

int rdma_pair_open(struct rdma_pair *pair)
{
	int saved = errno, ret;

	memset(pair, 0, sizeof(*pair));
	pair->timeout_ms = env_int("MRCACHE_TEST_WR_TIMEOUT_MS", DEFAULT_TIMEOUT_MS);
	ret = open_device(pair);
	if (!ret)
		ret = query_port(pair);
	if (!ret)
		ret = create_resources(pair);
	if (!ret)
		ret = connect_pair(pair);
	if (ret) {
		char why[sizeof(pair->error)];

		memcpy(why, pair->error, sizeof(why));
		rdma_pair_close(pair);
		memcpy(pair->error, why, sizeof(why));
	}
	errno = saved;
	return ret;
}

void rdma_pair_close(struct rdma_pair *pair)
{
	int saved = errno;

	for (int i = 0; i < 2; i++)
		if (pair->qp[i])
			ibv_destroy_qp(pair->qp[i]);
	if (pair->cq)
		ibv_destroy_cq(pair->cq);
	if (pair->pd)
		ibv_dealloc_pd(pair->pd);
	if (pair->ctx)
		ibv_close_device(pair->ctx);
	memset(pair, 0, sizeof(*pair));
	errno = saved;
}

int rdma_pair_post_write(struct rdma_pair *pair, const void *laddr,
			 size_t len, uint32_t lkey, uint64_t raddr,
			 uint32_t rkey)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)laddr,
		.length = (uint32_t)len,
		.lkey = lkey,
	};
	struct ibv_send_wr wr = {
		.wr_id = pair->posted + 1,
		.sg_list = &sge,
		.num_sge = 1,
		.opcode = IBV_WR_RDMA_WRITE,
		.send_flags = IBV_SEND_SIGNALED,
		.wr.rdma = { .remote_addr = raddr, .rkey = rkey },
	}, *bad;
	int ret;

	if (len > UINT32_MAX)
		return fail(pair, EINVAL, "write of %zu bytes exceeds one work request", len);
	if (pair->outstanding >= RDMA_PAIR_DEPTH)
		return fail(pair, EBUSY, "%u writes already outstanding", pair->outstanding);
	ret = ibv_post_send(pair->qp[0], &wr, &bad);
	if (ret)
		return fail(pair, ret > 0 ? ret : EIO,
			    "ibv_post_send(RDMA WRITE %zu B to %#llx rkey %#x) failed",
			    len, (unsigned long long)raddr, rkey);
	pair->posted++;
	pair->outstanding++;
	return 0;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int check_completion(struct rdma_pair *pair, const struct ibv_wc *wc)
{
	pair->outstanding--;
	if (wc->status == IBV_WC_SUCCESS)
		return 0;
	return fail(pair, EIO, "RDMA WRITE (wr_id %llu) completed with status %s (vendor error %#x)",
		    (unsigned long long)wc->wr_id, ibv_wc_status_str(wc->status),
		    wc->vendor_err);
}

int rdma_pair_wait(struct rdma_pair *pair, unsigned int count)
{
	uint64_t deadline = now_ms() + (uint64_t)pair->timeout_ms;
	struct ibv_wc wc[16];
	unsigned int done = 0, idle = 0;
	int n, ret = 0;

	if (count > pair->outstanding)
		return fail(pair, EINVAL, "waiting for %u writes, %u outstanding",
			    count, pair->outstanding);
	while (done < count) {
		n = ibv_poll_cq(pair->cq, (int)(count - done < 16 ? count - done : 16), wc);
		if (n < 0)
			return fail(pair, EIO, "ibv_poll_cq failed");
		for (int i = 0; i < n; i++) {
			int r = check_completion(pair, &wc[i]);

			ret = ret ? ret : r;
		}
		done += (unsigned int)n;
		/* Reading the clock on every empty poll costs more than polling. */
		if (n == 0 && ++idle % 256 == 0 && now_ms() > deadline)
			return fail(pair, ETIMEDOUT, "%u of %u RDMA WRITEs did not complete within %d ms (MRCACHE_TEST_WR_TIMEOUT_MS)",
				    count - done, count, pair->timeout_ms);
	}
	return ret;
}

int rdma_pair_write(struct rdma_pair *pair, const void *laddr, size_t len,
		    uint32_t lkey, uint64_t raddr, uint32_t rkey)
{
	int ret;

	ret = rdma_pair_post_write(pair, laddr, len, lkey, raddr, rkey);
	return ret ? ret : rdma_pair_wait(pair, 1);
}

const char *rdma_pair_error(const struct rdma_pair *pair)
{
	return pair->error[0] ? pair->error : "no error";
}
