#!/usr/bin/env bash
# stage.sh: Link of a >= 1 GiB source, backup to confirmed streaming, with
# stage.Linker against the hand-written shell procedure it replaces; and the
# delay from the source stopping to the fault.
#
#   bench/stage.sh                 run the comparison (PostgreSQL 15 unless
#                                  PGSTAGE_PG_VERSIONS names one major, 12+;
#                                  PGSTAGE_BENCH_RUNS rounds, default 3;
#                                  PGSTAGE_BENCH_MB source size, default 1100)
#   bench/stage.sh procedure ...   the shell procedure alone (called by the
#                                  Go driver, TestBenchLinkVsShell in the root
#                                  bench_stage_test.go, built with the
#                                  pgstagebench tag)
set -euo pipefail

if [ "${1:-}" != procedure ]; then
  cd "$(dirname "$0")/.."
  scripts/install-postgres >/dev/null
  exec go test -tags pgstagebench . -run '^TestBenchLinkVsShell$' -count=1 -v -timeout 60m |
    grep -E '^(=== RUN|--- |\s+integration_test.go|ok|FAIL|PASS)' || true
fi

# procedure BACKUP_FOLDER DATA BINDIR PORT SOCKDIR SRC_HOST SRC_PORT SRC_USER PASSFILE OSUSER
# The password comes in $PGSTAGE_BENCH_PASSWORD, never as an argument.
# The restore by hand, then the same standby procedure bench/replica.sh times.
shift
backup=$1 data=$2 osuser=${10}
mkdir -m 700 "$data"
tar -xf "$backup/base.tar" -C "$data"
tar -xf "$backup/pg_wal.tar" -C "$data/pg_wal"
[ "$(id -u)" = 0 ] && chown -R "$osuser:" "$data"
shift
exec bash "$(dirname "$0")/replica.sh" procedure "$@"
