#!/usr/bin/env bash
# backupsel_real.sh: restore of a REAL pg_basebackup -F t backup by backupsel
# against GNU tar, in one run. The backup is made once with the project's
# harness (bench/backupsel_restore's TestMakeRealCorpus: a PostgreSQL 15
# server with 3,500 small tables and four large ones, about 1.1 GiB and
# 22,000 files; Debian's pg_basebackup 15 -F t -X stream, plain, -Z
# client-gzip:1, client-lz4, client-zstd, and the plain files in a stored
# zip). Then, per form, PGSTAGE_BENCH_RUNS times (default 3), alternating
# which goes first:
#
#   plain  tar -xf base.tar; tar -xf pg_wal.tar -C pg_wal
#   gzip   tar -xzf base.tar.gz; tar -xzf pg_wal.tar.gz -C pg_wal
#   lz4    lz4 -dc base.tar.lz4 | tar -xf -; tar -xf pg_wal.tar -C pg_wal
#   zstd   zstd -dc base.tar.zst | tar -xf -; tar -xf pg_wal.tar -C pg_wal
#   zip    unzip the zip; tar -xf base.tar; tar -xf pg_wal.tar -C pg_wal
#   sync   the plain commands then sync, against backupsel with -sync
#
# against bench/backupsel_restore (Select, settle check off, no checksums;
# then Restore). Each command writes into a new directory of the work
# filesystem, and a form's outputs are removed only after its last run:
# ext4 keeps freed inodes out of reuse for a while, and creating 22,000
# files right after removing 22,000 costs whichever command comes next
# several times its time (see RESULTS.md). After each form its outputs are
# removed, then (untimed) a sync, PGSTAGE_BENCH_SETTLE seconds (default 90)
# for ext4 to settle, and the backup files read again. Keeping every form's
# outputs instead would fill the page cache: 30 restores of 1.1 GiB are
# more than this machine's 24 GiB, and then the backup files drop out of
# the cache and page reclaim costs every command (a run of that kind
# tripled both sides' CPU time). A sync before each command (untimed)
# keeps earlier write-back out of it. About 1.2 GiB free is needed per
# command of a form (runs x (1 + writer counts): 11 GiB for 3 runs of two
# counts), plus the corpus. The page cache is warm: the
# backup files are read before each form and stay cached. Each command
# runs under /usr/bin/time -v (wall time, CPU, peak RSS).
#
# PGSTAGE_BENCH_FRESH_FS=1 (root) gives each form a new ext4 on a loop
# device (direct I/O, inode tables initialised by mkfs so no background
# initialisation runs) instead of the work filesystem: removing a form's
# 10 GiB of outputs from the work filesystem slowed both sides 3-6x for
# many minutes after, beyond any settle time tried (see RESULTS.md).
#
# PGSTAGE_BENCH_MEMORY says what memory each command starts from. On a VM
# whose balloon reports free pages to the host (free page reporting: the
# machine of bench/RESULTS.md), memory left free for a few seconds goes back
# to the host, and the command that next fills the page cache with it pays
# for the host to fault it in again: up to 3x its system time, whichever
# tool it is. Which side gets that memory depends on the kernel's free lists
# (writes in small pieces take the guest's small free fragments first), so a
# comparison is fair only when both start from the same memory:
#   warm (default)  before each command (untimed, after its sync),
#                   bench/memwarm touches and releases PGSTAGE_BENCH_WARM_GIB
#                   GiB (default 4: more than one command's page cache), and
#                   the command starts on memory the guest holds. Each warm
#                   step's time is printed ("# memwarm ..."): over about
#                   0.3 s per GiB, the memory had gone back to the host.
#   cold            before each command (untimed, after its sync), a pause
#                   of PGSTAGE_BENCH_COLD_PAUSE seconds (default 10), so the
#                   memory freed before it has been reported: what a restore
#                   meets on such a VM after a while idle.
#
# PGSTAGE_BENCH_WRITERS="2 4" restores with each of those writer counts
# (backupsel_restore -writers) inside every run, beside the one manual
# command, the order rotating from run to run: the filesystem state (inode
# reuse, write-back) is then the same for each count, which separate
# invocations could not promise. Lines are then "form/wN".
#
# Output: one line per backupsel command, beside its run's manual one;
# summary: awk -f bench/backupsel_summary.awk.
# Work files go to PGSTAGE_BENCH_DIR (default /var/tmp/pgstage-bench-real).
# The corpus is kept between invocations: remove
# $PGSTAGE_BENCH_DIR/corpus to make it again.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${PGSTAGE_BENCH_DIR:-/var/tmp/pgstage-bench-real}
runs=${PGSTAGE_BENCH_RUNS:-3}
forms=${PGSTAGE_BENCH_FORMS:-plain gzip lz4 zstd zip sync}
corpus=$work/corpus
mkdir -p "$work"
memory=${PGSTAGE_BENCH_MEMORY:-warm}
warm_gib=${PGSTAGE_BENCH_WARM_GIB:-4}
cold_pause=${PGSTAGE_BENCH_COLD_PAUSE:-10}
case $memory in
warm | cold) ;;
*) echo "backupsel_real.sh: PGSTAGE_BENCH_MEMORY=$memory: want warm or cold" >&2; exit 2 ;;
esac
for tool in tar gzip lz4 zstd unzip /usr/bin/time; do
	command -v "$tool" >/dev/null || { echo "backupsel_real.sh: $tool missing (apt-get install ${tool##*/})" >&2; exit 1; }
