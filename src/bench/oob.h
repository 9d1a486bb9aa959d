/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The out-of-band channel: one TCP connection between client and server,
 * as perftest and rping use, carrying the setup exchange (QPN, PSN, GID,
 * buffer address and rkey) and then requests of the measuring loop.
 *
 * A message is a type and up to OOB_MAX_WORDS 64-bit words, all
 * big-endian on the wire, so hosts of either byte order can talk.
 */
#ifndef MRCACHE_BENCH_OOB_H
#define MRCACHE_BENCH_OOB_H

#include <stddef.h>
#include <stdint.h>

#define OOB_VERSION 1
#define OOB_MAX_WORDS 512

enum oob_type {
	OOB_HELLO = 1,	/* client: version, source and target lengths, its QP */
	OOB_WELCOME,	/* server: its QP, its target buffer (addr, rkey, len) */
	OOB_WRITE,	/* client: write your source into this range of mine */
	OOB_WRITTEN,	/* server: that write completed (status) */
	OOB_VERIFY,	/* client: these slots of your target should hold ... */
	OOB_VERIFIED,	/* server: so many of them did not */
	OOB_BYE,
};

/* Return: a connected socket, or -errno (message on stderr). */
int oob_listen_accept(const char *port);
int oob_connect(const char *host, const char *port);
int oob_send(int fd, uint64_t type, const uint64_t *words, size_t n);
/* Receive the next message: head[0] its type. Return: word count or -errno. */
int oob_recv_any(int fd, uint64_t head[2], uint64_t *words, size_t max);
/* Receive one message of type @type; Return: its word count or -errno. */
int oob_recv(int fd, uint64_t type, uint64_t *words, size_t max);

#endif
