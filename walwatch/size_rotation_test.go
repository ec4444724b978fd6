package walwatch_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/walwatch"
)

// The logging collector rotating by size (log_rotation_size) into files
// named by the pattern stage chooses, and Prune keeping the directory
// bounded: every event once, in order, across files written past the
// bound, in both modes.
func TestFollowSizeRotation(t *testing.T) {
	const bound = 16 << 10
	// Lines of noise past the bound, with the round's times (no two log
	// files of a server begin alike).
	filler := func(s float64) string {
		line := logAt(s, 9, "LOG", "checkpoint starting: time")
		return strings.Repeat(line, bound/2/len(line)+1)
	}
	for _, mode := range followModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			cfg := mode.cfg
			cfg.LogDir, cfg.Format, cfg.Prefix, cfg.Pattern = dir, walwatch.FormatStderr, walwatch.DefaultPrefix, "staging-*.log"
			w, err := walwatch.New(cfg)
			require.NoError(t, err)
			defer w.Close()
			fillerLines := strings.Count(filler(0), "\n")
			first := filepath.Join(dir, "staging-20261124-095959.log")
			appendFile(t, first, logAt(0, 99, "LOG", started))
			expectEvent(t, w, "streaming@staging-20261124-095959.log:1")
			for i := 0; i < 6; i++ {
				name := fmt.Sprintf("staging-20261124-1000%02d.log", i)
				srv := openServerLog(t, filepath.Join(dir, name))
				srv.write(t, filler(float64(10*i))+logAt(float64(10*i+1), 100+i, "FATAL", lost)+filler(float64(10*i+2)))
				srv.write(t, logAt(float64(10*i+5), 200+i, "LOG", started))
				expectEvent(t, w, fmt.Sprintf("fault stream-lost@%s:%d", name, fillerLines+1))
				ev := expectEvent(t, w, fmt.Sprintf("recovered@%s:%d", name, 2*fillerLines+2))
				require.NoError(t, srv.f.Close())
				removed, err := walwatch.Prune(dir, cfg.Pattern, 2, ev.Position)
				require.NoError(t, err)
				if i > 1 {
					assert.Len(t, removed, 1, "round %d", i)
				}
			}
			files, err := filepath.Glob(filepath.Join(dir, "staging-*.log"))
			require.NoError(t, err)
			assert.Len(t, files, 2, "Prune keeps 2 files")
		})
	}
}
