#!/bin/bash
# Run every /dev/mrcache test.
#
#   test/kmod/run-all.sh            build module + tests, boot ONE VM
#                                   (--numa --zram) and run them all there;
#                                   natively instead if /dev/mrcache exists
#   test/kmod/run-all.sh --here     run them here (used inside the VM)
#
# Exit: 0 all passed (skips allowed), 1 a test failed, 77 nothing could run.
# Per-test timeout: MRCACHE_TEST_TIMEOUT seconds (default 60).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
# Test programs: built here by test/kmod/Makefile, or by the top-level
# build (make check), which points MRCACHE_KMOD_BINDIR at its own folder.
bindir=${MRCACHE_KMOD_BINDIR:-$here}

# Order matters a little: t_dup_watch, t_scribble, t_concurrent, the
# t_user_* tests, t_noisy, t_exit and t_reload compare global module
# counters, t_pressure puts the guest under memory pressure; run those last.
TESTS=(t_handshake t_badmmap t_munmap t_brk t_mremap t_madvise t_fork
       t_two_files t_overflow t_sequence t_rearm t_dofork t_order t_many
       t_poll t_migrate t_pinned t_fuzz t_dup_watch t_scribble t_concurrent
       t_user_files t_user_watches t_user_pages t_noisy t_exit t_reload
       t_pressure)

run_here() {
	local pass=0 fail=0 skip=0 t rc start
	cd "$here" || exit 1
	for t in "${TESTS[@]}"; do
		[[ -x $bindir/$t || -x $here/$t.sh ]] || continue
		start=$SECONDS
		if [[ -x $here/$t.sh ]]; then
			timeout "${MRCACHE_TEST_TIMEOUT:-60}" "$here/$t.sh"
		else
			timeout "${MRCACHE_TEST_TIMEOUT:-60}" "$bindir/$t"
		fi
		rc=$?
		case $rc in
		0) pass=$((pass + 1)); echo "PASS: $t ($((SECONDS - start)) s)" ;;
		77) skip=$((skip + 1)); echo "SKIP: $t" ;;
		*) fail=$((fail + 1)); echo "FAIL: $t (exit $rc)" ;;
		esac
	done
	echo "# kmod tests: $pass passed, $fail failed, $skip skipped"
	((fail)) && exit 1
	((pass)) || exit 77
	exit 0
}

build() {
	make -s -C "$top/kmod" >/dev/null || exit 1
	make -s -C "$here" || exit 1
}

if [[ ${1:-} == --here ]]; then
	run_here
elif [[ -e /dev/mrcache ]]; then
	make -s -C "$here" || exit 1
	run_here
else
	build
	cd "$top" || exit 1
	exec test/vm/run.sh --numa --zram 256 --mem 1024 --timeout 600 \
		--env MRCACHE_KO="$top/kmod/mrcache.ko" \
		--insmod "$top/kmod/mrcache.ko" -- test/kmod/run-all.sh --here
fi
