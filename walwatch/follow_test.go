package walwatch_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/walwatch"
)

func appendFile(t *testing.T, name, s string) {
	t.Helper()
	f, err := os.OpenFile(name, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	require.NoError(t, err)
	_, err = f.WriteString(s)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

// nextEvent waits for the next event; the deadline only keeps a broken
// watcher from hanging the test.
func nextEvent(t *testing.T, w *walwatch.Watcher) walwatch.Event {
	t.Helper()
	select {
	case ev, ok := <-w.Events():
		require.True(t, ok, "events closed")
		return ev
	case err := <-w.Errors():
		t.Fatalf("watcher error: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatalf("no event within 20s; state %+v", w.State())
	}
	return walwatch.Event{}
}

// waitRead waits until the watcher has read the records before line; the
// deadline only keeps a broken watcher from hanging the test.
func waitRead(t *testing.T, w *walwatch.Watcher, line int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for w.Position().Line < line {
		if time.Now().After(deadline) {
			t.Fatalf("records before line %d not read within 20s; position %+v", line, w.Position())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func expectEvent(t *testing.T, w *walwatch.Watcher, want string) walwatch.Event {
	t.Helper()
	ev := nextEvent(t, w)
	require.Equal(t, want, eventString(ev))
	return ev
}

func TestFollow(t *testing.T) {
	for _, mode := range []struct {
		name string
		cfg  walwatch.Config
	}{
		{"fsnotify", walwatch.Config{}},
		{"poll only", walwatch.Config{PollOnly: true, PollInterval: 20 * time.Millisecond}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			a := filepath.Join(dir, "a.log")
			old := filepath.Join(dir, "old.log")
			appendFile(t, old, logAt(0, 1, "LOG", started))
			past := time.Now().Add(-time.Hour)
			require.NoError(t, os.Chtimes(old, past, past))
			// The outage began before the watcher: read back and reported first.
			appendFile(t, a, logAt(1, 1, "LOG", started)+logAt(2, 1, "FATAL", lost)+logAt(7, 2, "FATAL", noConnect))
			cfg := mode.cfg
			cfg.LogDir = dir
			w, err := walwatch.New(cfg)
			require.NoError(t, err)
			defer w.Close()
			ev := expectEvent(t, w, "fault stream-lost@a.log:2")
			assert.Equal(t, walwatch.PhaseFaulted, w.State().Phase)
			assert.False(t, ev.LogTime.IsZero())

			// A partial line is held until its newline arrives.
			line := logAt(12, 3, "LOG", started)
			appendFile(t, a, line[:30])
			appendFile(t, a, line[30:])
			expectEvent(t, w, "recovered@a.log:4")

			// Rotation to a new file.
			b := filepath.Join(dir, "b.log")
			appendFile(t, b, logAt(20, 3, "FATAL", lost))
			expectEvent(t, w, "fault stream-lost@b.log:1")
			appendFile(t, b, logAt(25, 4, "FATAL", noConnect)+logAt(26, 5, "LOG", started))
			expectEvent(t, w, "recovered@b.log:3")

			// Truncation (log_truncate_on_rotation, copytruncate).
			require.NoError(t, os.Truncate(b, 0))
			appendFile(t, b, logAt(30, 5, "FATAL", lost))
			expectEvent(t, w, "fault stream-lost@b.log:1")

			// Deletion and re-creation under the same name.
			require.NoError(t, os.Remove(b))
			appendFile(t, b, logAt(31, 6, "LOG", started))
			expectEvent(t, w, "recovered@b.log:1")

			// An old file that grows again still counts its lines.
			appendFile(t, old, logAt(40, 9, "LOG", "received fast shutdown request"))
			expectEvent(t, w, "shutdown-requested@old.log:2")

			// Nothing repeated: the next event is the next record.
			appendFile(t, b, logAt(41, 9, "LOG", "database system is shut down"))
			expectEvent(t, w, "shutdown@b.log:2")
			require.NoError(t, w.Close())
			_, ok := <-w.Events()
			assert.False(t, ok, "Events is closed after Close")
		})
	}
}

func TestFollowLongLineAndGarbage(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.log")
	appendFile(t, a, "")
	w, err := walwatch.New(walwatch.Config{LogDir: dir})
	require.NoError(t, err)
	defer w.Close()
	garbage := make([]byte, 3<<20)
	for i := range garbage {
		garbage[i] = byte(i*7 + i>>8)
	}
	appendFile(t, a, string(garbage)+"\n"+logAt(1, 1, "LOG", started))
	// No record in the first 64 KiB: said, and reading goes on.
	assert.ErrorIs(t, <-w.Errors(), walwatch.ErrUnreadable)
	ev := nextEvent(t, w)
	assert.Equal(t, walwatch.KindStreaming, ev.Kind)
}

func TestResume(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.log")
	appendFile(t, a, logAt(0, 1, "LOG", started)+logAt(1, 1, "FATAL", lost)+logAt(2, 2, "LOG", started))
	w, err := walwatch.New(walwatch.Config{LogDir: dir})
	require.NoError(t, err)
	expectEvent(t, w, "streaming@a.log:3")
	appendFile(t, a, logAt(3, 2, "FATAL", lost))
	saved := expectEvent(t, w, "fault stream-lost@a.log:4").Position
	require.NoError(t, w.Close())

	// Saved as JSON by the embedding process, which restarts later.
	js, err := json.Marshal(saved)
	require.NoError(t, err)
	var pos walwatch.Position
	require.NoError(t, json.Unmarshal(js, &pos))
	assert.Equal(t, walwatch.PhaseFaulted, pos.State.Phase)

	appendFile(t, a, logAt(4, 3, "FATAL", noConnect)+logAt(5, 4, "LOG", started))
	b := filepath.Join(dir, "b.log")
	appendFile(t, b, logAt(6, 4, "FATAL", lost))
	w, err = walwatch.New(walwatch.Config{LogDir: dir, Start: walwatch.StartResume, Resume: pos})
	require.NoError(t, err)
	defer w.Close()
	expectEvent(t, w, "recovered@a.log:6")
	expectEvent(t, w, "fault stream-lost@b.log:1")
	appendFile(t, b, logAt(7, 5, "LOG", started))
	expectEvent(t, w, "recovered@b.log:2")
}

func TestNewErrors(t *testing.T) {
	_, err := walwatch.New(walwatch.Config{})
	assert.ErrorIs(t, err, walwatch.ErrInvalidConfig)
	assert.ErrorContains(t, err, "no log directory")
	_, err = walwatch.New(walwatch.Config{LogDir: filepath.Join(t.TempDir(), "missing")})
	assert.ErrorIs(t, err, os.ErrNotExist)
	assert.ErrorIs(t, err, walwatch.ErrInvalidConfig)
	// Every problem at once.
	_, err = walwatch.New(walwatch.Config{Start: walwatch.StartResume, PollOnly: true, PollInterval: -1, Format: "syslog"})
	require.Error(t, err)
	assert.ErrorIs(t, err, walwatch.ErrInvalidConfig)
	for _, want := range []string{"no log directory", "StartResume needs", "PollOnly with polling disabled", `unknown format "syslog"`} {
		assert.Contains(t, err.Error(), want)
	}
}

func TestDataDirSettings(t *testing.T) {
	data := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(data, "postgresql.conf"), []byte("log_destination = 'stderr'\nlog_directory = 'pg_log'\nlog_line_prefix = '%t [%p]: [%l-1] '\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(data, "postgresql.auto.conf"), []byte("log_destination = 'csvlog'\nlog_directory = 'mylogs'\n"), 0o644))
	require.NoError(t, os.Mkdir(filepath.Join(data, "mylogs"), 0o755))
	w, err := walwatch.New(walwatch.Config{DataDir: data})
	require.NoError(t, err)
	defer w.Close()
	assert.Equal(t, walwatch.FormatCSV, w.Format())
	assert.Equal(t, filepath.Join(data, "mylogs"), w.Dir())
}

func TestFollowTimers(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.log")
	appendFile(t, a, logAt(0, 1, "LOG", started))
	w, err := walwatch.New(walwatch.Config{LogDir: dir, Grace: 200 * time.Millisecond, TimelineSwitchWait: 100 * time.Millisecond})
	require.NoError(t, err)
	defer w.Close()
	expectEvent(t, w, "streaming@a.log:1")

	// A timeline switch explains the end of the stream; a short outage stays
	// under the grace period. Neither is a fault.
	appendFile(t, a, logAt(1, 1, "LOG", terminated)+logAt(1, 1, "LOG", "fetching timeline history file for timeline 2 from primary server")+
		logAt(1, 1, "LOG", "restarted WAL streaming at 0/3000000 on timeline 2"))
	appendFile(t, a, logAt(2, 1, "FATAL", lost)+logAt(2.1, 2, "LOG", started))
	// The state means something only once the watcher has read those lines.
	waitRead(t, w, 7)
	assert.Equal(t, walwatch.PhaseStreaming, w.State().Phase)

	// Alone, the end of the stream becomes a fault once the wait and the
	// grace period have passed (by the clock: no later record comes). Being
	// the next event, it also shows that lines 2-6 raised none.
	appendFile(t, a, logAt(3, 2, "LOG", terminated))
	expectEvent(t, w, "fault terminated-by-primary@a.log:7")
	pos := w.Position()
	fi, err := os.Stat(a)
	require.NoError(t, err)
	assert.Equal(t, fi.Size(), pos.Offset)
	assert.Equal(t, 8, pos.Line)
	assert.Equal(t, walwatch.PhaseFaulted, pos.State.Phase)
	appendFile(t, a, logAt(4, 3, "LOG", started))
	expectEvent(t, w, "recovered@a.log:8")
}

func TestResumeFileGone(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.log")
	appendFile(t, a, logAt(0, 1, "LOG", started)+logAt(1, 1, "FATAL", lost))
	w, err := walwatch.New(walwatch.Config{LogDir: dir})
	require.NoError(t, err)
	saved := expectEvent(t, w, "fault stream-lost@a.log:2").Position
	require.NoError(t, w.Close())

	// The file was removed (log cleanup) and a newer one written meanwhile.
	require.NoError(t, os.Remove(a))
	b := filepath.Join(dir, "b.log")
	appendFile(t, b, logAt(5, 2, "FATAL", noConnect)+logAt(6, 3, "LOG", started))
	future := time.Now().Add(time.Minute)
	require.NoError(t, os.Chtimes(b, future, future))
	w, err = walwatch.New(walwatch.Config{LogDir: dir, Start: walwatch.StartResume, Resume: saved})
	require.NoError(t, err)
	defer w.Close()
	select {
	case err := <-w.Errors():
		assert.ErrorIs(t, err, walwatch.ErrResumeNotFound)
	case <-time.After(20 * time.Second):
		t.Fatal("no error for the missing file")
	}
	expectEvent(t, w, "recovered@b.log:2")
}

// logRecorder is a slog handler that keeps messages.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.msgs = append(h.msgs, r.Message)
	return nil
}
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logRecorder) WithGroup(string) slog.Handler      { return h }

// A consumer that does not read for a while lets the kernel's inotify queue
// overflow (max_queued_events, 16384 by default, plus fsnotify's buffer; events of one file
// coalesce, so it takes many files): the rescan that follows loses no record
// and repeats none.
func TestFollowQueueOverflow(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/fs/inotify/max_queued_events")
	require.NoError(t, err)
	max, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	// Two events per file (create, write); fsnotify buffers 4096 more.
	n := (max+4096)/2 + 1000
	if testing.Short() || n > 30000 {
		t.Skipf("would create %d files", n)
	}
	dir := t.TempDir()
	appendFile(t, filepath.Join(dir, "a.log"), logAt(0, 1, "LOG", started))
	rec := &logRecorder{}
	w, err := walwatch.New(walwatch.Config{LogDir: dir, Logger: slog.New(rec)})
	require.NoError(t, err)
	defer w.Close()
	expectEvent(t, w, "streaming@a.log:1") // the watcher is past its start
	for i := 0; i < n; i++ {
		msg := lost
		if i%2 == 1 {
			msg = started
		}
		appendFile(t, filepath.Join(dir, fmt.Sprintf("b%05d.log", i)), logAt(float64(i), 1, "LOG", msg))
	}
	for i := 0; i < n; i++ {
		want := "fault stream-lost"
		if i%2 == 1 {
			want = "recovered"
		}
		expectEvent(t, w, fmt.Sprintf("%s@b%05d.log:1", want, i))
	}
	// The overflow is reported after the events queued before it; wait for
	// it (the deadline guards against a hang), then check nothing came twice.
	deadline := time.Now().Add(30 * time.Second)
	for !rec.has("walwatch: fsnotify queue overflow, rescanning") {
		if time.Now().After(deadline) {
			rec.mu.Lock()
			msgs := slices.Clone(rec.msgs)
			rec.mu.Unlock()
			t.Fatalf("no overflow reported; watcher log: %v", msgs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	appendFile(t, filepath.Join(dir, "c.log"), logAt(99999, 1, "LOG", lost))
	expectEvent(t, w, "fault stream-lost@c.log:1")
}

func (h *logRecorder) has(msg string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range h.msgs {
		if m == msg {
			return true
		}
	}
	return false
}

// copytruncate followed by more writes than the file held, between two
// polls: the changed first bytes tell the watcher to start over.
func TestFollowTruncateAndRefill(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.log")
	appendFile(t, a, logAt(0, 1, "LOG", started))
	w, err := walwatch.New(walwatch.Config{LogDir: dir, PollOnly: true, PollInterval: 30 * time.Millisecond})
	require.NoError(t, err)
	defer w.Close()
	expectEvent(t, w, "streaming@a.log:1")
	f, err := os.OpenFile(a, os.O_WRONLY|os.O_TRUNC, 0)
	require.NoError(t, err)
	_, err = f.WriteString(logAt(10, 2, "LOG", "checkpoint starting: time") + logAt(11, 2, "FATAL", lost) + logAt(12, 3, "FATAL", noConnect))
	require.NoError(t, err)
	require.NoError(t, f.Close())
	expectEvent(t, w, "fault stream-lost@a.log:2")
}

// The watcher starts before the server has written anything: the prefix is
// sniffed from the first lines that arrive.
func TestFollowSniffsLate(t *testing.T) {
	dir := t.TempDir()
	w, err := walwatch.New(walwatch.Config{LogDir: dir, Format: walwatch.FormatStderr})
	require.NoError(t, err)
	defer w.Close()
	a := filepath.Join(dir, "postgresql-Tue.log")
	appendFile(t, a, "2026-11-24 10:00:00 UTC [7]: [1-1] LOG:  entering standby mode\n"+
		"2026-11-24 10:00:01 UTC [8]: [1-1] FATAL:  could not connect to the primary server: connection refused\n")
	ev := expectEvent(t, w, "fault primary-unreachable@postgresql-Tue.log:2")
	assert.Equal(t, time.Date(2026, 11, 24, 10, 0, 1, 0, time.UTC), ev.LogTime.UTC())
}

// Right after a rotation the current file tells nothing: the files before it
// are read back too.
func TestLiveReadBackAcrossRotation(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "a.log")
	appendFile(t, old, logAt(0, 1, "LOG", started)+logAt(1, 1, "FATAL", lost))
	past := time.Now().Add(-time.Minute)
	require.NoError(t, os.Chtimes(old, past, past))
	appendFile(t, filepath.Join(dir, "b.log"), logAt(2, 5, "LOG", "checkpoint starting: time"))
	w, err := walwatch.New(walwatch.Config{LogDir: dir})
	require.NoError(t, err)
	defer w.Close()
	expectEvent(t, w, "fault stream-lost@a.log:2")
	appendFile(t, filepath.Join(dir, "b.log"), logAt(3, 6, "LOG", started))
	expectEvent(t, w, "recovered@b.log:2")
}
