package backupsel_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/pgstage/pgstage/backupsel"
	"github.com/pgstage/pgstage/internal/pgver"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// zipped writes the fixture as the only backup, a zip, of a new backup path.
func zipped(t *testing.T, fx fixture) string {
	t.Helper()
	dir := t.TempDir()
	writeZip(t, filepath.Join(dir, "PostgreSQL_T20261124.zip"), fx.build(t), "")
	return dir
}

// TestSelectDefers: a zip with pg_wal.tar, or a folder whose base.tar is
// compressed, is chosen without decoding base.tar, learns the same identity
// as a full read, and restores whole.
func TestSelectDefers(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		layout backupsel.Layout
		comp   string
	}{
		{backupsel.LayoutZip, ""}, {backupsel.LayoutZip, "gz"}, {backupsel.LayoutZip, "zst"},
		{backupsel.LayoutFolder, "gz"}, {backupsel.LayoutFolder, "lz4"}, {backupsel.LayoutFolder, "zst"},
		{backupsel.LayoutDirect, "gz"},
	} {
		for _, manifest := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/base.tar.%s/manifest=%v", c.layout, c.comp, manifest), func(t *testing.T) {
				fx := fixture{Compression: c.comp, Manifest: manifest, WALHeader: true, Group: true, Tablespace: "/srv/ts", TSMap: true}
				dir := laidOut(t, fx.build(t), c.layout)
				b, err := backupsel.Select(ctx, dir, backupsel.Options{})
				require.NoError(t, err)
				require.True(t, b.Deferred)
				assert.Contains(t, b.Notes[len(b.Notes)-1], "not read through")
				assert.Zero(t, b.Archives[0].Entries, "base.tar not read through")
				for _, a := range b.Archives {
					assert.Equal(t, b.Archives[0].Compression, a.Compression, "%s: magic read", a.Name)
				}

				full, err := backupsel.Select(ctx, dir, backupsel.Options{Verify: true})
				require.NoError(t, err)
				require.False(t, full.Deferred)
				assert.Equal(t, "15", b.PGVersion)
				assert.Equal(t, pgver.V15, b.Major)
				assert.Equal(t, full.PGVersion, b.PGVersion)
				assert.Equal(t, full.SystemIdentifier, b.SystemIdentifier)
				assert.True(t, b.GroupAccess)
				assert.Equal(t, full.Label, b.Label)
				assert.Equal(t, full.Tablespaces, b.Tablespaces)
				assert.Equal(t, full.WAL, b.WAL)
				assert.Equal(t, full.Archives[0].Compression, b.Archives[0].Compression)
				if manifest {
					assert.Equal(t, full.TotalBytes, b.TotalBytes, "exact with a manifest")
				} else {
					assert.Positive(t, b.TotalBytes, "an estimate")
				}

				data := filepath.Join(t.TempDir(), "data")
				res, err := b.Restore(ctx, data, backupsel.RestoreOptions{})
				require.NoError(t, err)
				assert.Equal(t, full.TotalBytes, res.Bytes)
				if manifest {
					require.NoError(t, b.Manifest.VerifyDir(ctx, data, res.Rewritten...))
				}
				assert.Equal(t, os.FileMode(0o640), mode(t, filepath.Join(data, "PG_VERSION")))
			})
		}
	}
}

// TestSelectDoesNotDefer: whatever Select cannot learn from the small parts
// of a zip makes it read the zip through, as for a folder.
func TestSelectDoesNotDefer(t *testing.T) {
	for name, fx := range map[string]fixture{
		"WAL page magic unknown":        {Manifest: true},
		"WAL inside base.tar":           {WAL: "base", WALHeader: true},
		"tablespace without a map":      {Tablespace: "/srv/ts", WALHeader: true},
		"9.6 backup, pg_xlog, no magic": {Major: "9.6", WALHeader: true},
	} {
		t.Run(name, func(t *testing.T) {
			b, err := backupsel.Select(context.Background(), zipped(t, fx), backupsel.Options{})
			require.NoError(t, err)
			assert.False(t, b.Deferred)
			assert.NotZero(t, b.Archives[0].Entries, "base.tar read through")
			assert.Equal(t, uint64(7300000000000000001), b.SystemIdentifier)
		})
	}
	t.Run("Verify", func(t *testing.T) {
		b, err := backupsel.Select(context.Background(), zipped(t, fixture{Manifest: true, WALHeader: true}), backupsel.Options{Verify: true})
		require.NoError(t, err)
		assert.False(t, b.Deferred, "checksums need every byte")
	})
	t.Run("folder with base.tar uncompressed", func(t *testing.T) {
		dir := laidOut(t, fixture{WALHeader: true}.build(t), backupsel.LayoutFolder)
		b, err := backupsel.Select(context.Background(), dir, backupsel.Options{})
		require.NoError(t, err)
		assert.False(t, b.Deferred, "its headers are read with a seek per file: cheap, and it proves the tar whole")
		assert.NotZero(t, b.Archives[0].Entries, "base.tar read through")
	})
	t.Run("folder with compressed base.tar, Verify", func(t *testing.T) {
		b := selectFixture(t, fixture{Compression: "gz", WALHeader: true}, backupsel.LayoutFolder)
		assert.False(t, b.Deferred, "checksums need every byte")
	})
}

