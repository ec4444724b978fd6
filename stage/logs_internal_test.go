package stage

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/internal/osuser"
	"github.com/pgstage/pgstage/internal/pgtest"
	"github.com/pgstage/pgstage/internal/pgver"
	"github.com/pgstage/pgstage/pgconf"
	"github.com/pgstage/pgstage/walwatch"
)

// pgstage's log settings per version: its own prefix (never empty; %b only
// where the server has it), the collector rotating by size into the state
// directory, nothing truncated.
func TestLogSettings(t *testing.T) {
	cases := []struct {
		major  pgver.Major
		logs   LogsConfig
		prefix string
		size   string
	}{
		{pgver.V9_4, LogsConfig{}, "%m [%p] %e ", "10240kB"},
		{pgver.V9_6, LogsConfig{RotationSize: 64 << 10}, "%m [%p] %e ", "64kB"},
		{pgver.V10, LogsConfig{RotationSize: 1000}, "%m [%p] %e ", "1kB"},
		{pgver.V12, LogsConfig{RotationSize: -1}, "%m [%p] %e ", "10240kB"},
		{pgver.V13, LogsConfig{}, "%m [%p] %e [%b] ", "10240kB"},
		{pgver.V18, LogsConfig{RotationSize: 1 << 30}, "%m [%p] %e [%b] ", "1048576kB"},
	}
	for _, c := range cases {
		t.Run(c.major.String(), func(t *testing.T) {
			got := map[string]string{}
			for _, s := range logSettings(c.major, "/state/log", c.logs) {
				got[s.Name] = s.Value
				_, reserved := reservedWhy(s.Name)
				assert.True(t, reserved, "%s is pgstage's but a user setting may change it", s.Name)
			}
			assert.Equal(t, map[string]string{
				"logging_collector":        "on",
				"log_destination":          "stderr",
				"log_directory":            "/state/log",
				"log_filename":             "staging-%Y%m%d-%H%M%S.log",
				"log_rotation_size":        c.size,
				"log_rotation_age":         "0",
				"log_truncate_on_rotation": "off",
				"log_line_prefix":          c.prefix,
				"lc_messages":              "C",
			}, got)
		})
	}
	assert.Equal(t, 5, LogsConfig{}.keep())
	assert.Equal(t, 2, LogsConfig{Keep: 2}.keep())
}

// A user's log_line_prefix is refused with the reason: the watcher reads
// the prefix pgstage sets.
func TestLogLinePrefixReserved(t *testing.T) {
	errs := validateSettings(t.Context(), "", []Setting{{Name: "Log_Line_Prefix", Value: "'%t '"}}, osuser.Current())
	require.Len(t, errs, 1)
	assert.Contains(t, errs[0].Error(), "Log_Line_Prefix is managed by pgstage")
}

// The 9.4-9.6 path: a source whose postgresql.conf leaves the empty
// default prefix is overridden by pgstage's own, and the watcher the
// Linker configures from the staging's data directory reads walwatch's
// golden 9.x logs written with that prefix. A 9.x staging linked by an
// older pgstage (collector off, the empty default) is read with
// PrefixEmpty, never with 10's default.
func TestWatch9x(t *testing.T) {
	want9x := pgtest.ListFile(t, filepath.Join("..", "walwatch", "testdata", "9x", "events.txt"))
	for _, v := range []string{"9.4", "9.5", "9.6"} {
		t.Run(v, func(t *testing.T) {
			golden := filepath.Join("..", "walwatch", "testdata", "9x", v, "data")
			m, err := pgver.Parse(v)
			require.NoError(t, err)

			data, logDir := t.TempDir(), t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(data, "PG_VERSION"), []byte(v+"\n"), 0o600))
			require.NoError(t, os.WriteFile(filepath.Join(data, "postgresql.conf"), []byte("log_line_prefix = ''\nlogging_collector = off\n"), 0o600))
			require.NoError(t, applySettings(data, logSettings(m, logDir, LogsConfig{}), nil, m))
			conf, err := pgconf.Load(data)
			require.NoError(t, err)
			s, ok := conf.Get("log_line_prefix")
			require.True(t, ok)
			require.Equal(t, "%m [%p] %e ", s.Value)

			wl := readWatchLog(data)
			require.Equal(t, watchLog{prefix: "%m [%p] %e ", pattern: "staging-*.log"}, wl)
			logs, err := filepath.Glob(filepath.Join(golden, "pg_log", "*.log"))
			require.NoError(t, err)
			require.Len(t, logs, 1)
			withPrefix(t, logs[0], filepath.Join(logDir, "staging-20261124-095900.log"))
			assert.Equal(t, want9x, replay(t, wl, logDir))

			old := readWatchLog(golden)
			require.True(t, old.empty, "9.x's empty default must be said")
			old.pattern = "*.log"
			assert.Equal(t, want9x, replay(t, old, filepath.Join(golden, "pg_log")))
		})
	}
}

