#!/usr/bin/env bash
# basebackup.sh: taking a base backup of a >= 1 GiB PostgreSQL 15 source with
# backupsel/basebackup against Debian's pg_basebackup 15, in one run:
#
#   plain   pg_basebackup -F t -X stream -c fast            vs Take (None)
#   lz4     pg_basebackup ... --compress=client-lz4         vs Take (LZ4)
#
# Both fsync what they write (pg_basebackup's default; Take without NoSync).
# Each command runs under /usr/bin/time -v (wall time, user+system CPU time,
# peak RSS), into a
# fresh folder of the work directory removed after it; each pair runs
# PGSTAGE_BENCH_RUNS times (default 3), alternating which goes first, and
# the summary gives the median wall and CPU times and the largest peak RSS
# of each. On a busy machine the CPU time is the steadier figure: Take
# compresses in a goroutine of its own, which shortens the wall time only
# where a core is free.
#
# The source is a PostgreSQL 15 server from the harness's bundles
# (PGSTAGE_PG_CACHE, default /var/cache/pgstage/pg), run as PGSTAGE_PG_USER
# (default postgres) when this script runs as root, on 127.0.0.1 with
# trust for local replication (no password involved). Its data: one table of
# generate_series rows, each part random md5 text, part repetitive, about
# 1.2 GiB, so archives compress about as table pages do. Work files go to
# PGSTAGE_BENCH_DIR (default /var/tmp/pgstage-bench-basebackup; about 4 GiB
# free needed); the data directory is kept between invocations to save its
# generation: remove the directory to start over.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${PGSTAGE_BENCH_DIR:-/var/tmp/pgstage-bench-basebackup}
runs=${PGSTAGE_BENCH_RUNS:-3}
forms=${PGSTAGE_BENCH_FORMS:-plain lz4}
bin=${PGSTAGE_PG_CACHE:-/var/cache/pgstage/pg}/15/bin
client=/usr/lib/postgresql/15/bin
port=${PGSTAGE_BENCH_PORT:-25431}
pguser=${PGSTAGE_PG_USER:-postgres}
for tool in "$bin/postgres" "$client/pg_basebackup" "$client/psql" /usr/bin/time go; do
	command -v "$tool" >/dev/null || { echo "basebackup.sh: $tool missing (make install-postgres; apt-get install postgresql-client-15 time)" >&2; exit 1; }
done
mkdir -p "$work"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u "$pguser" -- "$@"; else "$@"; fi; }

data=$work/data
if [ ! -f "$data/PG_VERSION" ]; then
	rm -rf "$data"
	mkdir -p "$data"
	[ "$(id -u)" = 0 ] && chown "$pguser" "$work" "$data"
	as_pg "$bin/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C -N >/dev/null
	cat >>"$data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$work'
port = $port
wal_level = replica
max_wal_senders = 10
shared_buffers = 128MB
max_wal_size = 4GB
CONF
	printf 'local all all trust\nhost all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n' >"$data/pg_hba.conf"
	[ "$(id -u)" = 0 ] && chown "$pguser" "$data/pg_hba.conf"
fi
as_pg "$bin/pg_ctl" -D "$data" status >/dev/null && as_pg "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null
as_pg "$bin/pg_ctl" -D "$data" -l "$work/server.log" -w start >/dev/null
trap 'as_pg "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null' EXIT
psql() { "$client/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -XAtq "$@"; }
if [ "$(psql -c "SELECT count(*) FROM pg_class WHERE relname = 'big'")" = 0 ]; then
	echo "generating the source (about 1.2 GiB)..." >&2
	psql -c "CREATE TABLE big AS SELECT g AS id, md5(random()::text) || md5(random()::text) || md5(random()::text) || md5(random()::text) || md5(random()::text) || md5(random()::text) || repeat(md5(g::text), 20) AS pad FROM generate_series(1, 1300000) g"
	psql -c "CHECKPOINT"
fi
echo "source: PostgreSQL $(psql -c 'SHOW server_version'), database $(psql -c "SELECT pg_size_pretty(pg_database_size('postgres'))")"

go build -o "$work/basebackup_take" ./bench/basebackup_take

results=$work/results.txt
: >"$results"
# measure FORM NAME CMD...: run CMD under /usr/bin/time -v into a fresh folder.
measure() {
	local form=$1 name=$2
	shift 2
	local out=$work/out
	rm -rf "$out"
	mkdir -p "$out"
	sync
	/usr/bin/time -v -o "$work/time.txt" "$@" 2>"$work/stderr.txt" >/dev/null || { cat "$work/stderr.txt" >&2; exit 1; }
	local wall rss size cpu
	cpu=$(awk -F': ' '/User time|System time/{s+=$2} END{print s}' "$work/time.txt")
	wall=$(awk -F': ' '/Elapsed \(wall clock\)/{n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$work/time.txt")
	rss=$(awk -F': ' '/Maximum resident set size/{print $2}' "$work/time.txt")
	size=$(du -sb "$out" | cut -f1)
	echo "$form $name $wall $rss $size $cpu" | tee -a "$results"
	rm -rf "$out"
}
for form in $forms; do
	pgflags=() takeflags=(-compress none)
	if [ "$form" = lz4 ]; then pgflags=(--compress=client-lz4) takeflags=(-compress lz4); fi
	for i in $(seq 1 "$runs"); do
		pgb=(measure "$form" pg_basebackup "$client/pg_basebackup" -h 127.0.0.1 -p "$port" -U postgres -w -D "$work/out/PostgreSQL_T1" -F t -X stream -c fast "${pgflags[@]}")
		ours=(measure "$form" basebackup "$work/basebackup_take" -host 127.0.0.1 -port "$port" -user postgres -path "$work/out" "${takeflags[@]}")
		if [ $((i % 2)) = 1 ]; then "${pgb[@]}"; "${ours[@]}"; else "${ours[@]}"; "${pgb[@]}"; fi
	done
done
echo
echo "form  tool           median_s  median_cpu_s  peak_rss_kib  output_bytes"
median() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
for form in $forms; do
	for name in pg_basebackup basebackup; do
		rows=$(awk -v f="$form" -v n="$name" '$1==f && $2==n' "$results")
		printf '%-5s %-14s %8.2f  %12.2f  %12d  %12d\n' "$form" "$name" \
			"$(echo "$rows" | awk '{print $3}' | median)" "$(echo "$rows" | awk '{print $6}' | median)" \
			"$(echo "$rows" | awk '{print $4}' | sort -n | tail -1)" "$(echo "$rows" | awk '{print $5}' | tail -1)"
	done
done
