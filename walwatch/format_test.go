package walwatch_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/walwatch"
)

// copyAll copies the files of src whose names end in one of exts into dir,
// all with the same modification time (as a copy leaves them).
func copyAll(t *testing.T, src, dir string, exts ...string) {
	t.Helper()
	files, err := os.ReadDir(src)
	require.NoError(t, err)
	mt := time.Now().Add(-time.Minute)
	for _, f := range files {
		if !slices.Contains(exts, filepath.Ext(f.Name())) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, f.Name()))
		require.NoError(t, err)
		dst := filepath.Join(dir, f.Name())
		require.NoError(t, os.WriteFile(dst, b, 0o644))
		require.NoError(t, os.Chtimes(dst, mt, mt))
	}
}

func replayDir(t *testing.T, cfg walwatch.Config) (walwatch.Format, []string, []error) {
	t.Helper()
	cfg.Start = walwatch.StartReplay
	w, err := walwatch.New(cfg)
	require.NoError(t, err)
	defer w.Close()
	var got []string
	for ev := range w.Events() {
		got = append(got, eventString(ev))
	}
	var errs []error
	for err := range w.Errors() {
		errs = append(errs, err)
	}
	return w.Format(), got, errs
}

// A csvlog or jsonlog directory also holds the collector's .log files;
// with every file at the same time the format is told by content.
func TestFormatByContent(t *testing.T) {
	src := filepath.Join("testdata", "15", "outages")
	for _, tt := range []struct {
		name string
		exts []string
		want walwatch.Format
	}{
		{"jsonlog, csvlog and stray stderr", []string{".log", ".csv", ".json"}, walwatch.FormatJSON},
		{"csvlog and stray stderr", []string{".log", ".csv"}, walwatch.FormatCSV},
		{"stderr only", []string{".log"}, walwatch.FormatStderr},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			copyAll(t, src, dir, tt.exts...)
			format, got, errs := replayDir(t, walwatch.Config{LogDir: dir})
			assert.Equal(t, tt.want, format)
			want, err := os.ReadFile(filepath.Join(src, "events."+string(tt.want)))
			require.NoError(t, err)
			assert.Equal(t, strings.Split(strings.TrimSpace(string(want)), "\n"), got)
			assert.Empty(t, errs)
		})
	}
	// current_logfiles beside the log directory (a data directory) says
	// which destination is current, whatever the files.
	data := t.TempDir()
	dir := filepath.Join(data, "log")
	require.NoError(t, os.Mkdir(dir, 0o755))
	copyAll(t, src, dir, ".log", ".csv")
	require.NoError(t, os.WriteFile(filepath.Join(data, "current_logfiles"), []byte("stderr log/postgresql-20261124_171223.log\n"), 0o600))
	format, _, _ := replayDir(t, walwatch.Config{LogDir: dir})
	assert.Equal(t, walwatch.FormatStderr, format)
}

// A log whose records do not parse with the prefix or format in use is
// reported (ErrUnreadable, naming the file and what to set), never read
// as zero events and success.
func TestUnreadable(t *testing.T) {
	log := prefixLog("%t:%r:%u@%d:[%p]:") + prefixLog("%t:%r:%u@%d:[%p]:")
	for _, tt := range []struct {
		name string
		cfg  walwatch.Config
		want string
	}{
		{"wrong prefix", walwatch.Config{Prefix: walwatch.DefaultPrefix}, "set Config.Prefix"},
		{"9.x empty prefix said of a 10+ log", walwatch.Config{PrefixEmpty: true, Format: walwatch.FormatStderr}, "set Config.Prefix"},
		{"csvlog said of stderr", walwatch.Config{Format: walwatch.FormatCSV, Pattern: "*.log"}, "set Config.Format"},
		{"jsonlog said of stderr", walwatch.Config{Format: walwatch.FormatJSON, Pattern: "*.log"}, "set Config.Format"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			name := filepath.Join(dir, "postgresql.log")
			require.NoError(t, os.WriteFile(name, []byte(log), 0o644))
			cfg := tt.cfg
			cfg.LogDir = dir
			_, got, errs := replayDir(t, cfg)
			if tt.name != "9.x empty prefix said of a 10+ log" {
				assert.Empty(t, got)
			}
			require.Len(t, errs, 1)
			assert.True(t, errors.Is(errs[0], walwatch.ErrUnreadable), "%v", errs[0])
			assert.Contains(t, errs[0].Error(), name)
			assert.Contains(t, errs[0].Error(), tt.want)
		})
	}
	// Inferred, or given right: no error.
	for _, cfg := range []walwatch.Config{{}, {Prefix: "%t:%r:%u@%d:[%p]:"}} {
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "postgresql.log"), []byte(log), 0o644))
		cfg.LogDir = dir
		_, got, errs := replayDir(t, cfg)
		assert.NotEmpty(t, got)
		assert.Empty(t, errs)
	}
}
