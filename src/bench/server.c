// SPDX-License-Identifier: BSD-2-Clause
/*
 * mrcache-bench --server: accept one client, bring up a QP to it and the
 * responder's buffers it asked for, then answer its requests until BYE.
 * The server measures nothing; every figure is the client's.
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

#define MAX_PEER_LEN ((uint64_t)4 << 30)

static int serve_write(int fd, struct responder *r, const uint64_t *w)
{
	struct write_req req;
	uint64_t status;
	int ret;

	memcpy(&req, w, sizeof(req));
	ret = responder_post(r, &req);
	if (!ret)
		ret = ep_wait(r->ep, 1);
	if (ret)
		fprintf(stderr, "mrcache-bench server: %s\n", r->ep->error);
	status = (uint64_t)-ret;
	return oob_send(fd, OOB_WRITTEN, &status, 1);
}

static int serve_verify(int fd, struct responder *r, const uint64_t *w, int n)
{
	struct slot_log log[OOB_MAX_WORDS / VERIFY_WORDS];
	size_t k = (size_t)n / VERIFY_WORDS;
	uint64_t bad;

	memcpy(log, w, k * sizeof(log[0]));
	bad = responder_verify(r, log, k);
	return oob_send(fd, OOB_VERIFIED, &bad, 1);
}

/* One request at a time: the type decides what the words mean. */
static int serve(int fd, struct responder *r)
{
	static uint64_t w[OOB_MAX_WORDS];

	for (;;) {
		uint64_t head[2];
		int n = oob_recv_any(fd, head, w, OOB_MAX_WORDS);

		if (n < 0)
			return n;
		if (head[0] == OOB_BYE)
			return 0;
		if (head[0] == OOB_WRITE && n == WRITE_REQ_WORDS)
			n = serve_write(fd, r, w);
		else if (head[0] == OOB_VERIFY && n % VERIFY_WORDS == 0)
			n = serve_verify(fd, r, w, n);
		else
			n = -EPROTO;
		if (n)
			return n;
	}
}

static int welcome(int fd, struct ep *ep, struct responder *r, const struct bench_link *l)
{
	uint64_t w[HELLO_WORDS];
	struct ep_addr client;
	int n = oob_recv(fd, OOB_HELLO, w, HELLO_WORDS);

	if (n != HELLO_WORDS || w[0] != OOB_VERSION || w[1] > MAX_PEER_LEN || w[2] > MAX_PEER_LEN) {
		fprintf(stderr, "mrcache-bench server: bad HELLO (version %llu)\n",
			n > 0 ? (unsigned long long)w[0] : 0ull);
		return n < 0 ? n : -EPROTO;
	}
	ep_addr_unpack(w + 3, &client);
	n = ep_open(ep, l->device, l->ib_port, l->gid_index, (uint32_t)rand());
	ep_set_timeout(ep, w[1]);
	if (!n)
		n = responder_init(r, ep, w[1], w[2]);
	if (!n)
		n = ep_connect(ep, &client);
	if (n) {
		fprintf(stderr, "mrcache-bench server: %s\n", ep->error);
		return n;
	}
	ep_addr_pack(&ep->self, w);
	w[EP_ADDR_WORDS] = (uintptr_t)r->dst;
	w[EP_ADDR_WORDS + 1] = r->dst_len;
	w[EP_ADDR_WORDS + 2] = r->dst_mr->rkey;
	fprintf(stderr, "mrcache-bench server: %s port %d GID index %d, QPN %u <-> client QPN %u\n",
		ep->device, l->ib_port, ep->gid_index, ep->self.qpn, client.qpn);
	return oob_send(fd, OOB_WELCOME, w, WELCOME_WORDS);
}

int server_run(const struct bench_link *l)
{
	struct responder r = { 0 };
	struct ep ep = { 0 };
	int fd, ret;

	srand((unsigned int)time(NULL) ^ (unsigned int)getpid());
	fd = oob_listen_accept(l->port);
	if (fd < 0)
		return fd;
	ret = welcome(fd, &ep, &r, l);
	if (!ret)
		ret = serve(fd, &r);
	if (ret)
		fprintf(stderr, "mrcache-bench server: stopped: %s\n", strerror(-ret));
	else
		fprintf(stderr, "mrcache-bench server: client done\n");
	responder_fini(&r);
	ep_close(&ep);
	close(fd);
	return ret;
}
