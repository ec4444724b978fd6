package walwatch_test

import (
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/walwatch"
)

// followModes are the two ways a watcher learns of new data.
var followModes = []struct {
	name string
	cfg  walwatch.Config
}{
	{"fsnotify", walwatch.Config{}},
	{"poll only", walwatch.Config{PollOnly: true, PollInterval: 20 * time.Millisecond}},
}

// serverLog is a log file held open as pg_ctl -l holds it: the server
// writes through its descriptor, whatever happens to the name.
type serverLog struct{ f *os.File }

func openServerLog(t *testing.T, name string) *serverLog {
	t.Helper()
	f, err := os.OpenFile(name, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	return &serverLog{f: f}
}

func (s *serverLog) write(t *testing.T, text string) {
	t.Helper()
	_, err := io.WriteString(s.f, text)
	require.NoError(t, err)
}

// mv rotation (logrotate without copytruncate): the name now leads to a new
// empty file, the server goes on writing the old one. The watcher follows
// the file the server writes, under its new name, then the new file once
// a restarted server writes there.
func TestFollowMoveRotation(t *testing.T) {
	for _, mode := range followModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			name := filepath.Join(dir, "staging.log")
			srv := openServerLog(t, name)
			srv.write(t, logAt(0, 1, "LOG", started))
			cfg := mode.cfg
			cfg.LogDir, cfg.Pattern, cfg.Format = dir, "staging.log", walwatch.FormatStderr
			w, err := walwatch.New(cfg)
			require.NoError(t, err)
			defer w.Close()
			expectEvent(t, w, "streaming@staging.log:1")

			require.NoError(t, os.Rename(name, name+".1"))
			appendFile(t, name, "")
			srv.write(t, logAt(10, 2, "FATAL", lost))
			expectEvent(t, w, "fault stream-lost@staging.log.1:2")
			srv.write(t, logAt(11, 3, "LOG", started))
			expectEvent(t, w, "recovered@staging.log.1:3")

			// The server restarts, writing the new file: the watcher moves on.
			srv.f.Close()
			appendFile(t, name, logAt(20, 4, "LOG", "database system is ready to accept read-only connections")+
				logAt(21, 5, "FATAL", noConnect))
			expectEvent(t, w, "ready@staging.log:1")
			expectEvent(t, w, "fault primary-unreachable@staging.log:2")
		})
	}
}

// The server's file moved out of the directory, or deleted while the
// server holds it: still followed through the watcher's descriptor (the
// poll finds what inotify on the directory cannot see).
func TestFollowMovedOutAndDeleted(t *testing.T) {
	for _, gone := range []string{"moved out", "deleted"} {
		t.Run(gone, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			name := filepath.Join(dir, "staging.log")
			srv := openServerLog(t, name)
			srv.write(t, logAt(0, 1, "LOG", started))
			w, err := walwatch.New(walwatch.Config{LogDir: dir, Pattern: "staging.log", PollInterval: 20 * time.Millisecond})
			require.NoError(t, err)
			defer w.Close()
			expectEvent(t, w, "streaming@staging.log:1")
			if gone == "deleted" {
				require.NoError(t, os.Remove(name))
			} else {
				require.NoError(t, os.Rename(name, filepath.Join(t.TempDir(), "staging.log.1")))
			}
			appendFile(t, name, "")
			srv.write(t, logAt(10, 2, "FATAL", lost))
			ev := nextEvent(t, w)
			assert.Equal(t, walwatch.KindFault, ev.Kind)
			assert.Equal(t, 2, ev.Line)
		})
	}
}

// copytruncate (cp log log.2; truncate -s 0 log), with records written
// just before the copy that the watcher may or may not have read yet and
// records after the truncation: every event once, in log order, in both
// modes. The copy is not read as new.
func TestFollowCopyTruncate(t *testing.T) {
	for _, mode := range followModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			name := filepath.Join(dir, "log")
			srv := openServerLog(t, name)
			srv.write(t, logAt(0, 1, "LOG", started)+logAt(1, 2, "FATAL", lost))
			cfg := mode.cfg
			cfg.LogDir = dir
			w, err := walwatch.New(cfg)
			require.NoError(t, err)
			defer w.Close()
			expectEvent(t, w, "fault stream-lost@log:2")
			// Still down: retries, then streaming again right before the copy.
			srv.write(t, logAt(5, 3, "FATAL", noConnect)+logAt(10, 4, "LOG", started))
			copyFile(t, name, filepath.Join(dir, "log.2"))
			require.NoError(t, os.Truncate(name, 0))
			srv.write(t, logAt(20, 5, "FATAL", lost)+logAt(25, 6, "FATAL", noConnect)+logAt(30, 7, "LOG", started))
			ev := nextEvent(t, w)
			assert.Equal(t, "recovered", string(ev.Kind))
			assert.Equal(t, time.Date(2026, 11, 24, 10, 0, 10, 0, time.UTC), ev.LogTime.UTC())
			expectEvent(t, w, "fault stream-lost@log:1")
			expectEvent(t, w, "recovered@log:3")
			// Nothing repeated: the next event is the next record.
			srv.write(t, logAt(40, 8, "LOG", "received fast shutdown request"))
			expectEvent(t, w, "shutdown-requested@log:4")
		})
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(to, b, 0o644))
}