done
if [ ! -f "$corpus/zip/PostgreSQL_T20261201.zip" ]; then
	echo "-- making the real backups in $corpus (once; a few minutes)" >&2
	PGSTAGE_BENCH_CORPUS=$corpus go test -count=1 -timeout 60m -run TestMakeRealCorpus ./bench/backupsel_restore >&2
fi
go build -o "$work/backupsel_restore" ./bench/backupsel_restore
go build -o "$work/memwarm" ./bench/memwarm
cat "$corpus"/*/* > /dev/null # warm the page cache

outs=$work/out
rm -rf "$outs"
measure() { # NAME CMD...: prints "NAME wall_s rss_kib cpu_s stderr"
	local name=$1; shift
	mkdir -p "$out"
	sync
	if [ "$memory" = warm ]; then
		echo "# memwarm before $name $(basename "$out"): $("$work/memwarm" -gib "$warm_gib")" >&2
	else
		sleep "$cold_pause"
	fi
	/usr/bin/time -v -o "$work/time.txt" "$@" 2> "$work/stderr.txt" >/dev/null || { cat "$work/stderr.txt" >&2; exit 1; }
	local wall rss cpu
	wall=$(awk -F': ' '/Elapsed \(wall clock\)/{n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$work/time.txt")
	rss=$(awk -F': ' '/Maximum resident set size/{print $2}' "$work/time.txt")
	cpu=$(awk -F': ' '/(User|System) time \(seconds\)/{s+=$2} END{printf "%.2f", s}' "$work/time.txt")
	echo "$name $wall $rss $cpu $(tr '\n' ' ' < "$work/stderr.txt")"
}
c=$corpus
manual_plain() { tar -xf "$c/plain/base.tar" -C "$out" && tar -xf "$c/plain/pg_wal.tar" -C "$out/pg_wal"; }
manual_gzip() { tar -xzf "$c/gzip/base.tar.gz" -C "$out" && tar -xzf "$c/gzip/pg_wal.tar.gz" -C "$out/pg_wal"; }
manual_lz4() { lz4 -dc "$c/lz4/base.tar.lz4" | tar -xf - -C "$out" && tar -xf "$c/lz4/pg_wal.tar" -C "$out/pg_wal"; }
manual_zstd() { zstd -q -dc "$c/zstd/base.tar.zst" | tar -xf - -C "$out" && tar -xf "$c/zstd/pg_wal.tar" -C "$out/pg_wal"; }
manual_zip() {
	unzip -q "$c/zip/PostgreSQL_T20261201.zip" -d "$out.unzip" && tar -xf "$out.unzip/base.tar" -C "$out" &&
		tar -xf "$out.unzip/pg_wal.tar" -C "$out/pg_wal"
}
manual_sync() { manual_plain && sync; }
export -f manual_plain manual_gzip manual_lz4 manual_zstd manual_zip manual_sync
export c
writers=${PGSTAGE_BENCH_WRITERS:-}
ours() { # FORM WRITERS: the backupsel command for a form
	local w=""
	[ -n "$2" ] && w="-writers $2"
	case $1 in
	sync) echo "$work/backupsel_restore $w -sync -path $c/plain -data $gout/data" ;;
	*) echo "$work/backupsel_restore $w -path $c/$1 -data $gout/data" ;;
	esac
}

files=$(tar -tf "$c/plain/base.tar" | grep -vc '/$')
echo "backup: $files files in base.tar, $(( $(stat -c %s "$c/plain/base.tar") >> 20 )) MiB; $(nproc) CPUs; $(df -T "$work" | awk 'NR==2{print $2}') at $work; $(uname -r); page cache warm (the backup files); memory $memory$([ "$memory" = warm ] && echo " ($warm_gib GiB touched and released before each command)" || echo " ($cold_pause s pause before each command)")"
reporting=off # a virtio balloon with VIRTIO_BALLOON_F_REPORTING (feature bit 5)
for d in /sys/bus/virtio/devices/*; do
	if [ "$(cat "$d/device" 2>/dev/null)" = 0x0005 ] && [ "$(cut -c6 "$d/features" 2>/dev/null)" = 1 ]; then
		reporting="on, blocks of order $(cat /sys/module/page_reporting/parameters/page_reporting_order 2>/dev/null || echo '?')"
	fi
done
echo "free page reporting to a hypervisor: $reporting"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "form manual_wall_s backupsel_wall_s ratio manual_rss_kib backupsel_rss_kib manual_cpu_s backupsel_cpu_s backupsel_steps"
variants=(${writers:-default})
settle=${PGSTAGE_BENCH_SETTLE:-90}
fresh=${PGSTAGE_BENCH_FRESH_FS:-0}
mnt=$work/mnt img=$work/fs.img loopdev=""
drop_fs() {
	if [ -n "$loopdev" ]; then
		umount "$mnt" && losetup -d "$loopdev"
		loopdev=""
	fi
	rm -f "$img"
}
fresh_fs() { # a new ext4 on a loop device for the next form's outputs
	drop_fs
	truncate -s "$(( (runs * (${#variants[@]} + 1) * 14 / 10 + 4) ))G" "$img"
	mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$img"
	loopdev=$(losetup -f --show --direct-io=on "$img")
	mkdir -p "$mnt"
	mount "$loopdev" "$mnt"
	outs=$mnt/out
}
if [ "$fresh" = 1 ]; then
	[ "$(id -u)" = 0 ] || { echo "backupsel_real.sh: PGSTAGE_BENCH_FRESH_FS=1 needs root (losetup, mount)" >&2; exit 1; }
	trap drop_fs EXIT
	echo "outputs: a fresh ext4 per form (loop device, direct I/O, made with its inode tables initialised)"
fi
first=1
for form in $forms; do
	if [ "$fresh" = 1 ]; then
		fresh_fs
		sync
		cat "$corpus"/*/* > /dev/null
	elif [ $first = 0 ]; then
		rm -rf "$outs" "$outs".*
		sync
		sleep "$settle"
		cat "$corpus"/*/* > /dev/null
	fi
	first=0
	for run in $(seq "$runs"); do
		# The commands of this run: the manual one and each writer
		# count, rotated by the run number.
		cmds=(manual "${variants[@]}")
		n=${#cmds[@]}
		declare -A res=()
		for i in $(seq 0 $((n - 1))); do
			v=${cmds[$(((i + run - 1) % n))]}
			if [ "$v" = manual ]; then
				res[manual]=$(out=$outs/$form-$run-manual measure manual bash -c "manual_$form")
			else
				w=$v; [ "$v" = default ] && w=""
				res[$v]=$(gout=$outs/$form-$run-w$v; out=$gout measure backupsel $(gout=$gout ours "$form" "$w"))
			fi
		done
		set -- ${res[manual]}; mw=$2 mr=$3 mc=$4
		for v in "${variants[@]}"; do
			name=$form; [ "$v" != default ] && name=$form/w$v
			set -- ${res[$v]}; gw=$2 gr=$3 gc=$4; shift 4; steps="$*"
			echo "$name $mw $gw $(awk -v a="$gw" -v b="$mw" 'BEGIN{printf "%.2f", a/b}') $mr $gr $mc $gc $steps"
		done
		unset res
	done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
rm -rf "$outs" "$outs".*
drop_fs
