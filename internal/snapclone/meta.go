package snapclone

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pgstage/pgstage/internal/atomicfile"
	"github.com/pgstage/pgstage/internal/pgver"
)

// Files and directories inside a snapshot or clone directory.
const (
	dataSub      = "data"   // the data directory
	tblspcSub    = "tblspc" // one directory per tablespace, by OID
	snapshotMeta = "snapshot.json"
	cloneMeta    = "clone.json"
)

// Consistency says how a snapshot's data directory becomes consistent.
type Consistency string

const (
	// ConsistentBackup: it holds the backup_label (and tablespace_map) of
	// a non-exclusive base backup and the WAL to its stop point; it starts
	// as a base backup does, with archive recovery to that point.
	ConsistentBackup Consistency = "backup"
	// ConsistentCrash: every file was taken at one instant (a btrfs
	// snapshot of the running staging); it starts as after a crash.
	ConsistentCrash Consistency = "crash"
	// ConsistentStopped: taken of a stopped staging.
	ConsistentStopped Consistency = "stopped"
)

// Tablespace is one tablespace of a snapshot or clone.
type Tablespace struct {
	OID      string
	Original string // its location in the staging
	Path     string // its copy here
}

// Snapshot describes a snapshot directory.
type Snapshot struct {
	Dir         string `json:"-"`
	DataDir     string // Dir/data
	Source      string // the staging's data directory
	Method      Method
	Major       pgver.Major
	FSType      string
	Consistency Consistency
	// StartLSN and StopLSN bound the base backup (ConsistentBackup only).
	StartLSN, StopLSN string       `json:",omitempty"`
	Tablespaces       []Tablespace `json:",omitempty"`
	Taken             time.Time
	Took              time.Duration
	// ExtraBytes is the disk the snapshot added when it was made, measured
	// as SizeMeasure says.
	ExtraBytes  int64
	SizeMeasure string
}

// Clone describes a clone directory and how to reach its server.
type Clone struct {
	Dir       string `json:"-"`
	DataDir   string // Dir/data
	Snapshot  string // the snapshot directory it was made from
	Method    Method
	Major     pgver.Major
	Port      int
	SocketDir string
	// ListenAddresses is listen_addresses ("" : Unix socket only).
	ListenAddresses string
	LogFile         string
	Tablespaces     []Tablespace `json:",omitempty"`
	Created         time.Time
	// Ready is how long the clone took until it accepted writes.
	Ready       time.Duration
	ExtraBytes  int64
	SizeMeasure string
}

// ConnString is a libpq connection string for the clone over its Unix
// socket, without user or password: the clone has the staging's roles.
func (c *Clone) ConnString() string {
	return fmt.Sprintf("host=%s port=%d dbname=postgres", c.SocketDir, c.Port)
}

// How sizes are measured (Snapshot.SizeMeasure, Clone.SizeMeasure).
const (
	sizeBtrfsDU   = "btrfs filesystem du: exclusive bytes"
	sizeFreeDelta = "free space before minus after (statfs)"
	sizeAllocated = "blocks allocated to its files (du)"
)

// freeBytes is the space unprivileged users can still use on dir's
// filesystem.
func freeBytes(dir string) int64 {
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) != nil {
		return 0
	}
	return int64(st.Bavail) * st.Bsize
}

// extraBytes measures the disk a new snapshot or clone in dir, made by
// method, added. On btrfs, `btrfs filesystem du` counts the extents only
// dir holds (zero for a fresh snapshot: every extent is shared), and stays
// true later (it grows as the staging diverges). A copy holds every block
// it allocated: their sum (du). A reflink copy elsewhere shares blocks
// that only the filesystem can tell apart: the fall of free space while it
// was made, in which writes by others on the same filesystem count too.
func extraBytes(ctx context.Context, dir string, method Method, freeBefore int64) (int64, string) {
	// Delayed allocation: what is not on disk yet is not counted yet.
	_ = syncFS(dir)
	if t, _ := FSType(dir); t == "btrfs" {
		if n, err := exclusiveBytes(ctx, dir); err == nil {
			return n, sizeBtrfsDU
		}
	}
	if method == MethodCopy {
		return allocatedBytes(dir), sizeAllocated
	}
	return max(freeBefore-freeBytes(dir), 0), sizeFreeDelta
}

// allocatedBytes sums the blocks allocated to the files under dir.
func allocatedBytes(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			n += fi.Sys().(*syscall.Stat_t).Blocks * 512
		}
		return nil
	})
	return n
}

func writeMeta(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, append(b, '\n'), 0o600)
}

// ReadSnapshot reads the snapshot in dir.
func ReadSnapshot(dir string) (*Snapshot, error) {
	var s Snapshot
	if err := readMeta(filepath.Join(dir, snapshotMeta), &s, ErrNotSnapshot); err != nil {
		return nil, err
	}
	s.Dir = dir
	return &s, nil
}

// ReadClone reads the clone in dir.
func ReadClone(dir string) (*Clone, error) {
	var c Clone
	if err := readMeta(filepath.Join(dir, cloneMeta), &c, ErrNotClone); err != nil {
		return nil, err
	}
	c.Dir = dir
	return &c, nil
}

func readMeta(path string, v any, sentinel error) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s has no %s", sentinel, filepath.Dir(path), filepath.Base(path))
	}
	if err != nil {
		return fmt.Errorf("snapclone: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: %s: %w", sentinel, path, err)
	}
	return nil
}
