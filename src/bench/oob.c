// SPDX-License-Identifier: BSD-2-Clause
/* The TCP side channel: connect, accept and length-prefixed word messages. */
#include <endian.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "oob.h"

static int resolve(const char *host, const char *port, struct addrinfo **res)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = host ? 0 : AI_PASSIVE,
	};
	int ret = getaddrinfo(host, port, &hints, res);

	if (ret)
		fprintf(stderr, "mrcache-bench: %s:%s: %s\n", host ? host : "*", port,
			gai_strerror(ret));
	return ret ? -EHOSTUNREACH : 0;
}

static void no_delay(int fd)
{
	int one = 1;

	/* Requests are small and each waits for an answer. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

int oob_listen_accept(const char *port)
{
	struct addrinfo *res;
	int one = 1, lfd, fd, ret = resolve(NULL, port, &res);

	if (ret)
		return ret;
	lfd = socket(res->ai_family, res->ai_socktype, 0);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(lfd, res->ai_addr, res->ai_addrlen) || listen(lfd, 1)) {
		ret = -errno;
		fprintf(stderr, "mrcache-bench: listen on TCP port %s: %s\n", port, strerror(errno));
		freeaddrinfo(res);
		if (lfd >= 0)
			close(lfd);
		return ret;
	}
	freeaddrinfo(res);
	fprintf(stderr, "mrcache-bench: waiting for a client on TCP port %s\n", port);
	fd = accept(lfd, NULL, NULL);
	ret = fd < 0 ? -errno : fd;
	close(lfd);
	if (fd >= 0)
		no_delay(fd);
	return ret;
}

int oob_connect(const char *host, const char *port)
{
	struct addrinfo *res, *ai;
	int fd = -1, err = ECONNREFUSED, ret = resolve(host, port, &res);

	if (ret)
		return ret;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype, 0);
		if (fd >= 0 && !connect(fd, ai->ai_addr, ai->ai_addrlen))
			break;
		err = errno;
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		fprintf(stderr, "mrcache-bench: connect to %s:%s: %s\n", host, port, strerror(err));
		return -err;
	}
	no_delay(fd);
	return fd;
}

static int io_all(int fd, void *buf, size_t len, int out)
{
	unsigned char *p = buf;

	while (len) {
		ssize_t n = out ? send(fd, p, len, MSG_NOSIGNAL) : recv(fd, p, len, 0);

		if (n == 0)
			return -ECONNRESET;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int oob_send(int fd, uint64_t type, const uint64_t *words, size_t n)
{
	uint64_t msg[OOB_MAX_WORDS + 2];

	if (n > OOB_MAX_WORDS)
		return -EMSGSIZE;
	msg[0] = htobe64(type);
	msg[1] = htobe64(n);
	for (size_t i = 0; i < n; i++)
		msg[i + 2] = htobe64(words[i]);
	return io_all(fd, msg, (n + 2) * sizeof(msg[0]), 1);
}

int oob_recv_any(int fd, uint64_t head[2], uint64_t *words, size_t max)
{
	size_t n;
	int ret = io_all(fd, head, 2 * sizeof(head[0]), 0);

	if (ret)
		return ret;
	head[0] = be64toh(head[0]);
	n = be64toh(head[1]);
	if (n > max) {
		fprintf(stderr, "mrcache-bench: protocol error: message %llu of %zu words\n",
			(unsigned long long)head[0], n);
		return -EPROTO;
	}
	ret = io_all(fd, words, n * sizeof(words[0]), 0);
	for (size_t i = 0; i < n && !ret; i++)
		words[i] = be64toh(words[i]);
	return ret ? ret : (int)n;
}

int oob_recv(int fd, uint64_t type, uint64_t *words, size_t max)
{
	uint64_t head[2];
	int n = oob_recv_any(fd, head, words, max);

	if (n >= 0 && head[0] != type) {
		fprintf(stderr, "mrcache-bench: protocol error: message %llu, expected %llu\n",
			(unsigned long long)head[0], (unsigned long long)type);
		return -EPROTO;
	}
	return n;
}
