#!/bin/bash
# make check: the kernel module's own tests (test/kmod/), all in one VM boot
# with two NUMA nodes and zram swap, or natively where /dev/mrcache exists.
export MRCACHE_KMOD_BINDIR=$top_builddir/test/kmod
export MRCACHE_KO=$top_builddir/kmod-build/mrcache.ko
exec "$top_srcdir/test/in-vm.sh" --kmod "$MRCACHE_KO" --rdma \
	--numa --zram 256 --mem 1024 --timeout 600 \
	--env MRCACHE_KO --env MRCACHE_KMOD_BINDIR \
	-- "$top_srcdir/test/kmod/run-all.sh" --here