// TestRestoreDeferredNotWhole: the checks a deferred Select leaves to
// Restore fail it with a NotWholeError naming what is wrong, and leave the
// data directory as it was.
func TestRestoreDeferredNotWhole(t *testing.T) {
	ctx := context.Background()
	for name, c := range map[string]struct {
		fx   fixture
		want string
	}{
		"size differs from backup_manifest": {fixture{Manifest: true, WALHeader: true, Skew: "base/1/1259"}, "base/1/1259"},
		"pg_control of another system":      {fixture{WALHeader: true, WALSysID: 7300000000000000999}, "system identifier 7300000000000000001"},
		"PG_VERSION of another major":       {fixture{Major: "13", WALHeader: true, WALMajor: "15"}, "PG_VERSION says 13"},
		"no pg_control":                     {fixture{WALHeader: true, NoPGControl: true}, "no global/pg_control"},
		// Not at the head, so Select did not see it: it would send a
		// tablespace to the location the backup names.
		"tablespace_map not at the head": {fixture{WALHeader: true, Files: map[string]string{"tablespace_map": "16400 /srv/source_ts\n"}},
			"tablespace_map after its first entries"},
		"unsafe entry": {fixture{WALHeader: true, Files: map[string]string{"../evil": "x"}}, "../evil"},
	} {
		t.Run(name, func(t *testing.T) {
			b, err := backupsel.Select(ctx, zipped(t, c.fx), backupsel.Options{})
			require.NoError(t, err)
			require.True(t, b.Deferred)

			parent := t.TempDir()
			data := filepath.Join(parent, "data")
			_, err = b.Restore(ctx, data, backupsel.RestoreOptions{})
			var nw *backupsel.NotWholeError
			require.ErrorAs(t, err, &nw)
			assert.Equal(t, "PostgreSQL_T20261124.zip", nw.Backup)
			assert.ErrorContains(t, err, c.want)
			assert.NoDirExists(t, data, "a failed restore removes the data directory it created")

			// An existing empty data directory stays, empty.
			require.NoError(t, os.Mkdir(data, 0o700))
			_, err = b.Restore(ctx, data, backupsel.RestoreOptions{})
			require.ErrorAs(t, err, &nw)
			entries, err := os.ReadDir(data)
			require.NoError(t, err)
			assert.Empty(t, entries)
		})
	}
}

// TestSelectPassOver: a candidate found not whole by Restore is passed over
// when selecting again, with the reason given, and the next one is taken.
func TestSelectPassOver(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	writeZip(t, filepath.Join(dir, "PostgreSQL_T20261124.zip"), fixture{WALHeader: true, WALSysID: 7300000000000000999}.build(t), "")
	writeZip(t, filepath.Join(dir, "PostgreSQL_T20261123.zip"), fixture{WALHeader: true}.build(t), "")
	b, err := backupsel.Select(ctx, dir, backupsel.Options{})
	require.NoError(t, err)
	require.Equal(t, "PostgreSQL_T20261124.zip", b.Name)
	_, err = b.Restore(ctx, filepath.Join(t.TempDir(), "data"), backupsel.RestoreOptions{})
	var nw *backupsel.NotWholeError
	require.ErrorAs(t, err, &nw)

	next, err := backupsel.Select(ctx, dir, backupsel.Options{PassOver: []backupsel.Candidate{{Location: b.Location, Reason: "not whole: " + nw.Err.Error(), Err: err}}})
	require.NoError(t, err)
	assert.Equal(t, "PostgreSQL_T20261123.zip", next.Name)
	require.Len(t, next.Passed, 1)
	assert.Equal(t, b.Location, next.Passed[0].Location)
	assert.Contains(t, next.Passed[0].Reason, "global/pg_control has system identifier")
	_, err = next.Restore(ctx, filepath.Join(t.TempDir(), "data"), backupsel.RestoreOptions{})
	require.NoError(t, err)
}

