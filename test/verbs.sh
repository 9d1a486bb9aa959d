#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
#
# `make check` entry for test/verbs_test: the cache against real verbs,
# natively when this machine has an RDMA device, else in the VM on
# Soft-RoCE (test/in-vm.sh), else skips loudly (exit 77; a failure with
# MRCACHE_REQUIRE_VM=1, so CI cannot pass by skipping).
#
# automake exports top_srcdir and top_builddir (absolute); run by hand, the
# build directory is the current directory:
#     cd BUILDDIR && SRCDIR/test/verbs.sh
set -u

top_srcdir=$(cd "${top_srcdir:-$(dirname "$0")/..}" && pwd)
top_builddir=$(cd "${top_builddir:-.}" && pwd)

export LD_LIBRARY_PATH=$top_builddir/src/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# The guest sees the host's / (and /tmp) read-only; run from the build tree.
cd "$top_builddir" || exit 99
exec "$top_srcdir/test/in-vm.sh" --rdma --timeout "${MRCACHE_VERBS_TIMEOUT:-300}" \
	-- "$top_builddir/test/verbs_test"
