/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The passive side and how the client reaches it.
 *
 * The responder owns the peer's two pre-registered buffers: a target the
 * client WRITEs into (in slots, so one check covers many messages) and a
 * source it WRITEs from into the client's buffers. A peer is the client's
 * handle on a responder: in the same process (loopback) or behind the TCP
 * channel (a server process running server_run()). Both go through the
 * same responder functions, so the two modes measure the same thing.
 */
#ifndef MRCACHE_BENCH_PEER_H
#define MRCACHE_BENCH_PEER_H

#include <stddef.h>
#include <stdint.h>

#include "endpoint.h"

#define PEER_SOURCE_ID 0xfffffffeu	/* pattern id of the responder's source */
#define VERIFY_WORDS 5			/* words per slot_log entry */

struct peer_target {
	uint64_t addr;
	uint64_t len;
	uint32_t rkey;
};

/*
 * "Write your source's [src_off, +len) into my (addr, rkey), stamped
 * msgno." Only 64-bit words, so it travels as it is (wire.h).
 */
struct write_req {
	uint64_t addr, len, src_off, msgno, rkey;
};

/* What slot @off of the target should hold after the cell (words too). */
struct slot_log {
	uint64_t off, len, msgno, id, gen;
};

struct responder {
	struct ep *ep;
	unsigned char *src, *dst;
	size_t src_len, dst_len;
	struct ibv_mr *src_mr, *dst_mr;
};

int responder_init(struct responder *r, struct ep *ep, size_t src_len, size_t dst_len);
void responder_fini(struct responder *r);
int responder_post(struct responder *r, const struct write_req *req);
/* Return: how many of the @n slots do not hold what @log says. */
uint64_t responder_verify(const struct responder *r, const struct slot_log *log, size_t n);

struct peer;
struct peer_ops {
	int (*post)(struct peer *p, const struct write_req *req);
	int (*wait)(struct peer *p);	/* the oldest post completed */
	int (*verify)(struct peer *p, const struct slot_log *log, size_t n, uint64_t *bad);
	void (*close)(struct peer *p);
};

struct peer {
	const struct peer_ops *ops;
	struct peer_target target;
};

struct bench_link {
	const char *host, *port, *device;
	int ib_port, gid_index;
	size_t src_len, dst_len;	/* what the responder must hold */
};

/* Open our endpoint @ep and a connected peer. Return: 0 or -errno. */
int peer_open(struct peer **out, struct ep *ep, const struct bench_link *l);
/* --server: accept one client and serve it until it says goodbye. */
int server_run(const struct bench_link *l);

#endif
