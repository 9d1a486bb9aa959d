#!/bin/bash
# Quick start, command 2: install, build and pass the whole test suite.
#
#   scripts/test.sh            everything CI runs
#   scripts/test.sh default    only the plain build's `make check`
#
# The plain build runs every test, the VM ones included (Soft-RoCE verbs
# tests, the kernel module's tests and the VM harness's smoke test, in
# Debian's kernel under qemu when this machine has no RDMA device or
# module). `make distcheck` builds the tarball read-only and reruns the
# native suites and two VM tests from it. The ASan+UBSan and TSan builds
# rerun the unit and stress tests and the library against the real module
# in the VM. All of that runs with thread refs, the default; the TSan build
# then reruns the get/put suites with compare-and-swap references
# (MRCACHE_THREAD_REFS=0), the fallback. MRCACHE_REQUIRE_VM=1
# (the default here) turns any skip, in the guest too, into a failure, so a
# green run ends with "0 skipped" and means everything ran.
set -euo pipefail

# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
export MRCACHE_REQUIRE_VM=${MRCACHE_REQUIRE_VM:-1}

check_tree() {
	local name=$1
	shift
	say "build $name"
	build_tree "$name" "$@"
	say "make check ($name)"
	# Results of this run only: a test no longer listed leaves no result.
	find "$builds/$name" -path "$builds/$name/test/*.trs" -delete
	if ! make -C "$builds/$name" -s -j"$jobs" check; then
		tail -n 60 "$builds/$name"/test/*.log "$builds/$name"/test/*/*.log 2>/dev/null || true
		return 1
	fi
}

# The suites that drive gets and puts once more with compare-and-swap
# references (MRCACHE_THREAD_REFS=0): the fallback where the kernel has no
# private expedited membarrier, and the opt-out. Every other run uses the
# default, thread refs. Their results replace the tree's own (both must
# pass).
check_cas_refs() {
	local name=$1
	say "make check ($name, MRCACHE_THREAD_REFS=0)"
	if ! MRCACHE_THREAD_REFS=0 make -C "$builds/$name" -s -j"$jobs" check \
		TESTS="test/cache_test test/badinput_test test/fuzz_test test/stress_test test/lifetime_test"; then
		tail -n 60 "$builds/$name"/test/*.log 2>/dev/null || true
		return 1
	fi
}

# One closing line over every build tree: the last result of each test
# (automake's .trs files, test/vm/ included), so a test rerun later counts
# once. With MRCACHE_REQUIRE_VM=1 a skip anywhere fails the run.
summary() {
	local results skipped
	results=$(find "$builds"/*/test -name '*.trs' -exec cat {} + 2>/dev/null |
		sed -n 's/^:test-result: //p')
	skipped=$(grep -cx SKIP <<<"$results" || true)
	printf '%d passed, %d failed, %d skipped\n' \
		"$(grep -cx PASS <<<"$results")" \
		"$(grep -cxE 'FAIL|ERROR|XPASS' <<<"$results")" \
		"$skipped"
	if ((skipped)) && [[ $MRCACHE_REQUIRE_VM == 1 ]]; then
		echo "MRCACHE_REQUIRE_VM=1: a skipped test is a failure" >&2
		return 1
	fi
}

distcheck_tests="test/itree_test test/cache_test test/stress_test
	test/monitor_ring_test test/lifetime_test test/badinput_test test/fuzz_test
	test/monitor_hooks_test test/threadrefs_test test/threadrefs_litmus_test
	test/threadrefs_records_test test/threadrefs_fence_test
	test/monitor_uffd_test test/progress_test test/ranges_test
	test/watcher_hooks.sh test/watcher_uffd.sh test/vm/smoke.sh
	test/monitor_kmod.sh"

main() {
	local what=${1:-all}

	say "install dependencies"
	"$repo/scripts/install-deps.sh"
	check_tree default
	if [[ $what == default ]]; then
		summary
		return
	fi
	# The plain build above ran every test; the tarball's build runs the
	# native suites and two VM tests (the module built from the tarball,
	# the library against it), which keeps CI well under its budget.
	say "make distcheck (tarball builds and passes from a read-only tree)"
	make -C "$builds/default" -s distcheck TESTS="$distcheck_tests" \
		>"$builds/distcheck.log" 2>&1 ||
		{ tail -n 80 "$builds/distcheck.log"; return 1; }
	# The sanitizer builds list the unit and stress tests and the library
	# against the real module (in the VM); the kernel side runs once, above.
	check_tree asan --enable-sanitizer=address
	MRCACHE_STRESS_ITERS=20000 check_tree tsan --enable-sanitizer=thread
	MRCACHE_STRESS_ITERS=20000 check_cas_refs tsan
	summary
	say "all tests passed"
}

main "$@"
