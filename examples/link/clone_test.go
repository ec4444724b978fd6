package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/internal/pgtest"
	"github.com/pgstage/pgstage/stage"
)

// TestCLIClones drives the snapshot and clone commands against a real
// staging of the first major in PGSTAGE_PG_VERSIONS, on the test's own
// filesystem (the copy method on ext4 or tmpfs): snapshot, snapshots,
// clone, clones, destroy-clone, delete-snapshot, in text and -json.
func TestCLIClones(t *testing.T) {
	major := pgtest.Versions()[0]
	pgtest.BinDir(t, major)
	bin := filepath.Join(t.TempDir(), "link")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "%s", out)

	p := pgtest.StartPrimary(t, major, pgtest.Options{Settings: map[string]string{"max_wal_senders": "10"}})
	b := pgtest.TakeBackup(t, p, pgtest.BackupOptions{Layout: pgtest.LayoutFolder, Form: pgtest.Forms(major)[0]})
	dir := pgtest.TempDir(t)
	cfg := map[string]any{
		"backup_path":   b.Path,
		"backup_settle": "-1s",
		"source":        map[string]any{"host": p.Host, "port": p.Port, "user": p.ReplUser, "sslmode": "disable"},
		"staging":       map[string]any{"data_dir": filepath.Join(dir, "data"), "port": pgtest.FreePort(t), "bin_dir": p.BinDir, "socket_dir": dir},
		"settings":      []map[string]any{{"name": "fsync", "value": "off"}},
		"snapshots":     map[string]any{"keep_last": 2},
		"password_env":  "CLI_TEST_PASSWORD",
	}
	data, err := json.Marshal(cfg)
	require.NoError(t, err)
	cfgFile := filepath.Join(t.TempDir(), "pgstage.json")
	require.NoError(t, os.WriteFile(cfgFile, data, 0o600))
	env := append(os.Environ(), "CLI_TEST_PASSWORD="+p.ReplPassword)
	run := func(wantErr bool, args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"-config", cfgFile}, args...)...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if wantErr {
			require.Error(t, err, "link %s:\n%s", strings.Join(args, " "), out)
		} else {
			require.NoError(t, err, "link %s:\n%s", strings.Join(args, " "), out)
		}
		return string(out)
	}
	t.Cleanup(func() {
		cmd := exec.Command(bin, "-config", cfgFile, "-json", "clones")
		cmd.Env = env
		var clones []stage.Clone
		if out, err := cmd.Output(); err == nil && json.Unmarshal(out, &clones) == nil {
			for _, c := range clones {
				run(false, "destroy-clone", c.ID)
			}
		}
		run(false, "disable")
	})

	run(false, "link")
	var snap stage.Snapshot
	require.NoError(t, json.Unmarshal([]byte(run(false, "-json", "snapshot")), &snap))
	require.Equal(t, stage.SnapshotCopy, snap.DataMethod)
	require.Contains(t, run(false, "snapshots"), "copy snapshot in "+snap.Location)

	var c stage.Clone
	require.NoError(t, json.Unmarshal([]byte(run(false, "-json", "clone", "-id", "alice", "-set", "work_mem=8MB", snap.ID)), &c))
	require.Equal(t, "alice", c.ID)
	require.DirExists(t, c.DataDir)
	psql := exec.Command(filepath.Join(pgtest.ClientBinDir(t), "psql"), "-XAtc", "SHOW work_mem", c.ConnString())
	got, err := psql.CombinedOutput()
	require.NoError(t, err, "%s", got)
	require.Equal(t, "8MB", strings.TrimSpace(string(got)))

	require.Contains(t, run(false, "clones"), "clone alice of snapshot "+snap.ID)
	require.Contains(t, run(true, "delete-snapshot", snap.ID), "destroy them first")
	run(false, "destroy-clone", "alice")
	require.NoDirExists(t, c.Dir)
	var clones []stage.Clone
	require.NoError(t, json.Unmarshal([]byte(run(false, "-json", "clones")), &clones))
	require.Empty(t, clones)
	run(false, "delete-snapshot", snap.ID)
	require.NoDirExists(t, snap.Location)
}
