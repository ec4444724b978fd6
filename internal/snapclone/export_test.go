package snapclone

import (
	"fmt"
	"sort"
	"strings"

	"github.com/pgstage/pgstage/internal/pgver"
)

// DescribeVersion renders, for the golden test, what this package does on
// a major: the base backup it runs on a running staging, and how a clone
// of each kind of snapshot is opened.
func DescribeVersion(m pgver.Major) string {
	var b strings.Builder
	r, err := rulesFor(m)
	if err != nil {
		return err.Error() + "\n"
	}
	fmt.Fprintf(&b, "wal directory: %s\n", r.walDir)
	if r.backupAPI {
		fmt.Fprintf(&b, "snapshot of a running staging (reflink, copy):\n  slot:  %s (temporary: %v)\n  start: %s\n  stop:  %s\n", r.slotSQL, r.tempSlot, r.startSQL, r.stopSQL)
	} else {
		fmt.Fprintf(&b, "snapshot of a running staging (reflink, copy): refused:\n  %v\n", noBackupAPI(m))
	}
	for _, cons := range []Consistency{ConsistentBackup, ConsistentCrash, ConsistentStopped} {
		settings, files := recoveryPlan(r, cons)
		fmt.Fprintf(&b, "clone of a %q snapshot:\n", cons)
		if len(settings) == 0 && len(files) == 0 {
			b.WriteString("  crash recovery to the end of pg_wal, then open\n")
		}
		for _, kv := range settings {
			fmt.Fprintf(&b, "  set %s = %q\n", kv[0], kv[1])
		}
		names := make([]string, 0, len(files))
		for n := range files {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Fprintf(&b, "  write %s:\n", n)
			for _, l := range strings.Split(strings.TrimSuffix(files[n], "\n"), "\n") {
				if l != "" {
					fmt.Fprintf(&b, "    | %s\n", l)
				}
			}
		}
	}
	if len(r.standbySettings) > 0 {
		fmt.Fprintf(&b, "commented out in a clone: %s\n", strings.Join(r.standbySettings, ", "))
	}
	return b.String()
}
