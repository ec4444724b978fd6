#!/usr/bin/env bash
# backupsel.sh: restore of a >= 1 GiB, >= 10,000-file pg_basebackup -F t
# backup by backupsel against the manual procedure with GNU tar, in one run:
#
#   plain   tar -xf base.tar; tar -xf pg_wal.tar -C pg_wal
#   gzip    tar -xzf base.tar.gz; tar -xzf pg_wal.tar.gz -C pg_wal
#   lz4     lz4 -dc base.tar.lz4 | tar -xf -; tar -xf pg_wal.tar -C pg_wal
#   zstd    zstd -dc base.tar.zst | tar -xf -; tar -xf pg_wal.tar -C pg_wal
#   zip     unzip PostgreSQL_T<date>.zip -d tmp; tar -xf tmp/base.tar; tar -xf tmp/pg_wal.tar -C pg_wal
#
# (lz4 and zstd leave pg_wal.tar plain, as pg_basebackup 15 does.)
# Each command runs under /usr/bin/time -v (wall time and peak RSS); each
# pair runs PGSTAGE_BENCH_RUNS times (default 3; PGSTAGE_BENCH_FORMS limits
# the forms), alternating which goes
# first, on a warm page cache.
#
# Every command writes into a fresh directory, and the outputs are removed
# only after all runs of a form, then the script waits PGSTAGE_BENCH_SETTLE
# seconds (default 65). ext4 does not reuse an inode freed in the last 60
# seconds: right after removing a 10,000-file output, creating 10,000 files
# makes the allocator scan past every freed inode, which tripled the system
# time of whichever command came next (measured with perf: recently_deleted
# in ext4_create). A staging host restores into a fresh directory, so that
# is what is measured. The backup is synthetic (see gen below): PostgreSQL-like
# layout, 8 KiB pages part random, part repetitive, so they compress about as
# table pages do.
#
# Work files go to PGSTAGE_BENCH_DIR (default /var/tmp/pgstage-bench-backupsel;
# about 20 GiB free needed, as each form keeps its outputs until its runs
# end). The generated backup is kept between invocations to save the
# generation time: remove the directory to start over.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${PGSTAGE_BENCH_DIR:-/var/tmp/pgstage-bench-backupsel}
runs=${PGSTAGE_BENCH_RUNS:-3}
forms=${PGSTAGE_BENCH_FORMS:-plain gzip lz4 zstd zip}
mkdir -p "$work"
for tool in tar gzip lz4 zstd zip unzip /usr/bin/time python3; do
	command -v "$tool" >/dev/null || { echo "backupsel.sh: $tool missing (apt-get install ${tool##*/})" >&2; exit 1; }
done

# gen DIR: a data directory of 10,000 small relation files (8 KiB to 120 KiB),
# 8 relations of 64 MiB, and the usual small files; about 1.1 GiB.
gen() {
	python3 - "$1" <<'PY'
import os, random, sys
root = sys.argv[1]
rnd = random.Random(42)
filler = (b"pgstage benchmark tuple " * 400)[:6144]
def page():
    return os.urandom(2048) + filler
def write(path, pages):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        for _ in range(pages):
            f.write(page())
for d in ("global", "pg_wal/archive_status", "pg_xact", "pg_tblspc", "base/1", "base/16384"):
    os.makedirs(os.path.join(root, d), exist_ok=True)
open(os.path.join(root, "PG_VERSION"), "w").write("15\n")
open(os.path.join(root, "postgresql.conf"), "w").write("# benchmark\n")
open(os.path.join(root, "backup_label"), "w").write(
    "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\nCHECKPOINT LOCATION: 0/2000060\n"
    "BACKUP METHOD: streamed\nBACKUP FROM: primary\nSTART TIME: 2026-11-24 16:00:00 UTC\nLABEL: bench\nSTART TIMELINE: 1\n")
write(os.path.join(root, "global/pg_control"), 1)
for i in range(10000):
    write(os.path.join(root, "base/16384/%d" % (20000 + i)), rnd.randint(1, 15))
for i in range(8):
    write(os.path.join(root, "base/16384/%d" % (40000 + i)), 8192)
PY
}

