package walwatch_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/walwatch"
)

// logAt builds a stderr line at second s past 10:00 with the default prefix.
func logAt(s float64, pid int, sev, msg string) string {
	t := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC).Add(time.Duration(s * float64(time.Second)))
	return fmt.Sprintf("%s [%d] %s:  %s\n", t.Format("2006-01-02 15:04:05.000 MST"), pid, sev, msg)
}

// replay writes the log into a new directory and returns "kind reason@line" per event.
func replay(t *testing.T, cfg walwatch.Config, logs ...string) []string {
	t.Helper()
	dir := t.TempDir()
	for i, l := range logs {
		name := filepath.Join(dir, fmt.Sprintf("postgresql-%02d.log", i))
		require.NoError(t, os.WriteFile(name, []byte(l), 0o644))
		mt := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Minute)
		require.NoError(t, os.Chtimes(name, mt, mt))
	}
	cfg.LogDir, cfg.Start = dir, walwatch.StartReplay
	w, err := walwatch.New(cfg)
	require.NoError(t, err)
	defer w.Close()
	var got []string
	for ev := range w.Events() {
		got = append(got, eventString(ev))
	}
	return got
}

func eventString(ev walwatch.Event) string {
	s := string(ev.Kind)
	if ev.Reason != "" {
		s += " " + string(ev.Reason)
	}
	return fmt.Sprintf("%s@%s:%d", s, filepath.Base(ev.File), ev.Line)
}

const (
	started    = "started streaming WAL from primary at 0/3000000 on timeline 1"
	terminated = "replication terminated by primary server"
	noConnect  = `could not connect to the primary server: connection to server at "127.0.0.1", port 5432 failed: Connection refused`
	lost       = "could not receive data from WAL stream: server closed the connection unexpectedly"
	removed    = "could not receive data from WAL stream: ERROR:  requested WAL segment 000000010000000000000003 has already been removed"
)

