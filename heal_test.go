package pgstage_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgstage/pgstage/backupsel/basebackup"
	"github.com/pgstage/pgstage/internal/pgtest"
	"github.com/pgstage/pgstage/stage"
	"github.com/pgstage/pgstage/walwatch"
	"github.com/stretchr/testify/require"
)

// TestTakeAndHeal links a staging in take mode from an empty backup path,
// then makes it need a resync (the source removes WAL the staging needs
// while it is down) and lets auto-heal mend it with a backup it takes.
func TestTakeAndHeal(t *testing.T) {
	pgtest.ForEachMajor(t, func(t *testing.T, major int) {
		t.Parallel()
		ctx := context.Background()
		// The slot keeps the WAL the first backup needs until the staging
		// streams; dropped, it lets the checkpoints below recycle it.
		p := pgtest.StartPrimary(t, major, pgtest.Options{})
		p.Exec(t, "SELECT pg_create_physical_replication_slot('pgstage_hold', true)")
		backupPath := pgtest.TempDir(t)

		// Preflight in take mode wants a writable backup path, not a
		// backup, and binaries of the source's major.
		otherMajor := 15
		if major == 15 {
			otherMajor = 16
		}
		bad := stagingConfig(t, p, filepath.Join(backupPath, "missing"))
		bad.BackupMode, bad.Staging.BinDir = stage.BackupTake, pgtest.BinDir(t, otherMajor)
		bl, err := stage.New(bad)
		require.NoError(t, err)
		err = bl.Preflight(ctx)
		require.ErrorIs(t, err, stage.ErrPreflight)
		require.ErrorContains(t, err, "2 problem(s)")
		require.ErrorContains(t, err, "backup path")
		require.ErrorContains(t, err, "staging binaries")
		require.NoError(t, bl.Close())

		cfg := stagingConfig(t, p, backupPath)
		cfg.BackupMode = stage.BackupTake
		cfg.Take = stage.TakeConfig{FastCheckpoint: true, Compression: basebackup.LZ4}
		cfg.Heal = stage.HealConfig{Auto: true, Attempts: 3, Backoff: time.Second}
		var mu sync.Mutex
		var steps []stage.Step
		cfg.Progress = func(pr stage.Progress) {
			mu.Lock()
			defer mu.Unlock()
			if !slices.Contains(steps, pr.Step) {
				steps = append(steps, pr.Step)
			}
		}
		l, err := stage.New(cfg)
		require.NoError(t, err)
		s := &staging{cfg: cfg, l: l}
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("staging log:\n%s", pgtest.Tail(filepath.Join(cfg.Staging.DataDir+".pgstage", "log", "staging.log"), 40))
			}
			l.Disable(ctx)
			l.Close()
		})

		require.NoError(t, l.Link(ctx))
		taken := backupFolders(t, backupPath)
		require.Len(t, taken, 1)
		mu.Lock()
		require.Equal(t, []stage.Step{stage.StepPreflight, stage.StepTakeBackup, stage.StepRestore}, steps[:3])
		mu.Unlock()
		st := s.status(t)
		require.Equal(t, stage.StateStreaming, st.State)
		require.Equal(t, taken[0], st.Backup.Name)

		require.NoError(t, l.Disable(ctx))
		recycleWAL(t, p)
		require.Error(t, l.Enable(ctx), "the staging cannot stream")
		var seen []string
		for done := false; !done; {
			ev := s.waitEvent(t, "") // any event
			seen = append(seen, ev.String())
			switch ev.Kind {
			case stage.KindHealSucceeded:
				done = true
			case stage.KindHealGaveUp:
				t.Fatalf("auto-heal gave up: %+v\nevents:\n%s", s.status(t).Heal, strings.Join(seen, "\n"))
			}
		}
		t.Logf("events:\n%s", strings.Join(seen, "\n"))
		require.Contains(t, strings.Join(seen, "\n"), string(walwatch.ReasonWALRemoved))
		st = s.status(t)
		require.Equal(t, stage.StateStreaming, st.State, "%+v", st)
		taken = backupFolders(t, backupPath)
		require.Len(t, taken, 2, "auto-heal took a second backup")
		require.Equal(t, taken[1], st.Backup.Name)
		id := p.InsertRows(t, 1)
		s.waitRow(t, id)
	})
}

// recycleWAL drops the slot pgstage_hold and makes the source move on and
// recycle the WAL a staging that is down would need (no slot, no
// wal_keep_size).
func recycleWAL(t *testing.T, p *pgtest.Primary) {
	t.Helper()
	p.Exec(t, "SELECT pg_drop_replication_slot('pgstage_hold')")
	for i := 0; i < 4; i++ {
		p.InsertRows(t, 10)
		p.Exec(t, "SELECT pg_switch_wal()")
		p.Exec(t, "CHECKPOINT")
	}
}

// backupFolders lists the backup folders in dir, oldest first.
func backupFolders(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), "PostgreSQL_T") {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names
}
