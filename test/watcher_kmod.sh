#!/bin/bash
# make check: the watcher API with the real module, in the VM.
exec "$top_srcdir/test/in-vm.sh" --kmod "$top_builddir/kmod-build/mrcache.ko" \
	-- "$top_builddir/test/watcher_test" kmod
