package walwatch_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/internal/pgtest"
	"github.com/pgstage/pgstage/walwatch"
)

// TestGolden9x replays logs of 9.4, 9.5 and 9.6 standbys written from
// those versions' own messages (walreceiver.c, libpqwalreceiver.c, xlog.c,
// xlogreader.c, postmaster.c of REL9_4-REL9_6) with their default, empty
// log_line_prefix: said with PrefixEmpty, taken from the data directory
// (its version's default, its pg_log), and inferred from the lines.
func TestGolden9x(t *testing.T) {
	want := pgtest.ListFile(t, filepath.Join("testdata", "9x", "events.txt"))
	for _, v := range []string{"9.4", "9.5", "9.6"} {
		data := filepath.Join("testdata", "9x", v, "data")
		logDir := filepath.Join(data, "pg_log")
		for name, cfg := range map[string]walwatch.Config{
			"PrefixEmpty": {LogDir: logDir, PrefixEmpty: true},
			"DataDir":     {DataDir: data},
			"inferred":    {LogDir: logDir},
		} {
			t.Run(v+"/"+name, func(t *testing.T) {
				cfg.Start = walwatch.StartReplay
				w, err := walwatch.New(cfg)
				require.NoError(t, err)
				defer w.Close()
				require.Equal(t, logDir, w.Dir())
				var got []string
				for ev := range w.Events() {
					s := string(ev.Kind)
					if ev.Reason != "" {
						s += " " + string(ev.Reason)
					}
					got = append(got, s)
				}
				assert.Equal(t, want, got)
				assert.Equal(t, walwatch.PhasePromoted, w.State().Phase)
			})
		}
	}
	// Read with 10's default prefix instead, the same log says nothing:
	// the reason the empty prefix must be sayable.
	w, err := walwatch.New(walwatch.Config{LogDir: filepath.Join("testdata", "9x", "9.6", "data", "pg_log"), Prefix: walwatch.DefaultPrefix, Start: walwatch.StartReplay})
	require.NoError(t, err)
	n := 0
	for range w.Events() {
		n++
	}
	assert.Zero(t, n)
}