// TestRestoreDeferredDamaged: a compressed archive of a folder, cut short or
// damaged, is not decoded by Select; Restore finds it, fails with a
// NotWholeError naming the file, and leaves the data directory empty.
func TestRestoreDeferredDamaged(t *testing.T) {
	ctx := context.Background()
	// Content that does not compress, so that a cut or a changed byte
	// falls inside file data, blocks after the head Select reads (lz4
	// frames of 4 MiB blocks here).
	noise := make([]byte, 8<<20)
	rand.NewChaCha8([32]byte{1}).Read(noise)
	for _, comp := range []string{"gz", "lz4", "zst"} {
		for _, damage := range []string{"cut short", "byte changed"} {
			t.Run(comp+"/"+damage, func(t *testing.T) {
				fx := fixture{Compression: comp, Manifest: true, WALHeader: true, Tablespace: "/srv/ts", TSMap: true,
					Files: map[string]string{"base/1/16384": string(noise)}}
				files := fx.build(t)
				name := "base.tar." + comp
				z := files[name]
				if damage == "cut short" {
					files[name] = z[:len(z)*3/4]
				} else {
					z = append([]byte(nil), z...)
					z[len(z)*3/4] ^= 0x55
					files[name] = z
				}
				dir := laidOut(t, files, backupsel.LayoutFolder)
				b, err := backupsel.Select(ctx, dir, backupsel.Options{})
				require.NoError(t, err, "Select reads only the head of a compressed base.tar")
				require.True(t, b.Deferred)

				data := filepath.Join(t.TempDir(), "data")
				require.NoError(t, os.Mkdir(data, 0o700))
				_, err = b.Restore(ctx, data, backupsel.RestoreOptions{})
				var nw *backupsel.NotWholeError
				require.ErrorAs(t, err, &nw)
				assert.Equal(t, "PostgreSQL_T20261124100000", nw.Backup)
				assert.ErrorContains(t, err, filepath.Join(b.Location, name))
				var ae *backupsel.ArchiveError
				assert.ErrorAs(t, err, &ae, "the damage is the archive's")
				entries, err := os.ReadDir(data)
				require.NoError(t, err)
				assert.Empty(t, entries, "a restore found not whole leaves the data directory empty")
				assert.NoDirExists(t, filepath.Join(data+".tablespaces", "16400"), "nor the tablespace directory it made")

				_, err = backupsel.Select(ctx, dir, backupsel.Options{Verify: true})
				require.ErrorIs(t, err, backupsel.ErrNoBackup, "a full read refuses the same backup")
				assert.ErrorContains(t, err, name)
			})
		}
	}
}

// TestRestoreDeferredDamagedTablespace: a tablespace archive is deferred as
// base.tar is; one that does not open as a tar is refused by Select, one
// cut short by Restore.
func TestRestoreDeferredDamagedTablespace(t *testing.T) {
	ctx := context.Background()
	name := "16400.tar.gz"
	fx := fixture{Compression: "gz", WALHeader: true, Tablespace: "/srv/ts", TSMap: true}

	files := fx.build(t)
	files[name] = []byte("\x1f\x8b not gzip")
	b, err := backupsel.Select(ctx, laidOut(t, files, backupsel.LayoutFolder), backupsel.Options{})
	require.ErrorIs(t, err, backupsel.ErrNoBackup)
	assert.ErrorContains(t, err, name)
	assert.Nil(t, b)

	files = fx.build(t)
	files[name] = files[name][:len(files[name])-10]
	b, err = backupsel.Select(ctx, laidOut(t, files, backupsel.LayoutFolder), backupsel.Options{})
	require.NoError(t, err)
	require.True(t, b.Deferred)
	data := filepath.Join(t.TempDir(), "data")
	_, err = b.Restore(ctx, data, backupsel.RestoreOptions{})
	var nw *backupsel.NotWholeError
	require.ErrorAs(t, err, &nw)
	assert.ErrorContains(t, err, name)
	assert.NoDirExists(t, data)
	assert.NoDirExists(t, data+".tablespaces", "the parent Restore made for the tablespace is removed too")
}
