package stage_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgstage/pgstage/stage"
	"github.com/pgstage/pgstage/walwatch"
	"github.com/stretchr/testify/require"
)

const secret = `s3cr et'pa\ss:w=rd`

// validConfig passes validation without any server: checks that need one
// belong to preflight.
func validConfig(t *testing.T) stage.Config {
	t.Helper()
	dir := t.TempDir()
	return stage.Config{
		BackupPath: filepath.Join(dir, "backups"),
		Source:     stage.Source{Host: "127.0.0.1", Port: closedPort(t), User: "replicator", Password: secret},
		Staging: stage.Staging{
			DataDir: filepath.Join(dir, "data"),
			Port:    closedPort(t),
			BinDir:  filepath.Join(dir, "bin"),
		},
	}
}

// closedPort returns a port nothing listens on (it was free a moment ago).
func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func TestConfigValidation(t *testing.T) {
	cases := []struct {
		name string
		edit func(c *stage.Config)
		want string
	}{
		{"no backup path", func(c *stage.Config) { c.BackupPath = "" }, "BackupPath is empty"},
		{"no source host", func(c *stage.Config) { c.Source.Host = "" }, "Source.Host is empty"},
		{"no replication user", func(c *stage.Config) { c.Source.User = "" }, "Source.User is empty"},
		{"relative data dir", func(c *stage.Config) { c.Staging.DataDir = "data" }, "is relative"},
		{"no staging port", func(c *stage.Config) { c.Staging.Port = 0 }, "Staging.Port 0"},
		{"staging port is the local source's", func(c *stage.Config) { c.Staging.Port = c.Source.Port }, "the source's port on this host"},
		{"no bin dir", func(c *stage.Config) { c.Staging.BinDir = "" }, "Staging.BinDir is empty"},
		{"socket dir too long", func(c *stage.Config) { c.Staging.SocketDir = "/" + strings.Repeat("x", 120) }, "too long for a Unix socket"},
		{"negative restore writers", func(c *stage.Config) { c.Restore.Writers = -1 }, "Restore.Writers is -1"},
		{"too many restore writers", func(c *stage.Config) { c.Restore.Writers = 65 }, "give 1 to 64"},
		{"state dir inside data dir", func(c *stage.Config) { c.Staging.StateDir = filepath.Join(c.Staging.DataDir, "state") }, "inside the data directory"},
		{"bad setting name", func(c *stage.Config) { c.Settings = []stage.Setting{{Name: "a b", Value: "1"}} }, "not a parameter name"},
		{"setting twice", func(c *stage.Config) {
			c.Settings = []stage.Setting{{Name: "work_mem", Value: "1MB"}, {Name: "WORK_MEM", Value: "2MB"}}
		}, "listed twice"},
		{"set and commented", func(c *stage.Config) { c.Settings = []stage.Setting{{Name: "ssl", Value: "off", Comment: true}} }, "both set"},
		{"hook with neither", func(c *stage.Config) { c.Hooks.PreSync = []stage.Hook{{}} }, "Hooks.pre-sync[0]"},
		{"create slot without name", func(c *stage.Config) { c.Staging.CreateSlot = true }, "CreateSlot"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := validConfig(t)
			tc.edit(&cfg)
			_, err := stage.New(cfg)
			require.ErrorIs(t, err, stage.ErrInvalidConfig)
			require.Contains(t, err.Error(), tc.want)
			require.NotContains(t, err.Error(), secret)
		})
	}
	t.Run("every problem at once", func(t *testing.T) {
		_, err := stage.New(stage.Config{})
		require.ErrorIs(t, err, stage.ErrInvalidConfig)
		for _, want := range []string{"BackupPath", "Source.Host", "Source.User", "Staging.DataDir", "Staging.Port", "Staging.BinDir"} {
			require.Contains(t, err.Error(), want)
		}
	})
}

func TestDefaults(t *testing.T) {
	cfg := validConfig(t)
	cfg.Source.Port = 0
	l, err := stage.New(cfg)
	require.NoError(t, err)
	defer l.Close()
	got := l.Config()
	require.Equal(t, 5432, got.Source.Port)
	require.Equal(t, "/tmp", got.Staging.SocketDir)
	require.Equal(t, "postgres", got.Staging.OSUser)
	require.Equal(t, "pgstage_data", got.Staging.ApplicationName)
	require.Equal(t, cfg.Staging.DataDir+".pgstage", got.Staging.StateDir)
	require.Equal(t, stage.DefaultStreamTimeout, got.StreamTimeout)
}

