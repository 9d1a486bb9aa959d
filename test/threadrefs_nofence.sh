#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# How often test/threadrefs_test fails with the reclaimer's membarrier
# removed (MRCACHE_TEST_SKIP_MEMBARRIER=1): the evidence that the fence is
# what makes slot hits safe. Not a pass/fail test (the failure is a race);
# prints "N of M runs failed". Usage: threadrefs_nofence.sh [runs] [seconds]
runs=${1:-20}
secs=${2:-2}
bin=${THREADREFS_TEST:-test/threadrefs_test}
failed=0
i=0
while [ "$i" -lt "$runs" ]; do
	if ! MRCACHE_TEST_SKIP_MEMBARRIER=1 MRCACHE_TREFS_SECONDS=$secs "$bin" >/tmp/threadrefs_nofence.$$ 2>&1; then
		failed=$((failed + 1))
		grep -E 'litmus|:F:|:E:|used after' /tmp/threadrefs_nofence.$$ | cut -c1-300 | head -4
	fi
	i=$((i + 1))
done
rm -f /tmp/threadrefs_nofence.$$
echo "without membarrier: $failed of $runs runs failed ($secs s each)"
