package pgstage_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/internal/pgtest"
	"github.com/pgstage/pgstage/stage"
	"github.com/pgstage/pgstage/walwatch"
)

// TestStagingLogs links a staging to a source whose own configuration
// would blind a watcher that trusted it (log_line_prefix = ”), bounds its
// logs to a few small files, writes far past the bound, kills the staging
// server, and checks after each that an outage of the source is still
// reported once, and its end.
func TestStagingLogs(t *testing.T) {
	pgtest.ForEachMajor(t, func(t *testing.T, major int) {
		t.Parallel()
		ctx := context.Background()
		settings := keepWAL(major)
		settings["log_line_prefix"] = "''"
		settings["log_min_messages"] = "warning"
		p := pgtest.StartPrimary(t, major, pgtest.Options{Settings: settings})
		b := pgtest.TakeBackup(t, p, pgtest.BackupOptions{Layout: pgtest.LayoutFolder, Form: pgtest.Forms(major)[0]})
		const keep = 2
		s := newStagingWith(t, p, b.Path, func(c *stage.Config) {
			c.Watch.Logs = stage.LogsConfig{RotationSize: 64 << 10, Keep: keep}
		})
		require.NoError(t, s.l.Link(ctx))
		require.Equal(t, stage.StateStreaming, s.status(t).State)
		require.NotEmpty(t, s.query(t, "SHOW log_line_prefix"), "pgstage's prefix, not the source's")
		logDir := filepath.Join(s.cfg.Staging.DataDir+".pgstage", "log")

		// (a) The source's empty prefix does not blind the watcher.
		outage(t, s, p)

		// (b) Far past the bound: the oldest files go, the outage after is
		// still reported once.
		before, err := filepath.Glob(filepath.Join(logDir, "staging-*.log"))
		require.NoError(t, err)
		require.NotEmpty(t, before)
		for range 6 {
			// log_filename has seconds: a rotation within the same second
			// goes on in the same file, so each batch waits for the next.
			time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
			s.exec(t, "DO $$BEGIN FOR i IN 1..44 LOOP RAISE WARNING '%', repeat('x', 1500); END LOOP; END$$")
		}
		files := waitFiles(t, logDir, keep+1)
		require.LessOrEqual(t, len(files), keep+1, "%v", files)
		require.NoFileExists(t, before[0], "the oldest file was pruned")
		outage(t, s, p)

		// (c) The staging server is killed and started again: the new
		// file is followed.
		pid := postmasterPID(t, s.cfg.Staging.DataDir)
		require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
		waitGone(t, pid)
		require.NoError(t, s.l.Disable(ctx))
		require.NoError(t, s.l.Enable(ctx))
		outage(t, s, p)
		require.LessOrEqual(t, len(waitFiles(t, logDir, keep+1)), keep+1)
	})
}

// outage stops the source and starts it again, and checks that the
// staging reports exactly one fault and then a recovery.
func outage(t *testing.T, s *staging, p *pgtest.Primary) {
	t.Helper()
	start := time.Now()
	p.Stop(t, "fast")
	s.waitEvent(t, walwatch.KindFault)
	t.Logf("fault detected after %v", time.Since(start))
	p.Start(t)
	timeout := time.After(waitLimit)
	for {
		select {
		case ev := <-s.l.Events():
			require.NotEqual(t, walwatch.KindFault, ev.Kind, "a second fault in one outage: %v", ev)
			if ev.Kind == walwatch.KindRecovered {
				return
			}
		case <-timeout:
			t.Fatalf("no recovery within %v", waitLimit)
		}
	}
}

// waitFiles waits until the log directory holds at most n staging logs
// (the Linker prunes every second while the log moves) and returns them.
func waitFiles(t *testing.T, dir string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		files, err := filepath.Glob(filepath.Join(dir, "staging-*.log"))
		require.NoError(t, err)
		if len(files) <= n || time.Now().After(deadline) {
			return files
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// exec runs sql on the staging.
func (s *staging) exec(t *testing.T, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	conn := s.connect(t, ctx)
	defer conn.Close(context.Background())
	_, err := conn.Exec(ctx, sql)
	require.NoError(t, err, sql)
}

func postmasterPID(t *testing.T, dataDir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0])
	require.NoError(t, err)
	return pid
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for syscall.Kill(pid, 0) == nil {
		require.False(t, time.Now().After(deadline), "postmaster %d still runs", pid)
		time.Sleep(50 * time.Millisecond)
	}
}

// newestLog is the tail of the staging server log written last.
// logCount counts the lines of the staging server logs in dir that hold
// text.
func logCount(t *testing.T, dir, text string) int {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "staging*.log"))
	require.NoError(t, err)
	n := 0
	for _, name := range names {
		data, err := os.ReadFile(name)
		require.NoError(t, err)
		n += strings.Count(string(data), text)
	}
	return n
}

func newestLog(dir string) string {
	names, _ := filepath.Glob(filepath.Join(dir, "staging*.log"))
	var best string
	var at time.Time
	for _, n := range names {
		if st, err := os.Stat(n); err == nil && st.ModTime().After(at) {
			best, at = n, st.ModTime()
		}
	}
	return best + ":\n" + pgtest.Tail(best, 40)
}
