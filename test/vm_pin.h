/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The process's pinned memory (VmPin in /proc/self/status: what RDMA
 * registrations hold; ib_umem counts it), for the tests that check a
 * runtime or a cache let go of its pins.
 */
#ifndef MRC_TEST_VM_PIN_H
#define MRC_TEST_VM_PIN_H

#include <stdio.h>

/* In KiB, or -1 when the kernel does not say. */
static inline long vm_pin_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmPin: %ld kB", &kib) == 1)
			break;
	if (f)
		fclose(f);
	return kib;
}

#endif /* MRC_TEST_VM_PIN_H */