// withPrefix writes the empty-prefix log src to dst as the server writes
// it with '%m [%p] %e ': every line but a tab-led continuation gets it.
func withPrefix(t *testing.T, src, dst string) {
	in, err := os.Open(src)
	require.NoError(t, err)
	defer in.Close()
	var b strings.Builder
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "\t") {
			state := "00000"
			if strings.HasPrefix(line, "FATAL:") || strings.HasPrefix(line, "ERROR:") {
				state = "XX000"
			}
			b.WriteString("2026-11-24 09:59:00.123 UTC [4242] " + state + " ")
		}
		b.WriteString(line + "\n")
	}
	require.NoError(t, sc.Err())
	require.NoError(t, os.WriteFile(dst, []byte(b.String()), 0o600))
}

func replay(t *testing.T, wl watchLog, dir string) []string {
	w, err := walwatch.New(walwatch.Config{
		LogDir: dir, Format: walwatch.FormatStderr,
		Prefix: wl.prefix, PrefixEmpty: wl.empty, Pattern: wl.pattern,
		Start: walwatch.StartReplay,
	})
	require.NoError(t, err)
	defer w.Close()
	go func() {
		for err := range w.Errors() {
			t.Errorf("watcher: %v", err)
		}
	}()
	var got []string
	for ev := range w.Events() {
		s := string(ev.Kind)
		if ev.Reason != "" {
			s += " " + string(ev.Reason)
		}
		got = append(got, s)
	}
	return got
}

// A log the watcher cannot read (records in another prefix than the one
// configured) is never read as silence: it is logged as an error and shown
// in Status until the watcher is started again.
func TestUnreadableLog(t *testing.T) {
	r := newRig(t)
	var logged bytes.Buffer
	r.l.log = slog.New(slog.NewTextHandler(&syncWriter{w: &logged}, nil))
	r.l.deps.watch = (&Linker{}).realDeps().watch
	require.NoError(t, r.l.prepareDirs())
	require.NoError(t, os.MkdirAll(r.cfg.Staging.DataDir, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(r.cfg.Staging.DataDir, "postgresql.conf"),
		[]byte("logging_collector = on\nlog_line_prefix = '%m [%p] %e [%b] '\n"), 0o600))
	var text strings.Builder
	for range 40 {
		text.WriteString("LOG:  started streaming WAL from primary at 0/3000000 on timeline 1\n")
	}
	require.NoError(t, os.WriteFile(filepath.Join(r.l.logDir(), "staging-20261201-100000.log"), []byte(text.String()), 0o600))
	r.l.mu.Lock()
	r.l.logErr = "stale"
	r.l.mu.Unlock()
	require.NoError(t, r.l.startWatcher(false))
	deadline := time.Now().Add(time.Minute) // a bound, not a timing assertion
	var st Status
	for {
		var err error
		st, err = r.l.Status(t.Context())
		require.NoError(t, err)
		if st.LogError != "" && st.LogError != "stale" || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.l.stopWatcher()
	assert.Contains(t, st.LogError, "staging-20261201-100000.log")
	assert.Contains(t, logged.String(), "level=ERROR")
}

// syncWriter lets the watcher's goroutine and the test share a buffer.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