src=$work/src
if [ ! -f "$work/.ready" ]; then
	echo "-- generating the backup in $work (once)" >&2
	rm -rf "$src" "$work"/plain "$work"/gzip "$work"/lz4 "$work"/zstd "$work"/zip
	gen "$src/data"
	mkdir -p "$src/wal"
	for n in 2 3 4 5; do head -c $((16 << 20)) /dev/urandom > "$src/wal/00000001000000000000000$n"; done
	mkdir -p "$work/plain"
	(cd "$src/data" && tar --format=ustar --numeric-owner -cf "$work/plain/base.tar" .)
	(cd "$src/wal" && tar --format=ustar --numeric-owner -cf "$work/plain/pg_wal.tar" .)
	mkdir -p "$work/gzip" "$work/lz4" "$work/zstd" "$work/zip"
	gzip -c "$work/plain/base.tar" > "$work/gzip/base.tar.gz"
	gzip -c "$work/plain/pg_wal.tar" > "$work/gzip/pg_wal.tar.gz"
	lz4 -q -c "$work/plain/base.tar" > "$work/lz4/base.tar.lz4"
	zstd -q -c "$work/plain/base.tar" > "$work/zstd/base.tar.zst"
	cp "$work/plain/pg_wal.tar" "$work/lz4/"
	cp "$work/plain/pg_wal.tar" "$work/zstd/"
	(cd "$work/plain" && zip -q "$work/zip/PostgreSQL_T20261124.zip" base.tar pg_wal.tar)
	touch "$work/.ready"
fi
files=$(tar -tf "$work/plain/base.tar" | grep -vc '/$')
size=$(( $(stat -c %s "$work/plain/base.tar") + $(stat -c %s "$work/plain/pg_wal.tar") ))
go build -o "$work/backupsel_restore" ./bench/backupsel_restore

outs=$work/out
settle=${PGSTAGE_BENCH_SETTLE:-65}
rm -rf "$outs"
# measure NAME CMD...: run under /usr/bin/time -v in the fresh directory
# $out, print "NAME wall_s rss_kib cpu_s" (user + system CPU of the command
# and its children) and its stderr.
measure() {
	local name=$1; shift
	mkdir -p "$out"; sync
	/usr/bin/time -v -o "$work/time.txt" "$@" 2> "$work/stderr.txt" >/dev/null || { cat "$work/stderr.txt" >&2; exit 1; }
	local wall rss cpu
	wall=$(awk -F': ' '/Elapsed \(wall clock\)/{n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$work/time.txt")
	rss=$(awk -F': ' '/Maximum resident set size/{print $2}' "$work/time.txt")
	cpu=$(awk -F': ' '/(User|System) time \(seconds\)/{s+=$2} END{printf "%.2f", s}' "$work/time.txt")
	echo "$name $wall $rss $cpu $(cat "$work/stderr.txt" | tr '\n' ' ')"
}
manual_plain() { tar -xf "$work/plain/base.tar" -C "$out" && tar -xf "$work/plain/pg_wal.tar" -C "$out/pg_wal"; }
manual_gzip() { tar -xzf "$work/gzip/base.tar.gz" -C "$out" && tar -xzf "$work/gzip/pg_wal.tar.gz" -C "$out/pg_wal"; }
manual_lz4() { lz4 -dc "$work/lz4/base.tar.lz4" | tar -xf - -C "$out" && tar -xf "$work/lz4/pg_wal.tar" -C "$out/pg_wal"; }
manual_zstd() { zstd -q -dc "$work/zstd/base.tar.zst" | tar -xf - -C "$out" && tar -xf "$work/zstd/pg_wal.tar" -C "$out/pg_wal"; }
manual_zip() {
	unzip -q "$work/zip/PostgreSQL_T20261124.zip" -d "$out.zip" && tar -xf "$out.zip/base.tar" -C "$out" &&
		tar -xf "$out.zip/pg_wal.tar" -C "$out/pg_wal" && rm -rf "$out.zip"
}
export -f manual_plain manual_gzip manual_lz4 manual_zstd manual_zip
export work

echo "backup: $files files, $((size >> 20)) MiB uncompressed; $(nproc) CPUs; $(df -T "$work" | awk 'NR==2{print $2}') at $work"
echo "form manual_wall_s backupsel_wall_s ratio manual_rss_kib backupsel_rss_kib manual_cpu_s backupsel_cpu_s backupsel_steps"
for form in $forms; do
	for run in $(seq "$runs"); do
		mout=$outs/$form-$run-manual gout=$outs/$form-$run-backupsel
		if [ $((run % 2)) = 1 ]; then
			m=$(out=$mout measure manual bash -c "manual_$form")
			g=$(out=$gout measure backupsel "$work/backupsel_restore" -path "$work/$form" -data "$gout/data")
		else
			g=$(out=$gout measure backupsel "$work/backupsel_restore" -path "$work/$form" -data "$gout/data")
			m=$(out=$mout measure manual bash -c "manual_$form")
		fi
		set -- $m; mw=$2 mr=$3 mc=$4
		set -- $g; gw=$2 gr=$3 gc=$4; shift 4; steps="$*"
		echo "$form $mw $gw $(awk -v a="$gw" -v b="$mw" 'BEGIN{printf "%.2f", a/b}') $mr $gr $mc $gc $steps"
	done
	rm -rf "$outs"; sync; sleep "$settle"
done
# Summary: awk -f bench/backupsel_summary.awk on this output.
