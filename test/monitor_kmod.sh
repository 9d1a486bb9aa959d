#!/bin/bash
# make check: the kernel monitor against the real module.
exec "$top_srcdir/test/in-vm.sh" --kmod "$top_builddir/kmod-build/mrcache.ko" \
	-- "$top_builddir/test/monitor_kmod_test"
