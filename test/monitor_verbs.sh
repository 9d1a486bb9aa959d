#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
#
# make check: the kernel monitor with real verbs (test/monitor_verbs_test)
# against the real module, natively when /dev/mrcache and an RDMA device are
# there, else in the VM: rxe on lo, two NUMA nodes (migration tests), a
# small guest with zram swap (the memory pressure test sizes itself from
# MemAvailable).
#
# automake exports top_srcdir and top_builddir; by hand:
#     cd BUILDDIR && top_srcdir=SRCDIR top_builddir=$PWD SRCDIR/test/monitor_verbs.sh
set -u

top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
top_builddir=${top_builddir:-$PWD}
bin=$top_builddir/test/monitor_verbs_test

# libtool keeps the real program in test/.libs when it leaves a wrapper.
if [[ $(head -c 2 "$bin" 2>/dev/null) == '#!' && -x $top_builddir/test/.libs/monitor_verbs_test ]]; then
	bin=$top_builddir/test/.libs/monitor_verbs_test
fi
export LD_LIBRARY_PATH=$top_builddir/src/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
mem=512
# A sanitized build (Makefile.am sets MRCACHE_SANITIZED) leaves out the
# pressure cases: the sanitizers make mlock() a no-op, so the hog's pages
# can be swapped out and it succeeds whatever stays pinned (under ASan,
# pressure_manual_keeps_pins fails for that reason alone). They run in the
# plain build. TSan's shadow memory needs a bigger guest (512 MiB: OOM;
# 1024 MiB: reclaim while the ring cases cache 16,384 regions, each of 2
# loaded runs), and its slowdown longer case timeouts (the ring overflow
# case: over 60 s).
if [[ -n ${MRCACHE_SANITIZED:-} ]]; then
	export CK_EXCLUDE_TAGS=pressure
	export CK_TIMEOUT_MULTIPLIER=${CK_TIMEOUT_MULTIPLIER:-4}
	mem=1536
fi
cd "$top_builddir" || exit 99
exec "$top_srcdir/test/in-vm.sh" --kmod "$top_builddir/kmod-build/mrcache.ko" --rdma \
	--numa --mem "$mem" --zram 256 --timeout "${MRCACHE_MONITOR_VERBS_TIMEOUT:-1200}" \
	-- "$bin"
