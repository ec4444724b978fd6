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

// cli is the command built, a primary, a backup of it and a configuration
// file for a staging of the first major in PGSTAGE_PG_VERSIONS.
type cli struct {
	bin, cfgFile string
	cfg          map[string]any
	p            *pgtest.Primary
	backup       *pgtest.Backup
}

func newCLI(t *testing.T) *cli {
	t.Helper()
	major := pgtest.Versions()[0]
	pgtest.BinDir(t, major)
	c := &cli{bin: filepath.Join(t.TempDir(), "link")}
	out, err := exec.Command("go", "build", "-o", c.bin, ".").CombinedOutput()
	require.NoError(t, err, "%s", out)

	c.p = pgtest.StartPrimary(t, major, pgtest.Options{Settings: map[string]string{"max_wal_senders": "10"}})
	c.backup = pgtest.TakeBackup(t, c.p, pgtest.BackupOptions{Layout: pgtest.LayoutFolder, Form: pgtest.Forms(major)[0]})
	dir := pgtest.TempDir(t)
	pwFile := filepath.Join(t.TempDir(), "password")
	require.NoError(t, os.WriteFile(pwFile, []byte(c.p.ReplPassword+"\n"), 0o600))
	c.cfg = map[string]any{
		"backup_path":   c.backup.Path,
		"backup_settle": "-1s",
		"source":        map[string]any{"host": c.p.Host, "port": c.p.Port, "user": c.p.ReplUser, "sslmode": "disable"},
		"staging":       map[string]any{"data_dir": filepath.Join(dir, "data"), "port": pgtest.FreePort(t), "bin_dir": c.p.BinDir, "socket_dir": dir},
		"settings":      []map[string]any{{"name": "fsync", "value": "off"}, {"name": "archive_command", "comment": true}},
		"password_file": pwFile,
	}
	c.cfgFile = filepath.Join(t.TempDir(), "pgstage.json")
	c.writeConfig(t)
	t.Cleanup(func() { // stop the staging server, whichever password source the file names by then
		cmd := exec.Command(c.bin, "-config", c.cfgFile, "disable")
		cmd.Env = append(os.Environ(), "CLI_TEST_PASSWORD="+c.p.ReplPassword)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("cleanup: link disable: %v\n%s", err, out)
		}
	})
	return c
}

func (c *cli) writeConfig(t *testing.T) {
	t.Helper()
	data, err := json.Marshal(c.cfg)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(c.cfgFile, data, 0o600))
}

// run runs the command to its end and returns its output.
func (c *cli) run(t *testing.T, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(c.bin, append([]string{"-config", c.cfgFile}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "link %s:\n%s", strings.Join(args, " "), out)
	require.NotContains(t, string(out), c.p.ReplPassword)
	return string(out)
}

// TestCLI drives a real staging through the command: link, status,
// snapshot, disable, enable, resync, with the password from a file and then
// from the environment, and -json output.
func TestCLI(t *testing.T) {
	c := newCLI(t)
	status := func(env []string) stage.Status {
		t.Helper()
		var st stage.Status
		require.NoError(t, json.Unmarshal([]byte(c.run(t, env, "-json", "status")), &st))
		return st
	}

	out1 := c.run(t, nil, "link")
	require.Contains(t, out1, "state:     streaming")
	require.Contains(t, out1, filepath.Base(c.backup.Location))
	require.Equal(t, stage.StateStreaming, status(nil).State)

	var snap stage.Snapshot
	require.NoError(t, json.Unmarshal([]byte(c.run(t, nil, "-json", "snapshot")), &snap))
	require.NotEmpty(t, snap.ReplayLSN)

	c.run(t, nil, "disable")
	require.Equal(t, stage.StateDisabled, status(nil).State)
	c.run(t, nil, "enable")
	require.Equal(t, stage.StateStreaming, status(nil).State)

	// The password from the environment instead of the file.
	delete(c.cfg, "password_file")
	c.cfg["password_env"] = "CLI_TEST_PASSWORD"
	c.writeConfig(t)
	env := []string{"CLI_TEST_PASSWORD=" + c.p.ReplPassword}
	c.run(t, env, "resync")
	st := status(env)
	require.Equal(t, stage.StateStreaming, st.State)
	require.Equal(t, 3, st.Snapshots, "link, snapshot, resync")

	cmd := exec.Command(c.bin, "-config", c.cfgFile, "status")
	out, err := cmd.CombinedOutput()
	require.Error(t, err, "no password: %s", out)
	require.Contains(t, string(out), "CLI_TEST_PASSWORD")
}
