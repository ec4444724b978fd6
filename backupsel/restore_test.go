package backupsel_test

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/pgstage/pgstage/backupsel"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func selectFixture(t *testing.T, fx fixture, layout backupsel.Layout) *backupsel.Backup {
	t.Helper()
	b, err := backupsel.Select(context.Background(), laidOut(t, fx.build(t), layout), backupsel.Options{Verify: true})
	require.NoError(t, err)
	require.Equal(t, layout, b.Layout)
	return b
}

// laidOut writes the backup files as the only backup of a new backup path,
// in layout, and returns the path.
func laidOut(t *testing.T, files map[string][]byte, layout backupsel.Layout) string {
	t.Helper()
	dir := t.TempDir()
	switch layout {
	case backupsel.LayoutFolder:
		writeFiles(t, filepath.Join(dir, "PostgreSQL_T20261124100000"), files)
	case backupsel.LayoutDirect:
		writeFiles(t, dir, files)
	case backupsel.LayoutZip:
		writeZip(t, filepath.Join(dir, "PostgreSQL_T20261124.zip"), files, "")
	}
	return dir
}

func mode(t *testing.T, p string) os.FileMode {
	t.Helper()
	info, err := os.Lstat(p)
	require.NoError(t, err)
	return info.Mode().Perm()
}

func TestRestoreForms(t *testing.T) {
	n := 0
	for _, layout := range []backupsel.Layout{backupsel.LayoutFolder, backupsel.LayoutDirect, backupsel.LayoutZip} {
		for _, comp := range []string{"", "gz", "lz4", "zst"} {
			for _, wal := range []string{"archive", "base"} {
				writers := []int{0, 1, 2, 64}[n%4] // RestoreOptions.Writers, the default first
				n++
				t.Run(fmt.Sprintf("%d/%s/%s/writers=%d", layout, comp, wal, writers), func(t *testing.T) {
					// One file above the small-file size, so large
					// files take their own path (copy_file_range from
					// uncompressed archives).
					big := map[string]string{"base/1/big": strings.Repeat("0123456789abcdef", 40000)}
					b := selectFixture(t, fixture{Compression: comp, WAL: wal, Manifest: true, Files: big}, layout)
					data := filepath.Join(t.TempDir(), "data")
					var calls int
					var lastDone, lastTotal int64
					res, err := b.Restore(context.Background(), data, backupsel.RestoreOptions{
						Writers:  writers,
						Progress: func(done, total int64) { calls++; lastDone, lastTotal = done, total },
					})
					require.NoError(t, err)
					assert.Equal(t, []string{"postmaster.opts"}, res.Skipped)
					assert.NoFileExists(t, filepath.Join(data, "postmaster.opts"))
					assert.FileExists(t, filepath.Join(data, "pg_wal", fxStartSeg))
					assert.FileExists(t, filepath.Join(data, "backup_label"))
					ctl, err := os.ReadFile(filepath.Join(data, "global", "pg_control"))
					require.NoError(t, err)
					assert.Equal(t, pgControl(7300000000000000001), ctl)
					assert.Equal(t, os.FileMode(0o700), mode(t, data))
					assert.Equal(t, os.FileMode(0o700), mode(t, filepath.Join(data, "base", "1")))
					assert.Equal(t, os.FileMode(0o600), mode(t, filepath.Join(data, "base", "1", "1259")))
					got, err := os.ReadFile(filepath.Join(data, "base", "1", "big"))
					require.NoError(t, err)
					assert.Equal(t, big["base/1/big"], string(got))
					require.NotZero(t, calls)
					assert.Equal(t, lastDone, lastTotal, "the last progress call reports completion")
					assert.Equal(t, b.TotalBytes, lastTotal)
					require.NotNil(t, b.Manifest)
					require.NoError(t, b.Manifest.VerifyDir(context.Background(), data))
				})
			}
		}
	}
}

