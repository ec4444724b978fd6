package pgstage_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/internal/pgtest"
	"github.com/pgstage/pgstage/stage"
	"github.com/pgstage/pgstage/walwatch"
)

// TestSnapshotsAndClones runs snapshots and clones through the Linker, one
// staging per major on a loop-mounted btrfs (btrfs method) and one on XFS
// (reflink): rows written before the snapshot are in the clone, rows after
// are not; the clone takes writes that neither the staging nor the source
// sees, while the staging keeps streaming; a cloned snapshot is kept by
// retention and refused by DeleteSnapshot; a clone on a port in use leaves
// nothing; and, on the last filesystem, a snapshot while faulted is
// refused.
func TestSnapshotsAndClones(t *testing.T) {
	pgtest.ForEachMajor(t, func(t *testing.T, major int) {
		t.Parallel()
		p := pgtest.StartPrimary(t, major, pgtest.Options{Settings: keepWAL(major)})
		p.InsertRows(t, 5)
		b := pgtest.TakeBackup(t, p, pgtest.BackupOptions{Layout: pgtest.LayoutFolder, Form: pgtest.Forms(major)[0]})
		filesystems := []struct{ fstype, method string }{{"btrfs", stage.SnapshotBtrfs}, {"xfs", stage.SnapshotReflink}}
		for i, fs := range filesystems {
			t.Run(fs.fstype, func(t *testing.T) {
				snapshotsAndClones(t, p, b.Path, fs.fstype, fs.method, i == len(filesystems)-1)
			})
		}
	})
}

func snapshotsAndClones(t *testing.T, p *pgtest.Primary, backupPath, fstype, method string, fault bool) {
	ctx := context.Background()
	mnt := pgtest.MountLoop(t, fstype, 512<<20)
	cfg := stagingConfig(t, p, backupPath)
	cfg.Staging.DataDir = filepath.Join(mnt.Dir, "data")
	cfg.Snapshots.KeepLast = 1
	s := &staging{cfg: cfg, backupPath: backupPath}
	var err error
	s.l, err = stage.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, c := range s.l.Clones() {
			s.l.DestroyClone(ctx, c.ID)
		}
		s.l.Disable(ctx)
		s.l.Close()
	})
	require.NoError(t, s.l.Link(ctx))

	before := p.InsertRows(t, 1)
	s.waitRow(t, before)
	snap, err := s.l.Snapshot(ctx)
	require.NoError(t, err)
	require.Equal(t, method, snap.DataMethod, "picked from the filesystem")
	require.DirExists(t, snap.Location)
	require.Equal(t, filepath.Join(cfg.Staging.DataDir+".snapshots", snap.ID), snap.Location)
	after := p.InsertRows(t, 1)

	c, err := s.l.Clone(ctx, snap.ID, stage.CloneOptions{ID: "alice"})
	require.NoError(t, err)
	t.Logf("%s clone ready in %v, %d extra bytes (%s)", fstype, c.Ready, c.ExtraBytes, c.SizeMeasure)
	require.Equal(t, "1", cloneQuery(t, c, fmt.Sprintf("SELECT count(*) FROM pgstage_rows WHERE id = %d", before)), "a row before the snapshot")
	require.Equal(t, "0", cloneQuery(t, c, fmt.Sprintf("SELECT count(*) FROM pgstage_rows WHERE id = %d", after)), "a row after the snapshot")
	require.Equal(t, "false", cloneQuery(t, c, "SELECT pg_is_in_recovery()::text"))
	mark := cloneQuery(t, c, "INSERT INTO pgstage_rows (id) VALUES (-42) RETURNING id::text")
	require.Equal(t, "-42", mark, "the clone takes writes")

	// The staging keeps streaming, and neither it nor the source has the
	// clone's row.
	next := p.InsertRows(t, 1)
	s.waitRow(t, next)
	require.Equal(t, stage.StateStreaming, s.status(t).State)
	require.Equal(t, "0", s.query(t, "SELECT count(*) FROM pgstage_rows WHERE id = -42"))
	require.Equal(t, "0", p.QueryString(t, "SELECT count(*) FROM pgstage_rows WHERE id = -42"))

	// A cloned snapshot stays: DeleteSnapshot refuses it, retention
	// (KeepLast 1) keeps it beside the newest.
	require.ErrorIs(t, s.l.DeleteSnapshot(ctx, snap.ID), stage.ErrInUse)
	newest, err := s.l.Snapshot(ctx)
	require.NoError(t, err)
	require.DirExists(t, snap.Location)
	older, err := s.l.Snapshot(ctx)
	require.NoError(t, err)
	require.NoDirExists(t, newest.Location, "retention deleted the uncloned older one")
	require.DirExists(t, older.Location)

	// A clone on a port in use fails and leaves nothing.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	_, err = s.l.Clone(ctx, snap.ID, stage.CloneOptions{ID: "bob", Port: ln.Addr().(*net.TCPAddr).Port})
	require.ErrorIs(t, err, stage.ErrPortInUse)
	require.NoDirExists(t, filepath.Join(cfg.Staging.DataDir+".clones", "bob"))
	require.Len(t, s.l.Clones(), 1)

	require.NoError(t, s.l.DestroyClone(ctx, c.ID))
	require.NoDirExists(t, c.Dir)
	require.NoError(t, s.l.DeleteSnapshot(ctx, snap.ID))
	_, err = os.Stat(snap.Location)
	require.ErrorIs(t, err, os.ErrNotExist)

	if fault {
		p.Stop(t, "fast")
		t.Cleanup(func() { p.Start(t) })
		s.waitEvent(t, walwatch.KindFault)
		_, err := s.l.Snapshot(ctx)
		require.ErrorIs(t, err, stage.ErrFaulted)
		entries, err := os.ReadDir(cfg.Staging.DataDir + ".snapshots")
		require.NoError(t, err)
		require.Len(t, entries, 1, "no snapshot directory left by the refusal")
	}
}

// cloneQuery runs sql on the clone and returns the first column of the
// first row.
func cloneQuery(t *testing.T, c *stage.Clone, sql string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.ConnString()+" sslmode=disable")
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var v string
	require.NoError(t, conn.QueryRow(ctx, sql).Scan(&v), sql)
	return v
}
