// SPDX-License-Identifier: GPL-2.0
/*
 * Process exit and close.
 *  - exit with watches and the fd still open: the mm teardown calls every
 *    watch with RELEASE (the module's release_events counter moves by
 *    the number of watches), then the file is released and every watch,
 *    ring byte and file is gone again (module counters back to before).
 *  - the fd kept alive in another process (passed over a unix socket)
 *    while the owner exits: RELEASE events still arrive, and the holder
 *    gets EPERM (it is not the owner) and can close it cleanly.
 *  - close() with watches: counters back to before.
 * The counters are in /sys/class/misc/mrcache/stats; run alone (the
 * runner runs tests one after another).
 */
#include <sys/socket.h>
#include <sys/wait.h>
#include "mrc_test.h"

#define NWATCH 10

static void watch_some(struct mrct *t)
{
	long pg = t_page();
	char *p = t_anon(NWATCH * pg);
	uint64_t gen;
	uint32_t id;
	int i;

	for (i = 0; i < NWATCH; i++)
		CHECK(!mrct_watch(t, p + i * pg, pg, i, &id, &gen), "watch");
}

static void send_fd(int sock, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	char byte = 'f';
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	CHECK(sendmsg(sock, &msg, 0) == 1, "sendmsg");
}

static int recv_fd(int sock)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	char byte;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	int fd;

	CHECK(recvmsg(sock, &msg, 0) == 1, "recvmsg");
	memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&msg)), sizeof(int));
	return fd;
}

static void run_child(int sock)
{
	pid_t pid = fork();
	int status;

	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		struct mrct t;

		mrct_open(&t, 64, 32, 0);
		watch_some(&t);
		if (sock >= 0)
			send_fd(sock, t.fd);
		_exit(0);	/* no close, no unwatch */
	}
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
	      WEXITSTATUS(status) == 0, "child status %#x", status);
}

static void check_back(const char *what, long files, long watches,
		       long ring)
{
	CHECK(t_stat("files") == files && t_stat("watches") == watches &&
	      t_stat("ring_bytes") == ring,
	      "%s: files %ld watches %ld ring %ld, wanted %ld %ld %ld", what,
	      t_stat("files"), t_stat("watches"), t_stat("ring_bytes"), files,
	      watches, ring);
}

int main(void)
{
	long files, watches, ring, rel;
	struct mrc_query q = { .id = 0 };
	struct mrct t;
	int sv[2], fd;

	t_name = "t_exit";
	fd = t_open_dev();
	close(fd);
	files = t_stat("files");
	watches = t_stat("watches");
	ring = t_stat("ring_bytes");
	rel = t_stat("release_events");
	if (files < 0)
		SKIP("no stats in sysfs");

	run_child(-1);
	CHECK(t_stat("release_events") == rel + NWATCH,
	      "release events %ld, wanted %ld", t_stat("release_events"),
	      rel + NWATCH);
	check_back("exit", files, watches, ring);

	CHECK(!socketpair(AF_UNIX, SOCK_STREAM, 0, sv), "socketpair");
	run_child(sv[0]);
	fd = recv_fd(sv[1]);
	CHECK(t_stat("release_events") == rel + 2 * NWATCH,
	      "release events with the fd held elsewhere");
	CHECK(t_stat("files") == files + 1 && t_stat("watches") ==
	      watches + NWATCH, "held file lost its watches early");
	CHECK(t_ioctl(fd, MRC_IOC_QUERY, &q) == -EPERM, "holder not EPERM");
	close(fd);
	check_back("close of the passed fd", files, watches, ring);

	mrct_open(&t, 64, 32, 0);
	watch_some(&t);
	CHECK(t_stat("watches") == watches + NWATCH, "watch count");
	mrct_close(&t);
	check_back("close", files, watches, ring);
	T_LOG("PASS (%d RELEASE events per exit)", NWATCH);
	return T_PASS;
}
