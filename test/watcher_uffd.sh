#!/bin/bash
# make check: the watcher API with userfaultfd, natively (no module needed).
exec "$top_builddir/test/watcher_test" uffd
