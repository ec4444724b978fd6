#!/usr/bin/env bash
# generate.sh: make the pg_control fixtures of this directory with real servers.
#
# For each major it runs initdb, starts the server once with unusual hot-standby
# parameters (so a reader that takes the wrong offset cannot pass by luck), stops
# it, keeps global/pg_control as pg_control.<major>, then starts it again and
# asks the server itself (pg_control_system/checkpoint/init) for the values the
# file holds, into expected.<major>.json. A clean restart writes no checkpoint,
# so those values describe the kept file.
#
# Usage (as root, servers run as postgres): testdata/generate.sh [majors...]
# Binaries: $PGSTAGE_PG_CACHE or /var/cache/pgstage/pg/<major>/bin.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${PGSTAGE_PG_CACHE:-/var/cache/pgstage/pg}
majors=${*:-10 11 12 13 14 15 16 17 18}
as() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
for m in $majors; do
  bin=$cache/$m/bin
  work=$(mktemp -d /tmp/pgcgen.XXXXXX)
  chown postgres: "$work" 2>/dev/null || true
  segopt=()
  # Odd majors keep 16 MB segments; even majors from 12 use 32 MB.
  if [ "$m" -ge 12 ] && [ $((m % 2)) = 0 ]; then segopt=(--wal-segsize=32); fi
  as "$bin/initdb" -D "$work/data" -U postgres -A trust "${segopt[@]}" >/dev/null
  opts="-c listen_addresses='' -c unix_socket_directories=$work -c port=5999 \
    -c max_connections=37 -c max_worker_processes=9 -c max_wal_senders=7 \
    -c max_prepared_transactions=3 -c max_locks_per_transaction=71 \
    -c wal_level=logical -c wal_log_hints=on -c track_commit_timestamp=on"
  as "$bin/pg_ctl" -D "$work/data" -o "$opts" -l "$work/log" -w start >/dev/null
  as "$bin/pg_ctl" -D "$work/data" -m fast -w stop >/dev/null
  cp "$work/data/global/pg_control" "$here/pg_control.$m"
  as "$bin/pg_ctl" -D "$work/data" -o "$opts" -l "$work/log" -w start >/dev/null
  q="select json_build_object(
      'major', $m,
      'system_identifier', s.system_identifier::text,
      'pg_control_version', s.pg_control_version,
      'catalog_version_no', s.catalog_version_no,
      'checkpoint_lsn', c.checkpoint_lsn::text,
      'redo_lsn', c.redo_lsn::text,
      'timeline_id', c.timeline_id,
      'block_size', i.database_block_size,
      'wal_block_size', i.wal_block_size,
      'wal_segment_size', i.bytes_per_wal_segment,
      'max_connections', current_setting('max_connections')::int,
      'max_worker_processes', current_setting('max_worker_processes')::int,
      'max_wal_senders', current_setting('max_wal_senders')::int,
      'max_prepared_xacts', current_setting('max_prepared_transactions')::int,
      'max_locks_per_xact', current_setting('max_locks_per_transaction')::int,
      'wal_level', current_setting('wal_level'),
      'state', 'shut down')
    from pg_control_system() s, pg_control_checkpoint() c, pg_control_init() i"
  # The server bundles have no psql: Debian's 15 client talks to every major.
  as /usr/lib/postgresql/15/bin/psql -h "$work" -p 5999 -U postgres -d postgres -Atc "$q" > "$here/expected.$m.json"
  as "$bin/pg_ctl" -D "$work/data" -m fast -w stop >/dev/null
  rm -rf "$work"
  echo "pg_control.$m: $(cat "$here/expected.$m.json")"
done
