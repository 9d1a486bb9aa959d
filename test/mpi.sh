#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
#
# make check: Open MPI 4.1 as Debian packages it, with mrcache's runtime
# shims under its two RDMA paths: two ranks of test/mpi_test on Soft-RoCE
# (in the VM, with two NUMA nodes for move_pages), 1 MiB messages, the
# sender's buffer changed between two sends (mem_changes.h). Open MPI's
# own registration cache (grdma, under ob1's openib btl) is not hooked:
# it treats an invalidated registration still in use as fatal. Without
# a shim, Open MPI feeds both runtimes' caches from its own memory hooks
# (its patched munmap calls ucm_vm_munmap, pml_ucx_opal_mem_hooks=true,
# and it imports them as libfabric's memory monitor). Runs:
#   pml ucx             after a raw munmap system call rank 1 gets the old
#                       bytes (the test can fail: this is what it fails on);
#   pml ucx, shim       -x LD_PRELOAD=libmrcache-ucx.so: the new bytes;
#   mtl ofi             verbs;ofi_rxm: the old bytes after a raw munmap;
#   mtl ofi, shim       -x LD_PRELOAD=libmrcache-ofi.so: the new bytes (the
#                       shim's constructor imports first; Open MPI's
#                       fi_import then fails and it carries on).
# Re-runs itself in the guest (test/in-vm.sh), natively when this machine
# has an RDMA device and the module: then set UCX_NET_DEVICES,
# UCX_IB_GID_INDEX, FI_VERBS_DEVICE_NAME and MRCACHE_RDMA_CM_ADDR.
set -u

. "$(dirname "$0")/shim_common.sh"
app=$top_builddir/test/mpi_test
ucx_lib=$top_builddir/src/ucx/.libs/libmrcache-ucx.so
ofi_lib=$top_builddir/src/ofi/.libs/libmrcache-ofi.so

if [[ ${MRCACHE_SHIM_INSIDE:-0} != 1 ]]; then
	if [[ ! -x $app ]] || ! command -v mpirun >/dev/null; then
		missing "Open MPI: test/mpi_test was not built or there is no mpirun (configure looks for mpicc; Debian: apt-get install openmpi-bin libopenmpi-dev)"
	fi
	[[ -f $ucx_lib && -f $ofi_lib ]] ||
		missing "libmrcache-ucx.so and libmrcache-ofi.so (configure looks for UCX and libfabric; Debian: apt-get install libucx-dev libfabric-dev)"
fi
# About 2 minutes on an idle 2-core host, boot included; 3 to 5.5 with
# load average 12.
rerun_in_vm "$app" "$ucx_lib" "${MRCACHE_MPI_TIMEOUT:-900}"

# Two ranks on this host, as root in the guest; --timeout ends a hung job.
mpirun=(mpirun -np 2 --allow-run-as-root --oversubscribe --bind-to none
	--timeout 240 --mca btl self)

# pml ucx on rc_verbs alone (no shared-memory transport can carry the
# message past the cache), over Soft-RoCE as in test/ucx.sh; Open MPI
# takes UCX only for the devices in pml_ucx_devices (mlx* by default).
export UCX_TLS=rc_verbs,ud_verbs,self UCX_NET_DEVICES=${UCX_NET_DEVICES:-rxe0:1}
export UCX_IB_GID_INDEX=${UCX_IB_GID_INDEX:-2} UCX_RNDV_THRESH=8k UCX_WARN_UNUSED_ENV_VARS=n
ucx=(--mca pml ucx --mca pml_ucx_devices any)
run "pml ucx, Open MPI's memory hooks" "${mpirun[@]}" "${ucx[@]}" "$app" ucx native
run "pml ucx, shim (kmod)" "${mpirun[@]}" "${ucx[@]}" \
	-x LD_PRELOAD="$ucx_lib" -x MRCACHE_UCX_VERBOSE=1 "$app" ucx shim kmod

# The ofi mtl on verbs;ofi_rxm: rdma_cm connections, so rxe1 on a dummy
# interface (rdma_progs.sh). rxm sizes each MSG CQ as its queues times
# the universe size (256 by default), past what rxe allows: 4 ranks' worth.
. "$(dirname "$0")/rdma_progs.sh"
fail() { say "$*"; exit 1; }
rdma_cm_addr >/dev/null || exit 1
export FI_VERBS_DEVICE_NAME=${FI_VERBS_DEVICE_NAME:-rxe1} FI_UNIVERSE_SIZE=4
ofi=(--mca pml cm --mca mtl ofi --mca mtl_ofi_provider_include "verbs;ofi_rxm")
run "mtl ofi, Open MPI's memory hooks" "${mpirun[@]}" "${ofi[@]}" \
	"$app" ofi native
run "mtl ofi, shim (kmod)" "${mpirun[@]}" "${ofi[@]}" \
	-x LD_PRELOAD="$ofi_lib" -x MRCACHE_OFI_VERBOSE=1 "$app" ofi shim kmod
exit $status
