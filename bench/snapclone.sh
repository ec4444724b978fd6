#!/usr/bin/env bash
# snapclone.sh: snapshot and clone times and extra disk on a staging of at
# least 1 GiB, on loop-mounted btrfs, XFS (reflink) and ext4 (copy, beside
# `cp -a` of the same data directory). Needs root (loop devices).
#
#   bench/snapclone.sh        PostgreSQL: the last major of PGSTAGE_PG_VERSIONS
#                             (default 18); PGSTAGE_SNAP_BENCH_GIB (default 1),
#                             PGSTAGE_BENCH_RUNS rounds per filesystem (default 3),
#                             PGSTAGE_SNAP_BENCH_FS="btrfs,xfs" to leave some out,
#                             PGSTAGE_SNAP_BENCH_WRITEBACK=1 to write the restored
#                             staging back to disk first (timed), as its first start
#                             does with fsync = on (the harness runs fsync = off)
#
# The driver is TestBenchSnapshotClone in internal/snapclone/bench_test.go.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "snapclone.sh: needs root for loop-mounted filesystems; skipped" >&2
  exit 0
fi
scripts/install-postgres >/dev/null
PGSTAGE_BENCH_SNAPCLONE=1 exec go test ./internal/snapclone -run '^TestBenchSnapshotClone$' -count=1 -v -timeout 60m |
  grep -E '^(=== RUN|--- |\s+bench_test.go|ok|FAIL|PASS)' || true
