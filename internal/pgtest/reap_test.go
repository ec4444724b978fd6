package pgtest

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestOwnerFileRoundTrip(t *testing.T) {
	o, err := self()
	require.NoError(t, err)
	got, err := parseOwner([]byte(o.String()))
	require.NoError(t, err)
	require.Equal(t, o, got)

	for name, s := range map[string]string{
		"empty":       "",
		"partial":     "pid 12\nstart 34\n",
		"unknown key": o.String() + "host x\n",
		"repeated":    o.String() + "pid 12\n",
		"bad pid":     strings.Replace(o.String(), "pid ", "pid x", 1),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parseOwner([]byte(s))
			require.Error(t, err)
		})
	}
}

func TestOwnerLiveness(t *testing.T) {
	cur, err := self()
	require.NoError(t, err)

	exited := startIn(t, t.TempDir(), "sleep", "600")
	exitedOwner := procOwner(t, cur, exited.Process.Pid)
	require.NoError(t, exited.Process.Kill())
	exited.Wait()

	zombie := startIn(t, t.TempDir(), "sleep", "600")
	zombieOwner := procOwner(t, cur, zombie.Process.Pid)
	require.NoError(t, zombie.Process.Kill())
	waitState(t, zombie.Process.Pid, 'Z')

	// /proc/<pid>/stat puts the command name in parentheses, unescaped.
	odd := filepath.Join(t.TempDir(), "a) R 1 2 3")
	sleep, err := exec.LookPath("sleep")
	require.NoError(t, err)
	require.NoError(t, os.Symlink(sleep, odd))
	oddName := startIn(t, t.TempDir(), odd, "600")

	tests := []struct {
		name  string
		owner owner
		want  liveness
	}{
		{"this process", cur, ownerAlive},
		{"command name holding ') '", procOwner(t, cur, oddName.Process.Pid), ownerAlive},
		{"pid reused", with(cur, func(o *owner) { o.Start++ }), ownerDead},
		{"exited", exitedOwner, ownerDead},
		{"zombie", zombieOwner, ownerDead},
		{"before a reboot", with(cur, func(o *owner) { o.Boot = "00000000-0000-0000-0000-000000000000" }), ownerDead},
		{"other pid namespace", with(cur, func(o *owner) { o.PIDNS = "pid:[1]"; o.Start++ }), ownerUnknown},
		{"other user", with(cur, func(o *owner) { o.UID++; o.Start++ }), ownerUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, tt.owner.liveness(cur))
		})
	}
}

func with(o owner, f func(*owner)) owner {
	f(&o)
	return o
}

// procOwner describes process pid as an owner, as seen by cur.
func procOwner(t *testing.T, cur owner, pid int) owner {
	t.Helper()
	_, start, err := procStat(pid)
	require.NoError(t, err)
	o := cur
	o.PID, o.Start = pid, start
	return o
}

// startIn starts a process working in dir, killed when the test ends.
func startIn(t *testing.T, dir, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd
}

