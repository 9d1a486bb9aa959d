#!/bin/bash
# make check: the watcher API with the libc hooks, natively.
exec "$top_builddir/test/watcher_test" hooks
