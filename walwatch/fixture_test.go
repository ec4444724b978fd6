package walwatch_test

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/walwatch"
)

// TestFixtures replays the logs captured from real standbys (testdata/<major>/,
// written by TestLiveStandby -update) and expects exactly the events the live
// watchers saw. It needs no PostgreSQL.
func TestFixtures(t *testing.T) {
	goldens, err := filepath.Glob(filepath.Join("testdata", "*", "*", "events.*"))
	require.NoError(t, err)
	require.NotEmpty(t, goldens, "no fixtures: run go test -run TestLiveStandby -update")
	for _, golden := range goldens {
		format := walwatch.Format(strings.TrimPrefix(filepath.Ext(golden), "."))
		src := filepath.Dir(golden)
		t.Run(strings.TrimPrefix(src, "testdata/")+"/"+string(format), func(t *testing.T) {
			t.Parallel()
			want, err := os.ReadFile(golden)
			require.NoError(t, err)
			dir := copyFixture(t, src, format)
			w, err := walwatch.New(walwatch.Config{LogDir: dir, Start: walwatch.StartReplay})
			require.NoError(t, err)
			require.Equal(t, format, w.Format(), "format detected from the files")
			var got []string
			for ev := range w.Events() {
				got = append(got, eventString(ev))
			}
			assert.Equal(t, strings.Split(strings.TrimSpace(string(want)), "\n"), got)
		})
	}
}

// copyFixture copies the files of one format, with modification times in
// name order (git does not keep them; the names hold the start time).
func copyFixture(t *testing.T, src string, format walwatch.Format) string {
	t.Helper()
	ext := map[walwatch.Format]string{walwatch.FormatStderr: ".log", walwatch.FormatCSV: ".csv", walwatch.FormatJSON: ".json"}[format]
	files, err := filepath.Glob(filepath.Join(src, "*"+ext))
	require.NoError(t, err)
	sort.Strings(files)
	dir := t.TempDir()
	base := time.Now().Add(-time.Hour)
	for i, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		dst := filepath.Join(dir, filepath.Base(f))
		require.NoError(t, os.WriteFile(dst, b, 0o644))
		mt := base.Add(time.Duration(i) * time.Second)
		require.NoError(t, os.Chtimes(dst, mt, mt))
	}
	return dir
}
