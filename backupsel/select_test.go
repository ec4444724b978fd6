package backupsel_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgstage/pgstage/backupsel"
	"github.com/pgstage/pgstage/internal/pgver"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func truncated(files map[string][]byte, name string, keep int) map[string][]byte {
	out := map[string][]byte{}
	for k, v := range files {
		out[k] = v
	}
	out[name] = out[name][:keep]
	return out
}

func without(files map[string][]byte, name string) map[string][]byte {
	out := map[string][]byte{}
	for k, v := range files {
		if k != name {
			out[k] = v
		}
	}
	return out
}

func TestSelect(t *testing.T) {
	good := fixture{Manifest: true}.build(t)
	goodZst := fixture{Compression: "zst"}.build(t)
	baseLen := len(good["base.tar"])
	tests := []struct {
		name       string
		setup      func(t *testing.T, dir string)
		opts       backupsel.Options
		wantName   string // chosen; "" means ErrNoBackup
		wantLayout backupsel.Layout
		wantPassed map[string]string // candidate name -> substring of its reason
	}{
		{
			name: "latest folder wins",
			setup: func(t *testing.T, dir string) {
				writeFiles(t, filepath.Join(dir, "PostgreSQL_T20261101120000"), good)
				writeFiles(t, filepath.Join(dir, "PostgreSQL_T20261124090000"), good)
			},
			wantName: "PostgreSQL_T20261124090000", wantLayout: backupsel.LayoutFolder,
			wantPassed: map[string]string{"PostgreSQL_T20261101120000": "older than the chosen PostgreSQL_T20261124090000"},
		},
		{
			name: "folder beats direct files and zip",
			setup: func(t *testing.T, dir string) {
				writeFiles(t, dir, good)
				writeZip(t, filepath.Join(dir, "PostgreSQL_T20261231.zip"), good, "")
				writeFiles(t, filepath.Join(dir, "PostgreSQL_T20200101000000"), good)
			},
			wantName: "PostgreSQL_T20200101000000", wantLayout: backupsel.LayoutFolder,
			wantPassed: map[string]string{"files in ": "lower precedence", "PostgreSQL_T20261231.zip": "lower precedence"},
		},
		{
			name: "direct files beat zip",
			setup: func(t *testing.T, dir string) {
				writeFiles(t, dir, goodZst)
				writeZip(t, filepath.Join(dir, "PostgreSQL_T20261231.zip"), good, "")
			},
			wantName: "files in ", wantLayout: backupsel.LayoutDirect,
			wantPassed: map[string]string{"PostgreSQL_T20261231.zip": "lower precedence"},
		},
		{
			name: "latest of several zips",
			setup: func(t *testing.T, dir string) {
				writeZip(t, filepath.Join(dir, "PostgreSQL_T20261101.zip"), good, "")
				writeZip(t, filepath.Join(dir, "PostgreSQL_T20261123.zip"), good, "")
				writeZip(t, filepath.Join(dir, "PostgreSQL_T20260228.zip"), good, "")
			},
			wantName: "PostgreSQL_T20261123.zip", wantLayout: backupsel.LayoutZip,
			wantPassed: map[string]string{"PostgreSQL_T20261101.zip": "older", "PostgreSQL_T20260228.zip": "older"},
		},
		{
			name: "bad names are listed, not used",
			setup: func(t *testing.T, dir string) {
				writeFiles(t, filepath.Join(dir, "PostgreSQL_T2026133"), good)
				writeFiles(t, filepath.Join(dir, "PostgreSQL_T20261301000000"), good)
				writeFiles(t, filepath.Join(dir, "postgresql_t20261201000000"), good)
				writeFiles(t, filepath.Join(dir, "PostgreSQL_T20260230000000"), good)
				writeZip(t, filepath.Join(dir, "PostgreSQL_T2026010.zip"), good, "")
				writeFiles(t, filepath.Join(dir, "PostgreSQL_T20250101000000"), good)
			},
			wantName: "PostgreSQL_T20250101000000", wantLayout: backupsel.LayoutFolder,
			wantPassed: map[string]string{
				"PostgreSQL_T2026133":        "14 digits",
				"PostgreSQL_T20261301000000": "not a valid date",
				"postgresql_t20261201000000": "case matters",
				"PostgreSQL_T20260230000000": "not a valid date",
				"PostgreSQL_T2026010.zip":    "8 digits",
			},
		},
		{
			name: "incomplete newest folder is skipped",
			setup: func(t *testing.T, dir string) {
				writeFiles(t, filepath.Join(dir, "PostgreSQL_T20261124100000"), truncated(good, "base.tar", baseLen-1024))
				writeFiles(t, filepath.Join(dir, "PostgreSQL_T20261124090000"), good)
			},
			wantName: "PostgreSQL_T20261124090000", wantLayout: backupsel.LayoutFolder,
			wantPassed: map[string]string{"PostgreSQL_T20261124100000": "cut short"},
		},
		{
			name: "tar cut inside a file",
			setup: func(t *testing.T, dir string) {
				writeFiles(t, filepath.Join(dir, "PostgreSQL_T20261124100000"), truncated(good, "base.tar", 5000))
			},
			wantPassed: map[string]string{"PostgreSQL_T20261124100000": "cut short"},
		},
		{
			name: "compressed tar cut short",
			setup: func(t *testing.T, dir string) {
				writeFiles(t, filepath.Join(dir, "PostgreSQL_T20261124100000"), truncated(goodZst, "base.tar.zst", len(goodZst["base.tar.zst"])/2))
			},
			wantPassed: map[string]string{"PostgreSQL_T20261124100000": "base.tar.zst"},
		},
		{
			name: "missing base.tar",
			setup: func(t *testing.T, dir string) {
				writeFiles(t, filepath.Join(dir, "PostgreSQL_T20261124100000"), without(good, "base.tar"))
			},
			wantPassed: map[string]string{"PostgreSQL_T20261124100000": "no base.tar"},
		},
		{
			name: "missing WAL",
			setup: func(t *testing.T, dir string) {
				writeFiles(t, filepath.Join(dir, "PostgreSQL_T20261124100000"), fixture{WAL: "none"}.build(t))
			},
			wantPassed: map[string]string{"PostgreSQL_T20261124100000": "WAL missing: segment " + fxStartSeg},
		},
		{
			name: "pg_wal.tar without the start segment",
			setup: func(t *testing.T, dir string) {
				files := fixture{WAL: "none"}.build(t)
				files["pg_wal.tar"] = makeTar(t, []tarFile{{name: "000000010000000000000001", body: []byte("x")}}, 0o600)
				writeFiles(t, filepath.Join(dir, "PostgreSQL_T20261124100000"), files)
			},
			wantPassed: map[string]string{"PostgreSQL_T20261124100000": "pg_wal.tar lacks " + fxStartSeg},
		},
		{
			name: "missing WAL accepted when streaming",
			setup: func(t *testing.T, dir string) {
				writeFiles(t, filepath.Join(dir, "PostgreSQL_T20261124100000"), fixture{WAL: "none"}.build(t))
			},
			opts:     backupsel.Options{StreamWhenNoWAL: true},
			wantName: "PostgreSQL_T20261124100000", wantLayout: backupsel.LayoutFolder,
		},
		{
			name: "manifest size disagrees",
			setup: func(t *testing.T, dir string) {
				files := fixture{Manifest: true}.build(t)
				files["base.tar"] = fixture{Files: map[string]string{"base/1/extra": "x"}}.build(t)["base.tar"]
				writeFiles(t, filepath.Join(dir, "PostgreSQL_T20261124100000"), files)
			},
			wantPassed: map[string]string{"PostgreSQL_T20261124100000": "base/1/extra: present but not in backup_manifest"},
		},
		{
			name: "manifest checksum disagrees, with Verify",
			setup: func(t *testing.T, dir string) {
				files := fixture{Manifest: true, Files: map[string]string{"base/1/2": "aaaa"}}.build(t)
				files["base.tar"] = fixture{Files: map[string]string{"base/1/2": "bbbb"}}.build(t)["base.tar"]
				writeFiles(t, filepath.Join(dir, "PostgreSQL_T20261124100000"), files)
			},
			opts:       backupsel.Options{Verify: true},
			wantPassed: map[string]string{"PostgreSQL_T20261124100000": "base/1/2: CRC32C checksum"},
		},
		{
			name: "manifest checksum differences pass without Verify",
			setup: func(t *testing.T, dir string) {
				files := fixture{Manifest: true, Files: map[string]string{"base/1/2": "aaaa"}}.build(t)
				files["base.tar"] = fixture{Files: map[string]string{"base/1/2": "bbbb"}}.build(t)["base.tar"]
				writeFiles(t, filepath.Join(dir, "PostgreSQL_T20261124100000"), files)
			},
			wantName: "PostgreSQL_T20261124100000", wantLayout: backupsel.LayoutFolder,
		},
		{
			name: "damaged manifest",
			setup: func(t *testing.T, dir string) {
				files := fixture{Manifest: true}.build(t)
				files["backup_manifest"] = []byte(strings.Replace(string(files["backup_manifest"]), "\"Size\": 8192", "\"Size\": 8193", 1))
				writeFiles(t, filepath.Join(dir, "PostgreSQL_T20261124100000"), files)
			},
			wantPassed: map[string]string{"PostgreSQL_T20261124100000": "own checksum does not match"},
		},
		{
			// backup_manifest is parsed while base.tar is walked; its
			// fault is still the one named, as when it was read first.
			name:       "damaged manifest and base.tar",
			setup:      damagedManifestAndTar,
			wantPassed: map[string]string{"PostgreSQL_T20261124100000": "own checksum does not match"},
		},
		{
			name:       "damaged manifest and base.tar, with Verify",
			setup:      damagedManifestAndTar,
			opts:       backupsel.Options{Verify: true},
			wantPassed: map[string]string{"PostgreSQL_T20261124100000": "own checksum does not match"},
		},
		{
			name: "base.tar cut short, manifest whole",
			setup: func(t *testing.T, dir string) {
				files := fixture{Manifest: true}.build(t)
				files["base.tar"] = files["base.tar"][:len(files["base.tar"])-2048]
				writeFiles(t, filepath.Join(dir, "PostgreSQL_T20261124100000"), files)
			},
			wantPassed: map[string]string{"PostgreSQL_T20261124100000": "cut short"},
		},
		{
			name: "zip without central directory",
			setup: func(t *testing.T, dir string) {
				zp := filepath.Join(dir, "PostgreSQL_T20261124.zip")
				writeZip(t, zp, good, "")
				data, err := os.ReadFile(zp)
				require.NoError(t, err)
				writeFiles(t, dir, map[string][]byte{"PostgreSQL_T20261124.zip": data[:len(data)-200]})
				writeZip(t, filepath.Join(dir, "PostgreSQL_T20261120.zip"), good, "")
			},
			wantName: "PostgreSQL_T20261120.zip", wantLayout: backupsel.LayoutZip,
			wantPassed: map[string]string{"PostgreSQL_T20261124.zip": "no central directory"},
		},
		{
			name: "zip with files in a folder",
			setup: func(t *testing.T, dir string) {
				writeZip(t, filepath.Join(dir, "PostgreSQL_T20261124.zip"), good, "backup/")
			},
			wantPassed: map[string]string{"PostgreSQL_T20261124.zip": "not at the zip's root"},
		},
		{
			name:  "empty backup path",
			setup: func(t *testing.T, dir string) {},
		},
		{
			name: "a file that is not a tar",
			setup: func(t *testing.T, dir string) {
				writeFiles(t, filepath.Join(dir, "PostgreSQL_T20261124100000"), map[string][]byte{"base.tar": []byte("hello, not a tar at all")})
			},
			wantPassed: map[string]string{"PostgreSQL_T20261124100000": "not a tar archive"},
		},
		{
			name: "unsafe entry",
			setup: func(t *testing.T, dir string) {
				files := fixture{}.build(t)
				files["base.tar"] = makeTar(t, []tarFile{{name: "../evil", body: []byte("x")}}, 0o600)
				writeFiles(t, filepath.Join(dir, "PostgreSQL_T20261124100000"), files)
			},
			wantPassed: map[string]string{"PostgreSQL_T20261124100000": `refusing entry "../evil"`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.setup(t, dir)
			b, err := backupsel.Select(context.Background(), dir, tc.opts)
			var passed []backupsel.Candidate
			if tc.wantName == "" {
				require.ErrorIs(t, err, backupsel.ErrNoBackup)
				passed = backupsel.Candidates(err)
				assert.Contains(t, err.Error(), "no usable backup in "+dir)
				for _, c := range passed {
					assert.Contains(t, err.Error(), c.Name+": "+c.Reason)
				}
			} else {
				require.NoError(t, err)
				assert.True(t, strings.HasPrefix(b.Name, tc.wantName), "got %s, want %s", b.Name, tc.wantName)
				assert.Equal(t, tc.wantLayout, b.Layout)
				passed = b.Passed
			}
			require.Len(t, passed, len(tc.wantPassed), "passed over: %+v", passed)
			for _, c := range passed {
				found := false
				for name, reason := range tc.wantPassed {
					if strings.HasPrefix(c.Name, name) {
						found = true
						assert.Contains(t, c.Reason, reason, "candidate %s", c.Name)
					}
				}
				assert.True(t, found, "unexpected candidate %s: %s", c.Name, c.Reason)
			}
		})
	}
}

