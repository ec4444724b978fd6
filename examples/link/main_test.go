package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgstage/pgstage/internal/pgtest"
	"github.com/pgstage/pgstage/stage"
	"github.com/stretchr/testify/require"
)

// TestCLI builds the command and drives a real staging of the first major
// in PGSTAGE_PG_VERSIONS through it: link, status, snapshot, disable,
// enable, resync, with the password from a file and then from the
// environment, and -json output.
func TestCLI(t *testing.T) {
	major := pgtest.Versions()[0]
	pgtest.BinDir(t, major)
	bin := filepath.Join(t.TempDir(), "link")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "%s", out)

	p := pgtest.StartPrimary(t, major, pgtest.Options{Settings: map[string]string{"max_wal_senders": "10"}})
	b := pgtest.TakeBackup(t, p, pgtest.BackupOptions{Layout: pgtest.LayoutFolder, Form: pgtest.Forms(major)[0]})
	dir := pgtest.TempDir(t)
	pwFile := filepath.Join(t.TempDir(), "password")
	require.NoError(t, os.WriteFile(pwFile, []byte(p.ReplPassword+"\n"), 0o600))
	port := pgtest.FreePort(t)
	cfg := map[string]any{
		"backup_path":   b.Path,
		"backup_settle": "-1s",
		"source":        map[string]any{"host": p.Host, "port": p.Port, "user": p.ReplUser, "sslmode": "disable"},
		"staging":       map[string]any{"data_dir": filepath.Join(dir, "data"), "port": port, "bin_dir": p.BinDir, "socket_dir": dir},
		"settings":      []map[string]any{{"name": "fsync", "value": "off"}, {"name": "archive_command", "comment": true}},
		"password_file": pwFile,
	}
	data, err := json.Marshal(cfg)
	require.NoError(t, err)
	cfgFile := filepath.Join(t.TempDir(), "pgstage.json")
	require.NoError(t, os.WriteFile(cfgFile, data, 0o600))
	t.Cleanup(func() { // stop the staging server, whichever password source the file names by then
		cmd := exec.Command(bin, "-config", cfgFile, "disable")
		cmd.Env = append(os.Environ(), "CLI_TEST_PASSWORD="+p.ReplPassword)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("cleanup: link disable: %v\n%s", err, out)
		}
	})

	run := func(env []string, args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"-config", cfgFile}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "link %s:\n%s", strings.Join(args, " "), out)
		require.NotContains(t, string(out), p.ReplPassword)
		return string(out)
	}
	status := func(env []string) stage.Status {
		t.Helper()
		var st stage.Status
		require.NoError(t, json.Unmarshal([]byte(run(env, "-json", "status")), &st))
		return st
	}

	out1 := run(nil, "link")
	require.Contains(t, out1, "state:     streaming")
	require.Contains(t, out1, filepath.Base(b.Location))
	require.Equal(t, stage.StateStreaming, status(nil).State)

	var snap stage.Snapshot
	require.NoError(t, json.Unmarshal([]byte(run(nil, "-json", "snapshot")), &snap))
	require.NotEmpty(t, snap.ReplayLSN)

	run(nil, "disable")
	require.Equal(t, stage.StateDisabled, status(nil).State)
	run(nil, "enable")
	require.Equal(t, stage.StateStreaming, status(nil).State)

	// The password from the environment instead of the file.
	delete(cfg, "password_file")
	cfg["password_env"] = "CLI_TEST_PASSWORD"
	data, err = json.Marshal(cfg)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(cfgFile, data, 0o600))
	env := []string{"CLI_TEST_PASSWORD=" + p.ReplPassword}
	run(env, "resync")
	st := status(env)
	require.Equal(t, stage.StateStreaming, st.State)
	require.Equal(t, 3, st.Snapshots, "link, snapshot, resync")

	cmd := exec.Command(bin, "-config", cfgFile, "status")
	out, err = cmd.CombinedOutput()
	require.Error(t, err, "no password: %s", out)
	require.Contains(t, string(out), "CLI_TEST_PASSWORD")
}
