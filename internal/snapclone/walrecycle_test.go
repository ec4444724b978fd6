package snapclone_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/internal/pgtest"
	"github.com/pgstage/pgstage/internal/snapclone"
	"github.com/pgstage/pgstage/pgconf"
)

// TestSnapshotWALRecycled holds a reflink snapshot between its copy and
// its stop while the source writes, switches WAL and checkpoints, and the
// staging runs restartpoints, which recycle the segments from the
// backup's start point unless something holds them (the staging keeps no
// WAL of its own: wal_keep 0). With the snapshot's slot the start segment
// is still there at the stop, and the clone matches the source at its
// last row, past a marker row written before. Without slots
// (max_replication_slots = 0) the start segment is gone before the stop,
// so the snapshot must fail with ErrWALMissing and leave nothing: which
// case holds is checked on the staging's pg_wal first, so neither can pass
// as the other.
func TestSnapshotWALRecycled(t *testing.T) {
	xfs := pgtest.MountLoop(t, "xfs", 2<<30)
	pgtest.ForEachMajor(t, func(t *testing.T, major int) {
		src := newSource(t, major, false)
		for _, slots := range []bool{true, false} {
			t.Run(fmt.Sprintf("slots=%v", slots), func(t *testing.T) {
				ctx := context.Background()
				p := src.p
				name := fmt.Sprintf("pg%d-recycle-%v", major, slots)
				st := newStaging(t, p, src.b, xfs, name+"-staging")
				settings := map[string]string{"wal_keep_size": "0"}
				if major < 13 {
					settings = map[string]string{"wal_keep_segments": "0"}
				}
				if !slots {
					settings["max_replication_slots"] = "0"
				}
				st.restartWith(t, settings)
				sc, err := snapclone.New(snapclone.Config{DataDir: st.data, BinDir: p.BinDir, ConnString: st.connString()})
				require.NoError(t, err)
				marker := p.InsertRows(t, 10)
				st.replayed(t, marker)

				var startSeg string
				startHeld := false
				snapclone.SetBackupCopied(func() {
					// The backup's start: the restartpoint it made (or the
					// last one, when no checkpoint was replayed since).
					startSeg = query(t, st.connString(), "SELECT redo_wal_file FROM pg_control_checkpoint()")
					if slots {
						assert.Equal(t, "1", query(t, st.connString(), "SELECT count(*)::text FROM pg_replication_slots WHERE slot_name LIKE 'pgstage_snapshot_%'"))
					}
					recycle(t, p, st)
					_, err := os.Stat(filepath.Join(st.data, "pg_wal", startSeg))
					startHeld = err == nil
				})
				defer snapclone.SetBackupCopied(nil)
				dir := filepath.Join(xfs.Dir, name+"-snap")
				snap, err := sc.Snapshot(ctx, dir)
				t.Logf("start segment %s on the staging at the stop: %v", startSeg, startHeld)
				if !slots {
					require.False(t, startHeld, "the restartpoints recycled the start segment %s", startSeg)
					require.ErrorIs(t, err, snapclone.ErrWALMissing)
					assert.Contains(t, err.Error(), "already recycled")
					assert.NoDirExists(t, dir, "a failed snapshot leaves nothing")
					return
				}
				require.True(t, startHeld, "the snapshot's slot holds the start segment %s", startSeg)
				require.NoError(t, err)
				defer func() { assert.NoError(t, sc.DeleteSnapshot(ctx, snap.Dir)) }()
				c, err := sc.Clone(ctx, snap.Dir, snapclone.CloneOptions{Dir: filepath.Join(xfs.Dir, name+"-clone"), Port: pgtest.FreePort(t)})
				require.NoError(t, err)
				defer func() { assert.NoError(t, sc.DestroyClone(ctx, c.Dir)) }()
				cs := c.ConnString() + " user=postgres sslmode=disable"
				last, err := strconv.ParseInt(query(t, cs, "SELECT max(id)::text FROM pgstage_rows"), 10, 64)
				require.NoError(t, err)
				assert.GreaterOrEqual(t, last, marker, "the clone has the marker row")
				assert.Equal(t, query(t, p.ConnString(), fingerprint+strconv.FormatInt(last, 10)), query(t, cs, fingerprint+strconv.FormatInt(last, 10)),
					"the clone's table matches the source's up to its last row %d", last)
			})
		}
	})
}

// recycle writes on the source, switches its WAL and checkpoints it, three
// times, each time waiting until the staging replayed it and running a
// restartpoint there: each restartpoint recycles the segments before its
// redo point that nothing holds.
func recycle(t *testing.T, p *pgtest.Primary, st *staging) {
	t.Helper()
	for i := 0; i < 3; i++ {
		p.InsertRows(t, 200)
		p.Exec(t, "SELECT pg_switch_wal()")
		p.Exec(t, "CHECKPOINT")
		st.caughtUp(t, p)
		execSQL(t, st.connString(), "CHECKPOINT")
	}
}

// restartWith stops the staging, sets settings in its configuration and
// starts it again, streaming.
func (s *staging) restartWith(t *testing.T, settings map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	require.NoError(t, s.standby.Stop(ctx))
	conf, err := pgconf.Load(s.data)
	require.NoError(t, err)
	for k, v := range settings {
		_, err := conf.Set(k, v)
		require.NoError(t, err, "setting %s", k)
	}
	require.NoError(t, conf.Save())
	pgtest.Chown(t, s.data)
	require.NoError(t, s.standby.Start(ctx))
	_, err = s.standby.WaitStreaming(ctx)
	require.NoError(t, err)
	for k, v := range settings {
		assert.Equal(t, v, query(t, s.connString(), "SELECT setting FROM pg_settings WHERE name = '"+k+"'"), k)
	}
}

// execSQL runs a statement that returns no row.
func execSQL(t *testing.T, connString, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, connString)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	require.NoError(t, err, "%s on %s", sql, connString)
}
