package basebackup_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/backupsel"
	"github.com/pgstage/pgstage/backupsel/basebackup"
	"github.com/pgstage/pgstage/internal/libpq"
	"github.com/pgstage/pgstage/internal/pgtest"
)

// TestTakeFromStandby backs up a standby (of the newest major tested, 12+
// for standby.signal): the backup is whole, its backup_label says it was
// taken from a standby, and it restores and starts with the rows the
// standby had replayed.
func TestTakeFromStandby(t *testing.T) {
	versions := pgtest.Versions()
	major := versions[len(versions)-1]
	if major < 12 {
		t.Skip("the standby here is set up with standby.signal (12+)")
	}
	ctx := context.Background()
	p := pgtest.StartPrimary(t, major, pgtest.Options{})
	p.InsertRows(t, 10)

	// A standby made from a backup of the primary.
	first := pgtest.TempDir(t)
	_, err := basebackup.Take(ctx, configFor(p, first))
	require.NoError(t, err)
	sel, err := backupsel.Select(ctx, first, backupsel.Options{Settle: 10 * time.Millisecond})
	require.NoError(t, err)
	dir := pgtest.TempDir(t)
	data := filepath.Join(dir, "data")
	user := pgtest.OSUser(t)
	_, err = sel.Restore(ctx, data, backupsel.RestoreOptions{UID: user.UID, GID: user.GID})
	require.NoError(t, err)
	port := pgtest.FreePort(t)
	conf := fmt.Sprintf("\nprimary_conninfo = '%s'\nunix_socket_directories = '%s'\n",
		"host=127.0.0.1 port="+fmt.Sprint(p.Port)+" user=postgres", dir)
	f, err := os.OpenFile(filepath.Join(data, "postgresql.auto.conf"), os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString(conf)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	require.NoError(t, os.WriteFile(filepath.Join(data, "standby.signal"), nil, 0o600))
	pgtest.Chown(t, data)
	pgctl := filepath.Join(pgtest.BinDir(t, major), "pg_ctl")
	out, err := pgtest.Command(ctx, pgctl, "-D", data, "-l", filepath.Join(dir, "standby.log"), "-w", "-t", "90", "start", "-o", fmt.Sprintf("-p %d", port)).CombinedOutput()
	require.NoError(t, err, "%s\n%s", out, pgtest.Tail(filepath.Join(dir, "standby.log"), 30))
	t.Cleanup(func() { pgtest.Command(context.Background(), pgctl, "-D", data, "-m", "immediate", "-w", "stop").Run() })

	// Rows written after the standby started reach it.
	id := p.InsertRows(t, 10)
	lsn := p.QueryString(t, "SELECT pg_current_wal_lsn()")
	standby := &pgtest.Primary{Major: major, Host: "127.0.0.1", Port: port, ReplUser: p.ReplUser, ReplPassword: p.ReplPassword}
	require.Eventually(t, func() bool {
		return standby.QueryString(t, fmt.Sprintf("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", libpq.Quote(lsn))) == "true"
	}, time.Minute, 100*time.Millisecond)

	path := pgtest.TempDir(t)
	res, err := basebackup.Take(ctx, configFor(standby, path))
	require.NoError(t, err)
	sel, err = backupsel.Select(ctx, path, backupsel.Options{Verify: true, Settle: 10 * time.Millisecond})
	require.NoError(t, err)
	assert.Equal(t, filepath.Base(res.Path), sel.Name)
	assert.Equal(t, "standby", sel.Label.BackupFrom)
	rdir := pgtest.TempDir(t)
	rdata := filepath.Join(rdir, "data")
	_, err = sel.Restore(ctx, rdata, backupsel.RestoreOptions{UID: user.UID, GID: user.GID})
	require.NoError(t, err)
	conn := pgtest.StartCopy(t, major, rdir, rdata)
	var note string
	require.NoError(t, conn.QueryRow(ctx, "SELECT note FROM pgstage_rows WHERE id = $1", id).Scan(&note))
	assert.Equal(t, "row 10", note, "the last of the rows inserted after the standby started")
}
