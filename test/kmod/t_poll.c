// SPDX-License-Identifier: GPL-2.0
/*
 * Sleeping consumers: poll() and a blocking read() wake when another
 * thread's munmap posts an event; read() returns struct mrc_read_info;
 * O_NONBLOCK read of an empty ring is EAGAIN; a short buffer is EINVAL.
 */
#include <poll.h>
#include <pthread.h>
#include "mrc_test.h"

static char *area;
static long pg;

static void *unmapper(void *arg)
{
	(void)arg;
	usleep(100 * 1000);
	munmap(area, pg);
	return NULL;
}

static void wait_poll(struct mrct *t)
{
	struct pollfd pfd = { .fd = t->fd, .events = POLLIN };
	pthread_t th;

	CHECK(poll(&pfd, 1, 0) == 0, "poll on an empty ring");
	CHECK(!pthread_create(&th, NULL, unmapper, NULL), "thread");
	CHECK(poll(&pfd, 1, 5000) == 1 && (pfd.revents & POLLIN),
	      "poll did not wake: revents %#x", pfd.revents);
	pthread_join(th, NULL);
}

static void wait_read(struct mrct *t)
{
	struct mrc_read_info info;
	pthread_t th;
	ssize_t n;

	CHECK(!pthread_create(&th, NULL, unmapper, NULL), "thread");
	n = read(t->fd, &info, sizeof(info));
	CHECK(n == sizeof(info), "read: %zd %s", n, strerror(errno));
	CHECK(info.pending == 1 && info.producer == *t->producer &&
	      info.overflow == 0, "info pending %u producer %u", info.pending,
	      info.producer);
	pthread_join(th, NULL);
}

int main(void)
{
	struct mrc_read_info info;
	struct mrct t;
	uint64_t gen;
	uint32_t id;
	int fl;

	t_name = "t_poll";
	pg = t_page();
	mrct_open(&t, 64, 16, 0);

	area = t_anon_guarded(pg);
	CHECK(!mrct_watch(&t, area, pg, 1, &id, &gen), "watch");
	wait_poll(&t);
	mrct_expect(&t, id, 1, MRC_REASON_UNMAP, area, area + pg);

	area = t_anon_guarded(pg);
	CHECK(!mrct_watch(&t, area, pg, 2, &id, &gen), "watch");
	wait_read(&t);
	mrct_expect(&t, id, 2, MRC_REASON_UNMAP, area, area + pg);

	CHECK(read(t.fd, &info, 8) < 0 && errno == EINVAL, "short read");
	fl = fcntl(t.fd, F_GETFL);
	CHECK(!fcntl(t.fd, F_SETFL, fl | O_NONBLOCK), "O_NONBLOCK");
	CHECK(read(t.fd, &info, sizeof(info)) < 0 && errno == EAGAIN,
	      "nonblocking read of an empty ring");
	mrct_close(&t);
	T_LOG("PASS");
	return T_PASS;
}
