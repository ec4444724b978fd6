package backupsel_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgstage/pgstage/backupsel"
	"github.com/stretchr/testify/require"
)

// BenchmarkSelect1000Folders: a backup path holding 1,000 timestamped
// folders (hard links to one small backup). Select lists them all, checks the
// newest and reports the others as older.
func BenchmarkSelect1000Folders(b *testing.B) {
	dir := b.TempDir()
	proto := filepath.Join(dir, "proto")
	files := fixture{Manifest: true}.build(b)
	writeFiles(b, proto, files)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 1000; i++ {
		d := filepath.Join(dir, "path", "PostgreSQL_T"+start.Add(time.Duration(i)*time.Hour).Format("20060102150405"))
		require.NoError(b, os.MkdirAll(d, 0o755))
		for name := range files {
			require.NoError(b, os.Link(filepath.Join(proto, name), filepath.Join(d, name)))
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sel, err := backupsel.Select(context.Background(), filepath.Join(dir, "path"), backupsel.Options{})
		require.NoError(b, err)
		require.Len(b, sel.Passed, 999)
	}
}

// BenchmarkRestore restores a 2,000-file, 32 MiB synthetic backup per form;
// MB/s counts file content written.
func BenchmarkRestore(b *testing.B) {
	extra := benchFiles()
	for _, tc := range []struct {
		name   string
		comp   string
		layout backupsel.Layout
	}{
		{"plain", "", backupsel.LayoutFolder},
		{"gzip", "gz", backupsel.LayoutFolder},
		{"lz4", "lz4", backupsel.LayoutFolder},
		{"zstd", "zst", backupsel.LayoutFolder},
		{"zip", "", backupsel.LayoutZip},
	} {
		b.Run(tc.name, func(b *testing.B) {
			dir := b.TempDir()
			files := fixture{Compression: tc.comp, Files: extra}.build(b)
			if tc.layout == backupsel.LayoutZip {
				writeZip(b, filepath.Join(dir, "PostgreSQL_T20261124.zip"), files, "")
			} else {
				writeFiles(b, filepath.Join(dir, "PostgreSQL_T20261124100000"), files)
			}
			sel, err := backupsel.Select(context.Background(), dir, backupsel.Options{})
			require.NoError(b, err)
			b.SetBytes(sel.TotalBytes)
			out := b.TempDir()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				data := filepath.Join(out, fmt.Sprint(i))
				_, err := sel.Restore(context.Background(), data, backupsel.RestoreOptions{})
				require.NoError(b, err)
				b.StopTimer()
				require.NoError(b, os.RemoveAll(data))
				b.StartTimer()
			}
		})
	}
}

// BenchmarkSelectZip: Select of a zip holding a 2,000-file, 32 MiB backup,
// deferred (pg_wal.tar starts with a real WAL page header) against read
// through (a WAL page magic Select does not know).
func BenchmarkSelectZip(b *testing.B) {
	extra := benchFiles()
	for _, tc := range []struct {
		name     string
		header   bool
		deferred bool
	}{{"deferred", true, true}, {"read-through", false, false}} {
		b.Run(tc.name, func(b *testing.B) {
			dir := b.TempDir()
			writeZip(b, filepath.Join(dir, "PostgreSQL_T20261124.zip"), fixture{Files: extra, Manifest: true, WALHeader: tc.header}.build(b), "")
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				sel, err := backupsel.Select(context.Background(), dir, backupsel.Options{})
				require.NoError(b, err)
				require.Equal(b, tc.deferred, sel.Deferred)
			}
		})
	}
}

// benchFiles is 2,000 relation files of 16 KiB, 32 MiB, for the fixture.
func benchFiles() map[string]string {
	extra := map[string]string{}
	page := strings.Repeat("pgstage benchmark tuple ", 600)[:12288]
	for i := 0; i < 2000; i++ {
		extra[fmt.Sprintf("base/1/%d", 20000+i)] = fmt.Sprintf("%08d", i) + page[8:] + page[:4096]
	}
	return extra
}