// waitState waits until process pid is in state (a signal is delivered
// asynchronously).
func waitState(t *testing.T, pid int, state byte) {
	t.Helper()
	var got byte
	for range 500 {
		var err error
		got, _, err = procStat(pid)
		require.NoError(t, err)
		if got == state {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("process %d: state %c, want %c", pid, got, state)
}

// requireRunning requires that cmd's process has not ended and is stopped
// (SIGSTOP) if and only if stopped.
func requireRunning(t *testing.T, cmd *exec.Cmd, stopped bool) {
	t.Helper()
	state, _, err := procStat(cmd.Process.Pid)
	require.NoError(t, err)
	require.NotContains(t, "ZX", string(state), "process %d ended", cmd.Process.Pid)
	require.Equal(t, stopped, state == 'T', "process %d: state %c", cmd.Process.Pid, state)
}

// killedBy requires that cmd ended from signal sig.
func killedBy(t *testing.T, cmd *exec.Cmd, sig syscall.Signal) {
	t.Helper()
	var ee *exec.ExitError
	require.True(t, errors.As(cmd.Wait(), &ee), "process %d did not fail", cmd.Process.Pid)
	ws := ee.Sys().(syscall.WaitStatus)
	require.True(t, ws.Signaled() && ws.Signal() == sig, "process %d ended with %v, want signal %v", cmd.Process.Pid, ws, sig)
}

// TestReapDir reaps directories under a private root with plain processes
// (sleep) in them, no PostgreSQL: what is reaped and what is left alone.
func TestReapDir(t *testing.T) {
	cur, err := self()
	require.NoError(t, err)
	dead := with(cur, func(o *owner) { o.Start++ })

	tests := []struct {
		name   string
		owner  *owner // nil: no owner file
		sub    string // where the process works, below the directory
		freeze bool
		// pidFile is the pid written to postmaster.pid where the process
		// works: "inside" (it is a postmaster), "outside" (a stale file
		// naming the process outside), or none.
		pidFile string
		reaped  bool
	}{
		{name: "dead owner", owner: &dead, sub: "data", reaped: true},
		{name: "dead owner, postmaster", owner: &dead, sub: "data", pidFile: "inside", reaped: true},
		{name: "dead owner, frozen postmaster", owner: &dead, sub: "data", pidFile: "inside", freeze: true, reaped: true},
		{name: "dead owner, postmaster.pid of another process", owner: &dead, sub: "data", pidFile: "outside", reaped: true},
		{name: "dead owner, frozen process", owner: &dead, sub: "data/base", freeze: true, reaped: true},
		{name: "dead owner, process in the directory itself", owner: &dead, reaped: true},
		{name: "live owner", owner: &cur, sub: "data", freeze: true},
		{name: "no owner file", sub: "data", freeze: true},
		{name: "other user", owner: &owner{PID: dead.PID, Start: dead.Start, Boot: dead.Boot, PIDNS: dead.PIDNS, UID: dead.UID + 1}, sub: "data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			dir := filepath.Join(root, "pgs1")
			require.NoError(t, os.MkdirAll(filepath.Join(dir, tt.sub), 0o700))
			if tt.owner != nil {
				require.NoError(t, os.WriteFile(dir+ownerSuffix, []byte(tt.owner.String()), 0o644))
			}
			// pgs10 starts with pgs1 but is not inside it, and has no owner file.
			other := filepath.Join(root, "pgs10")
			require.NoError(t, os.Mkdir(other, 0o700))
			outside := startIn(t, other, "sleep", "600")
			inside := startIn(t, filepath.Join(dir, tt.sub), "sleep", "600")
			pids := map[string]int{"inside": inside.Process.Pid, "outside": outside.Process.Pid}
			if tt.pidFile != "" {
				pidFile := fmt.Sprintf("%d\n%s\n", pids[tt.pidFile], filepath.Join(dir, tt.sub))
				require.NoError(t, os.WriteFile(filepath.Join(dir, tt.sub, "postmaster.pid"), []byte(pidFile), 0o600))
			}
			if tt.freeze {
				require.NoError(t, inside.Process.Signal(syscall.SIGSTOP))
				waitState(t, inside.Process.Pid, 'T')
			}

			got := reap(root)

			if tt.reaped {
				require.Len(t, got, 1)
				require.Equal(t, dir, got[0].Dir)
				require.Equal(t, dead.PID, got[0].Owner)
				require.NoError(t, got[0].Err)
				if tt.pidFile == "inside" {
					// Continued first, or a frozen one could not quit.
					require.Equal(t, []int{inside.Process.Pid}, got[0].Postmasters)
					require.Empty(t, got[0].Killed)
					killedBy(t, inside, syscall.SIGQUIT)
				} else {
					require.Empty(t, got[0].Postmasters)
					require.Equal(t, []int{inside.Process.Pid}, got[0].Killed)
					killedBy(t, inside, syscall.SIGKILL)
				}
				require.NoDirExists(t, dir)
				require.NoFileExists(t, dir+ownerSuffix)
			} else {
				require.Empty(t, got)
				requireRunning(t, inside, tt.freeze) // if frozen, not even continued
				require.DirExists(t, filepath.Join(dir, tt.sub))
			}
			requireRunning(t, outside, false)
			require.DirExists(t, other)
		})
	}
}

// TestReapStaleOwnerFile: an owner file whose directory is gone is removed,
// silently.
func TestReapStaleOwnerFile(t *testing.T) {
	cur, err := self()
	require.NoError(t, err)
	root := t.TempDir()
	stale := filepath.Join(root, "pgs2"+ownerSuffix)
	require.NoError(t, os.WriteFile(stale, []byte(with(cur, func(o *owner) { o.Start++ }).String()), 0o644))
	require.Empty(t, reap(root))
	require.NoFileExists(t, stale)
}

const envReapChild = "PGSTAGE_REAP_CHILD"

// TestReapHelperProcess is the test process TestReapServers kills: it starts
// a primary, says where, and waits to be killed.
func TestReapHelperProcess(t *testing.T) {
	if os.Getenv(envReapChild) == "" {
		return
	}
	major, err := strconv.Atoi(os.Getenv(envReapChild))
	require.NoError(t, err)
	p := StartPrimary(t, major, Options{})
	pid, err := postmasterPID(p.DataDir)
	require.NoError(t, err)
	fmt.Printf("\npgtest-reap dir=%s pid=%d\n", filepath.Dir(p.DataDir), pid)
	time.Sleep(10 * time.Minute)
	t.Fatal("not killed")
}

func postmasterPID(dataDir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0, err
	}
	first, _, _ := strings.Cut(string(b), "\n")
	return strconv.Atoi(strings.TrimSpace(first))
}