func TestSelectReadsIdentity(t *testing.T) {
	for _, tc := range []struct {
		fx      fixture
		comp    backupsel.Compression
		wal     backupsel.WALSource
		major   pgver.Major
		version string
	}{
		{fixture{Major: "15"}, backupsel.CompressionNone, backupsel.WALInArchive, pgver.V15, "15"},
		{fixture{Major: "10", Compression: "gz"}, backupsel.CompressionGzip, backupsel.WALInArchive, pgver.V10, "10"},
		{fixture{Major: "18", Compression: "lz4", WAL: "base"}, backupsel.CompressionLZ4, backupsel.WALInBase, pgver.V18, "18"},
		{fixture{Major: "9.6", Compression: "zst"}, backupsel.CompressionZstd, backupsel.WALInArchive, pgver.V9_6, "9.6"},
	} {
		t.Run(tc.version, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, tc.fx.build(t))
			b, err := backupsel.Select(context.Background(), dir, backupsel.Options{})
			require.NoError(t, err)
			assert.Equal(t, tc.major, b.Major)
			assert.Equal(t, tc.version, b.PGVersion)
			assert.Equal(t, uint64(7300000000000000001), b.SystemIdentifier)
			assert.Equal(t, tc.comp, b.Archives[0].Compression)
			assert.Equal(t, tc.wal, b.WAL)
			assert.Equal(t, fxStartSeg, b.Label.StartWALFile)
			assert.Equal(t, uint32(1), b.Label.StartTimeline)
		})
	}
}

