// SPDX-License-Identifier: BSD-2-Clause
/*
 * A library that the change table of test/monitor_cases.h loads with
 * dlopen() after the monitor is in place (monitor_hooks_test and
 * monitor_uffd_test). Its calls reach libc through its own PLT, resolved
 * only now: the hooks must see them without knowing about this library.
 */
#include <stddef.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

int mrc_dltest_munmap(void *p, size_t len);
int mrc_dltest_madvise(void *p, size_t len, int advice);
void *mrc_dltest_mremap(void *old, size_t old_len, size_t new_len, int flags,
			void *new_addr);
int mrc_dltest_syscall_munmap(void *p, size_t len);

int mrc_dltest_munmap(void *p, size_t len)
{
	return munmap(p, len);
}

int mrc_dltest_madvise(void *p, size_t len, int advice)
{
	return madvise(p, len, advice);
}

void *mrc_dltest_mremap(void *old, size_t old_len, size_t new_len, int flags,
			void *new_addr)
{
	return mremap(old, old_len, new_len, flags, new_addr);
}

int mrc_dltest_syscall_munmap(void *p, size_t len)
{
	return (int)syscall(SYS_munmap, p, len);
}
