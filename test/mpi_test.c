// SPDX-License-Identifier: BSD-2-Clause
/*
 * An MPI program over a runtime's registration cache (test/mpi.sh runs it
 * under Open MPI: pml ucx, or the ofi mtl): two ranks, 1 MiB messages,
 * large enough for the rendezvous path, where the receiver reads the
 * sender's buffer through the sender's cached registration.
 *
 *   mpi_test ucx|ofi native          the runtime's cache told by Open MPI's
 *                                    memory hooks: after a raw munmap system
 *                                    call rank 1 gets the old bytes (what
 *                                    the shim fixes)
 *   mpi_test ucx|ofi shim [MONITOR]  libmrcache-ucx.so or libmrcache-ofi.so
 *                                    preloaded in both ranks, running
 *                                    MONITOR (kmod, hooks): the new bytes
 *
 * Each case (mem_changes.h): rank 0 sends a buffer of 'A's, changes the
 * memory under it (new bytes 'B' at the same address) and sends it again;
 * rank 1 checks the first message and says which bytes the second carried.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include <mpi.h>

#include "mem_changes.h"

#define LEN (1024 * 1024)

enum { TAG_DATA = 1, TAG_APPLIED };

/* Rank 0: one case; its outcome is rank 1's to judge. */
static void send_case(const struct mem_change *c)
{
	char *p = mem_map(NULL, LEN, 'A');
	int applied;

	MPI_Send(p, LEN, MPI_CHAR, 1, TAG_DATA, MPI_COMM_WORLD);
	/* -1: another thread mapped into the hole; rank 1 runs it again. */
	applied = c->apply(p, LEN, 'B');
	MPI_Send(&applied, 1, MPI_INT, 1, TAG_APPLIED, MPI_COMM_WORLD);
	if (applied == 0)
		MPI_Send(p, LEN, MPI_CHAR, 1, TAG_DATA, MPI_COMM_WORLD);
	munmap(p, LEN);
}

/* The byte every position of @out holds, or '?' when they differ. */
static char received(char *out)
{
	memset(out, 0, LEN);
	MPI_Recv(out, LEN, MPI_CHAR, 0, TAG_DATA, MPI_COMM_WORLD,
		 MPI_STATUS_IGNORE);
	for (size_t i = 1; i < LEN; i++)
		if (out[i] != out[0])
			return '?';
	return out[0];
}

/*
 * Rank 1: 1 when the case came out as expected for @monitor (NULL: Open
 * MPI's hooks, which see what the runtimes' own hooks see), 0 when not,
 * -1 when rank 0 must run it again.
 */
static int check_case(const struct mem_change *c, const char *monitor,
		      char *out)
{
	char first = received(out), second, want;
	int applied;

	MPI_Recv(&applied, 1, MPI_INT, 0, TAG_APPLIED, MPI_COMM_WORLD,
		 MPI_STATUS_IGNORE);
	if (applied) {
		printf("     %s: another thread took the address; again\n", c->name);
		return -1;
	}
	second = received(out);
	want = mem_change_seen(c, monitor) || !c->stale_if_missed ? 'B' : 'A';
	printf("%s %-28s first message '%c', after the change '%c' (%s; expected '%c')\n",
	       first == 'A' && second == want ? "ok  " : "FAIL", c->name,
	       first, second, second == 'B' ? "new bytes" :
	       second == 'A' ? "STALE" : "mixed", want);
	fflush(stdout);
	return first == 'A' && second == want;
}

/* Every case, a few tries each when the address was taken; 1 if all passed. */
static int run_cases(int rank, const char *monitor)
{
	char *out = rank == 1 ? mem_map(NULL, LEN, 0) : NULL;
	int ok = 1;

	for (size_t i = 0; i < n_mem_changes; i++) {
		int ret = -1;

		for (int tries = 0; ret < 0 && tries < 5; tries++) {
			if (rank == 0)
				send_case(&mem_changes[i]);
			else
				ret = check_case(&mem_changes[i], monitor, out);
			MPI_Bcast(&ret, 1, MPI_INT, 1, MPI_COMM_WORLD);
		}
		ok &= ret == 1;
	}
	if (out)
		munmap(out, LEN);
	return ok;
}

/* The shim's monitor in this process (mrc_ucx_monitor, mrc_ofi_monitor), or NULL. */
static const char *shim_monitor(const char *runtime)
{
	char name[32];
	const char *(*monitor)(void);

	snprintf(name, sizeof(name), "mrc_%s_monitor", runtime);
	monitor = (const char *(*)(void))dlsym(RTLD_DEFAULT, name);
	return monitor ? monitor() : NULL;
}

/* Does this rank run the shim the command line asks for? */
static int mode_ok(int rank, int argc, char **argv, const char *monitor)
{
	int shim = !strcmp(argv[2], "shim");

	printf("mpi_test: rank %d: mrcache monitor for %s: %s\n", rank, argv[1],
	       monitor ? monitor : "(none)");
	if (shim == !!monitor && (!shim || argc < 4 || !strcmp(argv[3], monitor)))
		return 1;
	fprintf(stderr, "mpi_test: rank %d: %s: the wrong monitor feeds %s's cache\n",
		rank, argv[2], argv[1]);
	return 0;
}

static int usage_ok(int argc, char **argv)
{
	return argc >= 3 && (!strcmp(argv[1], "ucx") || !strcmp(argv[1], "ofi")) &&
	       (!strcmp(argv[2], "shim") || !strcmp(argv[2], "native"));
}

int main(int argc, char **argv)
{
	int rank, size, ok;
	const char *monitor;

	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	if (!usage_ok(argc, argv) || size != 2) {
		if (rank == 0)
			fprintf(stderr, "usage: mpirun -np 2 mpi_test ucx|ofi shim [kmod|hooks] | native\n");
		MPI_Finalize();
		return 2;
	}
	monitor = shim_monitor(argv[1]);
	ok = mode_ok(rank, argc, argv, monitor);
	fflush(stdout);
	MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
	if (ok)
		ok = run_cases(rank, monitor);
	MPI_Finalize();
	return ok ? 0 : 1;
}