func TestSelectCompressionByContent(t *testing.T) {
	// A gzip file named base.tar is read as gzip.
	files := fixture{Compression: "gz"}.build(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string][]byte{"base.tar": files["base.tar.gz"], "pg_wal.tar": files["pg_wal.tar.gz"]})
	b, err := backupsel.Select(context.Background(), dir, backupsel.Options{})
	require.NoError(t, err)
	assert.Equal(t, backupsel.CompressionGzip, b.Archives[0].Compression)
}

func TestSelectMultiplePaths(t *testing.T) {
	a, c := t.TempDir(), t.TempDir()
	_, err := backupsel.Select(context.Background(), a+string(os.PathListSeparator)+c, backupsel.Options{})
	require.ErrorIs(t, err, backupsel.ErrMultiplePaths)
}

func TestSelectWALPath(t *testing.T) {
	dir, wal := t.TempDir(), t.TempDir()
	writeFiles(t, dir, fixture{WAL: "none"}.build(t))
	writeFiles(t, wal, map[string][]byte{fxStartSeg: make([]byte, 1<<16), "not-wal.txt": []byte("x")})

	b, err := backupsel.Select(context.Background(), dir, backupsel.Options{WALPath: wal})
	require.NoError(t, err)
	assert.Equal(t, backupsel.WALFromPath, b.WAL)
	assert.Equal(t, wal, b.WALPath)

	b, err = backupsel.Select(context.Background(), dir, backupsel.Options{WALPath: wal, StreamWhenNoWAL: true})
	require.NoError(t, err)
	assert.Equal(t, backupsel.WALStream, b.WAL)
	assert.Empty(t, b.WALPath)
	require.Len(t, b.Notes, 1)
	assert.Contains(t, b.Notes[0], "ignored: StreamWhenNoWAL takes precedence")

	empty := t.TempDir()
	_, err = backupsel.Select(context.Background(), dir, backupsel.Options{WALPath: empty})
	require.ErrorIs(t, err, backupsel.ErrNoBackup)
	assert.Contains(t, err.Error(), "is not in the backup nor in WALPath")
}

