#!/usr/bin/env bash
# faults.sh: how soon a staging's faults are raised through stage.Linker:
# the source stopped (log watcher), a silent network partition (default
# liveness; needs root and iproute2), a stalled replay (replay monitor, a
# 2 s bound asked every 500 ms), and the idle CPU of a Linker with its
# watcher and replay monitor (default interval) against no Linker.
#
#   bench/faults.sh     PostgreSQL 15 unless PGSTAGE_PG_VERSIONS names
#                       majors; PGSTAGE_BENCH_RUNS rounds of the real-server
#                       tests (default 3); PGSTAGE_BENCH_WINDOW the CPU window
#                       (default 60s); PGSTAGE_BENCH_SETTLE the wait before the
#                       windows, no Linker first, then one (default 150s)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-postgres >/dev/null
export PGSTAGE_PG_VERSIONS="${PGSTAGE_PG_VERSIONS:-15}"
filter() { grep -E '(faults_test.go|bench_faults_test.go|^--- |^ok|^FAIL)' || true; }
go test . -run '^(TestLinkerReplayStalled|TestLinkerSilentPartition)$' -count="${PGSTAGE_BENCH_RUNS:-3}" -v -timeout 30m | filter
PGSTAGE_PG_VERSIONS="${PGSTAGE_PG_VERSIONS%% *}" go test -tags pgstagebench . -run '^TestBenchFaults$' -count=1 -v -timeout 30m | filter
