package backupsel_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/backupsel"
)

// restoreEntries restores, into an empty data directory, a base.tar of the
// fixture's usual head, the given entries, then global/pg_control.
func restoreEntries(t *testing.T, entries ...tarFile) (dir, data string, err error) {
	t.Helper()
	dir = t.TempDir()
	files := fixture{}.build(t)
	all := []tarFile{
		{name: "backup_label", body: []byte(backupLabel())},
		{name: "PG_VERSION", body: []byte("15\n")},
		{name: "base/", typ: '5'},
		{name: "base/1", body: []byte("data")},
	}
	all = append(all, entries...)
	all = append(all, tarFile{name: "global/pg_control", body: pgControl(1)})
	files["base.tar"] = makeTar(t, all, 0o600)
	writeFiles(t, dir, files)
	b, err := backupsel.Select(context.Background(), dir, backupsel.Options{})
	require.NoError(t, err)
	data = filepath.Join(t.TempDir(), "data")
	require.NoError(t, os.Mkdir(data, 0o700))
	_, err = b.Restore(context.Background(), data, backupsel.RestoreOptions{})
	return dir, data, err
}

// TestRestoreReplacesHardLink: a regular entry after a hard link of the same
// name replaces the link, as GNU tar does (it unlinks first); writing
// through it would change PG_VERSION after Select checked it (issue 16
// point 11). Small and large bodies take the queued and the in-line paths.
func TestRestoreReplacesHardLink(t *testing.T) {
	for name, body := range map[string][]byte{
		"small": []byte("attacker\n"),
		"large": make([]byte, 1<<20),
	} {
		t.Run(name, func(t *testing.T) {
			_, data, err := restoreEntries(t,
				tarFile{name: "hl", typ: '1', link: "PG_VERSION"},
				tarFile{name: "hl", body: body},
				tarFile{name: "base/2", body: []byte("two")},
				tarFile{name: "base/2", body: body},
			)
			require.NoError(t, err)
			got, err := os.ReadFile(filepath.Join(data, "PG_VERSION"))
			require.NoError(t, err)
			assert.Equal(t, "15\n", string(got), "PG_VERSION written through the hard link")
			got, err = os.ReadFile(filepath.Join(data, "hl"))
			require.NoError(t, err)
			assert.True(t, bytes.Equal(body, got), "hl holds the later entry's %d bytes, got %d", len(body), len(got))
			got, err = os.ReadFile(filepath.Join(data, "base/2"))
			require.NoError(t, err)
			assert.True(t, bytes.Equal(body, got), "the later entry of a name wins: want %d bytes, got %d", len(body), len(got))
		})
	}
}

// TestRestoreFileOverDirectory: a file entry where a directory was restored
// is an ArchiveError naming the archive and the entry (issue 16 point 12).
func TestRestoreFileOverDirectory(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries []tarFile
		entry   string
	}{
		{"over a directory entry", []tarFile{{name: "base", body: []byte("x")}}, "base"},
		{"over an implied directory", []tarFile{{name: "a/b/c", body: []byte("x")}, {name: "a/b", body: []byte("y")}}, "a/b"},
		{"hard link over a directory", []tarFile{{name: "base", typ: '1', link: "PG_VERSION"}}, "base"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, data, err := restoreEntries(t, tc.entries...)
			var ae *backupsel.ArchiveError
			require.ErrorAs(t, err, &ae)
			assert.Equal(t, filepath.Join(dir, "base.tar"), ae.Archive)
			assert.Equal(t, tc.entry, ae.Entry)
			assert.Contains(t, err.Error(), "directory")
			left, err := os.ReadDir(data)
			require.NoError(t, err)
			assert.Empty(t, left, "a failed restore leaves the data directory empty")
		})
	}
}
