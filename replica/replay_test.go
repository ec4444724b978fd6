package replica_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/internal/pgtest"
	"github.com/pgstage/pgstage/replica"
)

// Replay tells a stalled standby (WAL received, not applied) from an idle
// one, and a dead walreceiver from a standby that applied all it had.
func TestReplayReal(t *testing.T) {
	pgtest.ForEachMajor(t, func(t *testing.T, major int) {
		t.Parallel()
		// A source that logs every statement: the standby inherits it, and
		// the questions must stay out of its log (checked at the end).
		p := pgtest.StartPrimary(t, major, pgtest.Options{Settings: map[string]string{"log_statement": "'all'"}})
		b := pgtest.TakeBackup(t, p, pgtest.BackupOptions{Form: pgtest.Forms(major)[0]})
		s, _ := newStandby(t, p, b, nil)
		_, err := s.Setup(context.Background())
		require.NoError(t, err)
		startStreaming(t, s)
		ctx := context.Background()
		replay := func() replica.Replay {
			t.Helper()
			r, err := s.Replay(ctx)
			require.NoError(t, err)
			return r
		}

		r := replay()
		assert.True(t, r.Streaming(), "%+v", r)
		assert.NotZero(t, r.ReceiverPID)
		assert.NotZero(t, r.ReceiveLSN)
		assert.False(t, r.LastMessage.IsZero(), "last_msg_receipt_time")
		assert.False(t, r.Paused)

		// Replay paused while the source writes: received, not applied.
		standbyExec(t, s, "SELECT pg_wal_replay_pause()")
		p.InsertRows(t, 100)
		waitFor(t, func() bool { r = replay(); return r.Paused && r.Behind() > 0 },
			"receive ahead of replay while paused (last: %+v)", &r)
		t.Logf("paused: received %s, replayed %s, %d bytes behind", r.ReceiveLSN, r.ReplayLSN, r.Behind())
		assert.True(t, r.Streaming())
		assert.True(t, r.Answered, "the source has sent WAL: %+v", r)

		standbyExec(t, s, "SELECT pg_wal_replay_resume()")
		waitFor(t, func() bool { r = replay(); return !r.Paused && r.Behind() == 0 && !r.LastReplayed.IsZero() },
			"replay to catch up (last: %+v)", &r)

		// The source stops: no walreceiver streams, although nothing is
		// left to apply (the lag a receive - replay query shows is 0).
		p.Stop(t, "fast")
		waitFor(t, func() bool { r = replay(); return !r.Streaming() }, "the walreceiver to stop streaming (last: %+v)", &r)
		t.Logf("source stopped: receiver %q, %d bytes behind", r.Receiver, r.Behind())
		assert.Zero(t, r.Behind())

		p.Start(t)
		waitFor(t, func() bool { return replay().Streaming() }, "streaming to resume")
		standbyExec(t, s, "SELECT 'logged, as the source says'")
		// Once the statement above is in the log (the standby does log
		// statements, else the check proves nothing), so are the questions
		// before it, had they been logged.
		var log string
		waitFor(t, func() bool { log = s.LogTail(400); return strings.Contains(log, "logged, as the source says") },
			"the standby to log a statement")
		assert.False(t, strings.Contains(log, "pg_stat_wal_receiver"), "a question of Replay or WaitStreaming was logged")
	})
}

// Warm standbys take no queries: Replay says so rather than guessing.
func TestReplayWarmStandby(t *testing.T) {
	_, data := goldenDataDir(t, "9.5", "testdata/pg_control.9.5")
	s, err := replica.New(replica.Config{DataDir: data, BinDir: fakeBinDir(t, "9.5.25"), Source: replica.Source{Host: "h", User: "u"}})
	require.NoError(t, err)
	_, err = s.Replay(context.Background())
	require.ErrorIs(t, err, replica.ErrWarmStandby)
}

// standbyExec runs sql on the standby as the superuser.
func standbyExec(t *testing.T, s *replica.Standby, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := s.Config()
	conn, err := pgx.Connect(ctx, fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres", cfg.SocketDir, cfg.Port))
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	require.NoError(t, err, sql)
}
