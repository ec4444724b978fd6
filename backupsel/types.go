package backupsel

import (
	"log/slog"
	"time"

	"github.com/pgstage/pgstage/internal/pgver"
)

// Options configure Select. The zero value selects without verifying
// checksums, waits DefaultSettle for files that changed recently, and needs
// the WAL to be in the backup.
type Options struct {
	// WALPath is a folder of WAL segment files to add to the restored pg_wal,
	// for backups taken without WAL. Ignored when StreamWhenNoWAL is set.
	WALPath string
	// StreamWhenNoWAL accepts a backup without WAL: the standby will stream
	// it from the source. It takes precedence over WALPath, as in the
	// original procedure; the result's Notes say WALPath was ignored.
	StreamWhenNoWAL bool
	// Verify reads every file of the candidate and compares its checksum
	// with backup_manifest (PostgreSQL 13+). Without it Select compares
	// names and sizes only, which reads tar headers but not contents for
	// uncompressed archives.
	Verify bool
	// Settle is how long a backup file must stay unchanged to count as
	// finished: files modified within Settle are watched for that long and
	// a candidate whose files change is skipped as still being written.
	// 0 means DefaultSettle; negative disables the check.
	Settle time.Duration
	// BufferSize is the read buffer per archive; 0 means 256 KiB.
	BufferSize int
	// Logger receives one debug line per candidate; nil discards.
	Logger *slog.Logger
	// PassOver lists candidates already found not whole, by Location, with
	// the Reason to report: typically a deferred backup whose Restore failed
	// with a NotWholeError, so that selecting again takes the next one.
	PassOver []Candidate
}

// DefaultSettle is the settle window used when Options.Settle is 0.
const DefaultSettle = 2 * time.Second

const defaultBufferSize = 256 << 10

// WALSource says where the WAL that makes the backup consistent comes from.
type WALSource int

// WAL sources.
const (
	WALInArchive WALSource = iota + 1 // pg_wal.tar (pg_basebackup -X stream)
	WALInBase                         // pg_wal/ inside base.tar (-X fetch, -x, server-side backups)
	WALFromPath                       // Options.WALPath
	WALStream                         // none given: the standby streams it from the source
)

func (w WALSource) String() string {
	switch w {
	case WALInArchive:
		return "pg_wal.tar"
	case WALInBase:
		return "pg_wal inside base.tar"
	case WALFromPath:
		return "WAL path"
	case WALStream:
		return "streamed from the source"
	}
	return "unknown"
}

// Role of an archive in a backup.
type Role int

// Roles.
const (
	RoleBase       Role = iota + 1 // base.tar: the data directory
	RoleWAL                        // pg_wal.tar
	RoleTablespace                 // <oid>.tar
)

// Archive is one tar file of a backup.
type Archive struct {
	Name         string // file name, e.g. base.tar.gz
	Role         Role
	OID          uint32 // for RoleTablespace
	Compression  Compression
	Size         int64 // bytes stored (compressed size; inside a zip, the entry's compressed size)
	Entries      int   // tar entries; 0 for an archive a deferred Select did not read
	ContentBytes int64 // bytes of file content inside; 0 for an archive a deferred Select did not read
	path         string
	usize        int64 // inside a zip: the entry's uncompressed size
}

// Candidate is a backup Select considered; for the ones passed over, Reason
// says why.
type Candidate struct {
	Name     string // folder or zip name; "files in <path>" for the direct layout
	Location string // folder, backup path, or zip file
	Layout   Layout
	Time     time.Time // from the name; zero for the direct layout
	Reason   string
	Err      error // the underlying error, if any (e.g. a *PermissionError)
}

// Backup is the backup Select chose, with what it learnt while checking it.
type Backup struct {
	Path     string // the backup path searched
	Name     string // folder or zip name, or "files in <path>"
	Location string // folder, backup path, or zip file
	Layout   Layout
	Time     time.Time // from the name; zero for the direct layout
	Archives []Archive
	Manifest *Manifest // nil when the backup has no backup_manifest (before 13)

	PGVersion        string      // as PG_VERSION spells it: "15", "9.6"
	Major            pgver.Major // the same, for comparing (internal/pgver)
	SystemIdentifier uint64      // from global/pg_control
	Label            BackupLabel
	GroupAccess      bool // files readable by the group (PostgreSQL 11+ initdb -g)
	Tablespaces      []Tablespace

	WAL     WALSource
	WALPath string // the WAL folder Restore copies from; empty when unused

	Passed []Candidate // every candidate passed over, with the reason
	Notes  []string    // things the caller may want to show (ignored options, unverified checksums)

	// TotalBytes is the file content Restore writes, for progress. When
	// Deferred it is exact for a backup with a backup_manifest and an
	// estimate (the archives' size) without one.
	TotalBytes int64

	// Deferred is true when Select did not read base.tar (nor the
	// tablespace archives) through, because they prove themselves whole as
	// Restore reads them (a zip's entries, compressed archives); see
	// [Select]. Restore then makes the checks that need their contents.
	Deferred bool

	bufSize       int
	tablespaceMap bool
	manifestRaw   []byte
	// headMap is the tablespace_map a deferred Select read at the head of
	// base.tar, for Restore to compare with the one it writes.
	headMap      []byte
	walPathFiles []string
}
