package basebackup_test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/backupsel"
	"github.com/pgstage/pgstage/backupsel/basebackup"
	"github.com/pgstage/pgstage/internal/pgtest"
)

// TestTakeCompressed takes a backup with each client-side compression (and
// a spread checkpoint, and a rate limit, on one of them) of the newest
// major tested, checks the file names pg_basebackup -Z client-<method>
// gives, and has backupsel select (verifying checksums) and restore it. On
// 15 the names and archive members are compared with pg_basebackup's.
func TestTakeCompressed(t *testing.T) {
	versions := pgtest.Versions()
	major := versions[len(versions)-1]
	if slices.Contains(versions, 15) {
		major = 15
	}
	p := pgtest.StartPrimary(t, major, pgtest.Options{})
	p.InsertRows(t, 100)
	for _, tc := range []struct {
		c      basebackup.Compression
		level  int
		flag   string
		files  []string
		spread bool
	}{
		{basebackup.Gzip, 0, "--compress=client-gzip", []string{"backup_manifest", "base.tar.gz", "pg_wal.tar.gz"}, false},
		{basebackup.LZ4, 0, "--compress=client-lz4", []string{"backup_manifest", "base.tar.lz4", "pg_wal.tar"}, true},
		{basebackup.Zstd, 5, "--compress=client-zstd:5", []string{"backup_manifest", "base.tar.zst", "pg_wal.tar"}, false},
	} {
		t.Run(tc.c.String(), func(t *testing.T) {
			path := pgtest.TempDir(t)
			cfg := configFor(p, path)
			cfg.Compression, cfg.CompressionLevel = tc.c, tc.level
			if tc.spread {
				cfg.FastCheckpoint = false
				cfg.MaxRate = 1 << 30
			}
			res, err := basebackup.Take(context.Background(), cfg)
			require.NoError(t, err)
			want := tc.files
			if major < 13 {
				want = want[1:]
			}
			assert.Equal(t, want, res.Files)
			sel, err := backupsel.Select(context.Background(), path, backupsel.Options{Verify: true, Settle: 10 * time.Millisecond})
			require.NoError(t, err)
			assert.Equal(t, filepath.Base(res.Path), sel.Name)
			data := filepath.Join(pgtest.TempDir(t), "data")
			rr, err := sel.Restore(context.Background(), data, backupsel.RestoreOptions{})
			require.NoError(t, err)
			if sel.Manifest != nil {
				require.NoError(t, sel.Manifest.VerifyDir(context.Background(), data, rr.Rewritten...))
			}
			if major != 15 {
				return
			}
			theirs := filepath.Join(pgtest.TempDir(t), "pg_basebackup")
			out, err := exec.Command(filepath.Join(pgtest.ClientBinDir(t), "pg_basebackup"), "-D", theirs, "-F", "t", "-X", "stream",
				"-h", p.Host, "-p", fmt.Sprint(p.Port), "-U", "postgres", "-w", "--checkpoint=fast", "--no-sync", tc.flag).CombinedOutput()
			require.NoError(t, err, "%s", out)
			assert.Equal(t, dirNames(t, theirs), res.Files, "same files as pg_basebackup %s", tc.flag)
			base := res.Files[1]
			a, b := labelSizeless(t, filepath.Join(res.Path, base)), labelSizeless(t, filepath.Join(theirs, base))
			assert.ElementsMatch(t, b, a, "%s: members and sizes as pg_basebackup's", base)
			walShape(t, members(t, filepath.Join(res.Path, res.Files[2])), 16<<20)
		})
	}
}