func TestLockAndState(t *testing.T) {
	cfg := validConfig(t)
	l, err := stage.New(cfg)
	require.NoError(t, err)
	_, err = stage.New(cfg)
	require.ErrorIs(t, err, stage.ErrLocked)
	require.Contains(t, err.Error(), "this process")

	require.NoError(t, l.Close())
	require.NoError(t, l.Close(), "Close is idempotent")
	_, err = l.Snapshot(context.Background())
	require.ErrorIs(t, err, stage.ErrClosed)

	state := filepath.Join(cfg.Staging.DataDir+".pgstage", "state.json")
	info, err := os.Stat(state)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	data, err := os.ReadFile(state)
	require.NoError(t, err)
	require.NotContains(t, string(data), "s3cr", "no password in the state file")
	require.Contains(t, string(data), `"user": "replicator"`)

	l2, err := stage.New(cfg) // lock released by Close
	require.NoError(t, err)
	defer l2.Close()
	st, err := l2.Status(context.Background())
	require.NoError(t, err)
	require.Equal(t, stage.StateUnlinked, st.State)
	_, err = l2.Snapshot(context.Background())
	require.ErrorIs(t, err, stage.ErrNotLinked)
	require.ErrorIs(t, l2.Enable(context.Background()), stage.ErrNotLinked)
	require.ErrorIs(t, l2.Resync(context.Background()), stage.ErrNotLinked, "Resync never empties a directory it does not own")
}

// TestLockAcrossProcesses holds the lock in a child process (this test
// binary) and checks that a Linker here is refused until the child exits.
func TestLockAcrossProcesses(t *testing.T) {
	if dir := os.Getenv("STAGE_LOCK_HELPER"); dir != "" {
		cfg := validConfig(t)
		cfg.Staging.DataDir = dir
		l, err := stage.New(cfg)
		if err != nil {
			fmt.Println("error:", err)
			return
		}
		fmt.Println("locked")
		io.Copy(io.Discard, os.Stdin) // hold the lock until the parent closes stdin
		l.Close()
		return
	}
	cfg := validConfig(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockAcrossProcesses$")
	cmd.Env = append(os.Environ(), "STAGE_LOCK_HELPER="+cfg.Staging.DataDir)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "locked\n", line)

	_, err = stage.New(cfg)
	require.ErrorIs(t, err, stage.ErrLocked)
	require.Contains(t, err.Error(), fmt.Sprintf("pid %d", cmd.Process.Pid))

	stdin.Close()
	go io.Copy(io.Discard, stdout)
	require.NoError(t, cmd.Wait())
	l, err := stage.New(cfg)
	require.NoError(t, err, "the lock is free once its holder exited")
	l.Close()
}

func TestOpenWithoutState(t *testing.T) {
	cfg := validConfig(t)
	_, err := stage.Open(context.Background(), cfg)
	require.ErrorIs(t, err, stage.ErrNoState)
}

