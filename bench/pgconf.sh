#!/usr/bin/env bash
# pgconf: edit a 10,000-line postgresql.conf (load, one Set, one Comment,
# atomic save with fsync) on the disk TMPDIR is on, then on tmpfs, to tell
# the library's own cost from the disk's fsync latency.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "-- TMPDIR=${TMPDIR:-/tmp} ($(df -T "${TMPDIR:-/tmp}" | awk 'NR==2{print $2}'))"
go test -run '^$' -bench 'Edit10k|Parse10k' -benchmem -count 5 ./pgconf/ | grep '^Benchmark'
if [ -d /dev/shm ]; then
	echo "-- TMPDIR=/dev/shm (tmpfs: fsync costs nothing)"
	TMPDIR=/dev/shm go test -run '^$' -bench 'Edit10k' -benchmem -count 5 ./pgconf/ | grep '^Benchmark'
fi