// TestRestoreAcrossFilesystems restores an uncompressed backup kept on
// tmpfs into ext4, where copy_file_range says EXDEV: writers fall back to
// copying through the chunk pool, 64 of them sharing its 8 chunks.
func TestRestoreAcrossFilesystems(t *testing.T) {
	var st unix.Statfs_t
	if err := unix.Statfs("/dev/shm", &st); err != nil || st.Type != unix.TMPFS_MAGIC {
		t.Skipf("no tmpfs at /dev/shm (%v): cannot make copy_file_range cross filesystems", err)
	}
	if err := unix.Statfs(os.TempDir(), &st); err != nil || st.Type == unix.TMPFS_MAGIC {
		t.Skipf("%s is tmpfs too (%v)", os.TempDir(), err)
	}
	shm, err := os.MkdirTemp("/dev/shm", "pgstage-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(shm) })
	big := map[string]string{}
	for i := range 20 {
		big[fmt.Sprintf("base/1/big%d", i)] = strings.Repeat(fmt.Sprintf("%015d\n", i), 80000+i)
	}
	files := fixture{WAL: "archive", Files: big}.build(t)
	writeFiles(t, shm, files)
	restore := func(path string, writers int) string {
		b, err := backupsel.Select(context.Background(), path, backupsel.Options{Verify: true})
		require.NoError(t, err)
		data := filepath.Join(t.TempDir(), "data")
		_, err = b.Restore(context.Background(), data, backupsel.RestoreOptions{Writers: writers})
		require.NoError(t, err)
		return data
	}
	before := backupsel.CopyFallbacks()
	across := restore(shm, 64)
	require.Greater(t, backupsel.CopyFallbacks()-before, int64(len(big)), "files copied without copy_file_range")
	// The same backup restored within one filesystem, by copy_file_range.
	within := t.TempDir()
	writeFiles(t, within, files)
	before = backupsel.CopyFallbacks()
	same := restore(within, 0)
	require.Zero(t, backupsel.CopyFallbacks()-before)
	require.Equal(t, treeSums(t, same), treeSums(t, across))
	for name, want := range big {
		got, err := os.ReadFile(filepath.Join(across, name))
		require.NoError(t, err)
		require.Equal(t, want, string(got), name)
	}
}

// treeSums maps every path under dir to its mode and, for a file, its
// content's SHA-256.
func treeSums(t *testing.T, dir string) map[string]string {
	t.Helper()
	sums := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		sums[rel] = info.Mode().String()
		if info.Mode().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sums[rel] += fmt.Sprintf(" %x", sha256.Sum256(data))
		}
		return nil
	}))
	return sums
}

func TestRestoreGroupAccessAndOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown needs root")
	}
	b := selectFixture(t, fixture{Group: true}, backupsel.LayoutDirect)
	require.True(t, b.GroupAccess)
	data := filepath.Join(t.TempDir(), "data")
	_, err := b.Restore(context.Background(), data, backupsel.RestoreOptions{UID: 65534, GID: 65534})
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o750), mode(t, data))
	assert.Equal(t, os.FileMode(0o750), mode(t, filepath.Join(data, "base")))
	assert.Equal(t, os.FileMode(0o640), mode(t, filepath.Join(data, "PG_VERSION")))
	assert.Equal(t, os.FileMode(0o640), mode(t, filepath.Join(data, "global", "pg_control")))
	require.NoError(t, filepath.Walk(data, func(p string, info os.FileInfo, err error) error {
		require.NoError(t, err)
		st := info.Sys().(*syscall.Stat_t)
		assert.Equal(t, uint32(65534), st.Uid, "owner of %s", p)
		assert.Equal(t, uint32(65534), st.Gid, "group of %s", p)
		return nil
	}))
}

