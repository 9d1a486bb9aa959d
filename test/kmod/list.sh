#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Print the kernel module's test list (tests.am) for run-all.sh, one name a
# line, in order; fail when a test source in DIR is not on it, or an entry
# has no source. Called by the build (Makefile.am, test/kmod/Makefile):
#
#   list.sh DIR ENTRY...     ENTRY: test/kmod/t_NAME or test/kmod/t_NAME.sh
dir=$1
shift
status=0
names=
for entry in "$@"; do
	name=${entry##*/}
	case $name in
	*.sh) src=$dir/$name ;;
	*) src=$dir/$name.c ;;
	esac
	if [ ! -f "$src" ]; then
		echo "list.sh: $entry is in test/kmod/tests.am but $src does not exist" >&2
		status=1
	fi
	names="$names $name"
done
for src in "$dir"/t_*.c "$dir"/t_*.sh; do
	[ -f "$src" ] || continue
	name=${src##*/}
	name=${name%.c}
	case " $names " in
	*" $name "*) ;;
	*)
		case $name in
		*.sh) var=KMOD_SCRIPT_TESTS ;;
		*) var=KMOD_TESTS ;;
		esac
		echo "list.sh: $src is a test that test/kmod/tests.am does not list: add test/kmod/$name to $var" >&2
		status=1
		;;
	esac
done
[ $status = 0 ] || exit 1
for name in $names; do
	echo "$name"
done
