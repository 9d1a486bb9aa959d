// SPDX-License-Identifier: GPL-2.0
/*
 * fork: the child that inherited the fd gets EPERM from every ioctl, mmap
 * and read, EPOLLERR from poll, and has no copy of the ring mapping.
 * fork itself only write-protects (PROTECTION_PAGE, filtered): no event.
 * A write by the parent while the child shares the page breaks COW and
 * invalidates (CLEAR).  The child's exit delivers nothing to the parent.
 */
#include <poll.h>
#include <sys/wait.h>
#include "mrc_test.h"

static int child(struct mrct *t, int go)
{
	long pg = t_page();
	struct mrc_query q = { .id = 0 };
	struct mrc_api a;
	struct pollfd pfd = { .fd = t->fd, .events = POLLIN };
	struct mrc_read_info info;
	char c;
	void *m;

	t_name = "t_fork child";
	t_api_init(&a, 64, 16, 0);
	CHECK(t_ioctl(t->fd, MRC_IOC_API, &a) == -EPERM, "API");
	CHECK(t_ioctl(t->fd, MRC_IOC_QUERY, &q) == -EPERM, "QUERY");
	CHECK(t_ioctl(t->fd, MRC_IOC_UNWATCH, &q) == -EPERM, "UNWATCH");
	CHECK(t_ioctl(t->fd, 0x1234, NULL) == -EPERM, "unknown ioctl");
	m = mmap(NULL, t->api.mmap_length, PROT_READ, MAP_SHARED, t->fd, 0);
	CHECK(m == MAP_FAILED && errno == EPERM, "mmap");
	CHECK(read(t->fd, &info, sizeof(info)) < 0 && errno == EPERM, "read");
	CHECK(poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLERR), "poll %#x",
	      pfd.revents);
	/* VM_DONTCOPY: the parent's ring is not in the child at all. */
	CHECK(mincore(t->map, pg, (unsigned char[1]){0}) < 0 &&
	      errno == ENOMEM, "ring mapping inherited");
	CHECK(read(go, &c, 1) == 1, "wait for parent");
	return T_PASS;
}

int main(void)
{
	long pg = t_page();
	int go[2], status;
	struct mrc_query q;
	struct mrct t;
	uint64_t gen;
	uint32_t id;
	pid_t pid;
	char *p;

	t_name = "t_fork";
	mrct_open(&t, 64, 16, 0);
	p = t_anon_guarded(4 * pg);
	CHECK(!mrct_watch(&t, p, 4 * pg, 9, &id, &gen), "watch");
	CHECK(!pipe(go), "pipe");
	pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0)
		_exit(child(&t, go[0]));
	mrct_expect_empty(&t, "fork");
	CHECK(mrct_gen(&t, id) == gen, "fork moved the generation");

	p[pg] = 1;	/* COW break while the child still maps the page */
	mrct_expect(&t, id, 9, MRC_REASON_CLEAR, p + pg, p + 2 * pg);

	CHECK(write(go[1], "x", 1) == 1, "release child");
	CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "child failed (status %#x)", status);
	mrct_expect_empty(&t, "child exit");
	CHECK(!mrct_query(&t, id, &q) && q.cookie == 9, "watch survives");
	mrct_close(&t);
	T_LOG("PASS");
	return T_PASS;
}
