#!/bin/bash
# make check: the kernel monitor against the real module (the race test
# reads frames from /proc/self/pagemap: root).
exec "$top_srcdir/test/in-vm.sh" --kmod "$top_builddir/kmod-build/mrcache.ko" --root \
	-- "$top_builddir/test/monitor_kmod_test"
