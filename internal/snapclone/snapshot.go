package snapclone

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/pgstage/pgstage/internal/atomicfile"
)

// Snapshot takes a snapshot of the staging into dir, a new directory whose
// parent exists: dir/data is the data directory, dir/tblspc/<oid> each
// tablespace, dir/snapshot.json what ReadSnapshot returns.
//
// With the btrfs method and no tablespaces, the staging's subvolume is
// snapshotted read-only at one instant, running or not, and no SQL is run.
// Otherwise a running staging is copied under a non-exclusive base backup
// (see the package documentation); a stopped one is copied as it is. A
// failure removes dir; the staging is never written.
func (s *Staging) Snapshot(ctx context.Context, dir string) (*Snapshot, error) {
	start := time.Now()
	r, err := rulesFor(s.major)
	if err != nil {
		return nil, err
	}
	if err := s.newDir(dir, "snapshot"); err != nil {
		return nil, err
	}
	snap := &Snapshot{Dir: dir, DataDir: filepath.Join(dir, dataSub), Source: s.cfg.DataDir, Major: s.major, Taken: start}
	ok := false
	defer func() {
		if !ok {
			if err := removeTree(context.WithoutCancel(ctx), dir); err != nil {
				s.log.Error("could not remove the failed snapshot: remove it by hand", "dir", dir, "error", err)
			}
		}
	}()
	freeBefore := freeBytes(dir)
	d, err := Detect(s.cfg.DataDir, dir)
	if err != nil {
		return nil, err
	}
	snap.FSType = d.FSType
	if snap.Method, err = resolveMethod(s.cfg.Method, d, s.cfg.DataDir, dir); err != nil {
		return nil, err
	}
	spaces, err := readTablespaces(s.cfg.DataDir)
	if err != nil {
		return nil, err
	}
	walLinked := isSymlink(filepath.Join(s.cfg.DataDir, r.walDir))
	isRunning := running(s.cfg.DataDir)
	s.log.Info("taking a snapshot", "dir", dir, "method", snap.Method, "filesystem", d.FSType, "running", isRunning, "tablespaces", len(spaces))

	atOnce := snap.Method == MethodBtrfs && len(spaces) == 0 && !walLinked
	switch {
	case atOnce:
		// Every file at one instant: nothing else is needed.
		if _, err := btrfs(ctx, "subvolume", "snapshot", "-r", s.cfg.DataDir, snap.DataDir); err != nil {
			return nil, err
		}
		snap.Consistency = ConsistentCrash
		if !isRunning {
			snap.Consistency = ConsistentStopped
		}
	case !isRunning:
		if err := s.copyData(ctx, snap, r, spaces, nil); err != nil {
			return nil, err
		}
		snap.Consistency = ConsistentStopped
	default:
		if !r.backupAPI {
			return nil, noBackupAPI(s.major)
		}
		if s.cfg.ConnString == "" {
			return nil, fmt.Errorf("%w: ConnString is needed to snapshot the running staging in %s with the %s method (the base backup runs over it)", ErrInvalidConfig, s.cfg.DataDir, snap.Method)
		}
		if snap.Method == MethodReflink {
			// FICLONE writes a file's dirty pages back before it shares
			// its extents, one file after the other: after a restore
			// under fsync = off, seconds per GiB. One syncfs first does it
			// in one pass, before the backup starts, and costs nothing
			// when nothing is dirty.
			if err := syncFS(s.cfg.DataDir); err != nil {
				s.log.Warn("could not sync the staging's filesystem before the snapshot; the reflinks write back what is dirty", "error", err)
			}
		}
		sess, err := startBackup(ctx, s.cfg.ConnString, s.major, s.cfg.Label, s.log)
		if err != nil {
			return nil, err
		}
		defer sess.close()
		if err := s.copyData(ctx, snap, r, spaces, sess); err != nil {
			return nil, err
		}
		snap.Consistency = ConsistentBackup
	}
	if snap.Method == MethodBtrfs && !atOnce {
		// Written while writable (backup_label, links); read-only from now.
		if _, err := btrfs(ctx, "property", "set", "-ts", snap.DataDir, "ro", "true"); err != nil {
			return nil, err
		}
	}
	snap.Took = time.Since(start)
	snap.ExtraBytes, snap.SizeMeasure = extraBytes(ctx, dir, snap.Method, freeBefore)
	if err := writeMeta(filepath.Join(dir, snapshotMeta), snap); err != nil {
		return nil, noSpace(fmt.Errorf("snapclone: %w", err), dir, "writing the snapshot's description")
	}
	ok = true
	s.log.Info("snapshot taken", "dir", dir, "consistency", snap.Consistency, "took", snap.Took, "extra_bytes", snap.ExtraBytes)
	return snap, nil
}

