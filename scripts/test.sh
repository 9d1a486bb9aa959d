#!/bin/bash
# Quick start, command 2: install, build and pass the whole test suite.
#
#   scripts/test.sh            everything CI runs
#   scripts/test.sh default    only the plain build's `make check`
#
# The plain build runs every test, the VM ones included (Soft-RoCE verbs
# tests and the kernel module's tests, in Debian's kernel under qemu when
# this machine has no RDMA device or module). The ASan+UBSan and TSan builds
# rerun the unit and stress tests. MRCACHE_REQUIRE_VM=1 (the default here)
# turns a skipped VM test into a failure, so a green run means it ran.
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
	if ! make -C "$builds/$name" -s -j"$jobs" check; then
		tail -n 60 "$builds/$name"/test/*.log "$builds/$name"/test/*/*.log 2>/dev/null || true
		return 1
	fi
}

# One closing line over every build tree: the last result of each test
# (automake's .trs files), so a test rerun later counts once.
summary() {
	local results
	results=$(cat "$builds"/*/test/*.trs 2>/dev/null |
		sed -n 's/^:test-result: //p')
	printf '%d passed, %d failed, %d skipped\n' \
		"$(grep -cx PASS <<<"$results")" \
		"$(grep -cxE 'FAIL|ERROR|XPASS' <<<"$results")" \
		"$(grep -cx SKIP <<<"$results")"
}

main() {
	local what=${1:-all}

	say "install dependencies"
	"$repo/scripts/install-deps.sh"
	check_tree default
	if [[ $what == default ]]; then
		summary
		return 0
	fi
	say "make distcheck (tarball builds and passes from a read-only tree)"
	make -C "$builds/default" -s distcheck >"$builds/distcheck.log" 2>&1 ||
		{ tail -n 80 "$builds/distcheck.log"; return 1; }
	# The VM tests prove the kernel side once; sanitizers watch user space.
	MRCACHE_VM_TESTS=0 check_tree asan --enable-sanitizer=address
	MRCACHE_VM_TESTS=0 MRCACHE_STRESS_ITERS=20000 \
		check_tree tsan --enable-sanitizer=thread
	# The kernel monitor's threads (progress thread, hits racing remaps)
	# under TSan, against the real module in the VM.
	say "kernel monitor under TSan (VM)"
	make -C "$builds/tsan" -s check TESTS=test/monitor_kmod.sh ||
		{ tail -n 60 "$builds/tsan/test/monitor_kmod.log"; return 1; }
	say "all tests passed"
	summary
}

main "$@"
