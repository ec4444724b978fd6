package stage

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/pgstage/pgstage/internal/pgver"
	"github.com/pgstage/pgstage/pgconf"
	"github.com/stretchr/testify/require"
)

// A user setting in effect from a file outside the data directory (an
// absolute include of the source host's) is refused, and that file is left
// as it was.
func TestApplySettingsStaysInsideDataDir(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "source-host.conf")
	require.NoError(t, os.WriteFile(outside, []byte("work_mem = '4MB'\n"), 0o600))
	data := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(data, "postgresql.conf"), []byte("include '"+outside+"'\n"), 0o600))

	for _, set := range []Setting{{Name: "work_mem", Value: "64MB"}, {Name: "work_mem", Comment: true}} {
		err := applySettings(data, logSettings(pgver.V15, "/log", LogsConfig{}), []Setting{set}, pgver.V15)
		require.Error(t, err)
		require.True(t, errors.Is(err, pgconf.ErrOutsideRoot), "%v", err)
		require.Contains(t, err.Error(), outside)
		b, err := os.ReadFile(outside)
		require.NoError(t, err)
		require.Equal(t, "work_mem = '4MB'\n", string(b), "the outside file was edited")
	}
}

func TestWatcherNeeds(t *testing.T) {
	cases := []struct {
		name, value string
		blinds      bool
	}{
		{"log_min_messages", "fatal", true},
		{"log_min_messages", "'PANIC'", true},
		{"log_min_messages", "error", false},
		{"log_min_messages", "warning", false},
		{"log_min_messages", "debug1", false},
		{"wal_receiver_timeout", "0", true},
		{"wal_receiver_timeout", "'0ms'", true},
		{"wal_receiver_timeout", "0min", true},
		{"wal_receiver_timeout", "0.5s", false},
		{"wal_receiver_timeout", "30s", false},
		{"wal_receiver_timeout", "10", false},
	}
	for _, tc := range cases {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			got := watcherNeeds[tc.name].blinds(tc.value)
			require.Equal(t, tc.blinds, got, "got %v, want %v", got, tc.blinds)
		})
	}
}

// The source's own postgresql.conf comes with the backup: a level there
// that hides the walreceiver's faults is lifted; the user's choice is not
// touched (preflight refuses a blinding one).
func TestApplySettingsLiftsBlindingSourceSettings(t *testing.T) {
	data := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(data, "postgresql.conf"), []byte("log_min_messages = fatal\nwal_receiver_timeout = 0\n"), 0o600))
	require.NoError(t, applySettings(data, logSettings(pgver.V15, "/log", LogsConfig{}), nil, pgver.V15))
	conf, err := pgconf.Load(data)
	require.NoError(t, err)
	s, _ := conf.Get("log_min_messages")
	require.Equal(t, "warning", s.Value)
	s, _ = conf.Get("wal_receiver_timeout")
	require.Equal(t, "60s", s.Value)

	require.NoError(t, os.WriteFile(filepath.Join(data, "postgresql.conf"), []byte("log_min_messages = fatal\n"), 0o600))
	require.NoError(t, applySettings(data, logSettings(pgver.V15, "/log", LogsConfig{}), []Setting{{Name: "log_min_messages", Value: "debug1"}}, pgver.V15))
	conf, err = pgconf.Load(data)
	require.NoError(t, err)
	s, _ = conf.Get("log_min_messages")
	require.Equal(t, "debug1", s.Value)
}