func TestRestoreRefusesNonEmpty(t *testing.T) {
	b := selectFixture(t, fixture{}, backupsel.LayoutDirect)
	data := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(data, "keep.txt"), []byte("mine"), 0o600))
	_, err := b.Restore(context.Background(), data, backupsel.RestoreOptions{})
	require.ErrorIs(t, err, backupsel.ErrNotEmpty)
	assert.Contains(t, err.Error(), data)
	assert.FileExists(t, filepath.Join(data, "keep.txt"), "a refused restore leaves the directory as it was")

	_, err = b.Restore(context.Background(), data, backupsel.RestoreOptions{Overwrite: true})
	require.NoError(t, err)
	assert.NoFileExists(t, filepath.Join(data, "keep.txt"))
	assert.FileExists(t, filepath.Join(data, "PG_VERSION"))
}

func TestRestoreTablespace(t *testing.T) {
	for _, tsmap := range []bool{false, true} {
		t.Run(fmt.Sprintf("tablespace_map=%v", tsmap), func(t *testing.T) {
			src := "/nonexistent/source/tblspc"
			b := selectFixture(t, fixture{Tablespace: src, TSMap: tsmap, Manifest: true}, backupsel.LayoutFolder)
			require.Equal(t, []backupsel.Tablespace{{OID: fxOID, Location: src}}, b.Tablespaces)
			tmp := t.TempDir()
			data, moved := filepath.Join(tmp, "data"), filepath.Join(tmp, "ts")
			res, err := b.Restore(context.Background(), data, backupsel.RestoreOptions{
				TablespaceMapping: map[string]string{src: moved},
			})
			require.NoError(t, err)
			assert.Equal(t, []backupsel.Tablespace{{OID: fxOID, Location: moved}}, res.Tablespaces)
			link, err := os.Readlink(filepath.Join(data, "pg_tblspc", fmt.Sprint(fxOID)))
			require.NoError(t, err)
			assert.Equal(t, moved, link)
			assert.FileExists(t, filepath.Join(moved, "PG_15_202209061", "5", "16401"))
			if tsmap {
				m, err := os.ReadFile(filepath.Join(data, "tablespace_map"))
				require.NoError(t, err)
				assert.Equal(t, fmt.Sprintf("%d %s\n", fxOID, moved), string(m))
			}
			if tsmap {
				assert.Equal(t, []string{"tablespace_map"}, res.Rewritten)
				err := b.Manifest.VerifyDir(context.Background(), data)
				require.ErrorContains(t, err, "tablespace_map: size", "a rewritten map differs from the manifest")
			}
			require.NoError(t, b.Manifest.VerifyDir(context.Background(), data, res.Rewritten...))
		})
	}
}

