// SPDX-License-Identifier: BSD-2-Clause
/*
 * The client's two kinds of peer. Loopback: a second endpoint of this
 * process and a responder called directly. Remote: the same requests as
 * messages on the TCP channel, answered by server_run() on the other host.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "oob.h"
#include "peer.h"
#include "wire.h"

struct loop_peer {
	struct peer base;
	struct ep ep;
	struct responder r;
};

static int loop_post(struct peer *p, const struct write_req *req)
{
	return responder_post(&((struct loop_peer *)p)->r, req);
}

static int loop_wait(struct peer *p)
{
	return ep_wait(&((struct loop_peer *)p)->ep, 1);
}

static int loop_verify(struct peer *p, const struct slot_log *log, size_t n, uint64_t *bad)
{
	*bad = responder_verify(&((struct loop_peer *)p)->r, log, n);
	return 0;
}

static void loop_close(struct peer *p)
{
	struct loop_peer *lp = (struct loop_peer *)p;

	responder_fini(&lp->r);
	ep_close(&lp->ep);
	free(lp);
}

static const struct peer_ops loop_ops = { loop_post, loop_wait, loop_verify, loop_close };

static int loop_open(struct peer **out, struct ep *ep, const struct bench_link *l)
{
	struct loop_peer *lp = calloc(1, sizeof(*lp));
	int ret;

	if (!lp)
		return -ENOMEM;
	lp->base.ops = &loop_ops;
	ret = ep_open(&lp->ep, l->device, l->ib_port, l->gid_index, (uint32_t)rand());
	ep_set_timeout(&lp->ep, l->src_len);
	if (!ret)
		ret = responder_init(&lp->r, &lp->ep, l->src_len, l->dst_len);
	if (!ret)
		ret = ep_connect(&lp->ep, &ep->self);
	if (!ret)
		ret = ep_connect(ep, &lp->ep.self);
	if (ret) {
		fprintf(stderr, "mrcache-bench: loopback peer: %s\n",
			lp->ep.error[0] ? lp->ep.error : ep->error);
		loop_close(&lp->base);
		return ret;
	}
	lp->base.target = (struct peer_target){ (uintptr_t)lp->r.dst, lp->r.dst_len,
						lp->r.dst_mr->rkey };
	*out = &lp->base;
	return 0;
}

struct tcp_peer {
	struct peer base;
	int fd;
};

static int tcp_post(struct peer *p, const struct write_req *req)
{
	return oob_send(((struct tcp_peer *)p)->fd, OOB_WRITE, (const uint64_t *)req,
			WRITE_REQ_WORDS);
}

static int tcp_wait(struct peer *p)
{
	uint64_t status;
	int n = oob_recv(((struct tcp_peer *)p)->fd, OOB_WRITTEN, &status, 1);

	if (n < 0)
		return n;
	return n == 1 ? -(int)status : -EPROTO;
}

static int tcp_verify(struct peer *p, const struct slot_log *log, size_t n, uint64_t *bad)
{
	struct tcp_peer *tp = (struct tcp_peer *)p;
	uint64_t answer;
	size_t per = OOB_MAX_WORDS / VERIFY_WORDS;
	int ret = 0;

	*bad = 0;
	for (size_t i = 0; i < n && !ret; i += per) {
		size_t k = n - i < per ? n - i : per;

		ret = oob_send(tp->fd, OOB_VERIFY, (const uint64_t *)&log[i], k * VERIFY_WORDS);
		if (!ret && (ret = oob_recv(tp->fd, OOB_VERIFIED, &answer, 1)) == 1) {
			*bad += answer;
			ret = 0;
		}
	}
	return ret;
}

static void tcp_close(struct peer *p)
{
	struct tcp_peer *tp = (struct tcp_peer *)p;

	oob_send(tp->fd, OOB_BYE, NULL, 0);
	close(tp->fd);
	free(tp);
}

static const struct peer_ops tcp_ops = { tcp_post, tcp_wait, tcp_verify, tcp_close };

/* HELLO with our QP, WELCOME with the server's QP and target, then RTS. */
static int tcp_handshake(struct tcp_peer *tp, struct ep *ep, const struct bench_link *l)
{
	uint64_t w[HELLO_WORDS];
	struct ep_addr peer;
	int n;

	hello_pack(l->src_len, l->dst_len, &ep->self, w);
	n = oob_send(tp->fd, OOB_HELLO, w, HELLO_WORDS);
	if (!n)
		n = oob_recv(tp->fd, OOB_WELCOME, w, HELLO_WORDS);
	if (n < 0)
		return n;
	if (n != WELCOME_WORDS)
		return -EPROTO;
	ep_addr_unpack(w, &peer);
	tp->base.target = (struct peer_target){ w[EP_ADDR_WORDS], w[EP_ADDR_WORDS + 1],
						(uint32_t)w[EP_ADDR_WORDS + 2] };
	n = ep_connect(ep, &peer);
	if (n)
		fprintf(stderr, "mrcache-bench: %s\n", ep->error);
	return n;
}

static int tcp_open(struct peer **out, struct ep *ep, const struct bench_link *l)
{
	struct tcp_peer *tp = calloc(1, sizeof(*tp));
	int ret;

	if (!tp)
		return -ENOMEM;
	tp->base.ops = &tcp_ops;
	tp->fd = oob_connect(l->host, l->port);
	if (tp->fd < 0) {
		ret = tp->fd;
		free(tp);
		return ret;
	}
	ret = tcp_handshake(tp, ep, l);
	if (ret) {
		close(tp->fd);
		free(tp);
		return ret;
	}
	*out = &tp->base;
	return 0;
}

int peer_open(struct peer **out, struct ep *ep, const struct bench_link *l)
{
	int ret;

	srand((unsigned int)time(NULL) ^ (unsigned int)getpid());
	ret = ep_open(ep, l->device, l->ib_port, l->gid_index, (uint32_t)rand());
	if (ret) {
		fprintf(stderr, "mrcache-bench: %s\n", ep->error);
		return ret;
	}
	ep_set_timeout(ep, l->src_len);
	ret = l->host ? tcp_open(out, ep, l) : loop_open(out, ep, l);
	if (ret)
		ep_close(ep);
	return ret;
}
