package backupsel_test

import (
	"context"
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

// TestSelectDefersZip: a zip with pg_wal.tar is chosen without inflating
// base.tar, learns the same identity as a full read, and restores whole.
func TestSelectDefersZip(t *testing.T) {
	ctx := context.Background()
	for _, comp := range []string{"", "gz", "zst"} {
		t.Run("base.tar"+map[string]string{"": "", "gz": ".gz", "zst": ".zst"}[comp], func(t *testing.T) {
			fx := fixture{Compression: comp, Manifest: true, WALHeader: true, Group: true, Tablespace: "/srv/ts", TSMap: true}
			dir := zipped(t, fx)
			b, err := backupsel.Select(ctx, dir, backupsel.Options{})
			require.NoError(t, err)
			require.True(t, b.Deferred)
			assert.Contains(t, b.Notes[len(b.Notes)-1], "not read through")
			assert.Zero(t, b.Archives[0].Entries, "base.tar not read through")

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
			assert.Equal(t, full.TotalBytes, b.TotalBytes, "exact with a manifest")

			data := filepath.Join(t.TempDir(), "data")
			res, err := b.Restore(ctx, data, backupsel.RestoreOptions{})
			require.NoError(t, err)
			assert.Equal(t, b.TotalBytes, res.Bytes)
			require.NoError(t, b.Manifest.VerifyDir(ctx, data, res.Rewritten...))
			assert.Equal(t, os.FileMode(0o640), mode(t, filepath.Join(data, "PG_VERSION")))
		})
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
	t.Run("folder", func(t *testing.T) {
		b := selectFixture(t, fixture{Compression: "gz", WALHeader: true}, backupsel.LayoutFolder)
		assert.False(t, b.Deferred, "only a zip proves its entries whole without reading them")
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