// backupCopied, when set (by tests only), runs under a base backup once
// the data directory and tablespaces are copied, before the stop.
var backupCopied func()

// copyData copies the data directory and tablespaces into the snapshot:
// under the base backup sess when it is not nil (pg_control last, WAL
// after the stop), else as they are (a stopped staging).
func (s *Staging) copyData(ctx context.Context, snap *Snapshot, r rules, spaces []Tablespace, sess *backupSession) error {
	src := s.cfg.DataDir
	walSrc, err := filepath.EvalSymlinks(filepath.Join(src, r.walDir))
	if err != nil {
		return fmt.Errorf("snapclone: %w", err)
	}
	walDst := filepath.Join(snap.DataDir, r.walDir)
	if snap.Method == MethodBtrfs {
		if _, err := btrfs(ctx, "subvolume", "snapshot", src, snap.DataDir); err != nil {
			return err
		}
		// The subvolume snapshot holds what pg_wal held at that instant;
		// what the snapshot needs is copied below.
		if err := removeStale(snap.DataDir, r.walDir); err != nil {
			return err
		}
	} else {
		err := copyTree(ctx, src, snap.DataDir, copyOpts{
			reflink: snap.Method == MethodReflink,
			exclude: dataExclude(r.walDir),
			last:    []string{filepath.Join("global", "pg_control")},
		})
		if err != nil {
			return noSpace(err, snap.DataDir, "copying "+src)
		}
	}
	for i := range spaces {
		spaces[i].Path = filepath.Join(snap.Dir, tblspcSub, spaces[i].OID)
		if err := os.MkdirAll(filepath.Dir(spaces[i].Path), 0o700); err != nil {
			return fmt.Errorf("snapclone: %w", err)
		}
		if err := s.user.Chown(filepath.Dir(spaces[i].Path)); err != nil {
			return fmt.Errorf("snapclone: %w", err)
		}
		err := copyTree(ctx, spaces[i].Original, spaces[i].Path, copyOpts{reflink: snap.Method != MethodCopy, fallback: true, exclude: tablespaceExclude})
		if err != nil {
			return noSpace(err, spaces[i].Path, "copying tablespace "+spaces[i].Original)
		}
	}
	snap.Tablespaces = spaces
	if sess != nil && backupCopied != nil {
		backupCopied()
	}
	walOpts := copyOpts{reflink: snap.Method != MethodCopy, fallback: true}
	var res backupResult
	if sess != nil {
		if res, err = sess.stop(ctx); err != nil {
			return err
		}
		snap.StartLSN, snap.StopLSN = formatLSN(res.startLSN), formatLSN(res.stopLSN)
		walOpts.exclude = walFilter(res, sess.segSize)
	}
	// WAL last, after the stop: it must reach the stop point.
	if err := copyTree(ctx, walSrc, walDst, walOpts); err != nil {
		return noSpace(err, walDst, "copying the WAL of "+src)
	}
	if sess != nil {
		if err := checkWAL(walDst, res, sess.segSize); err != nil {
			return err
		}
		if err := s.writeDataFile(snap.DataDir, "backup_label", res.label); err != nil {
			return err
		}
	}
	if err := relinkTablespaces(snap.DataDir, spaces); err != nil {
		return err
	}
	if sess != nil && res.spcmap != "" {
		if err := s.writeDataFile(snap.DataDir, "tablespace_map", tablespaceMap(spaces)); err != nil {
			return err
		}
	}
	// One syncfs for the data directory, tablespaces and WAL (all under
	// snap.Dir, one filesystem), as `cp -a` and one `sync` would.
	if err := syncFS(snap.Dir); err != nil {
		return noSpace(fmt.Errorf("snapclone: syncing the snapshot %s: %w", snap.Dir, err), snap.Dir, "syncing the snapshot")
	}
	return nil
}

