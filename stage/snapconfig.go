package stage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pgstage/pgstage/internal/pathx"
	"github.com/pgstage/pgstage/internal/snapclone"
)

// SnapshotConfig says where snapshots and clones live, how snapshots copy
// the data, and the policies the running Linker applies. Zero fields mean
// the defaults documented on each.
type SnapshotConfig struct {
	// Dir holds one directory per snapshot; default Staging.DataDir +
	// ".snapshots". The btrfs and reflink methods need it on the data
	// directory's filesystem (preflight says so otherwise).
	Dir string `json:"dir,omitempty"`
	// CloneDir holds one directory per clone; default Staging.DataDir +
	// ".clones". btrfs and reflink clones need it on the snapshots'
	// filesystem.
	CloneDir string `json:"clone_dir,omitempty"`
	// Method is how a snapshot holds the data: "" picks from the data
	// directory's filesystem (btrfs for a subvolume, reflink where FICLONE
	// works, else copy); "btrfs", "reflink" or "copy" insist; "none" only
	// records the positions (the Snapshotter does the rest).
	Method string `json:"method,omitempty"`
	// Every takes a snapshot at this interval while the staging is linked
	// and enabled; Cron instead at the times a 5-field cron expression
	// ("minute hour day-of-month month day-of-week", local time) names.
	// At most one of them.
	Every time.Duration `json:"every,omitempty"`
	Cron  string        `json:"cron,omitempty"`
	// KeepLast keeps the newest KeepLast snapshots that hold data, and
	// KeepWithin those younger than it; a snapshot either keeps survives.
	// Zero for both keeps everything. A snapshot a clone uses is never
	// deleted. Applied after each snapshot the Linker takes.
	KeepLast   int           `json:"keep_last,omitempty"`
	KeepWithin time.Duration `json:"keep_within,omitempty"`
}

// Snapshot methods (SnapshotConfig.Method, Snapshot.DataMethod).
const (
	SnapshotAuto    = ""
	SnapshotBtrfs   = "btrfs"
	SnapshotReflink = "reflink"
	SnapshotCopy    = "copy"
	SnapshotNone    = "none"
)

const (
	snapshotDirSuffix = ".snapshots"
	cloneDirSuffix    = ".clones"
)

// withDefaults fills in the directories beside dataDir.
func (c SnapshotConfig) withDefaults(dataDir string) SnapshotConfig {
	if c.Dir == "" && dataDir != "" {
		c.Dir = dataDir + snapshotDirSuffix
	}
	if c.CloneDir == "" && dataDir != "" {
		c.CloneDir = dataDir + cloneDirSuffix
	}
	c.Dir, c.CloneDir = cleanPath(c.Dir), cleanPath(c.CloneDir)
	return c
}

func cleanPath(p string) string {
	if p == "" {
		return ""
	}
	return filepath.Clean(p)
}

// validate checks the snapshot configuration, every problem at once.
func (c SnapshotConfig) validate(dataDir string) error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	switch c.Method {
	case SnapshotAuto, SnapshotBtrfs, SnapshotReflink, SnapshotCopy, SnapshotNone:
	default:
		add("Snapshots.Method %q is none of btrfs, reflink, copy, none (or empty to pick from the filesystem)", c.Method)
	}
	for name, dir := range map[string]string{"Snapshots.Dir": c.Dir, "Snapshots.CloneDir": c.CloneDir} {
		switch {
		case dir == "":
		case !filepath.IsAbs(dir):
			add("%s %q is relative: give an absolute path", name, dir)
		case dataDir != "" && pathx.Within(dir, dataDir):
			add("%s %q is inside the data directory: a resync empties it; put it beside", name, dir)
		}
	}
	if c.Every < 0 {
		add("Snapshots.Every %s is negative", c.Every)
	}
	if c.Every > 0 && c.Cron != "" {
		add("Snapshots.Every and Snapshots.Cron are both set: choose one")
	}
	if c.Cron != "" {
		if _, err := parseCron(c.Cron); err != nil {
			add("Snapshots.Cron: %v", err)
		}
	}
	if c.KeepLast < 0 {
		add("Snapshots.KeepLast %d is negative", c.KeepLast)
	}
	if c.KeepWithin < 0 {
		add("Snapshots.KeepWithin %s is negative", c.KeepWithin)
	}
	return errors.Join(errs...)
}

// scheduled reports whether snapshots are taken on a schedule.
func (c SnapshotConfig) scheduled() bool { return c.Every > 0 || c.Cron != "" }

// snapshotDirProblem says when Snapshots.Dir is on another filesystem than
// the data directory while the method shares blocks with it (btrfs,
// reflink, or the automatic choice on a filesystem that can): such
// snapshots would fail, or the automatic choice fall back to full copies.
// The nearest existing ancestors are probed with a one-byte FICLONE, which
// says EXDEV across filesystems (btrfs subvolumes of one filesystem pass).
func snapshotDirProblem(cfg Config) *Problem {
	m := cfg.Snapshots.Method
	if m == SnapshotCopy || m == SnapshotNone {
		return nil
	}
	from, to := existingAncestor(filepath.Dir(cfg.Staging.DataDir)), existingAncestor(cfg.Snapshots.Dir)
	if from == "" || to == "" {
		return nil
	}
	fromType, _ := snapclone.FSType(from)
	if m == SnapshotAuto && !slices.Contains([]string{"btrfs", "xfs", "zfs", "bcachefs"}, fromType) {
		return nil
	}
	if !crossFS(from, to) {
		return nil
	}
	toType, _ := snapclone.FSType(to)
	return &Problem{Check: "snapshots",
		What: fmt.Sprintf("Snapshots.Dir %s is on another filesystem (%s) than the data directory %s (%s): btrfs and reflink snapshots share blocks within one filesystem only", cfg.Snapshots.Dir, toType, cfg.Staging.DataDir, fromType),
		Do:   "put Snapshots.Dir beside the data directory (the default), or set Snapshots.Method to copy"}
}

func existingAncestor(p string) string {
	for ; p != "" && p != "/"; p = filepath.Dir(p) {
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			return p
		}
	}
	return ""
}

// crossFS reports whether FICLONE from a file in dir a to one in dir b
// fails with EXDEV. Where it cannot tell (no write access), it says no.
func crossFS(a, b string) bool {
	src, err := os.CreateTemp(a, ".pgstage-probe-*")
	if err != nil {
		return false
	}
	defer os.Remove(src.Name())
	defer src.Close()
	if _, err := src.Write([]byte{0}); err != nil {
		return false
	}
	dst, err := os.CreateTemp(b, ".pgstage-probe-*")
	if err != nil {
		return false
	}
	defer os.Remove(dst.Name())
	defer dst.Close()
	return errors.Is(unix.IoctlFileClone(int(dst.Fd()), int(src.Fd())), unix.EXDEV)
}
