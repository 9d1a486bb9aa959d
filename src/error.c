// SPDX-License-Identifier: BSD-2-Clause
/*
 * Per-thread error messages: the return value carries the errno, this
 * carries the sentence a person needs to fix the call.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mrcache.h"
#include "error.h"

static __thread char last_error[256];

int mrc_error(int err, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(last_error, sizeof(last_error), "%s: ", strerror(err));
	if (n < 0 || (size_t)n >= sizeof(last_error))
		n = 0;
	va_start(ap, fmt);
	vsnprintf(last_error + n, sizeof(last_error) - n, fmt, ap);
	va_end(ap);
	return -err;
}

void mrc_warn(const char *fmt, ...)
{
	va_list ap;

	fputs("mrcache: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/**
 * mrc_last_error() - why the calling thread's last failing call failed.
 *
 * Returns a message that stays valid until the thread's next failing call,
 * or "" when no call of this thread has failed.
 */
const char *mrc_last_error(void)
{
	return last_error;
}