// TestPreflightAggregates needs no server: every check fails at once, and
// nothing is created in the data directory.
func TestPreflightAggregates(t *testing.T) {
	cfg := validConfig(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	cfg.Staging.Port = busy.Addr().(*net.TCPAddr).Port
	require.NoError(t, os.MkdirAll(cfg.BackupPath, 0o755))
	require.NoError(t, os.MkdirAll(cfg.Staging.DataDir, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(cfg.Staging.DataDir, "PG_VERSION"), []byte("15\n"), 0o600))
	cfg.Staging.SocketDir = filepath.Join(t.TempDir(), "missing")
	cfg.Source.Password = secret + "\nsecond line"
	l, err := stage.New(cfg)
	require.NoError(t, err)
	defer l.Close()
	err = l.Link(context.Background())
	var pe *stage.PreflightError
	require.ErrorAs(t, err, &pe)
	require.ErrorIs(t, err, stage.ErrPreflight)
	checks := map[string]bool{}
	for _, p := range pe.Problems {
		var prob *stage.Problem
		require.ErrorAs(t, p, &prob)
		require.NotEmpty(t, prob.Do, "%s says what to do", prob.Check)
		checks[prob.Check] = true
	}
	for _, want := range []string{"binaries", "port", "data directory", "socket directory", "backup", "source"} {
		require.True(t, checks[want], "no %q problem in:\n%v", want, err)
	}
	require.Contains(t, err.Error(), "Source.Password holds a line break", "refused before anything is restored")
	require.NotContains(t, err.Error(), secret)
	entries, _ := os.ReadDir(cfg.Staging.DataDir)
	require.Len(t, entries, 1, "preflight touched the data directory")
}

// A data directory whose parent does not exist is refused at once, naming
// the parent, and nothing is created (as root, that would be a directory the
// server's OS user cannot enter).
func TestDataDirParentMissing(t *testing.T) {
	cfg := validConfig(t)
	parent := filepath.Join(t.TempDir(), "no", "such")
	cfg.Staging.DataDir = filepath.Join(parent, "data")
	_, err := stage.New(cfg)
	require.ErrorIs(t, err, stage.ErrInvalidConfig)
	require.Contains(t, err.Error(), "the parent of the data directory "+cfg.Staging.DataDir+", "+parent+", does not exist")
	_, err = os.Stat(filepath.Dir(parent))
	require.True(t, os.IsNotExist(err), "nothing was created")
}

func TestPreHookStopsTheJob(t *testing.T) {
	cfg := validConfig(t)
	cfg.Hooks.PreLink = []stage.Hook{{Command: `echo "mount failed on $PGSTAGE_DATA_DIR port $PGSTAGE_PORT"; env | grep -c s3cr; exit 3`}}
	l, err := stage.New(cfg)
	require.NoError(t, err)
	defer l.Close()
	err = l.Link(context.Background())
	require.ErrorIs(t, err, stage.ErrHook)
	var he *stage.HookError
	require.ErrorAs(t, err, &he)
	require.Equal(t, stage.PointPreLink, he.Point)
	require.Contains(t, he.Output, "mount failed on "+cfg.Staging.DataDir)
	require.Contains(t, he.Output, "0\n", "the password is not in the hook's environment")
	_, statErr := os.Stat(cfg.Staging.DataDir)
	require.True(t, os.IsNotExist(statErr), "nothing was created")

	called := false
	cfg2 := validConfig(t)
	cfg2.Hooks.PreLink = []stage.Hook{{Func: func(ctx context.Context, e stage.HookEnv) error {
		called = true
		require.Equal(t, stage.JobLink, e.Job)
		require.Equal(t, cfg2.Staging.Port, e.Port)
		return errors.New("not today")
	}}}
	l2, err := stage.New(cfg2)
	require.NoError(t, err)
	defer l2.Close()
	err = l2.Link(context.Background())
	require.True(t, called)
	require.ErrorIs(t, err, stage.ErrHook)
	require.Contains(t, err.Error(), "not today")
}

func TestHookEnviron(t *testing.T) {
	env := stage.HookEnv{Point: stage.PointPostSnapshot, Job: stage.JobSnapshot, DataDir: "/d", Port: 5433, SocketDir: "/s", DBUser: "postgres",
		Backup:   &stage.BackupInfo{Name: "PostgreSQL_T20260101000000", Location: "/b/PostgreSQL_T20260101000000", PGVersion: "15"},
		Snapshot: &stage.Snapshot{Timeline: 2, ReplayLSN: "0/3000000"}}
	got := strings.Join(env.Environ(), "\n")
	for _, want := range []string{"PGSTAGE_HOOK=post-snapshot", "PGSTAGE_DATA_DIR=/d", "PGSTAGE_PORT=5433", "PGHOST=/s", "PGPORT=5433",
		"PGSTAGE_BACKUP=/b/PostgreSQL_T20260101000000", "PGSTAGE_PG_VERSION=15", "PGSTAGE_SNAPSHOT_TIMELINE=2", "PGSTAGE_SNAPSHOT_REPLAY_LSN=0/3000000"} {
		require.Contains(t, got, want)
	}
}

func TestFaultError(t *testing.T) {
	f := &stage.Fault{Reason: walwatch.ReasonWALRemoved, Message: "requested WAL segment has already been removed", NeedsResync: true}
	err := errors.Join(errors.New("context"), f)
	require.ErrorIs(t, err, stage.ErrFaulted)
	require.Contains(t, f.Error(), "Resync")
	require.True(t, f.Open())
	for _, r := range []walwatch.Reason{walwatch.ReasonPrimaryUnreachable, walwatch.ReasonAuthRefused, walwatch.ReasonStreamLost,
		walwatch.ReasonTimeout, walwatch.ReasonTerminatedByPrimary, walwatch.ReasonWALRemoved, walwatch.ReasonTimelineDiverged,
		walwatch.ReasonWrongPrimary, walwatch.ReasonStartFailed, walwatch.ReasonReceiverStopped, walwatch.ReasonReceiverCrashed,
		walwatch.ReasonUnknown, walwatch.ReasonPromoted} {
		require.NotEmpty(t, stage.Advice(r), "no advice for %s", r)
	}
}

// TestStateKeepsCommandHooksOnly: function hooks cannot be saved, command
// hooks are, and Open takes the functions from its own Config.
func TestStateKeepsCommandHooksOnly(t *testing.T) {
	cfg := validConfig(t)
	noop := func(context.Context, stage.HookEnv) error { return nil }
	cfg.Hooks.PreSync = []stage.Hook{{Func: noop}, {Command: "true"}}
	l, err := stage.New(cfg)
	require.NoError(t, err)
	require.NoError(t, l.Close())
	l, err = stage.Open(context.Background(), stage.Config{Staging: cfg.Staging, Hooks: stage.Hooks{PostSync: []stage.Hook{{Func: noop}}}})
	require.NoError(t, err)
	defer l.Close()
	h := l.Config().Hooks
	require.Len(t, h.PreSync, 1)
	require.Equal(t, "true", h.PreSync[0].Command)
	require.Len(t, h.PostSync, 1)
	require.NotNil(t, h.PostSync[0].Func)
}
