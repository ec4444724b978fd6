package replica_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/internal/pgtest"
	"github.com/pgstage/pgstage/replica"
)

// A fast shutdown that hangs is finished by an immediate one. The hang is
// real: a standby's fast shutdown waits for its checkpointer to write the
// shutdown restartpoint, and a stopped (SIGSTOP) checkpointer never does.
// Once the immediate shutdown's SIGQUIT is pending on it, the test lets it
// go on, as a checkpointer busy with a long restartpoint would: the kernel
// delivers pending signals lowest number first and before the interrupted
// code resumes, so SIGQUIT (3) ends it before the shutdown request (SIGUSR2,
// 12, or, in recent majors, SIGINT, 2, whose handler only sets a flag) can
// start a restartpoint. Were it never let go, the postmaster would SIGKILL
// it 5 seconds after the SIGQUIT (every major since 9.4): the same outcome,
// 5 seconds later per major.
func TestStopFallsBackToImmediate(t *testing.T) {
	pgtest.ForEachMajor(t, func(t *testing.T, major int) {
		t.Parallel()
		p := pgtest.StartPrimary(t, major, pgtest.Options{})
		b := pgtest.TakeBackup(t, p, pgtest.BackupOptions{Form: pgtest.Forms(major)[0]})
		var logged bytes.Buffer // the Standby logs from the calling goroutine only
		s, _ := newStandby(t, p, b, func(c *replica.Config) {
			c.StopTimeout = time.Second
			c.Logger = slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelWarn}))
		})
		_, err := s.Setup(context.Background())
		require.NoError(t, err)
		startStreaming(t, s)

		st, err := s.Status(context.Background())
		require.NoError(t, err)
		require.True(t, st.Running)
		postmaster := procOf(t, st.PID)
		checkpointer := procOf(t, childNamed(t, st.PID, "checkpointer"))
		require.NoError(t, syscall.Kill(checkpointer.pid, syscall.SIGSTOP))
		// Registered after newStandby's Stop, so it runs before it: nothing
		// is left frozen whatever fails below.
		t.Cleanup(func() {
			if !checkpointer.gone() {
				_ = syscall.Kill(checkpointer.pid, syscall.SIGCONT)
			}
		})
		waitFor(t, func() bool { return checkpointer.state() == "T" }, "the checkpointer %d to stop", checkpointer.pid)
		logged.Reset()

		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		thawed := make(chan bool, 1)
		go func() {
			for !checkpointer.pending(syscall.SIGQUIT) && ctx.Err() == nil {
				time.Sleep(10 * time.Millisecond)
			}
			thawed <- ctx.Err() == nil && syscall.Kill(checkpointer.pid, syscall.SIGCONT) == nil
		}()
		require.NoError(t, s.Stop(ctx))
		require.True(t, <-thawed, "the checkpointer was sent SIGQUIT while stopped")
		warnings := logged.String()
		assert.Contains(t, warnings, `level=WARN msg="replica: fast shutdown did not finish, shutting down immediately"`)
		assert.Contains(t, warnings, "server does not shut down", "the warning carries pg_ctl's words")

		st, err = s.Status(context.Background())
		require.NoError(t, err)
		assert.False(t, st.Running)
		// pg_ctl returns once postmaster.pid is gone, which the postmaster
		// removes just before it exits.
		waitFor(t, postmaster.gone, "the postmaster %d to exit", postmaster.pid)
		assert.True(t, checkpointer.gone(), "the checkpointer exited")
		cfg := s.Config()
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.Port)))
		require.NoError(t, err, "the port is free")
		l.Close()
		_, err = os.Stat(filepath.Join(cfg.SocketDir, fmt.Sprintf(".s.PGSQL.%d", cfg.Port)))
		assert.True(t, errors.Is(err, os.ErrNotExist), "the Unix socket is gone: %v", err)

		// No shutdown restartpoint was written: the next start recovers
		// from an interrupted recovery, then streams again.
		startStreaming(t, s)
		assert.Contains(t, s.LogTail(200), "was interrupted while in recovery")
		seesRow(t, s, p.InsertRows(t, 1))
	})
}

// proc is a process, told apart from a later one with the same pid by its
// start time.
type proc struct {
	pid   int
	start string
}

func procOf(t *testing.T, pid int) proc {
	t.Helper()
	f := procStat(pid)
	require.NotNil(t, f, "process %d", pid)
	return proc{pid: pid, start: f[19]}
}

// state is the process's state letter ("T": stopped), "" once it is gone.
func (p proc) state() string {
	f := procStat(p.pid)
	if f == nil || f[19] != p.start {
		return ""
	}
	return f[0]
}

// gone: exited, or a zombie nobody reaps (the postmaster's parent is
// whatever init the machine has).
func (p proc) gone() bool {
	s := p.state()
	return s == "" || s == "Z"
}

// pending reports whether sig was sent to the process and waits for delivery.
func (p proc) pending(sig syscall.Signal) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.pid))
	if err != nil || p.state() == "" {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if mask, ok := strings.CutPrefix(line, "ShdPnd:"); ok {
			m, err := strconv.ParseUint(strings.TrimSpace(mask), 16, 64)
			return err == nil && m&(1<<(sig-1)) != 0
		}
	}
	return false
}

// procStat returns the fields of /proc/pid/stat after the command name,
// starting with the state; nil if there is no such process.
func procStat(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	// The command name may hold spaces: cut at the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return nil
	}
	return f
}

// childNamed returns the pid of the child of parent whose process title
// holds name ("postgres: checkpointer", "postgres: checkpointer process" in 10).
func childNamed(t *testing.T, parent int, name string) int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	require.NoError(t, err)
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f := procStat(pid); f == nil || f[1] != strconv.Itoa(parent) {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if strings.Contains(string(cmd), name) {
			return pid
		}
	}
	t.Fatalf("no %s under the postmaster %d", name, parent)
	return 0
}
