package stage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/pgstage/pgstage/internal/libpq"
	"github.com/pgstage/pgstage/internal/snapclone"
)

// snapper takes snapshots that hold the data and makes clones of them; the
// concrete type is *snapclone.Staging.
type snapper interface {
	Snapshot(ctx context.Context, dir string) (*snapclone.Snapshot, error)
	DeleteSnapshot(ctx context.Context, dir string) error
	Clone(ctx context.Context, snapshotDir string, opts snapclone.CloneOptions) (*snapclone.Clone, error)
	DestroyClone(ctx context.Context, dir string) error
}

var _ snapper = (*snapclone.Staging)(nil)

// newSnapper is the snapclone handle for the staging, made per job: the
// data directory's version is read when it is made.
func (l *Linker) newSnapper() (snapper, error) {
	c := l.cfg
	method := snapclone.Method(c.Snapshots.Method)
	if c.Snapshots.Method == SnapshotNone {
		method = snapclone.MethodAuto
	}
	s, err := snapclone.New(snapclone.Config{
		DataDir: c.Staging.DataDir,
		BinDir:  c.Staging.BinDir,
		ConnString: fmt.Sprintf("host=%s port=%d user=%s dbname=postgres sslmode=disable connect_timeout=10 application_name=pgstage_snapshot",
			libpq.Quote(c.Staging.SocketDir), c.Staging.Port, libpq.Quote(c.Staging.DBUser)),
		Method: method,
		OSUser: c.Staging.OSUser,
		Label:  "pgstage snapshot of " + c.Staging.ApplicationName,
		Logger: l.log,
	})
	if err != nil {
		return nil, fmt.Errorf("stage: %w", err)
	}
	return s, nil
}

// holdsData reports whether a snapshot taken by job keeps the data: Link's
// and Resync's first sync records the point only (the data was just
// restored from the backup; a copy there would double the disk at once).
func (l *Linker) holdsData(job Job) bool {
	if l.cfg.Snapshots.Method == SnapshotNone || l.deps.snap == nil {
		return false
	}
	return job != JobLink && job != JobResync
}

// keepData gives s its ID and, for the jobs that keep the data, takes the
// snapshot of the data directory into Snapshots.Dir/<ID>.
func (l *Linker) keepData(ctx context.Context, s *Snapshot, job Job) error {
	l.mu.Lock()
	s.ID = newID(s.Time, func(id string) bool {
		return slices.ContainsFunc(l.st.Snapshots, func(o Snapshot) bool { return o.ID == id })
	})
	l.mu.Unlock()
	if !l.holdsData(job) {
		return nil
	}
	sn, err := l.deps.snap()
	if err != nil {
		return err
	}
	if err := l.ensureDir(l.cfg.Snapshots.Dir, 0o700); err != nil {
		return err
	}
	dir := filepath.Join(l.cfg.Snapshots.Dir, s.ID)
	data, err := sn.Snapshot(ctx, dir)
	if err != nil {
		return fmt.Errorf("stage: snapshot of %s: %w", l.cfg.Staging.DataDir, err)
	}
	s.DataMethod, s.Location, s.Consistency = string(data.Method), dir, string(data.Consistency)
	s.ExtraBytes, s.SizeMeasure, s.Took = data.ExtraBytes, data.SizeMeasure, data.Took
	return nil
}

// dropData removes the data of a snapshot that is not recorded after all.
func (l *Linker) dropData(ctx context.Context, s *Snapshot) {
	if s.Location == "" {
		return
	}
	sn, err := l.deps.snap()
	if err == nil {
		err = sn.DeleteSnapshot(context.WithoutCancel(ctx), s.Location)
	}
	if err != nil {
		l.log.Error("removing the data of a snapshot not recorded: remove it by hand", "dir", s.Location, "err", err)
	}
}

// newID names a snapshot or clone after t (UTC, to the millisecond), with
// a counter when taken says the name is in use.
func newID(t time.Time, taken func(string) bool) string {
	base := t.UTC().Format("20060102T150405.000Z")
	id := base
	for i := 2; taken(id); i++ {
		id = fmt.Sprintf("%s-%d", base, i)
	}
	return id
}

// ensureDir makes dir (and its parents) when missing, mode perm, the OS
// user's, so that the user's servers can reach what is below it.
func (l *Linker) ensureDir(dir string, perm os.FileMode) error {
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return nil
	}
	if err := os.MkdirAll(dir, perm); err != nil {
		return fmt.Errorf("stage: %w", err)
	}
	if err := os.Chmod(dir, perm); err != nil {
		return fmt.Errorf("stage: %w", err)
	}
	return l.user.Chown(dir)
}

// DeleteSnapshot removes the snapshot id: its data and its record. It is
// refused with ErrInUse while a clone made from it exists (DestroyClone
// first), and with ErrNotFound for an id no snapshot has.
func (l *Linker) DeleteSnapshot(ctx context.Context, id string) error {
	if err := l.begin(); err != nil {
		return err
	}
	defer l.end()
	return l.deleteSnapshot(ctx, id)
}

func (l *Linker) deleteSnapshot(ctx context.Context, id string) error {
	l.mu.Lock()
	i := slices.IndexFunc(l.st.Snapshots, func(s Snapshot) bool { return s.ID == id && id != "" })
	var users []string
	for _, c := range l.st.Clones {
		if c.Snapshot == id {
			users = append(users, c.ID)
		}
	}
	var s Snapshot
	if i >= 0 {
		s = l.st.Snapshots[i]
	}
	l.mu.Unlock()
	switch {
	case i < 0:
		return fmt.Errorf("%w: no snapshot %q of %s (Snapshots lists them)", ErrNotFound, id, l.cfg.Staging.DataDir)
	case len(users) > 0:
		return fmt.Errorf("%w: snapshot %s has clone(s) %v: destroy them first", ErrInUse, id, users)
	}
	if s.Location != "" {
		sn, err := l.deps.snap()
		if err != nil {
			return err
		}
		err = sn.DeleteSnapshot(ctx, s.Location)
		if errors.Is(err, snapclone.ErrNotSnapshot) {
			if _, serr := os.Lstat(s.Location); errors.Is(serr, os.ErrNotExist) {
				err = nil // removed by hand: only the record is left
			}
		}
		if err != nil {
			return fmt.Errorf("stage: deleting snapshot %s: %w", id, err)
		}
	}
	l.mu.Lock()
	l.st.Snapshots = slices.DeleteFunc(l.st.Snapshots, func(o Snapshot) bool { return o.ID == id })
	err := l.saveLocked()
	l.mu.Unlock()
	l.log.Info("snapshot deleted", "id", id, "location", s.Location)
	return err
}

// makeDataDir creates a missing data directory before the restore: a btrfs
// subvolume when its parent is on btrfs, so that btrfs snapshots of it are
// possible (a plain directory cannot become one later). An existing
// (empty) one is kept as it is.
func (l *Linker) makeDataDir(ctx context.Context) error {
	dir := l.cfg.Staging.DataDir
	if _, err := os.Lstat(dir); err == nil || !errors.Is(err, os.ErrNotExist) {
		return nil
	}
	subvol, err := snapclone.CreateDataDir(ctx, dir, l.cfg.Staging.OSUser)
	if err != nil {
		return fmt.Errorf("stage: creating the data directory: %w", err)
	}
	if subvol {
		l.log.Info("data directory created as a btrfs subvolume", "data_dir", dir)
	}
	return nil
}
