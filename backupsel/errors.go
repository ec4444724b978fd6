package backupsel

import (
	"errors"
	"fmt"
	"strings"
)

// ErrNoBackup is returned (wrapped in a [*NoBackupError]) when the backup path
// holds no usable backup.
var ErrNoBackup = errors.New("backupsel: no usable backup")

// ErrMultiplePaths is returned when Select is given more than one backup path.
// The procedure pgstage re-implements supports exactly one backup path; pass
// one directory, not a list.
var ErrMultiplePaths = errors.New("backupsel: more than one backup path given; exactly one is supported")

// ErrNotEmpty is returned (wrapped) by Restore when the data directory holds
// files and RestoreOptions.Overwrite is false.
var ErrNotEmpty = errors.New("backupsel: data directory is not empty")

// ErrUnsafeEntry is matched by every [*UnsafeEntryError]:
// errors.Is(err, ErrUnsafeEntry) tells a refused archive entry from other
// restore failures.
var ErrUnsafeEntry = errors.New("backupsel: unsafe archive entry")

// NoBackupError says what Select looked for, where, and what each candidate
// lacked. errors.Is(err, ErrNoBackup) is true for it.
type NoBackupError struct {
	Path       string      // the backup path searched
	Candidates []Candidate // every candidate considered, each with its reason
}

func (e *NoBackupError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "backupsel: no usable backup in %s: looked for folders PostgreSQL_T<YYYYMMDDhhmmss>, "+
		"then base.tar[.gz|.lz4|.zst] directly in the path, then PostgreSQL_T<YYYYMMDD>.zip", e.Path)
	if len(e.Candidates) == 0 {
		b.WriteString("; found none of them")
		return b.String()
	}
	for _, c := range e.Candidates {
		fmt.Fprintf(&b, "; %s: %s", c.Name, c.Reason)
	}
	return b.String()
}

// Unwrap returns ErrNoBackup and each candidate's error, so errors.As finds,
// for example, the [*PermissionError] that made a candidate unreadable.
func (e *NoBackupError) Unwrap() []error {
	errs := []error{ErrNoBackup}
	for _, c := range e.Candidates {
		if c.Err != nil {
			errs = append(errs, c.Err)
		}
	}
	return errs
}

// PermissionError names a file or directory the process cannot use and the
// permission it needs there.
type PermissionError struct {
	Path string // the file or directory
	Need string // "read+execute" for directories, "read" for files
	Err  error  // the underlying error (fs.ErrPermission)
}

func (e *PermissionError) Error() string {
	return fmt.Sprintf("backupsel: %s needs %s permission for this process: %v", e.Path, e.Need, e.Err)
}

func (e *PermissionError) Unwrap() error { return e.Err }

// UnsafeEntryError is returned by Restore for an archive entry that would
// write outside the target (absolute path, "..", a link leaving the target) or
// that is of a type a data directory never holds (device, FIFO, a symbolic
// link other than pg_tblspc/<oid> in base.tar). errors.Is(err,
// ErrUnsafeEntry) is true for it.
type UnsafeEntryError struct {
	Archive string // archive file (zip entries read "x.zip:base.tar")
	Entry   string // entry name as stored in the archive
	Reason  string
}

func (e *UnsafeEntryError) Error() string {
	return fmt.Sprintf("backupsel: refusing entry %q in %s: %s", e.Entry, e.Archive, e.Reason)
}

// Is reports whether target is ErrUnsafeEntry.
func (e *UnsafeEntryError) Is(target error) bool { return target == ErrUnsafeEntry }

// ArchiveError reports an archive that cannot be read as a whole tar stream
// (cut short, corrupt, wrong compression), naming the archive.
type ArchiveError struct {
	Archive string
	Err     error
}

func (e *ArchiveError) Error() string {
	return fmt.Sprintf("backupsel: %s: %v", e.Archive, e.Err)
}

func (e *ArchiveError) Unwrap() error { return e.Err }

// NotWholeError is returned by Restore of a deferred backup (see
// [Backup.Deferred]) whose contents fail a check Select would otherwise
// have made: PG_VERSION or global/pg_control missing or not matching the
// backup's WAL, or names and sizes not matching backup_manifest. The data
// directory is left as it was before Restore.
type NotWholeError struct {
	Backup string // the backup's name
	Err    error
}

func (e *NotWholeError) Error() string {
	return "backupsel: " + e.Backup + " is not whole (found while restoring it; the data directory was left as it was): " +
		e.Err.Error() + "; replace the backup, or move it out of the backup path so the next one is chosen"
}

func (e *NotWholeError) Unwrap() error { return e.Err }
