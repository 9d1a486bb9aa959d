#!/bin/bash
# make check: cache_test's cases that need root (the frame check of
# MRCACHE_CHECK_PFN reads /proc/self/pagemap), natively when running as
# root, else as root in the VM.
exec "$top_srcdir/test/in-vm.sh" --root -- "$top_builddir/test/cache_test" --root