// TestRestoreTablespaceDestinations checks tablespaces never go to (or clear)
// the location the backup names: by default they go beside the data
// directory, a mapped directory is never cleared, and destinations inside or
// above the data directory are refused.
func TestRestoreTablespaceDestinations(t *testing.T) {
	tmp := t.TempDir()
	src := filepath.Join(tmp, "in-use")
	require.NoError(t, os.MkdirAll(src, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(src, "PG_VERSION"), []byte("15\n"), 0o600))
	b := selectFixture(t, fixture{Tablespace: src}, backupsel.LayoutFolder)
	oid := fmt.Sprint(fxOID)
	data := filepath.Join(tmp, "data")

	res, err := b.Restore(context.Background(), data, backupsel.RestoreOptions{Overwrite: true})
	require.NoError(t, err)
	assert.Equal(t, []backupsel.Tablespace{{OID: fxOID, Location: filepath.Join(tmp, "data.tablespaces", oid)}}, res.Tablespaces)
	assert.FileExists(t, filepath.Join(tmp, "data.tablespaces", oid, "PG_15_202209061", "5", "16401"))
	assert.FileExists(t, filepath.Join(src, "PG_VERSION"), "the source's own tablespace directory is left alone")
	assert.NoDirExists(t, filepath.Join(src, "PG_15_202209061"))

	// Overwrite clears a directory under the chosen TablespaceDir.
	res, err = b.Restore(context.Background(), data, backupsel.RestoreOptions{Overwrite: true, TablespaceDir: filepath.Join(tmp, "data.tablespaces")})
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(tmp, "data.tablespaces", oid), res.Tablespaces[0].Location)

	// A mapped destination holding files is refused even with Overwrite.
	mine := filepath.Join(tmp, "mine")
	require.NoError(t, os.MkdirAll(mine, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(mine, "keep"), []byte("x"), 0o600))
	_, err = b.Restore(context.Background(), filepath.Join(tmp, "data2"), backupsel.RestoreOptions{
		Overwrite: true, TablespaceMapping: map[string]string{src: mine}})
	require.ErrorIs(t, err, backupsel.ErrNotEmpty)
	assert.FileExists(t, filepath.Join(mine, "keep"))
	assert.NoDirExists(t, filepath.Join(tmp, "data2"), "a failed restore removes the data directory it created")

	// Symbolic links: one that leads into the data directory, and a data
	// directory reached through one that leads into the destination.
	require.NoError(t, os.MkdirAll(filepath.Join(tmp, "data3"), 0o700))
	require.NoError(t, os.Symlink(filepath.Join(tmp, "data3"), filepath.Join(tmp, "to-data3")))
	require.NoError(t, os.MkdirAll(filepath.Join(tmp, "outer"), 0o700))
	require.NoError(t, os.Symlink(filepath.Join(tmp, "outer"), filepath.Join(tmp, "to-outer")))
	for name, c := range map[string]struct {
		data string
		opts backupsel.RestoreOptions
	}{
		"mapped through a link into the data dir": {filepath.Join(tmp, "data3"),
			backupsel.RestoreOptions{TablespaceMapping: map[string]string{src: filepath.Join(tmp, "to-data3", "ts")}}},
		"dir through a link into the data dir": {filepath.Join(tmp, "data3"),
			backupsel.RestoreOptions{TablespaceDir: filepath.Join(tmp, "to-data3", "pg_tblspc")}},
		"data dir through a link below the destination": {filepath.Join(tmp, "to-outer", "data"),
			backupsel.RestoreOptions{TablespaceMapping: map[string]string{src: filepath.Join(tmp, "outer")}}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := b.Restore(context.Background(), c.data, c.opts)
			require.ErrorContains(t, err, "inside or above the data directory")
			entries, _ := os.ReadDir(filepath.Join(tmp, "data3"))
			assert.Empty(t, entries, "nothing written into the data directory")
		})
	}

	for name, opts := range map[string]backupsel.RestoreOptions{
		"mapped inside":      {TablespaceMapping: map[string]string{src: filepath.Join(tmp, "data3", "ts")}},
		"mapped above":       {TablespaceMapping: map[string]string{src: tmp}},
		"dir is data dir":    {TablespaceDir: filepath.Join(tmp, "data3")},
		"dir inside":         {TablespaceDir: filepath.Join(tmp, "data3", "pg_tblspc")},
		"mapped to data dir": {TablespaceMapping: map[string]string{src: filepath.Join(tmp, "data3")}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := b.Restore(context.Background(), filepath.Join(tmp, "data3"), opts)
			require.ErrorContains(t, err, "inside or above the data directory")
			assert.ErrorContains(t, err, src, "the error names the source location")
			assert.FileExists(t, filepath.Join(src, "PG_VERSION"))
		})
	}
}

