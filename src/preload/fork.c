// SPDX-License-Identifier: BSD-2-Clause
/*
 * Fork safety. A program that asked libibverbs for it (ibv_fork_init(),
 * RDMAV_FORK_SAFE or IBV_FORK_SAFE in the environment) has its registered
 * pages marked MADV_DONTFORK where the kernel needs that, and restored
 * when it deregisters them. Cached registrations outlive the program's
 * ibv_dereg_mr(), so pages the program thinks it released (and may have
 * malloc'ed again) would be missing in a child. So before fork() every
 * cache drops its idle registrations; the ones the program holds are its
 * own business, as without the preload.
 *
 * The handler is installed after libmrcache's own (which is installed
 * with the first cache), so it runs first: it takes the preload's and the
 * caches' locks before libmrcache's prepare handler takes its registry
 * lock, the order every other path takes them in.
 *
 * In the child every call passes straight through (preload.c).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "preload.h"

static int program_asked;	/* the program called ibv_fork_init() */
static pthread_once_t handler_once = PTHREAD_ONCE_INIT;
static int handler_in;		/* install() ran: store-release, load-acquire */

static int fork_safety_on(void)
{
	if (__atomic_load_n(&program_asked, __ATOMIC_RELAXED))
		return 1;
	/* What ibv_get_device_list() looks at to call ibv_fork_init(). */
	if (getenv("RDMAV_FORK_SAFE") || getenv("IBV_FORK_SAFE"))
		return 1;
	return preload_real.is_fork_initialized &&
	       preload_real.is_fork_initialized() == IBV_FORK_ENABLED;
}

static void before_fork(void)
{
	if (!preload_forked && fork_safety_on())
		preload_caches_flush_idle();
}

static void install(void)
{
	if (pthread_atfork(before_fork, NULL, NULL))
		fprintf(stderr, "mrcache-preload: no fork handler: idle registrations are not dropped before fork()\n");
	__atomic_store_n(&handler_in, 1, __ATOMIC_RELEASE);
}

void preload_fork_handler_install(void)
{
	pthread_once(&handler_once, install);
}

/*
 * Return: 1 once the handler is installed. A cache goes into the
 * lock-free index (lookup.c) only then, so no registration reaches a
 * cache before fork() would flush it.
 */
int preload_fork_handler_ready(void)
{
	return __atomic_load_n(&handler_in, __ATOMIC_ACQUIRE);
}

int ibv_fork_init(void)
{
	if (!preload_ready())
		return ENOSYS;
	__atomic_store_n(&program_asked, 1, __ATOMIC_RELAXED);
	return preload_real.fork_init();
}
