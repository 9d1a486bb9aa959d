# SPDX-License-Identifier: BSD-2-Clause
# Sourced by the runtime shim tests (test/ofi.sh, test/ucx.sh,
# test/mpi.sh): each runs its program several times in one guest
# (test/in-vm.sh: natively when this machine has an RDMA device and the
# module).

top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
top_builddir=${top_builddir:-$PWD}
kmod=$top_builddir/kmod-build/mrcache.ko
status=0

say() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; }

# What the test needs was not built (configure did not find it): skip
# loudly, or fail where every test must run (MRCACHE_REQUIRE_VM=1, CI).
missing() {
	say "*** SKIPPED: needs $* ***"
	[[ ${MRCACHE_REQUIRE_VM:-0} == 1 ]] &&
		{ say "*** MRCACHE_REQUIRE_VM=1: a skip is a failure ***"; exit 1; }
	exit 77
}

# Outside the guest: re-run the calling script inside it (rxe0, the
# module, two NUMA nodes) and exit with its status. APP LIB TIMEOUT
rerun_in_vm() {
	[[ ${MRCACHE_SHIM_INSIDE:-0} == 1 ]] && return 0
	[[ -x $1 && -f $2 ]] || { say "build first: $1, $2"; exit 99; }
	export LD_LIBRARY_PATH=$top_builddir/src/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
	export MRCACHE_SHIM_INSIDE=1
	cd "$top_builddir" || exit 99
	exec "$top_srcdir/test/in-vm.sh" --rdma --kmod "$kmod" --numa \
		--timeout "$3" -- bash "$0"
}

# NAME CMD ARGS...: one run, timed (TCG budgets); a failure fails the
# script at its end.
run() {
	local name=$1 start=$SECONDS
	shift
	say "--- $name"
	"$@" || { say "FAIL: $name"; status=1; }
	say "    $name: $((SECONDS - start)) s"
}
