#!/bin/bash
# make check: the shims' watched ranges with the real module, in the VM:
# the trim path (ranges_test kmod), when the module's watch slots run out.
# In the guest the module is loaded again with max_watches=256 so that
# filling it is quick; natively the test fills what the loaded module
# allows (65536 watches by default).
ko=$top_builddir/kmod-build/mrcache.ko
# shellcheck disable=SC2016 # expanded by the guest's bash
exec "$top_srcdir/test/in-vm.sh" --kmod "$ko" -- bash -c '
	if [[ ${MRCACHE_IN_VM:-0} == 1 ]]; then
		if ! rmmod mrcache || ! insmod "$1" max_watches=256; then
			exit 1
		fi
	fi
	exec "$2" kmod' ranges_kmod "$ko" "$top_builddir/test/ranges_test"