// writeDataFile writes a file PostgreSQL reads into a data directory, as
// the OS user's, mode 0600.
func (s *Staging) writeDataFile(dataDir, name, content string) error {
	err := atomicfile.Write(filepath.Join(dataDir, name), []byte(content), 0o600, atomicfile.Owner(s.user.UID, s.user.GID))
	if err != nil {
		return noSpace(fmt.Errorf("snapclone: %w", err), dataDir, "writing "+name)
	}
	return nil
}

// dataExclude leaves out of a data directory copy what pg_basebackup
// leaves out: the WAL (copied after the stop), the lock files, the backup
// files of another backup, and the contents of the directories a server
// rebuilds at start.
func dataExclude(walDir string) func(rel string, dir bool) (bool, bool) {
	emptied := map[string]bool{"pg_replslot": true, "pg_dynshmem": true, "pg_notify": true, "pg_serial": true,
		"pg_snapshots": true, "pg_stat_tmp": true, "pg_subtrans": true}
	skipped := map[string]bool{walDir: true, "postmaster.pid": true, "postmaster.opts": true,
		"backup_label": true, "tablespace_map": true}
	return func(rel string, dir bool) (bool, bool) {
		base := filepath.Base(rel)
		switch {
		case skipped[rel]:
			return true, false
		case emptied[rel]:
			return false, true
		case base == "pg_internal.init", strings.HasPrefix(base, "pgsql_tmp"):
			return true, false
		}
		return false, false
	}
}

func tablespaceExclude(rel string, dir bool) (bool, bool) {
	base := filepath.Base(rel)
	return base == "pg_internal.init" || strings.HasPrefix(base, "pgsql_tmp"), false
}

// readTablespaces lists the tablespaces of a data directory from its
// pg_tblspc links.
func readTablespaces(dataDir string) ([]Tablespace, error) {
	entries, err := os.ReadDir(filepath.Join(dataDir, "pg_tblspc"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("snapclone: %w", err)
	}
	var out []Tablespace
	for _, e := range entries {
		link := filepath.Join(dataDir, "pg_tblspc", e.Name())
		target, err := filepath.EvalSymlinks(link)
		if err != nil {
			return nil, fmt.Errorf("snapclone: tablespace %s: %w", link, err)
		}
		out = append(out, Tablespace{OID: e.Name(), Original: target})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].OID < out[j].OID })
	return out, nil
}

// relinkTablespaces points each pg_tblspc link of dataDir at the
// tablespace's copy.
func relinkTablespaces(dataDir string, spaces []Tablespace) error {
	for _, ts := range spaces {
		link := filepath.Join(dataDir, "pg_tblspc", ts.OID)
		fi, err := os.Lstat(link)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("snapclone: %w", err)
		}
		if err := os.Remove(link); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("snapclone: %w", err)
		}
		if err := os.Symlink(ts.Path, link); err != nil {
			return fmt.Errorf("snapclone: %w", err)
		}
		if fi != nil {
			if err := keepOwnerMode(link, fi); err != nil {
				return fmt.Errorf("snapclone: %w", err)
			}
		}
	}
	return nil
}

// tablespaceMap is a tablespace_map naming the copies: the server re-makes
// the pg_tblspc links from it when it starts from a backup_label.
func tablespaceMap(spaces []Tablespace) string {
	var b strings.Builder
	for _, ts := range spaces {
		fmt.Fprintf(&b, "%s %s\n", ts.OID, ts.Path)
	}
	return b.String()
}

func isSymlink(p string) bool {
	fi, err := os.Lstat(p)
	return err == nil && fi.Mode()&fs.ModeSymlink != 0
}

// removeStale removes rel in dir (a file or a tree).
func removeStale(dir, rel string) error {
	if err := os.RemoveAll(filepath.Join(dir, rel)); err != nil {
		return fmt.Errorf("snapclone: %w", err)
	}
	return nil
}

// DeleteSnapshot removes the snapshot in dir. A directory without a
// snapshot.json is left alone (ErrNotSnapshot). Whether a clone still
// needs it is the caller's to know: clones do not depend on their snapshot
// after they are made.
func (s *Staging) DeleteSnapshot(ctx context.Context, dir string) error {
	if _, err := ReadSnapshot(dir); err != nil {
		return err
	}
	return removeTree(ctx, dir)
}
