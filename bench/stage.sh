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
#                                  integration_test.go)
set -euo pipefail

if [ "${1:-}" != procedure ]; then
  cd "$(dirname "$0")/.."
  scripts/install-postgres >/dev/null
  PGSTAGE_BENCH_STAGE=1 exec go test . -run '^TestBenchLinkVsShell$' -count=1 -v -timeout 60m |
    grep -E '^(=== RUN|--- |\s+integration_test.go|ok|FAIL|PASS)' || true
fi

# procedure BACKUP_FOLDER DATA BINDIR PORT SOCKDIR SRC_HOST SRC_PORT SRC_USER PASSFILE OSUSER
# The password comes in $PGSTAGE_BENCH_PASSWORD, never as an argument.
shift
backup=$1 data=$2 bin=$3 port=$4 sock=$5 host=$6 sport=$7 user=$8 passfile=$9 osuser=${10}
as() { if [ "$(id -u)" = 0 ]; then runuser -u "$osuser" -- "$@"; else "$@"; fi; }
esc() { printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/:/\\:/g'; }          # passfile fields
lq() { printf "'%s'" "$(printf '%s' "$1" | sed -e "s/\\\\/\\\\\\\\/g" -e "s/'/\\\\'/g")"; } # libpq values
cq() { printf "'%s'" "$(printf '%s' "$1" | sed -e "s/\\\\/\\\\\\\\/g" -e "s/'/''/g")"; }     # conf values

mkdir -m 700 "$data"
tar -xf "$backup/base.tar" -C "$data"
tar -xf "$backup/pg_wal.tar" -C "$data/pg_wal"
[ "$(id -u)" = 0 ] && chown -R "$osuser:" "$data"
(umask 077; printf '%s:%s:*:%s:%s\n' "$(esc "$host")" "$sport" "$(esc "$user")" "$(esc "$PGSTAGE_BENCH_PASSWORD")" > "$passfile")
[ "$(id -u)" = 0 ] && chown "$osuser:" "$passfile"
conninfo="host=$(lq "$host") port=$(lq "$sport") user=$(lq "$user") passfile=$(lq "$passfile") application_name='shell'"
cat >> "$data/postgresql.auto.conf" <<CONF
primary_conninfo = $(cq "$conninfo")
port = $port
unix_socket_directories = $(cq "$sock")
listen_addresses = '127.0.0.1'
CONF
touch "$data/standby.signal"
[ "$(id -u)" = 0 ] && chown "$osuser:" "$data/postgresql.auto.conf" "$data/standby.signal"
as "$bin/pg_ctl" start -w -s -D "$data" -l "$sock/shell.log" >/dev/null
psql=/usr/lib/postgresql/15/bin/psql
until [ "$(as "$psql" -h "$sock" -p "$port" -U postgres -d postgres -Atc 'SELECT status FROM pg_stat_wal_receiver' 2>/dev/null)" = streaming ]; do
  sleep 0.1
done
