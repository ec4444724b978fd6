//go:build pgstagebench

package pgstage_test

import (
	"context"
	"os"
	"path/filepath"
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
// questions are connections the server forks a backend for), against the
// same staging with no Linker. Built only with the pgstagebench tag.
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

	// One question of the monitor, alone: replica.Standby.Replay connects,
	// asks and disconnects.
	sb, err := replica.New(replica.Config{DataDir: cfg.Staging.DataDir, BinDir: cfg.Staging.BinDir, Port: cfg.Staging.Port,
		SocketDir: cfg.Staging.SocketDir, Source: replica.Source{Host: p.Host, User: p.ReplUser}})
	require.NoError(t, err)
	_, err = sb.Replay(ctx)
	require.NoError(t, err)
	const calls = 300
	pid := postmasterPID(t, cfg.Staging.DataDir)
	self0, srv0, start := selfCPU(), serverCPU(pid), time.Now()
	for range calls {
		_, err := sb.Replay(ctx)
		require.NoError(t, err)
	}
	t.Logf("one Replay question: %v wall, %v CPU in this process, %v in the staging server (averages of %d)",
		(time.Since(start) / calls).Round(time.Microsecond), ((selfCPU() - self0) / calls).Round(time.Microsecond),
		((serverCPU(pid) - srv0) / calls).Round(time.Microsecond), calls)

	time.Sleep(5 * time.Second) // let the restarts settle
	on := measure(t, cfg, window)
	require.NoError(t, s.l.Close())
	off := measure(t, cfg, window)
	l, err := stage.Open(ctx, cfg) // to stop the server
	require.NoError(t, err)
	s.l = l
	pct := func(d time.Duration) float64 { return 100 * d.Seconds() / window.Seconds() }
	t.Logf("idle over %v, Linker with watcher and replay monitor (every %v): this process %.4f%% of a core, staging server %.4f%%",
		window, stage.DefaultReplayInterval, pct(on.self), pct(on.server))
	t.Logf("idle over %v, no Linker: this process %.4f%% of a core, staging server %.4f%%", window, pct(off.self), pct(off.server))
	t.Logf("the Linker's cost: this process %.4f%%, staging server %.4f%% (server ticks are 10 ms: %.4f%% per tick)",
		pct(on.self-off.self), pct(on.server-off.server), pct(10*time.Millisecond))
}

type cpu struct{ self, server time.Duration }

// measure returns the CPU this process and the staging server used over
// window: the server's is its postmaster's own and reaped children's, plus
// its live children's.
func measure(t *testing.T, cfg stage.Config, window time.Duration) cpu {
	t.Helper()
	pid := postmasterPID(t, cfg.Staging.DataDir)
	self0, srv0 := selfCPU(), serverCPU(pid)
	time.Sleep(window)
	return cpu{self: selfCPU() - self0, server: serverCPU(pid) - srv0}
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// serverCPU sums utime+stime (and cutime+cstime for the postmaster) of the
// postmaster and its children, in clock ticks of 10 ms.
func serverCPU(pid int) time.Duration {
	var ticks int64
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
		// f[0] is field 3 (state): ppid is field 4, utime..cstime 14..17.
		ppid, _ := strconv.Atoi(f[1])
		if n != pid && ppid != pid {
			continue
		}
		last := 12 // utime, stime
		if n == pid {
			last = 14 // and cutime, cstime: the backends it reaped
		}
		for i := 11; i <= last; i++ {
			v, _ := strconv.ParseInt(f[i], 10, 64)
			ticks += v
		}
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}
