#!/bin/bash
# Run a test binary where the real thing exists: natively when this machine
# has what the test needs, else in the VM (test/vm/run.sh), else skip
# loudly (exit 77; exit 1 with MRCACHE_REQUIRE_VM=1).
#
#   test/in-vm.sh [--kmod FILE.ko] [--rdma] [--root] [run.sh options] -- CMD ARGS...
#
# --kmod FILE.ko: the test needs /dev/mrcache; the VM loads FILE.ko.
# --rdma:         the test needs an RDMA device; the VM sets up rxe0.
# --root:         the test needs root (the guest runs everything as root).
# MRCACHE_VM_TESTS=0: do not boot the VM; a test that cannot run natively
# then skips (fails with MRCACHE_REQUIRE_VM=1).
# MRCACHE_REQUIRE_VM=1 also reaches the guest: a test that skips there fails
# (test/vm/run.sh).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
kmod= rdma=0 root=0 vm_args=()

while (($#)); do
	case $1 in
	--kmod) kmod=$2; shift 2 ;;
	--rdma) rdma=1; shift ;;
	--root) root=1; shift ;;
	--) shift; break ;;
	*) vm_args+=("$1"); shift ;;
	esac
done

skip() {
	echo "*** SKIPPED: $* ***" >&2
	if [[ ${MRCACHE_REQUIRE_VM:-0} == 1 ]]; then
		echo "*** MRCACHE_REQUIRE_VM=1: a skip is a failure ***" >&2
		exit 1
	fi
	exit 77
}

native_ok() {
	[[ -n $kmod && ! -c /dev/mrcache ]] && return 1
	((rdma)) && ! compgen -G '/dev/infiniband/uverbs*' >/dev/null && return 1
	((root)) && (($(id -u) != 0)) && return 1
	return 0
}

if native_ok; then
	exec "$@"
fi
[[ ${MRCACHE_VM_TESTS:-1} == 0 ]] &&
	skip "$1 needs the VM here and MRCACHE_VM_TESTS=0"
[[ -n $kmod && ! -f $kmod ]] && skip "$1 needs the kernel module, but $kmod was not built (configure --with-kernel-headers)"
[[ -n $kmod ]] && vm_args+=(--insmod "$kmod")
((rdma)) || vm_args+=(--no-rxe)
set +e
"$here/vm/run.sh" "${vm_args[@]}" -- "$@"
rc=$?
set -e
((rc == 77)) && skip "$1: the VM cannot run here, or $1 skipped in it (see above)"
exit "$rc"