// TestReapServers kills a test process that started a primary, so that its
// cleanup never runs, and reaps what it left: the running (or frozen)
// server and its directory. A server whose test process is alive is left
// alone.
func TestReapServers(t *testing.T) {
	major := Versions()[0]
	BinDir(t, major)

	for _, freeze := range []bool{false, true} {
		t.Run(fmt.Sprintf("frozen=%v", freeze), func(t *testing.T) {
			// The killed test process makes its directories in a root of
			// its own, so that no other test process reaps them first.
			root, err := os.MkdirTemp("", "pgreap")
			require.NoError(t, err)
			require.NoError(t, os.Chmod(root, 0o755)) // the servers' OS user must reach its directory
			t.Cleanup(func() {
				reap(root)
				os.RemoveAll(root)
			})
			dir, pid := startKilledChild(t, root, major)
			resolved, err := filepath.EvalSymlinks(dir)
			require.NoError(t, err)
			procs := procsIn(resolved)
			require.NotEmpty(t, procs)
			var pm proc
			for _, p := range procs {
				if p.pid == pid {
					pm = p
				}
			}
			require.Equal(t, pid, pm.pid, "postmaster %d not among the processes in %s", pid, dir)
			require.True(t, pm.postmaster, "postmaster %d not recognised", pid)
			if freeze {
				for _, p := range procs {
					require.NoError(t, p.h.Signal(syscall.SIGSTOP))
				}
				waitState(t, pid, 'T')
			}

			got := reap(root)

			require.Len(t, got, 1, "%v", got)
			t.Log(got[0])
			require.Equal(t, dir, got[0].Dir)
			require.NoError(t, got[0].Err)
			require.Equal(t, []int{pid}, got[0].Postmasters)
			for _, p := range procs {
				require.False(t, procAlive(p.pid, p.start), "process %d still running", p.pid)
			}
			require.NoDirExists(t, dir)
			require.NoFileExists(t, dir+ownerSuffix)
		})
	}

	t.Run("owner alive", func(t *testing.T) {
		p := StartPrimary(t, major, Options{})
		pid, err := postmasterPID(p.DataDir)
		require.NoError(t, err)
		_, start, err := procStat(pid)
		require.NoError(t, err)
		for _, r := range Reap() {
			require.NotEqual(t, p.SocketDir, r.Dir)
		}
		require.True(t, procAlive(pid, start))
		require.Equal(t, "1", p.QueryString(t, "SELECT 1"))
		require.FileExists(t, p.SocketDir+ownerSuffix)
	})
}

// startKilledChild runs TestReapHelperProcess with root as its temporary
// directory, waits for its primary to be up, and kills it with SIGKILL. It
// returns the primary's TempDir directory and postmaster pid.
func startKilledChild(t *testing.T, root string, major int) (string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestReapHelperProcess$", "-test.count=1", "-test.timeout=15m")
	cmd.Env = append(os.Environ(), envReapChild+"="+strconv.Itoa(major), "TMPDIR="+root)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	cmd.WaitDelay = 10 * time.Second // should a server hold stderr open
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	var dir, pid string
	var out strings.Builder
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if rest, ok := strings.CutPrefix(sc.Text(), "pgtest-reap "); ok {
			for _, f := range strings.Fields(rest) {
				if v, ok := strings.CutPrefix(f, "dir="); ok {
					dir = v
				} else if v, ok := strings.CutPrefix(f, "pid="); ok {
					pid = v
				}
			}
			break
		}
	}
	require.NotEmpty(t, dir, "child test process ended before its primary was up:\n%s%s", out.String(), stderr.String())
	require.NoError(t, cmd.Process.Kill())
	killedBy(t, cmd, syscall.SIGKILL)
	n, err := strconv.Atoi(pid)
	require.NoError(t, err)
	require.DirExists(t, dir, "the killed test process's directory")
	return dir, n
}
