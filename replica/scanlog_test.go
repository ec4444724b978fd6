package replica

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgstage/pgstage/internal/pgver"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestScanLog(t *testing.T) {
	const (
		start     = "2026-11-24 16:35:53.587 UTC [1045] LOG:  starting PostgreSQL 15.18 on x86_64-pc-linux-gnu"
		start9    = "2016-11-24 16:35:53.590 UTC [1050] LOG:  database system was interrupted; last known up at 2016-11-24 16:35:52 UTC"
		streaming = "2026-11-24 16:35:53.616 UTC [1053] LOG:  started streaming WAL from primary at 0/3000000 on timeline 1"
		auth13    = "2020-11-24 16:35:53.100 UTC [983] FATAL:  could not connect to the primary server: FATAL:  password authentication failed for user \"replicator\""
		auth14    = "2026-11-24 16:35:53.100 UTC [983] FATAL:  could not connect to the primary server: connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  password authentication failed for user \"replicator\""
		auth18    = "2026-11-24 16:35:53.100 UTC [983] FATAL:  streaming replication receiver \"walreceiver\" could not connect to the primary server: connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  password authentication failed for user \"replicator\""
		refused   = "2026-11-24 16:35:53.100 UTC [983] FATAL:  could not connect to the primary server: connection to server at \"127.0.0.1\", port 5432 failed: Connection refused"
		ourPeer   = "2026-11-24 16:35:53.695 UTC [1074] FATAL:  Peer authentication failed for user \"postgres\""
		lost      = "2026-11-24 16:36:53.100 UTC [1053] FATAL:  could not receive data from WAL stream: ERROR:  requested WAL segment 000000010000000000000003 has already been removed"
	)
	tests := []struct {
		name          string
		lines         []string
		stream, fault string
		final         bool
	}{
		{"streaming", []string{start, streaming}, streaming, "", false},
		{"auth 10-13", []string{start, auth13}, "", auth13, true},
		{"auth 14-17", []string{start, auth14}, "", auth14, true},
		{"auth 18", []string{start, auth18}, "", auth18, true},
		{"primary down heals", []string{start, refused, refused}, "", refused, false},
		{"streaming after an outage", []string{start, refused, streaming}, streaming, "", false},
		{"our own query connection is no walreceiver fault", []string{start, streaming, ourPeer}, streaming, "", false},
		{"WAL removed", []string{start, streaming, lost}, streaming, lost, true},
		{"an earlier start does not count", []string{start, auth14, start}, "", "", false},
		{"an earlier 9.x start does not count", []string{start9, streaming, start9}, "", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stream, fault, final := scanLog(strings.Join(tc.lines, "\n") + "\n")
			assert.Equal(t, tc.stream, stream, "streaming line")
			assert.Equal(t, tc.fault, fault, "fault")
			assert.Equal(t, tc.final, final, "final")
		})
	}
}

func FuzzScanLog(f *testing.F) {
	f.Add("LOG:  started streaming WAL from primary at 0/3000000 on timeline 1\nFATAL:  could not connect to the primary server: x\n")
	f.Add("FATAL:  recovery aborted because of insufficient parameter settings\nDETAIL:  max_connections = 20 is a lower setting\n")
	f.Fuzz(func(t *testing.T, text string) {
		stream, fault, final := scanLog(text)
		if final && fault == "" {
			t.Fatal("final without a fault")
		}
		if stream != "" && !strings.Contains(text, stream) {
			t.Fatal("streaming line not from the text")
		}
		_ = startReason(text)
	})
}

func TestNewestFile(t *testing.T) {
	dir := t.TempDir()
	assert.Empty(t, newestFile(dir))
	assert.Empty(t, newestFile(""))
	old, young := filepath.Join(dir, "postgresql-Mon.log"), filepath.Join(dir, "postgresql-Tue.log")
	require.NoError(t, os.WriteFile(old, []byte("a"), 0o600))
	require.NoError(t, os.WriteFile(young, []byte("b"), 0o600))
	require.NoError(t, os.Chtimes(old, time.Now(), time.Now().Add(-time.Hour)))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "sub"), 0o700))
	assert.Equal(t, young, newestFile(dir))
}

func TestSeconds(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                       "1",
		300 * time.Millisecond:  "1",
		time.Second:             "1",
		1900 * time.Millisecond: "2",
		time.Minute:             "60",
	} {
		if got := seconds(d); got != want {
			t.Errorf("seconds(%v) = %s, want %s", d, got, want)
		}
	}
}

// With the logging collector on, a start that fails before the collector
// starts leaves current_logfiles naming the last run's file: the log read
// for the start's error is the pg_ctl file only, never that older run's.
func TestLogSinceSkipsEarlierRuns(t *testing.T) {
	data, logDir := t.TempDir(), t.TempDir()
	s, err := New(Config{DataDir: data, BinDir: "/b", LogFile: filepath.Join(logDir, "staging.log"), Source: Source{Host: "h", User: "u"}})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(data, "postgresql.conf"), []byte("logging_collector = on\nlog_directory = '"+logDir+"'\n"), 0o600))
	old := filepath.Join(logDir, "staging-20261201-090000.log")
	require.NoError(t, os.WriteFile(old, []byte("LOG:  database system is ready\nFATAL:  the last run's\n"), 0o600))
	require.NoError(t, os.Chtimes(old, time.Now(), time.Now().Add(-time.Hour)))
	r, err := rulesFor(pgver.V15)
	require.NoError(t, err)

	for _, stale := range []bool{true, false} {
		if stale {
			require.NoError(t, os.WriteFile(filepath.Join(data, "current_logfiles"), []byte("stderr "+old+"\n"), 0o600))
		} else {
			require.NoError(t, os.Remove(filepath.Join(data, "current_logfiles")))
		}
		require.NoError(t, s.prepareLog(r))
		f, err := os.OpenFile(s.cfg.LogFile, os.O_APPEND|os.O_WRONLY, 0)
		require.NoError(t, err)
		_, err = f.WriteString("FATAL:  this run's\n")
		require.NoError(t, err)
		require.NoError(t, f.Close())
		assert.Equal(t, "FATAL:  this run's\n", s.logSince(), "current_logfiles stale: %v", stale)

		// The collector's file of this run is read too.
		young := filepath.Join(logDir, "staging-20261201-100000.log")
		require.NoError(t, os.WriteFile(young, []byte("FATAL:  the collector's\n"), 0o600))
		require.NoError(t, os.WriteFile(filepath.Join(data, "current_logfiles"), []byte("stderr "+young+"\n"), 0o600))
		assert.Equal(t, "FATAL:  this run's\nFATAL:  the collector's\n", s.logSince())
		require.NoError(t, os.Remove(young))
	}
}
