/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * System calls made without libc: the hooks and the patcher use these so
 * they never enter a function they patch (or a sanitizer's interceptor),
 * and never touch errno. Return the kernel's value: -errno on failure.
 */
#ifndef MRC_HOOKS_RAW_SYSCALL_H
#define MRC_HOOKS_RAW_SYSCALL_H

static inline long mrc_raw_syscall3(long n, long a1, long a2, long a3)
{
	long ret;

	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(n), "D"(a1), "S"(a2), "d"(a3)
			 : "rcx", "r11", "memory");
	return ret;
}

static inline long mrc_raw_syscall6(long n, long a1, long a2, long a3,
				    long a4, long a5, long a6)
{
	register long r10 __asm__("r10") = a4;
	register long r8 __asm__("r8") = a5;
	register long r9 __asm__("r9") = a6;
	long ret;

	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(n), "D"(a1), "S"(a2), "d"(a3), "r"(r10),
			   "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}

#endif /* MRC_HOOKS_RAW_SYSCALL_H */
