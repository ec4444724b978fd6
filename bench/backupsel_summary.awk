# backupsel_summary.awk: medians per form from bench/backupsel.sh output.
# Usage: awk -f bench/backupsel_summary.awk LOG
function median(list,    n, a, i, j, t) {
	n = split(list, a, " ")
	for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
$1 ~ /^(plain|gzip|lz4|zstd|zip|sync)(\/w[0-9]+)?$/ {
	f = $1; order[f] = order[f] ? order[f] : ++nf; names[nf] = f
	manual[f] = manual[f] " " $2; ours[f] = ours[f] " " $3; ratio[f] = ratio[f] " " $4
	mcpu[f] = mcpu[f] " " $7; ocpu[f] = ocpu[f] " " $8
	for (i = 9; i <= NF; i++) { if ($i == "select") sel[f] = sel[f] " " ($(i + 1) + 0); if ($i == "restore") res[f] = res[f] " " ($(i + 1) + 0) }
	if ($5 > mrss[f]) mrss[f] = $5; if ($6 > orss[f]) orss[f] = $6; runs[f]++
}
END {
	print "| form | runs | manual (median s) | backupsel Select+Restore (median s) | ratio (median of per-run ratios) | Restore step alone (median s) | Select step (median s) | CPU s manual / backupsel (median) | peak RSS manual / backupsel (MiB) |"
	print "|---|---|---|---|---|---|---|---|---|"
	for (k = 1; k <= nf; k++) {
		f = names[k]
		printf "| %s | %d | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f / %.2f | %.1f / %.1f |\n", f, runs[f], median(manual[f]), median(ours[f]), median(ratio[f]), median(res[f]), median(sel[f]), median(mcpu[f]), median(ocpu[f]), mrss[f] / 1024, orss[f] / 1024
	}
}
