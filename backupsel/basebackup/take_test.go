package basebackup_test

import (
	"context"
	"fmt"
	"os"
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

// TestTakeRestores takes a backup of every major, checks its files, has
// backupsel select (with checksums) and restore it, starts it and reads a
// row written before the backup. For 10-15 it compares the backup with
// Debian's pg_basebackup -F t -X stream of the same server, and for 13-15
// has pg_verifybackup check the extracted tars against the manifest.
func TestTakeRestores(t *testing.T) {
	pgtest.ForEachMajor(t, func(t *testing.T, major int) {
		t.Parallel()
		p := pgtest.StartPrimary(t, major, pgtest.Options{Tablespace: true})
		id := p.InsertRows(t, 100)
		oid := p.QueryString(t, "SELECT oid FROM pg_tablespace WHERE spcname = 'pgstage_ts'")
		path := pgtest.TempDir(t)
		cfg := configFor(p, path)
		var calls, last, lastTotal int64
		cfg.Progress = func(done, total int64) {
			calls++
			assert.GreaterOrEqual(t, done, last, "progress never goes back")
			assert.GreaterOrEqual(t, total, done)
			last, lastTotal = done, total
		}
		res, err := basebackup.Take(context.Background(), cfg)
		require.NoError(t, err)

		want := []string{oid + ".tar", "base.tar", "pg_wal.tar"}
		if major >= 13 {
			want = append(want, "backup_manifest")
		}
		slices.Sort(want)
		assert.Equal(t, want, res.Files)
		assert.Equal(t, []string{filepath.Base(res.Path)}, dirNames(t, path), "only the finished folder in the backup path")
		assert.Equal(t, want, dirNames(t, res.Path))
		assert.Equal(t, fmt.Sprint(major), res.Version)
		assert.Equal(t, p.SystemIdentifier(t), res.SystemIdentifier)
		assert.Less(t, res.StartLSN, res.EndLSN)
		assert.Positive(t, calls)
		assert.Equal(t, res.Bytes, last, "the last progress call reports everything")
		assert.Equal(t, last, lastTotal)

		sel, err := backupsel.Select(context.Background(), path, backupsel.Options{Verify: true, Settle: 10 * time.Millisecond})
		require.NoError(t, err)
		assert.Equal(t, filepath.Base(res.Path), sel.Name)
		assert.Empty(t, sel.Passed)
		dir := pgtest.TempDir(t)
		data, ts := filepath.Join(dir, "data"), filepath.Join(dir, "ts")
		user := pgtest.OSUser(t)
		rr, err := sel.Restore(context.Background(), data, backupsel.RestoreOptions{
			UID: user.UID, GID: user.GID, TablespaceMapping: map[string]string{p.TablespaceDir: ts},
		})
		require.NoError(t, err)
		if sel.Manifest != nil {
			require.NoError(t, sel.Manifest.VerifyDir(context.Background(), data, rr.Rewritten...))
		}
		startAndRead(t, major, dir, data, id)

		if major <= 15 {
			compareWithPgBasebackup(t, p, res)
		}
		if major >= 13 && major <= 15 {
			verifyBackup(t, major, res, oid)
		}
	})
}

// compareWithPgBasebackup takes a backup of p with Debian's pg_basebackup
// and compares it with ours: the same files, the same members in each
// archive with the same sizes, except what cannot be the same: the
// backup_label's size (its LSNs and times are spelled with as many digits
// as they need) and the WAL segments' names (each backup starts in its own
// segment, and may end in the next). backup_manifest differs in content for the same reasons.
func compareWithPgBasebackup(t *testing.T, p *pgtest.Primary, ours *basebackup.Result) {
	t.Helper()
	theirs := filepath.Join(pgtest.TempDir(t), "pg_basebackup")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, filepath.Join(pgtest.ClientBinDir(t), "pg_basebackup"),
		"-D", theirs, "-F", "t", "-X", "stream", "-h", p.Host, "-p", fmt.Sprint(p.Port), "-U", "postgres",
		"-w", "--checkpoint=fast", "--no-sync").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Equal(t, dirNames(t, theirs), ours.Files, "same files as pg_basebackup")
	for _, f := range ours.Files {
		if f == "backup_manifest" {
			continue
		}
		if f == "pg_wal.tar" {
			walShape(t, members(t, filepath.Join(ours.Path, f)), 16<<20)
			walShape(t, members(t, filepath.Join(theirs, f)), 16<<20)
			continue
		}
		a, b := labelSizeless(t, filepath.Join(ours.Path, f)), labelSizeless(t, filepath.Join(theirs, f))
		assert.ElementsMatch(t, b, a, "%s: members and sizes as pg_basebackup's", f)
	}
}

// verifyBackup extracts our tars into a plain directory, as pg_verifybackup
// needs, and runs Debian's pg_verifybackup 15 on it (parsing the WAL on 15
// only: pg_waldump 15 reads no other major's WAL).
func verifyBackup(t *testing.T, major int, res *basebackup.Result, oid string) {
	t.Helper()
	plain := filepath.Join(pgtest.TempDir(t), "plain")
	tsDir := filepath.Join(plain, "pg_tblspc", oid)
	require.NoError(t, os.MkdirAll(tsDir, 0o700))
	for _, x := range [][2]string{{"base.tar", plain}, {oid + ".tar", tsDir}, {"pg_wal.tar", filepath.Join(plain, "pg_wal")}} {
		out, err := exec.Command("tar", "-xf", filepath.Join(res.Path, x[0]), "-C", x[1]).CombinedOutput()
		require.NoError(t, err, "tar -xf %s: %s", x[0], out)
	}
	args := []string{"-m", filepath.Join(res.Path, "backup_manifest"), plain}
	if major < 15 {
		args = append(args, "-n")
	}
	out, err := exec.Command(filepath.Join(pgtest.ClientBinDir(t), "pg_verifybackup"), args...).CombinedOutput()
	require.NoError(t, err, "pg_verifybackup: %s", out)
}
