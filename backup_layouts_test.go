package pgstage_test

import (
	"archive/tar"
	"archive/zip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgstage/pgstage/internal/pgtest"
	"github.com/stretchr/testify/require"
)

// TestBackupLayouts brings up a primary of every major and takes a real backup
// in every layout and form its version supports, then checks that the files
// are there and readable as tar (and zip).
func TestBackupLayouts(t *testing.T) {
	pgtest.ForEachMajor(t, func(t *testing.T, major int) {
		t.Parallel()
		p := pgtest.StartPrimary(t, major, pgtest.Options{})
		p.InsertRows(t, 10)
		for _, form := range pgtest.Forms(major) {
			for i, layout := range pgtest.Layouts {
				t.Run(fmt.Sprintf("%v/%v", form, layout), func(t *testing.T) {
					b := pgtest.TakeBackup(t, p, pgtest.BackupOptions{Form: form, Layout: layout, Time: time.Now().Add(time.Duration(i) * time.Hour)})
					files := readBackup(t, b)
					base := findBase(t, files)
					require.Contains(t, files[base], "backup_label", "%s lacks backup_label", base)
					require.Contains(t, files[base], "PG_VERSION")
					if form == pgtest.FormStream || form == pgtest.FormGzip || form == pgtest.FormLZ4 || form == pgtest.FormZstd {
						wal := ""
						for name := range files {
							if strings.HasPrefix(name, "pg_wal.tar") {
								wal = name
							}
						}
						require.NotEmpty(t, wal, "stream form without pg_wal.tar: %v", b.Files)
					}
					if major >= 13 {
						require.Contains(t, files, "backup_manifest")
					}
				})
			}
		}
	})
}

// readBackup returns, for each backup file, the entry names inside it (tar
// files only; compressed tars are checked by the external tools).
func readBackup(t *testing.T, b *pgtest.Backup) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	add := func(name string, r io.Reader) {
		entries := []string{}
		if strings.HasSuffix(name, ".tar") {
			tr := tar.NewReader(r)
			for {
				h, err := tr.Next()
				if err == io.EOF {
					break
				}
				require.NoError(t, err, "reading %s", name)
				entries = append(entries, h.Name)
			}
		} else if name != "backup_manifest" {
			entries = listCompressed(t, name, r)
		}
		out[name] = entries
	}
	switch b.Layout {
	case pgtest.LayoutZip:
		zr, err := zip.OpenReader(b.Location)
		require.NoError(t, err)
		defer zr.Close()
		for _, f := range zr.File {
			r, err := f.Open()
			require.NoError(t, err)
			add(f.Name, r)
			r.Close()
		}
	default:
		for _, name := range b.Files {
			f, err := os.Open(filepath.Join(b.Location, name))
			require.NoError(t, err)
			add(name, f)
			f.Close()
		}
	}
	require.NotEmpty(t, out)
	return out
}

func findBase(t *testing.T, files map[string][]string) string {
	t.Helper()
	for name := range files {
		if strings.HasPrefix(name, "base.tar") {
			return name
		}
	}
	t.Fatalf("no base.tar among %v", files)
	return ""
}
