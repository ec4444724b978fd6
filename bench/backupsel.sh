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
# Every command writes into a fresh place. ext4 does not reuse an inode
# freed in the last minute (five while its inode table block is dirty):
# right after a 10,000-file output is removed, creating 10,000 files makes
# the allocator scan past every freed inode (perf: recently_deleted and
# find_get_block in ext4_create), which tripled the system time of whichever
# command came next, so runs of the same command spread from 0.7 to 4.6 s.
# PGSTAGE_BENCH_FS picks the fresh place:
#   ext4 (default as root): a new ext4 filesystem per command, a loop-mounted
#        image made before and removed after (untimed);
#   dir: a new directory of the work filesystem per command, outputs removed
#        after a form's runs, then PGSTAGE_BENCH_SETTLE seconds (default 65)
#        of waiting, which lessens the effect but does not remove it.
# A staging host restores into a fresh directory, so that is what is
# measured. The backup is synthetic (see gen below): PostgreSQL-like layout,
# 8 KiB pages part random, part repetitive, so they compress about as table
# pages do.
#
# Work files go to PGSTAGE_BENCH_DIR (default /var/tmp/pgstage-bench-backupsel;
# about 8 GiB free needed with ext4, 20 GiB with dir, where each form keeps
# its outputs until its runs end). The generated backup is kept between
# invocations to save the generation time: remove the directory to start
# over.
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
import os, random, struct, sys
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
# pg_control starts with the system identifier, as the WAL headers below say.
open(os.path.join(root, "global/pg_control"), "wb").write(
    struct.pack("<Q", 7300000000000000042) + os.urandom(8184))
for i in range(10000):
    write(os.path.join(root, "base/16384/%d" % (20000 + i)), rnd.randint(1, 15))
for i in range(8):
    write(os.path.join(root, "base/16384/%d" % (40000 + i)), 8192)
PY
}

src=$work/src
if [ ! -f "$work/.ready2" ]; then
	echo "-- generating the backup in $work (once)" >&2
	rm -rf "$src" "$work"/plain "$work"/gzip "$work"/lz4 "$work"/zstd "$work"/zip
	gen "$src/data"
	mkdir -p "$src/wal"
	# WAL segments: a PostgreSQL 15 long page header (XLOG_PAGE_MAGIC 0xD110,
	# XLP_LONG_HEADER, the system identifier), then random bytes.
	python3 - "$src/wal" <<'PY'
import os, struct, sys
for n in (2, 3, 4, 5):
    head = struct.pack("<HHIQI4xQII", 0xD110, 0x0002, 1, n << 24, 0, 7300000000000000042, 16 << 20, 8192)
    with open(os.path.join(sys.argv[1], "00000001000000000000000%d" % n), "wb") as f:
        f.write(head + os.urandom((16 << 20) - len(head)))
PY
	mkdir -p "$work/plain"
	# backup_label first, as pg_basebackup sends it.
	(cd "$src/data" && tar --format=ustar --numeric-owner -cf "$work/plain/base.tar" ./backup_label &&
		tar --format=ustar --numeric-owner -rf "$work/plain/base.tar" --exclude=./backup_label .)
	(cd "$src/wal" && tar --format=ustar --numeric-owner -cf "$work/plain/pg_wal.tar" .)
	mkdir -p "$work/gzip" "$work/lz4" "$work/zstd" "$work/zip"
	gzip -c "$work/plain/base.tar" > "$work/gzip/base.tar.gz"
	gzip -c "$work/plain/pg_wal.tar" > "$work/gzip/pg_wal.tar.gz"
	lz4 -q -c "$work/plain/base.tar" > "$work/lz4/base.tar.lz4"
	zstd -q -c "$work/plain/base.tar" > "$work/zstd/base.tar.zst"
	cp "$work/plain/pg_wal.tar" "$work/lz4/"
	cp "$work/plain/pg_wal.tar" "$work/zstd/"
	(cd "$work/plain" && zip -q "$work/zip/PostgreSQL_T20261124.zip" base.tar pg_wal.tar)
	touch "$work/.ready2"
fi
files=$(tar -tf "$work/plain/base.tar" | grep -vc '/$')
size=$(( $(stat -c %s "$work/plain/base.tar") + $(stat -c %s "$work/plain/pg_wal.tar") ))
go build -o "$work/backupsel_restore" ./bench/backupsel_restore

outs=$work/out
settle=${PGSTAGE_BENCH_SETTLE:-65}
fs=${PGSTAGE_BENCH_FS:-}
if [ -z "$fs" ]; then
	fs=dir
	[ "$(id -u)" = 0 ] && command -v mkfs.ext4 >/dev/null && fs=ext4
fi
rm -rf "$outs"
# measure NAME CMD...: run under /usr/bin/time -v in the fresh directory
# $out, print "NAME wall_s rss_kib cpu_s" (user + system CPU of the command
# and its children) and its stderr. With fs=ext4, $out is a new ext4
# filesystem (a loop-mounted image, inode tables initialised by mkfs, not
# lazily during the run), made before and removed after, untimed.
measure() {
	local name=$1; shift
	mkdir -p "$out"
	if [ "$fs" = ext4 ]; then
		rm -f "$work/fs.img"; truncate -s 8G "$work/fs.img"
		mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$work/fs.img"
		mount -o loop "$work/fs.img" "$out"
	fi
	sync
	/usr/bin/time -v -o "$work/time.txt" "$@" 2> "$work/stderr.txt" >/dev/null || { cat "$work/stderr.txt" >&2; exit 1; }
	if [ "$fs" = ext4 ]; then
		umount "$out"; rm -f "$work/fs.img"
	fi
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
	unzip -q "$work/zip/PostgreSQL_T20261124.zip" -d "$out/.unzip" && tar -xf "$out/.unzip/base.tar" -C "$out" &&
		tar -xf "$out/.unzip/pg_wal.tar" -C "$out/pg_wal" && rm -rf "$out/.unzip"
}
export -f manual_plain manual_gzip manual_lz4 manual_zstd manual_zip
export work

echo "backup: $files files, $((size >> 20)) MiB uncompressed; $(nproc) CPUs; $(df -T "$work" | awk 'NR==2{print $2}') at $work; outputs: $fs"
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
	rm -rf "$outs"
	if [ "$fs" = dir ]; then sync; sleep "$settle"; fi
done
# Summary: awk -f bench/backupsel_summary.awk on this output.