func TestRestoreWALPath(t *testing.T) {
	dir, wal := t.TempDir(), t.TempDir()
	writeFiles(t, dir, fixture{WAL: "none", Major: "9.6"}.build(t))
	writeFiles(t, wal, map[string][]byte{fxStartSeg: []byte("segment"), "000000010000000000000003": []byte("next"), "README": []byte("x")})
	b, err := backupsel.Select(context.Background(), dir, backupsel.Options{WALPath: wal})
	require.NoError(t, err)
	data := filepath.Join(t.TempDir(), "data")
	res, err := b.Restore(context.Background(), data, backupsel.RestoreOptions{})
	require.NoError(t, err)
	assert.Equal(t, 2, res.WALFiles)
	assert.Equal(t, filepath.Join(data, "pg_xlog"), res.WALDir, "9.x keeps WAL in pg_xlog")
	got, err := os.ReadFile(filepath.Join(data, "pg_xlog", fxStartSeg))
	require.NoError(t, err)
	assert.Equal(t, "segment", string(got))
	assert.NoFileExists(t, filepath.Join(data, "pg_xlog", "README"))
}

func TestRestoreRefusesUnsafeEntries(t *testing.T) {
	tests := []struct {
		name  string
		entry tarFile
		why   string
	}{
		{"symlink outside", tarFile{name: "base/evil", typ: '2', link: "../../../etc"}, "only at pg_tblspc/<oid>"},
		{"absolute symlink", tarFile{name: "evil", typ: '2', link: "/etc/passwd"}, "only at pg_tblspc/<oid>"},
		{"symlink inside", tarFile{name: "base/l", typ: '2', link: "1"}, "only at pg_tblspc/<oid>"},
		{"hard link outside", tarFile{name: "evil", typ: '1', link: "/etc/passwd"}, "outside the target"},
		{"hard link to nothing restored", tarFile{name: "evil", typ: '1', link: "nothing/here"}, "not a file restored"},
		{"device", tarFile{name: "dev", typ: '3'}, "device file"},
		{"fifo", tarFile{name: "fifo", typ: '6'}, "FIFO"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// The bad entry sits after legitimate files, so the restore has
			// written something before it fails.
			dir, data, err := restoreEntries(t, tc.entry)
			var ae *backupsel.ArchiveError
			require.ErrorAs(t, err, &ae)
			require.ErrorIs(t, err, backupsel.ErrUnsafeEntry)
			assert.Equal(t, tc.entry.name, ae.Entry)
			assert.Equal(t, filepath.Join(dir, "base.tar"), ae.Archive)
			assert.ErrorContains(t, ae.Err, tc.why)
			left, err := os.ReadDir(data)
			require.NoError(t, err)
			assert.Empty(t, left, "a failed restore leaves the data directory empty")
		})
	}
}

