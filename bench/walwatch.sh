#!/usr/bin/env bash
# walwatch.sh: measure walwatch's replay speed against grep, its detection
# latency (fsnotify and poll-only) and its idle CPU, in one run.
#
#   bench/walwatch.sh [SIZE_MIB]     (default 1024: a 1 GiB stderr log)
#
# Prints the figures as Markdown on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=${1:-1024}
work=$(mktemp -d /tmp/walwatch-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

go build -o "$work/walwatch_bench" ./bench/walwatch_bench
b=$work/walwatch_bench

# Time a command: print "seconds maxrss_kib" (wall clock in ms, RSS from GNU time).
timed() {
  local t0 t1
  t0=$(date +%s%N)
  /usr/bin/time -f '%M' -o "$work/time" "$@" >"$work/out" 2>&1
  t1=$(date +%s%N)
  echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", (b-a)/1e9}') $(cat "$work/time")"
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
minimum() { sort -n | head -1; }

echo "## walwatch ($(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(go version | cut -d' ' -f3))"
echo

"$b" gen -size $((size_mib << 20)) -out "$work/big"
"$b" gen -size $((128 << 20)) -out "$work/small"
bytes=$(stat -c %s "$work/big/postgresql.log")
cat "$work/big/postgresql.log" >/dev/null # warm the page cache for both tools

g=() r=()
for i in 1 2 3 4 5 6 7; do
  g+=("$(timed grep -c streaming "$work/big/postgresql.log" | cut -d' ' -f1)")
  r+=("$(timed "$b" replay -dir "$work/big" | cut -d' ' -f1)")
done
big_rss=$(timed "$b" replay -dir "$work/big" | cut -d' ' -f2)
events=$(cat "$work/out")
small_rss=$(timed "$b" replay -dir "$work/small" | cut -d' ' -f2)
gm=$(printf '%s\n' "${g[@]}" | median)
rm_=$(printf '%s\n' "${r[@]}" | median)
gmin=$(printf '%s\n' "${g[@]}" | minimum)
rmin=$(printf '%s\n' "${r[@]}" | minimum)
echo "### Replay of a $((bytes >> 20)) MiB stderr log (page cache warm, 7 alternating runs)"
echo
echo "| tool | seconds (runs) | min | median | max RSS |"
echo "|---|---|---|---|---|"
echo "| \`grep -c streaming\` | ${g[*]} | $gmin | $gm | |"
echo "| walwatch replay | ${r[*]} | $rmin | $rm_ | $((big_rss / 1024)) MiB ($((small_rss / 1024)) MiB on a 128 MiB log) |"
echo
echo "Ratio walwatch/grep: $(awk -v a="$rmin" -v b="$gmin" 'BEGIN {printf "%.2f", a/b}') (min), $(awk -v a="$rm_" -v b="$gm" 'BEGIN {printf "%.2f", a/b}') (median). Replay output: \`$events\`"
echo
echo "### Detection latency (append of a record to its event)"
echo
echo '```'
"$b" latency -n 1000
"$b" latency -n 40 -poll-only -poll 1s
echo '```'
echo
echo "### Idle cost"
echo
echo '```'
"$b" idle -seconds 60
echo '```'