func TestSelectSettle(t *testing.T) {
	dir := t.TempDir()
	growing := filepath.Join(dir, "PostgreSQL_T20261124100000")
	writeFiles(t, growing, fixture{}.build(t))
	writeFiles(t, filepath.Join(dir, "PostgreSQL_T20261124090000"), fixture{}.build(t))
	// The newest folder's base.tar was modified just now, and grows while
	// Select waits the settle window.
	now := time.Now()
	require.NoError(t, os.Chtimes(filepath.Join(growing, "base.tar"), now, now))
	waits := 0
	defer backupsel.SetSettleSleep(func(ctx context.Context, d time.Duration) error {
		waits++
		assert.Equal(t, 10*time.Second, d)
		f, err := os.OpenFile(filepath.Join(growing, "base.tar"), os.O_APPEND|os.O_WRONLY, 0)
		require.NoError(t, err)
		defer f.Close()
		_, err = f.Write(make([]byte, 512))
		return err
	})()
	b, err := backupsel.Select(context.Background(), dir, backupsel.Options{Settle: 10 * time.Second})
	require.NoError(t, err)
	assert.Equal(t, 1, waits, "only the recently modified candidate waits")
	assert.Equal(t, "PostgreSQL_T20261124090000", b.Name)
	require.NotEmpty(t, b.Passed)
	assert.Contains(t, b.Passed[0].Reason, "still being written: base.tar changed within 10s")
}

func TestSelectMissingPath(t *testing.T) {
	_, err := backupsel.Select(context.Background(), filepath.Join(t.TempDir(), "nope"), backupsel.Options{})
	require.Error(t, err)
	assert.True(t, errors.Is(err, os.ErrNotExist), "got %v", err)
}

// damagedManifestAndTar writes a backup whose backup_manifest fails its own
// checksum and whose base.tar is cut short.
func damagedManifestAndTar(t *testing.T, dir string) {
	files := fixture{Manifest: true}.build(t)
	files["backup_manifest"] = []byte(strings.Replace(string(files["backup_manifest"]), "\"Size\": 8192", "\"Size\": 8193", 1))
	files["base.tar"] = files["base.tar"][:len(files["base.tar"])-2048]
	writeFiles(t, filepath.Join(dir, "PostgreSQL_T20261124100000"), files)
}
