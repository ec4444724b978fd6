package snapclone

import (
	"fmt"
	"strings"

	"github.com/pgstage/pgstage/internal/pgver"
)

// DescribeVersion renders, for the golden test, what this package does on
// a major: the base backup it runs on a running staging, and how a clone
// is opened.
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
	b.WriteString("clone: crash recovery (no recovery files), from the backup_label's checkpoint to the backup's end and on to the end of the WAL, or from pg_control's; then open\n")
	for _, kv := range r.cowSettings {
		fmt.Fprintf(&b, "btrfs or reflink clone: set %s = %q\n", kv[0], kv[1])
	}
	if len(r.standbySettings) > 0 {
		fmt.Fprintf(&b, "commented out in a clone: %s\n", strings.Join(r.standbySettings, ", "))
	}
	return b.String()
}

// SetBackupCopied sets a function run under a snapshot's base backup
// between the copy of the data and the stop (nil: none).
func SetBackupCopied(f func()) { backupCopied = f }
