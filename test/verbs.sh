#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
#
# `make check` entry for test/verbs_test: the cache against real verbs.
#
# Runs the test natively when this machine has an RDMA device, else in the
# VM on Soft-RoCE (test/vm/run.sh), else skips loudly (exit 77). With
# MRCACHE_REQUIRE_VM=1 a skip is a failure, so CI cannot pass by skipping.
#
# automake exports top_srcdir and top_builddir (absolute); run by hand, the
# build directory is the current directory:
#     cd BUILDDIR && SRCDIR/test/verbs.sh
set -u

here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=$(cd "${top_srcdir:-$here/..}" && pwd)
top_builddir=$(cd "${top_builddir:-.}" && pwd)
test_bin=$top_builddir/test/verbs_test

say() { printf 'verbs.sh: %s\n' "$*" >&2; }

skip() {
	{
		echo '************************************************************'
		echo "VM verbs tests SKIPPED: $*"
		echo '************************************************************'
	} >&2
	if [[ ${MRCACHE_REQUIRE_VM:-0} == 1 ]]; then
		say "MRCACHE_REQUIRE_VM=1: a skip is a failure"
		exit 1
	fi
	exit 77
}

# The program to execute: libtool leaves a wrapper script in test/ and the
# real binary in test/.libs/. Running the real one with the build's library
# on LD_LIBRARY_PATH works the same natively and in the read-only guest.
real_binary() {
	if [[ ! -x $test_bin ]]; then
		say "$test_bin is missing; build it first (make -C $top_builddir check)"
		exit 99
	fi
	if [[ $(head -c 2 "$test_bin") == '#!' && -x $top_builddir/test/.libs/verbs_test ]]; then
		echo "$top_builddir/test/.libs/verbs_test"
	else
		echo "$test_bin"
	fi
}

has_native_device() {
	compgen -G '/dev/infiniband/uverbs*' >/dev/null || return 1
	command -v ibv_devices >/dev/null || return 1
	# Two header lines, then one line per device.
	ibv_devices 2>/dev/null | awk 'NR > 2 && NF { found = 1 } END { exit !found }'
}

if [[ ${MRCACHE_VM_TESTS:-1} == 0 ]]; then
	say "MRCACHE_VM_TESTS=0: not run here (the VM tests run in the plain build)"
	exit 77
fi

bin=$(real_binary)
export LD_LIBRARY_PATH=$top_builddir/src/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

if has_native_device; then
	say "RDMA device present: running natively"
	exec "$bin"
fi

# The guest sees the host's / (and /tmp) read-only; run from the build tree.
cd "$top_builddir" || exit 99
say "no RDMA device here: running in the VM on Soft-RoCE"
"$top_srcdir/test/vm/run.sh" --rxe --timeout "${MRCACHE_VERBS_TIMEOUT:-300}" -- "$bin"
status=$?
[[ $status == 77 ]] && skip "no RDMA device on this machine and the VM cannot run here (see the messages above)"
exit "$status"
