// SPDX-License-Identifier: GPL-2.0
/*
 * The ring mapping cannot be made inheritable: madvise(MADV_DOFORK) on it
 * fails with EINVAL, and a child forked afterwards has nothing mapped at
 * the ring's address (mrcache(4): a child never shares a live ring).
 */
#include <sys/wait.h>
#include "mrc_test.h"

int main(void)
{
	unsigned char vec;
	struct mrct t;
	int status;
	pid_t pid;

	t_name = "t_dofork";
	mrct_open(&t, 8, 8, 0);
	CHECK(madvise(t.map, t.api.mmap_length, MADV_DOFORK) == -1 &&
	      errno == EINVAL, "MADV_DOFORK on the ring: %s",
	      strerror(errno));
	pid = fork();
	CHECK(pid >= 0, "fork");
	if (!pid) {
		/* mincore fails with ENOMEM where nothing is mapped. */
		int r = mincore(t.map, t_page(), &vec);

		_exit(r == -1 && errno == ENOMEM ? 0 : 1);
	}
	CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "the child has the ring mapped");
	mrct_close(&t);
	T_LOG("PASS");
	return T_PASS;
}
