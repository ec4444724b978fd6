package pgstage_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/internal/pgtest"
	"github.com/pgstage/pgstage/stage"
	"github.com/pgstage/pgstage/walwatch"
)

// TestLinkerReplayStalled: the staging streams but does not apply what it
// receives, first because replay is paused, then because a query on the
// staging holds a recovery conflict (max_standby_streaming_delay = -1 lets
// it hold it for ever). Each time the replay monitor raises a fault with
// its own reason once the bound is passed (a small one here), and clears it
// when replay catches up. The delay past the bound is logged, never
// asserted.
func TestLinkerReplayStalled(t *testing.T) {
	pgtest.ForEachMajor(t, func(t *testing.T, major int) {
		t.Parallel()
		ctx := context.Background()
		p := pgtest.StartPrimary(t, major, pgtest.Options{Settings: keepWAL(major)})
		p.Exec(t, "CREATE TABLE pgstage_conflict (i int)")
		b := pgtest.TakeBackup(t, p, pgtest.BackupOptions{Form: pgtest.Forms(major)[0]})
		cfg := stagingConfig(t, p, b.Path)
		const bound = 2 * time.Second
		cfg.Replay = stage.ReplayConfig{Interval: 500 * time.Millisecond, MaxLag: bound, MaxLagBytes: 1}
		cfg.Settings = append(cfg.Settings, stage.Setting{Name: "max_standby_streaming_delay", Value: "-1"})
		s := linkStaging(t, cfg)

		// Replay paused while the source writes.
		s.query(t, "SELECT pg_wal_replay_pause()::text")
		p.InsertRows(t, 10)
		written := time.Now()
		ev := s.waitReason(t, walwatch.KindFault, stage.ReasonReplayStalled)
		t.Logf("PostgreSQL %d, replay paused: fault %v after the write (bound %v): %s", major, time.Since(written).Round(10*time.Millisecond), bound, ev.Message)
		require.Contains(t, ev.Message, "paused")
		st := s.status(t)
		require.Equal(t, stage.StateFaulted, st.State)
		require.Equal(t, stage.ReasonReplayStalled, st.Fault.Reason)
		s.query(t, "SELECT pg_wal_replay_resume()::text")
		s.waitReason(t, walwatch.KindRecovered, stage.ReasonReplayStalled)
		id := p.InsertRows(t, 1)
		s.waitRow(t, id)

		// A query on the staging holds a lock the replay of a DROP needs.
		conn, err := pgx.Connect(ctx, fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres sslmode=disable", cfg.Staging.SocketDir, cfg.Staging.Port))
		require.NoError(t, err)
		defer conn.Close(ctx)
		tx, err := conn.Begin(ctx)
		require.NoError(t, err)
		_, err = tx.Exec(ctx, "SELECT count(*) FROM pgstage_conflict")
		require.NoError(t, err)
		p.Exec(t, "DROP TABLE pgstage_conflict")
		p.InsertRows(t, 10)
		written = time.Now()
		ev = s.waitReason(t, walwatch.KindFault, stage.ReasonReplayStalled)
		t.Logf("PostgreSQL %d, recovery conflict: fault %v after the write (bound %v): %s", major, time.Since(written).Round(10*time.Millisecond), bound, ev.Message)
		require.NoError(t, tx.Rollback(ctx))
		s.waitReason(t, walwatch.KindRecovered, stage.ReasonReplayStalled)
		require.Equal(t, stage.StateStreaming, s.status(t).State)
	})
}

// TestLinkerSilentPartition: the source in a network namespace, the staging
// linked to it over the veth pair, and every packet dropped without a
// reset. With the default liveness the staging raises one fault (the log's
// or the replay monitor's, never both) and recovers once the network
// heals. The delays are logged, never asserted: they depend on the load.
func TestLinkerSilentPartition(t *testing.T) {
	pgtest.ForEachMajor(t, func(t *testing.T, major int) {
		t.Parallel()
		n := pgtest.NewNetns(t)
		settings := keepWAL(major)
		settings["listen_addresses"] = "'*'"
		p := pgtest.StartPrimary(t, major, pgtest.Options{Settings: settings, HBA: n.HBA()})
		n.Move(t, p)
		b := pgtest.TakeBackup(t, p, pgtest.BackupOptions{Form: pgtest.Forms(major)[0]})
		s := linkStaging(t, stagingConfig(t, p, b.Path))
		id := p.InsertRows(t, 1)
		s.waitRow(t, id)
		before := len(s.l.Faults())

		n.Cut(t)
		cut := time.Now()
		ev := s.waitEvent(t, walwatch.KindFault)
		t.Logf("PostgreSQL %d, partition: fault after %v (%s): %s", major, time.Since(cut).Round(10*time.Millisecond), ev.Reason, ev.Message)
		require.Equal(t, stage.StateFaulted, s.status(t).State)

		n.Heal(t)
		healed := time.Now()
		s.waitEvent(t, walwatch.KindRecovered)
		t.Logf("PostgreSQL %d, healed: recovered after %v", major, time.Since(healed).Round(10*time.Millisecond))
		id = p.InsertRows(t, 1)
		s.waitRow(t, id)
		require.Len(t, s.l.Faults(), before+1, "one fault for the outage: %+v", s.l.Faults())
		require.Equal(t, stage.StateStreaming, s.status(t).State)
	})
}

// linkStaging links a staging of cfg, disabled and closed when the test
// ends.
func linkStaging(t *testing.T, cfg stage.Config) *staging {
	t.Helper()
	l, err := stage.New(cfg)
	require.NoError(t, err)
	s := &staging{cfg: cfg, l: l}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// s.l, not l: a test may replace the Linker (Close, then Open),
		// and the one it ends with is the one that can stop the server.
		if t.Failed() {
			t.Logf("staging log:\n%s", pgtest.Tail(filepath.Join(s.l.Config().Staging.StateDir, "log", "staging.log"), 40))
		}
		s.l.Disable(ctx)
		s.l.Close()
	})
	require.NoError(t, l.Link(context.Background()))
	return s
}

// waitReason reads the Linker's events until one of kind with reason
// arrives.
func (s *staging) waitReason(t *testing.T, kind walwatch.Kind, reason walwatch.Reason) walwatch.Event {
	t.Helper()
	timeout := time.After(waitLimit)
	var seen []string
	for {
		select {
		case ev, ok := <-s.l.Events():
			require.True(t, ok, "events closed")
			if ev.Kind == kind && ev.Reason == reason {
				return ev
			}
			seen = append(seen, ev.String())
		case <-timeout:
			t.Fatalf("no %s (%s) event within %v; saw:\n%s", kind, reason, waitLimit, strings.Join(seen, "\n"))
		}
	}
}
