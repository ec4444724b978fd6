//go:build pgstagebench

package pgstage_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/internal/pgtest"
	"github.com/pgstage/pgstage/replica"
	"github.com/pgstage/pgstage/stage"
	"github.com/pgstage/pgstage/walwatch"
)

// TestBenchFaults is the driver of bench/faults.sh: the delay from the
// source stopping to the fault, through a Linker with its defaults (log
// watcher and replay monitor), and the idle CPU of a Linker watching an
// idle staging, in this process and in the staging server (the monitor's
// questions run in a backend the server forks for the monitor's kept
// connection), against the same staging with no Linker, process by
// process. Built only with the pgstagebench tag.
func TestBenchFaults(t *testing.T) {
	major := 15
	if v := pgtest.Versions(); len(v) == 1 {
		major = v[0]
	}
	window := 60 * time.Second
	if d, err := time.ParseDuration(os.Getenv("PGSTAGE_BENCH_WINDOW")); err == nil {
		window = d
	}
	ctx := context.Background()
	p := pgtest.StartPrimary(t, major, pgtest.Options{Settings: keepWAL(major)})
	b := pgtest.TakeBackup(t, p, pgtest.BackupOptions{Form: pgtest.Forms(major)[0]})
	cfg := stagingConfig(t, p, b.Path)
	s := linkStaging(t, cfg)

	for i := range 3 {
		for len(s.l.Events()) > 0 {
			<-s.l.Events()
		}
		for _, mode := range []string{"fast", "immediate"} {
			start := time.Now()
			p.Stop(t, mode)
			ev := s.waitEvent(t, walwatch.KindFault)
			t.Logf("round %d: source stopped (-m %s): fault %s %v after the stop request (pg_ctl stop included)",
				i+1, mode, ev.Reason, ev.Detected.Sub(start).Round(time.Millisecond))
			p.Start(t)
			s.waitEvent(t, walwatch.KindRecovered)
		}
	}

	// One question of the monitor, alone, over the connection the handle
	// keeps (the first call connects and prepares).
	sb, err := replica.New(replica.Config{DataDir: cfg.Staging.DataDir, BinDir: cfg.Staging.BinDir, Port: cfg.Staging.Port,
		SocketDir: cfg.Staging.SocketDir, Source: replica.Source{Host: p.Host, User: p.ReplUser}})
	require.NoError(t, err)
	_, err = sb.Replay(ctx)
	require.NoError(t, err)
	const calls = 300
	pid := postmasterPID(t, cfg.Staging.DataDir)
	self0, srv0, start := selfCPU(), total(serverCPU(pid)), time.Now()
	for range calls {
		_, err := sb.Replay(ctx)
		require.NoError(t, err)
	}
	t.Logf("one Replay question: %v wall, %v CPU in this process, %v in the staging server (averages of %d)",
		(time.Since(start) / calls).Round(time.Microsecond), ((selfCPU() - self0) / calls).Round(time.Microsecond),
		((total(serverCPU(pid)) - srv0) / calls).Round(time.Microsecond), calls)
	require.NoError(t, sb.Close()) // its backend would idle through the windows

	// No Linker first, then one: the staging settles meanwhile, and its
	// settling must not be charged to the Linker. After the source's
	// restarts above, the background writer scans the whole buffer pool
	// (about two minutes) before it hibernates, and measured first it
	// counted as 0.05% of a core.
	require.NoError(t, s.l.Close())
	settle := 150 * time.Second
	if d, err := time.ParseDuration(os.Getenv("PGSTAGE_BENCH_SETTLE")); err == nil {
		settle = d
	}
	time.Sleep(settle)
	off := measure(t, cfg, window)
	l, err := stage.Open(ctx, cfg) // the cleanup's s.l.Disable stops the server
	require.NoError(t, err)
	s.l = l
	time.Sleep(5 * time.Second) // the watcher's catch-up and first question
	on := measure(t, cfg, window)
	pct := func(d time.Duration) float64 { return 100 * d.Seconds() / window.Seconds() }
	names := make([]string, 0, len(on.procs))
	for name := range on.procs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		t.Logf("staging server process %-45s Linker on %.4f%%, off %.4f%%", name, pct(on.procs[name]), pct(off.procs[name]))
	}
	t.Logf("idle over %v, Linker with watcher and replay monitor (every %v): this process %.4f%% of a core, staging server %.4f%%",
		window, stage.DefaultReplayInterval, pct(on.self), pct(on.server))
	t.Logf("idle over %v, no Linker: this process %.4f%% of a core, staging server %.4f%%", window, pct(off.self), pct(off.server))
	t.Logf("the Linker's cost: this process %.4f%%, staging server %.4f%%", pct(on.self-off.self), pct(on.server-off.server))
}

type cpu struct {
	self, server time.Duration
	procs        map[string]time.Duration // the server's, by process title
}

// measure returns the CPU this process and the staging server used over
// window, the server's process by process (see serverCPU).
func measure(t *testing.T, cfg stage.Config, window time.Duration) cpu {
	t.Helper()
	pid := postmasterPID(t, cfg.Staging.DataDir)
	self0, srv0 := selfCPU(), serverCPU(pid)
	time.Sleep(window)
	self1, srv1 := selfCPU(), serverCPU(pid)
	c := cpu{self: self1 - self0, procs: map[string]time.Duration{}}
	for name, d := range srv1 {
		c.procs[name] = d - srv0[name]
		c.server += d - srv0[name]
	}
	return c
}

func total(procs map[string]time.Duration) (sum time.Duration) {
	for _, d := range procs {
		sum += d
	}
	return sum
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// serverCPU returns the CPU time of the postmaster and of each of its
// children, keyed by process title and pid. It reads schedstat (run time
// in nanoseconds): utime and stime come in clock ticks of 10 ms, too
// coarse for the few ticks an idle minute holds. The reaped children's
// time (the postmaster's cutime and cstime, in ticks) is one more entry.
func serverCPU(pid int) map[string]time.Duration {
	out := map[string]time.Duration{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		dir := filepath.Join("/proc", e.Name())
		data, err := os.ReadFile(filepath.Join(dir, "stat"))
		if err != nil {
			continue
		}
		f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
		// f[0] is field 3 (state): ppid is field 4, cutime, cstime 16, 17.
		ppid, _ := strconv.Atoi(f[1])
		if n != pid && ppid != pid {
			continue
		}
		sched, err := os.ReadFile(filepath.Join(dir, "schedstat"))
		if err != nil {
			continue
		}
		ns, _ := strconv.ParseInt(strings.Fields(string(sched))[0], 10, 64)
		title, _ := os.ReadFile(filepath.Join(dir, "cmdline"))
		name := strings.Fields(strings.ReplaceAll(string(title), "\x00", " "))
		// "postgres: walreceiver streaming 0/3000060": the kind, not the position.
		key := fmt.Sprintf("%d %s", n, strings.Join(name[:min(len(name), 3)], " "))
		out[key] = time.Duration(ns)
		if n == pid {
			var ticks int64
			for _, i := range []int{13, 14} {
				v, _ := strconv.ParseInt(f[i], 10, 64)
				ticks += v
			}
			out["reaped children"] = time.Duration(ticks) * 10 * time.Millisecond
		}
	}
	return out
}
