package replica_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/internal/pgtest"
	"github.com/pgstage/pgstage/replica"
)

// BenchmarkReplicaVsShell is the driver of bench/replica.sh: restored data
// directory to confirmed streaming, replica against the hand-written shell
// procedure, on the same backup, in alternating order, one round of both
// per iteration (-benchtime=7x: seven rounds). It reports the medians and
// their ratio as metrics; restores are not timed.
func BenchmarkReplicaVsShell(b *testing.B) {
	t := b // the harness's helpers take a testing.TB
	major := 15
	if v := pgtest.Versions(); len(v) == 1 {
		major = v[0]
	}
	require.GreaterOrEqual(t, major, 12, "the shell procedure writes standby.signal (12+)")
	script, err := filepath.Abs("../bench/replica.sh")
	require.NoError(t, err)

	p := pgtest.StartPrimary(t, major, pgtest.Options{})
	p.InsertRows(t, 1000)
	bk := pgtest.TakeBackup(t, p, pgtest.BackupOptions{Form: pgtest.Forms(major)[0]})
	user := pgtest.OSUser(t)

	shell := func() time.Duration {
		root, data := restore(t, bk)
		port := pgtest.FreePort(t)
		cmd := exec.Command("bash", script, "procedure", data, p.BinDir, strconv.Itoa(port), root,
			p.Host, strconv.Itoa(p.Port), p.ReplUser, filepath.Join(root, "shell.pgpass"), user.Name)
		cmd.Env = append(os.Environ(), "PGSTAGE_BENCH_PASSWORD="+p.ReplPassword)
		start := time.Now()
		out, err := cmd.CombinedOutput()
		d := time.Since(start)
		require.NoError(t, err, "%s", out)
		stop := pgtest.Command(context.Background(), filepath.Join(p.BinDir, "pg_ctl"), "stop", "-D", data, "-m", "immediate", "-w")
		require.NoError(t, stop.Run())
		return d
	}
	ours := func() time.Duration {
		root, data := restore(t, bk)
		start := time.Now()
		s, err := replica.New(replica.Config{
			DataDir: data, BinDir: p.BinDir, Port: pgtest.FreePort(t), SocketDir: root, ListenAddresses: "127.0.0.1",
			Source: replica.Source{Host: p.Host, Port: p.Port, User: p.ReplUser, Password: replica.Password(p.ReplPassword)},
		})
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		_, err = s.Setup(ctx)
		require.NoError(t, err)
		require.NoError(t, s.Start(ctx))
		_, err = s.WaitStreaming(ctx)
		require.NoError(t, err)
		d := time.Since(start)
		stop := pgtest.Command(context.Background(), filepath.Join(p.BinDir, "pg_ctl"), "stop", "-D", data, "-m", "immediate", "-w")
		require.NoError(t, stop.Run())
		return d
	}

	var sh, go_ []time.Duration
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 {
			sh = append(sh, shell())
			go_ = append(go_, ours())
		} else {
			go_ = append(go_, ours())
			sh = append(sh, shell())
		}
	}
	slices.Sort(sh)
	slices.Sort(go_)
	med := func(d []time.Duration) time.Duration { return d[len(d)/2] }
	b.Logf("PostgreSQL %d, %d rounds, restored data directory -> confirmed streaming", major, len(sh))
	b.Logf("shell procedure: median %v (min %v, max %v)", med(sh).Round(time.Millisecond), sh[0].Round(time.Millisecond), sh[len(sh)-1].Round(time.Millisecond))
	b.Logf("replica:         median %v (min %v, max %v)", med(go_).Round(time.Millisecond), go_[0].Round(time.Millisecond), go_[len(go_)-1].Round(time.Millisecond))
	b.ReportMetric(float64(med(sh).Milliseconds()), "shell-ms")
	b.ReportMetric(float64(med(go_).Milliseconds()), "replica-ms")
	b.ReportMetric(float64(med(go_))/float64(med(sh)), "replica/shell")
}
