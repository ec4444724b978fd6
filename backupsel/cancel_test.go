package backupsel_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/backupsel"
)

// TestRestoreCancelLeavesNothing cancels a restore at its first progress
// report, with files handed to the writers and others still in the archive:
// Restore answers the cancellation and leaves the data directory empty, on
// each path files take (copied ranges of a plain tar, chunks of a
// compressed one, a zip entry).
func TestRestoreCancelLeavesNothing(t *testing.T) {
	files := map[string]string{}
	for i := range 300 {
		size := 4 << 10
		if i%10 == 0 {
			size = 1<<20 + 3 // larger than a chunk: streamed in parts
		}
		files[fmt.Sprintf("base/16384/%d", 20000+i)] = strings.Repeat(fmt.Sprint(i%7), size)
	}
	for _, tc := range []struct {
		name   string
		fx     fixture
		layout backupsel.Layout
	}{
		{"plain", fixture{Files: files}, backupsel.LayoutDirect},
		{"gzip", fixture{Files: files, Compression: "gz"}, backupsel.LayoutDirect},
		{"zip", fixture{Files: files, WALHeader: true}, backupsel.LayoutZip},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.layout == backupsel.LayoutZip {
				dir = zipped(t, tc.fx)
			} else {
				writeFiles(t, dir, tc.fx.build(t))
			}
			b, err := backupsel.Select(context.Background(), dir, backupsel.Options{})
			require.NoError(t, err)
			data := filepath.Join(t.TempDir(), "data")
			require.NoError(t, os.Mkdir(data, 0o700))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			reports := 0
			_, err = b.Restore(ctx, data, backupsel.RestoreOptions{Progress: func(done, total int64) {
				reports++
				cancel()
			}})
			require.ErrorIs(t, err, context.Canceled)
			assert.Equal(t, 1, reports, "cancelled at the first report, before the end")
			left, err := os.ReadDir(data)
			require.NoError(t, err)
			assert.Empty(t, left, "a cancelled restore leaves the data directory empty")
		})
	}
}
