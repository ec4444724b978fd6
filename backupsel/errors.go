package backupsel

import (
	"errors"
	"fmt"
	"strings"
)

// The errors a caller branches on. Everything else Select and Restore return
// names what is wrong in its text.
var (
	// ErrNoBackup is returned when the backup path holds no usable backup;
	// the error's text says what each candidate lacked.
	ErrNoBackup = errors.New("backupsel: no usable backup")
	// ErrMultiplePaths is returned when Select is given more than one
	// backup path: exactly one directory is supported.
	ErrMultiplePaths = errors.New("backupsel: more than one backup path given; exactly one is supported")
	// ErrNotEmpty is returned (wrapped) by Restore when the data directory
	// holds files and RestoreOptions.Overwrite is false.
	ErrNotEmpty = errors.New("backupsel: data directory is not empty")
	// ErrUnsafeEntry is matched by every archive entry Restore refuses
	// because it would write outside the target or is of a type a data
	// directory never holds; the error is an [*ArchiveError] naming it.
	ErrUnsafeEntry = errors.New("backupsel: unsafe archive entry")
)

// noBackupError says what Select looked for, where, and what each candidate
// lacked.
type noBackupError struct {
	path       string      // the backup path searched
	candidates []Candidate // every candidate considered, each with its reason
}

func (e *noBackupError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "backupsel: no usable backup in %s: looked for folders PostgreSQL_T<YYYYMMDDhhmmss>, "+
		"then base.tar[.gz|.lz4|.zst] directly in the path, then PostgreSQL_T<YYYYMMDD>.zip", e.path)
	if len(e.candidates) == 0 {
		b.WriteString("; found none of them")
		return b.String()
	}
	for _, c := range e.candidates {
		fmt.Fprintf(&b, "; %s: %s", c.Name, c.Reason)
	}
	return b.String()
}

// Unwrap returns ErrNoBackup and the candidates' errors joined, so
// errors.As finds, for example, the [*PermissionError] that made a
// candidate unreadable.
func (e *noBackupError) Unwrap() []error {
	var errs []error
	for _, c := range e.candidates {
		if c.Err != nil {
			errs = append(errs, c.Err)
		}
	}
	if len(errs) == 0 {
		return []error{ErrNoBackup}
	}
	return []error{ErrNoBackup, errors.Join(errs...)}
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

// ArchiveError reports an archive that cannot be restored as it is: a tar
// stream cut short, corrupt or wrongly compressed, or an entry that cannot
// be written (Entry names it). An entry refused because it would write
// outside the target (absolute path, "..", a link leaving the target) or
// is of a type a data directory never holds (device, FIFO, a symbolic link
// other than pg_tblspc/<oid> in base.tar) also matches [ErrUnsafeEntry].
type ArchiveError struct {
	Archive string // archive file (zip entries read "x.zip:base.tar")
	Entry   string // entry name as stored in the archive; empty for the stream as a whole
	Err     error
	unsafe  bool
}

// unsafeEntry refuses an entry of archive.
func unsafeEntry(archive, entry, reason string) *ArchiveError {
	return &ArchiveError{Archive: archive, Entry: entry, Err: errors.New(reason), unsafe: true}
}

func (e *ArchiveError) Error() string {
	switch {
	case e.unsafe:
		return fmt.Sprintf("backupsel: refusing entry %q in %s: %v", e.Entry, e.Archive, e.Err)
	case e.Entry != "":
		return fmt.Sprintf("backupsel: %s: entry %q: %v", e.Archive, e.Entry, e.Err)
	}
	return fmt.Sprintf("backupsel: %s: %v", e.Archive, e.Err)
}

// Unwrap returns the cause, and ErrUnsafeEntry first for a refused entry.
func (e *ArchiveError) Unwrap() []error {
	if e.unsafe {
		return []error{ErrUnsafeEntry, e.Err}
	}
	return []error{e.Err}
}

// NotWholeError is returned by Restore of a deferred backup (see
// [Backup.Deferred]) whose contents fail a check Select would otherwise
// have made: an archive cut short or damaged (Err is then the
// [*ArchiveError] naming it), PG_VERSION or global/pg_control missing or not
// matching the backup's WAL, or names and sizes not matching
// backup_manifest. Restore
// has removed what it wrote: the data directory and tablespace directories
// it created are gone, and ones that existed are empty (with
// RestoreOptions.Overwrite, what they held before Restore is gone too).
type NotWholeError struct {
	Backup string // the backup's name
	Err    error
}

func (e *NotWholeError) Error() string {
	return "backupsel: " + e.Backup + " is not whole (found while restoring it; what was restored has been removed): " +
		e.Err.Error() + "; replace the backup, or move it out of the backup path so the next one is chosen"
}

func (e *NotWholeError) Unwrap() error { return e.Err }