// TestRestoreRefusesSymlinkChains restores archives whose links each look
// harmless as text: d/up -> .. stays inside, and postgresql.conf ->
// d/up/../outside.conf joins to outside.conf, yet through the first link the
// second resolves to the data directory's parent, so a later edit of
// postgresql.conf would write outside. Only pg_tblspc/<oid> in base.tar may
// be a link; links in pg_wal.tar and tablespace archives are refused too.
func TestRestoreRefusesSymlinkChains(t *testing.T) {
	chain := []tarFile{
		{name: "d/", typ: tar.TypeDir},
		{name: "d/up", typ: tar.TypeSymlink, link: ".."},
		{name: "postgresql.conf", typ: tar.TypeSymlink, link: "d/up/../outside.conf"},
	}
	tests := []struct {
		name    string
		archive string // file in the backup that holds entries
		entries []tarFile
		refused string // entry named by the error
	}{
		{"two-link chain in base.tar", "base.tar", chain, "d/up"},
		{"pg_wal link in base.tar", "base.tar", []tarFile{{name: "pg_wal2", typ: tar.TypeSymlink, link: "pg_wal"}}, "pg_wal2"},
		{"link in pg_wal.tar", "pg_wal.tar", []tarFile{{name: "000000010000000000000009", typ: tar.TypeSymlink, link: fxStartSeg}}, "000000010000000000000009"},
		{"pg_tblspc link in pg_wal.tar", "pg_wal.tar", []tarFile{{name: "pg_tblspc/16400", typ: tar.TypeSymlink, link: "x"}}, "pg_tblspc/16400"},
		{"link in a tablespace archive", fmt.Sprintf("%d.tar", fxOID), []tarFile{{name: "PG_15_202209061/l", typ: tar.TypeSymlink, link: "5"}}, "PG_15_202209061/l"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tmp := t.TempDir()
			fx := fixture{Tablespace: filepath.Join(tmp, "src-ts")}
			files := fx.build(t)
			var entries []tarFile
			switch tc.archive {
			case "base.tar":
				entries = append(entries, tarFile{name: "backup_label", body: []byte(backupLabel())},
					tarFile{name: "PG_VERSION", body: []byte("15\n")},
					tarFile{name: fmt.Sprintf("pg_tblspc/%d", fxOID), typ: tar.TypeSymlink, link: fx.Tablespace})
				entries = append(entries, tc.entries...)
				entries = append(entries, tarFile{name: "global/pg_control", body: pgControl(1)})
			case "pg_wal.tar":
				entries = append([]tarFile{{name: fxStartSeg, body: []byte("seg")}}, tc.entries...)
			default:
				entries = append([]tarFile{{name: "PG_15_202209061/", typ: tar.TypeDir}, {name: "PG_15_202209061/5/", typ: tar.TypeDir}}, tc.entries...)
			}
			files[tc.archive] = makeTar(t, entries, 0o600)
			writeFiles(t, dir, files)
			b, err := backupsel.Select(context.Background(), dir, backupsel.Options{})
			require.NoError(t, err)
			data := filepath.Join(tmp, "data")
			_, err = b.Restore(context.Background(), data, backupsel.RestoreOptions{})
			require.ErrorIs(t, err, backupsel.ErrUnsafeEntry)
			var ae *backupsel.ArchiveError
			require.ErrorAs(t, err, &ae)
			assert.Equal(t, tc.refused, ae.Entry)
			assert.Equal(t, filepath.Join(dir, tc.archive), ae.Archive)
			assert.NoDirExists(t, data, "a failed restore removes the data directory it created")
			assert.NoFileExists(t, filepath.Join(tmp, "outside.conf"))
		})
	}
}

func TestRestoreTruncatedLargeFile(t *testing.T) {
	dir := t.TempDir()
	files := fixture{Files: map[string]string{"base/1/big": strings.Repeat("x", 1<<20)}}.build(t)
	writeFiles(t, dir, files)
	b, err := backupsel.Select(context.Background(), dir, backupsel.Options{})
	require.NoError(t, err)
	// Cut base.tar inside the large file after Select checked it.
	full := files["base.tar"]
	i := strings.Index(string(full), strings.Repeat("x", 512))
	require.Positive(t, i)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "base.tar"), full[:i+4096], 0o644))
	data := filepath.Join(t.TempDir(), "data")
	_, err = b.Restore(context.Background(), data, backupsel.RestoreOptions{})
	var ae *backupsel.ArchiveError
	require.ErrorAs(t, err, &ae)
	assert.Contains(t, err.Error(), "cut short")
	assert.NoDirExists(t, data)
}

func TestRestoreCorruptArchiveLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	files := fixture{Compression: "gz"}.build(t)
	writeFiles(t, dir, files)
	b, err := backupsel.Select(context.Background(), dir, backupsel.Options{})
	require.NoError(t, err)
	// The archive is damaged after Select checked it.
	gz := files["base.tar.gz"]
	damaged := append([]byte{}, gz[:len(gz)/2]...)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "base.tar.gz"), damaged, 0o644))
	data := filepath.Join(t.TempDir(), "data")
	_, err = b.Restore(context.Background(), data, backupsel.RestoreOptions{})
	var ae *backupsel.ArchiveError
	require.ErrorAs(t, err, &ae)
	assert.True(t, strings.HasSuffix(ae.Archive, "base.tar.gz"), "got %s", ae.Archive)
	assert.NoDirExists(t, data)
}
