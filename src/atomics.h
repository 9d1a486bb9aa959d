/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The few atomic operations the cache uses, named for what they order.
 * Plain C11/GCC builtins: every access to a word shared with lock-free
 * readers goes through these, so ThreadSanitizer sees every race we allow.
 */
#ifndef MRC_ATOMICS_H
#define MRC_ATOMICS_H

#define mrc_load_relaxed(p)	__atomic_load_n((p), __ATOMIC_RELAXED)
#define mrc_load_acquire(p)	__atomic_load_n((p), __ATOMIC_ACQUIRE)
#define mrc_store_relaxed(p, v)	__atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define mrc_store_release(p, v)	__atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define mrc_fetch_add(p, v)	__atomic_fetch_add((p), (v), __ATOMIC_RELAXED)
#define mrc_fetch_or(p, v)	__atomic_fetch_or((p), (v), __ATOMIC_ACQ_REL)
#define mrc_exchange(p, v)	__atomic_exchange_n((p), (v), __ATOMIC_ACQ_REL)
/*
 * A full barrier as a read-modify-write of @p: two threads that both do it
 * on the same word are ordered one after the other, and the second sees
 * everything the first did before. Unlike a standalone fence, the sanitizer
 * sees the ordering.
 */
#define mrc_rmw_fence(p)	((void)__atomic_fetch_add((p), 1, __ATOMIC_SEQ_CST))
/* The same, leaving the word as it is, and returning it. */
#define mrc_rmw_read(p)		__atomic_fetch_add((p), 0, __ATOMIC_SEQ_CST)
#define mrc_cas(p, expected, desired)					\
	__atomic_compare_exchange_n((p), (expected), (desired), 1,	\
				    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)

#define mrc_likely(x)	__builtin_expect(!!(x), 1)
#define mrc_unlikely(x)	__builtin_expect(!!(x), 0)

#endif /* MRC_ATOMICS_H */