func TestMachine(t *testing.T) {
	tests := []struct {
		name  string
		grace time.Duration
		logs  []string
		want  []string
	}{
		{
			name: "one fault per outage, recovered on restart of streaming",
			logs: []string{logAt(0, 1, "LOG", started) + logAt(1, 1, "FATAL", lost) +
				logAt(6, 2, "FATAL", noConnect) + logAt(11, 3, "FATAL", noConnect) + logAt(16, 4, "LOG", started)},
			want: []string{"streaming@postgresql-00.log:1", "fault stream-lost@postgresql-00.log:2", "recovered@postgresql-00.log:5"},
		},
		{
			name: "terminated by primary without timeline switch is a fault",
			logs: []string{logAt(0, 1, "LOG", started) + logAt(1, 1, "LOG", terminated) +
				logAt(1, 1, "DETAIL", "End of WAL reached on timeline 1 at 0/3000148.") +
				logAt(1.001, 1, "FATAL", "could not send end-of-streaming message to primary: no COPY in progress") +
				logAt(6, 2, "FATAL", noConnect) + logAt(7, 3, "LOG", started)},
			want: []string{"streaming@postgresql-00.log:1", "fault terminated-by-primary@postgresql-00.log:2", "recovered@postgresql-00.log:6"},
		},
		{
			name: "terminated by primary then a timeline switch is no fault",
			logs: []string{logAt(0, 1, "LOG", started) + logAt(1, 1, "LOG", terminated) +
				logAt(1, 1, "LOG", "fetching timeline history file for timeline 2 from primary server") +
				logAt(1, 9, "LOG", "new target timeline is 2") +
				logAt(1.1, 1, "LOG", "restarted WAL streaming at 0/3000000 on timeline 2")},
			want: []string{"streaming@postgresql-00.log:1"},
		},
		{
			name: "terminated at the end of the logs is a fault",
			logs: []string{logAt(0, 1, "LOG", started) + logAt(1, 1, "LOG", terminated)},
			want: []string{"streaming@postgresql-00.log:1", "fault terminated-by-primary@postgresql-00.log:2"},
		},
		{
			name: "staging shutdown is not a replication fault",
			logs: []string{logAt(0, 1, "LOG", started) + logAt(1, 9, "LOG", "received fast shutdown request") +
				logAt(1, 9, "LOG", "aborting any active transactions") +
				logAt(1, 1, "FATAL", "terminating walreceiver process due to administrator command") +
				logAt(1, 8, "LOG", "shutting down") + logAt(1.2, 9, "LOG", "database system is shut down") +
				logAt(3, 20, "LOG", "starting PostgreSQL 16.1 on x86_64-pc-linux-gnu") +
				logAt(3, 21, "LOG", "entering standby mode") +
				logAt(3, 21, "LOG", "invalid record length at 0/3000148: expected at least 24, got 0") +
				logAt(3.1, 20, "LOG", "database system is ready to accept read-only connections") +
				logAt(3.2, 22, "LOG", started)},
			want: []string{"streaming@postgresql-00.log:1", "shutdown-requested@postgresql-00.log:2", "shutdown@postgresql-00.log:6",
				"ready@postgresql-00.log:10", "streaming@postgresql-00.log:11"},
		},
		{
			name: "walreceiver terminated by an administrator is a fault",
			logs: []string{logAt(0, 1, "LOG", started) + logAt(1, 1, "FATAL", "terminating walreceiver process due to administrator command") +
				logAt(1.5, 2, "LOG", started)},
			want: []string{"streaming@postgresql-00.log:1", "fault receiver-stopped@postgresql-00.log:2", "recovered@postgresql-00.log:3"},
		},
		{
			name: "WAL removed: restarts of streaming that fail again are no recovery",
			logs: []string{logAt(0, 1, "LOG", started) + logAt(1, 1, "FATAL", removed) +
				logAt(6, 2, "LOG", started) + logAt(6, 2, "FATAL", removed) + logAt(11, 3, "LOG", started) + logAt(11, 3, "FATAL", removed)},
			want: []string{"streaming@postgresql-00.log:1", "fault wal-removed@postgresql-00.log:2"},
		},
		{
			name: "an outage that turns out to need a resync says so once more",
			logs: []string{logAt(0, 1, "LOG", started) + logAt(1, 1, "FATAL", lost) + logAt(6, 2, "FATAL", noConnect) +
				logAt(11, 3, "LOG", started) + logAt(11, 3, "FATAL", removed) + logAt(16, 4, "FATAL", removed)},
			want: []string{"streaming@postgresql-00.log:1", "fault stream-lost@postgresql-00.log:2", "recovered@postgresql-00.log:4", "fault wal-removed@postgresql-00.log:5"},
		},
		{
			name:  "grace period hides a short outage",
			grace: 10 * time.Second,
			logs: []string{logAt(0, 1, "LOG", started) + logAt(1, 1, "FATAL", lost) + logAt(6, 2, "FATAL", noConnect) + logAt(7, 3, "LOG", started) +
				logAt(20, 3, "FATAL", lost) + logAt(25, 4, "FATAL", noConnect) + logAt(31, 5, "FATAL", noConnect) + logAt(40, 6, "LOG", started)},
			want: []string{"streaming@postgresql-00.log:1", "fault stream-lost@postgresql-00.log:5", "recovered@postgresql-00.log:8"},
		},
		{
			name: "fault already open before the first streaming",
			logs: []string{logAt(0, 20, "LOG", "entering standby mode") + logAt(0.1, 21, "FATAL", noConnect+"\n\t\tIs the server running?") +
				logAt(5, 22, "FATAL", noConnect)},
			want: []string{"fault primary-unreachable@postgresql-00.log:2"},
		},
		{
			name: "authentication and pg_hba.conf refusals",
			logs: []string{logAt(0, 1, "FATAL", `could not connect to the primary server: connection to server at "127.0.0.1", port 5432 failed: FATAL:  password authentication failed for user "replicator"`)},
			want: []string{"fault auth-refused@postgresql-00.log:1"},
		},
		{
			name: "PostgreSQL 18 wording",
			logs: []string{logAt(0, 1, "FATAL", `streaming replication receiver "walreceiver" could not connect to the primary server: connection to server at "127.0.0.1", port 5432 failed: FATAL:  no pg_hba.conf entry for replication connection from host "127.0.0.1", user "x", no encryption`) +
				logAt(5, 2, "FATAL", `streaming replication receiver "walreceiver" could not connect to the primary server: connection to server at "127.0.0.1", port 5432 failed: Connection refused`)},
			want: []string{"fault auth-refused@postgresql-00.log:1"},
		},
		{
			name: "timeline divergence and wrong primary",
			logs: []string{logAt(0, 1, "FATAL", "highest timeline 1 of the primary is behind recovery timeline 2")},
			want: []string{"fault timeline-diverged@postgresql-00.log:1"},
		},
		{
			name: "staging crash and restart",
			logs: []string{logAt(0, 1, "LOG", started) + logAt(1, 9, "LOG", "WAL receiver process (PID 1) was terminated by signal 9: Killed") +
				logAt(1, 9, "LOG", "terminating any other active server processes") + logAt(1, 9, "LOG", "all server processes terminated; reinitializing") +
				logAt(2, 30, "LOG", started)},
			want: []string{"streaming@postgresql-00.log:1", "fault receiver-crashed@postgresql-00.log:2", "crashed@postgresql-00.log:3", "recovered@postgresql-00.log:5"},
		},
		{
			name: "promotion ends the standby",
			logs: []string{logAt(0, 1, "LOG", started) + logAt(1, 9, "LOG", "received promote request") +
				logAt(1, 1, "FATAL", "terminating walreceiver process due to administrator command") +
				logAt(1, 9, "LOG", "selected new timeline ID: 2") + logAt(1, 9, "LOG", "archive recovery complete") +
				logAt(1.1, 8, "LOG", "database system is ready to accept connections")},
			want: []string{"streaming@postgresql-00.log:1", "promoted@postgresql-00.log:2", "ready@postgresql-00.log:6"},
		},
		{
			name: "a client's error quoting a message is not an event",
			logs: []string{logAt(0, 1, "ERROR", `relation "x" does not exist`) + logAt(0, 1, "STATEMENT", "SELECT 'could not connect to the primary server'")},
			want: nil,
		},
		{
			name: "rotation: the outage spans two files",
			logs: []string{logAt(0, 1, "LOG", started) + logAt(1, 1, "FATAL", lost), logAt(6, 2, "FATAL", noConnect) + logAt(7, 3, "LOG", started)},
			want: []string{"streaming@postgresql-00.log:1", "fault stream-lost@postgresql-00.log:2", "recovered@postgresql-01.log:2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := replay(t, walwatch.Config{Grace: tt.grace}, tt.logs...)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestReplayState(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "postgresql.log"), []byte(logAt(0, 1, "LOG", started)+logAt(1, 1, "FATAL", removed)), 0o644))
	w, err := walwatch.New(walwatch.Config{LogDir: dir, Start: walwatch.StartReplay})
	require.NoError(t, err)
	for range w.Events() {
	}
	st := w.State()
	assert.Equal(t, walwatch.PhaseFaulted, st.Phase)
	assert.Equal(t, walwatch.ReasonWALRemoved, st.Reason)
	assert.True(t, st.NeedsResync)
	assert.True(t, strings.HasPrefix(st.Message, "could not receive data"), "got %q", st.Message)
	require.NoError(t, w.Close())
	require.NoError(t, w.Close(), "Close is idempotent")
}
