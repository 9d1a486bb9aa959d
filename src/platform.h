/* SPDX-License-Identifier: BSD-2-Clause */
/* What the system tells every part of the library: page size, time. */
#ifndef MRC_PLATFORM_H
#define MRC_PLATFORM_H

#include <stdint.h>

uint64_t mrc_page_size(void);
uint64_t mrc_now_ns(void);

#endif /* MRC_PLATFORM_H */
