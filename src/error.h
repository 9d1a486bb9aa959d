/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef MRC_ERROR_H
#define MRC_ERROR_H

/*
 * Record why the calling thread's current call fails and return -err, so a
 * failure path reads: return mrc_error(EINVAL, "len is zero");
 */
int mrc_error(int err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), cold));

/* Report something the caller cannot be told through a return value. */
void mrc_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2), cold));

#endif /* MRC_ERROR_H */
