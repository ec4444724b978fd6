//go:build pgstagebench

package pgstage_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pgstage/pgstage/internal/pgtest"
	"github.com/pgstage/pgstage/stage"
	"github.com/pgstage/pgstage/walwatch"
	"github.com/stretchr/testify/require"
)

// TestBenchLinkVsShell is the driver of bench/stage.sh: a source of at least
// 1 GiB, one backup, and in alternating rounds the shell procedure (tar -xf,
// config, pg_ctl start -w, poll pg_stat_wal_receiver) and stage.Linker's Link
// on the same backup; then the delay from the source stopping to the fault.
// It is built only with the pgstagebench tag (bench/stage.sh, make bench),
// so that the test suite neither runs it nor reports it skipped.
func TestBenchLinkVsShell(t *testing.T) {
	major := 15
	if v := pgtest.Versions(); len(v) == 1 {
		major = v[0]
	}
	require.GreaterOrEqual(t, major, 12, "the shell procedure writes standby.signal (12+)")
	require.LessOrEqual(t, major, 15, "the shell procedure untars pg_wal.tar, which pg_basebackup 15 writes for 10-15")
	rounds, mb := 3, 1100
	if n, err := strconv.Atoi(os.Getenv("PGSTAGE_BENCH_RUNS")); err == nil && n > 0 {
		rounds = n
	}
	if n, err := strconv.Atoi(os.Getenv("PGSTAGE_BENCH_MB")); err == nil && n > 0 {
		mb = n
	}
	script, err := filepath.Abs("bench/stage.sh")
	require.NoError(t, err)
	ctx := context.Background()

	p := pgtest.StartPrimary(t, major, pgtest.Options{Settings: keepWAL(major)})
	// About 1 KiB per row.
	p.Exec(t, fmt.Sprintf("CREATE TABLE big AS SELECT g AS id, repeat(md5(g::text), 30) AS pad FROM generate_series(1, %d) g", mb*1024))
	size := p.QueryString(t, "SELECT pg_database_size('postgres')")
	b := pgtest.TakeBackup(t, p, pgtest.BackupOptions{Layout: pgtest.LayoutFolder, Form: pgtest.FormStream})
	t.Logf("PostgreSQL %d source: database %s bytes; backup %s", major, size, b.Location)
	user := pgtest.OSUser(t)

	shell := func() time.Duration {
		root := pgtest.TempDir(t)
		data := filepath.Join(root, "data")
		cmd := exec.Command("bash", script, "procedure", b.Location, data, p.BinDir, strconv.Itoa(pgtest.FreePort(t)), root,
			p.Host, strconv.Itoa(p.Port), p.ReplUser, filepath.Join(root, "shell.pgpass"), user.Name)
		cmd.Env = append(os.Environ(), "PGSTAGE_BENCH_PASSWORD="+p.ReplPassword)
		syscall.Sync() // start both sides with no dirty pages left by the other
		start := time.Now()
		out, err := cmd.CombinedOutput()
		d := time.Since(start)
		require.NoError(t, err, "%s", out)
		stop := pgtest.Command(ctx, filepath.Join(p.BinDir, "pg_ctl"), "stop", "-D", data, "-m", "immediate", "-w")
		require.NoError(t, stop.Run())
		os.RemoveAll(root)
		return d
	}
	var last *staging
	ours := func() (streaming, whole time.Duration) {
		s := newStaging(t, p, b.Path)
		var start time.Time
		var once sync.Once
		// Link's own progress says when streaming was confirmed: the watch
		// step begins right after.
		lcfg := s.l.Config()
		s.l.Close()
		lcfg.Settings = nil // as the shell procedure: the source's settings
		var steps []string
		var prev stage.Step
		var prevAt time.Time
		lcfg.Progress = func(pr stage.Progress) {
			if pr.Step != prev {
				if prev != "" {
					steps = append(steps, fmt.Sprintf("%s %v", prev, time.Since(prevAt).Round(time.Millisecond)))
				}
				prev, prevAt = pr.Step, time.Now()
			}
			if pr.Step == stage.StepWatch {
				once.Do(func() { streaming = time.Since(start) })
			}
		}
		defer func() { t.Logf("  Link steps: %s", strings.Join(steps, ", ")) }()
		l, err := stage.New(lcfg)
		require.NoError(t, err)
		s.l, s.cfg = l, lcfg
		if last != nil { // keep one staging only, for the fault measure
			require.NoError(t, last.l.Disable(ctx))
			os.RemoveAll(last.cfg.Staging.DataDir)
		}
		syscall.Sync()
		start = time.Now()
		require.NoError(t, l.Link(ctx))
		whole = time.Since(start)
		last = s
		return streaming, whole
	}

	var sh, st, lk []time.Duration
	for i := 0; i < rounds; i++ {
		if i%2 == 0 {
			sh = append(sh, shell())
			a, w := ours()
			st, lk = append(st, a), append(lk, w)
		} else {
			a, w := ours()
			st, lk = append(st, a), append(lk, w)
			sh = append(sh, shell())
		}
		t.Logf("round %d: shell %v, Link to streaming %v, whole Link %v", i+1, sh[i].Round(time.Millisecond), st[i].Round(time.Millisecond), lk[i].Round(time.Millisecond))
	}
	med := func(ds []time.Duration) time.Duration {
		s := slices.Clone(ds)
		slices.Sort(s)
		return s[len(s)/2]
	}
	t.Logf("median of %d: shell %v; Link to confirmed streaming %v (%.2fx); whole Link incl. preflight, watcher and first snapshot %v (%.2fx)",
		rounds, med(sh).Round(time.Millisecond), med(st).Round(time.Millisecond), float64(med(st))/float64(med(sh)),
		med(lk).Round(time.Millisecond), float64(med(lk))/float64(med(sh)))

	// Fault delay: from the stop request to the fault event (the stop itself
	// included, so an upper bound).
	for len(last.l.Events()) > 0 {
		<-last.l.Events() // what came before the stop
	}
	start := time.Now()
	p.Stop(t, "fast")
	ev := last.waitEvent(t, walwatch.KindFault)
	t.Logf("fault %s detected %v after the stop request (pg_ctl stop -m fast included)", ev.Reason, ev.Detected.Sub(start).Round(time.Millisecond))
	p.Start(t)
}
