#!/bin/bash
# Run every /dev/mrcache test: exactly the entries of tests.list, which the
# build writes from tests.am (the one list).
#
#   test/kmod/run-all.sh            build module + tests, boot ONE VM
#                                   (--numa --zram) and run them all there;
#                                   natively instead if /dev/mrcache exists
#   test/kmod/run-all.sh --here     run them here (used inside the VM)
#
# Every listed test must pass. A listed test that was not built fails, and
# so does a built t_* program that is not listed. A skip (exit 77) fails
# when MRCACHE_REQUIRE_VM=1 (CI: where these run, everything they need is
# there); otherwise the run reports 77 unless something failed.
# Exit: 0 all passed, 1 a test failed, 77 none failed but some skipped.
# Per-test timeout: MRCACHE_TEST_TIMEOUT seconds (default 60).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
# Test programs and tests.list: built here by test/kmod/Makefile, or by the
# top-level build (make check), which points MRCACHE_KMOD_BINDIR at its own
# folder.
bindir=${MRCACHE_KMOD_BINDIR:-$here}
list=$bindir/tests.list
pass=0 fail=0 skip=0

failed() {
	fail=$((fail + 1))
	echo "FAIL: $*"
}

# Built t_* programs that tests.list does not name: the build and the list
# disagree, so something would go untested.
check_unlisted() {
	local f name

	for f in "$bindir"/t_*; do
		name=${f##*/}
		[[ -f $f && -x $f && $name != *.* ]] || continue
		grep -qxF "$name" "$list" ||
			failed "$name: built in $bindir but not in tests.list (add it to test/kmod/tests.am)"
	done
}

# run_one NAME: run a listed test, a script here or a program in $bindir.
run_one() {
	local t=$1 cmd rc start=$SECONDS

	case $t in
	*.sh) cmd=$here/$t ;;
	*) cmd=$bindir/$t ;;
	esac
	if [[ ! -x $cmd ]]; then
		failed "$t: listed in tests.list but $cmd was not built"
		return
	fi
	timeout "${MRCACHE_TEST_TIMEOUT:-60}" "$cmd"
	rc=$?
	case $rc in
	0) pass=$((pass + 1)); echo "PASS: $t ($((SECONDS - start)) s)" ;;
	77)
		if [[ ${MRCACHE_REQUIRE_VM:-0} == 1 ]]; then
			failed "$t skipped (exit 77); MRCACHE_REQUIRE_VM=1: nothing may skip"
		else
			skip=$((skip + 1))
			echo "SKIP: $t"
		fi
		;;
	*) failed "$t (exit $rc)" ;;
	esac
}

run_here() {
	local t tests

	cd "$here" || exit 1
	if [[ ! -s $list ]]; then
		echo "FAIL: no test list at $list (make check, or make -C test/kmod, writes it)"
		exit 1
	fi
	check_unlisted
	mapfile -t tests <"$list"
	for t in "${tests[@]}"; do
		run_one "$t" </dev/null
	done
	echo "# kmod tests: $pass passed, $fail failed, $skip skipped"
	((fail)) && exit 1
	((skip)) && exit 77
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
