# shellcheck shell=bash
# Helpers shared by the host-side VM scripts (run.sh, fetch-kernel.sh,
# mkinitramfs.sh).  Sourced, never executed.

vm_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
vm_repo_root=$(cd "$vm_here/../.." && pwd -P)
vm_cache_dir=${MRCACHE_VM_CACHE:-$vm_repo_root/.vm-cache}

vm_log() {
	printf 'vm: %s\n' "$*" >&2
}

vm_die() {
	printf 'vm: error: %s\n' "$*" >&2
	exit 1
}

# The VM cannot run on this machine.  make check reports 77 as a skip; CI
# sets MRCACHE_REQUIRE_VM=1 so that a missing VM is a failure, not a skip.
vm_skip() {
	if [[ ${MRCACHE_REQUIRE_VM:-0} == 1 ]]; then
		printf 'vm: error: %s (MRCACHE_REQUIRE_VM=1, so this fails)\n' "$*" >&2
		exit 1
	fi
	printf 'vm: SKIP: %s\n' "$*" >&2
	exit 77
}

# depmod and friends live in /sbin, which a non-root PATH may lack.
vm_find_tool() {
	local tool=$1 dir

	if command -v "$tool" 2>/dev/null; then
		return 0
	fi
	for dir in /usr/sbin /sbin; do
		if [[ -x $dir/$tool ]]; then
			echo "$dir/$tool"
			return 0
		fi
	done
	return 1
}

# Serialise cache updates between concurrent runs (make check -j).
vm_lock_cache() {
	mkdir -p "$vm_cache_dir"
	exec 9>"$vm_cache_dir/.lock"
	flock -w 900 9 || vm_die "timed out waiting for $vm_cache_dir/.lock"
}

vm_unlock_cache() {
	exec 9>&-
}
