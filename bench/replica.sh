#!/usr/bin/env bash
# replica.sh: restored data directory -> confirmed streaming, pgstage's
# replica package against the hand-written shell procedure it replaces.
#
#   bench/replica.sh                 run the comparison (PostgreSQL 15 unless
#                                    PGSTAGE_PG_VERSIONS names one major, 12+;
#                                    PGSTAGE_BENCH_RUNS rounds, default 7)
#   bench/replica.sh procedure ...   the shell procedure alone (called by the
#                                    Go driver, see below)
#
# The driver (BenchmarkReplicaVsShell in replica/bench_test.go) starts a
# primary, takes one backup, and for each round restores it twice (untimed)
# and times, in alternating order: this script's procedure, and replica's
# Setup + Start + WaitStreaming. Both end at pg_stat_wal_receiver saying
# "streaming"; both write a password file and the standby settings, and start
# the server with pg_ctl start -w.
set -euo pipefail

if [ "${1:-}" != procedure ]; then
  cd "$(dirname "$0")/.."
  scripts/install-postgres >/dev/null
  exec go test ./replica -run '^$' -bench '^BenchmarkReplicaVsShell$' -benchtime "${PGSTAGE_BENCH_RUNS:-7}x" \
    -count=1 -timeout 30m |
    grep -E '^(Benchmark|--- |\s+bench_test.go|ok|FAIL|PASS)' || true
fi

# procedure DATA BINDIR PORT SOCKDIR SRC_HOST SRC_PORT SRC_USER PASSFILE OSUSER
# The password comes in $PGSTAGE_BENCH_PASSWORD, never as an argument.
shift
data=$1 bin=$2 port=$3 sock=$4 host=$5 sport=$6 user=$7 passfile=$8 osuser=$9
as() { if [ "$(id -u)" = 0 ]; then runuser -u "$osuser" -- "$@"; else "$@"; fi; }
esc() { printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/:/\\:/g'; }          # passfile fields
lq() { printf "'%s'" "$(printf '%s' "$1" | sed -e "s/\\\\/\\\\\\\\/g" -e "s/'/\\\\'/g")"; } # libpq values
cq() { printf "'%s'" "$(printf '%s' "$1" | sed -e "s/\\\\/\\\\\\\\/g" -e "s/'/''/g")"; }     # conf values

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
as "$bin/pg_ctl" start -w -s -D "$data" -l "$data/shell.log" >/dev/null
psql=/usr/lib/postgresql/15/bin/psql
until [ "$(as "$psql" -h "$sock" -p "$port" -U postgres -d postgres -Atc 'SELECT status FROM pg_stat_wal_receiver' 2>/dev/null)" = streaming ]; do
  sleep 0.1
done
