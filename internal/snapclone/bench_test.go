package snapclone_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/internal/pgtest"
	"github.com/pgstage/pgstage/internal/snapclone"
)

// Environment of the benchmark driver.
const (
	EnvBench     = "PGSTAGE_BENCH_SNAPCLONE" // "1": run TestBenchSnapshotClone (bench/snapclone.sh sets it)
	EnvBenchGiB  = "PGSTAGE_SNAP_BENCH_GIB"  // staging size in GiB, default 1 (the issue asks for 1 and 4)
	EnvBenchRuns = "PGSTAGE_BENCH_RUNS"      // rounds per filesystem, default 3
	EnvBenchFS   = "PGSTAGE_SNAP_BENCH_FS"   // filesystems to run ("btrfs,xfs"), default all three
	// EnvBenchWriteback "1": write the restored staging back to disk
	// before the rounds, as its first start does with fsync = on.
	EnvBenchWriteback = "PGSTAGE_SNAP_BENCH_WRITEBACK"
)

// TestBenchSnapshotClone is the driver of bench/snapclone.sh (a test, not
// a Benchmark, because the harness starts servers for a *testing.T). On a
// staging of at least 1 GiB on btrfs, XFS (reflink) and ext4 (copy) it
// measures the time of a snapshot, the time of a clone until it accepts
// writes, and the disk each adds; on ext4 also `cp -a` of the same data
// directory, in the same run. It logs figures and asserts nothing about
// them: no timed assertions.
func TestBenchSnapshotClone(t *testing.T) {
	if os.Getenv(EnvBench) != "1" {
		t.Skip("run by bench/snapclone.sh (" + EnvBench + "=1)")
	}
	gib, runs := 1, 3
	for env, v := range map[string]*int{EnvBenchGiB: &gib, EnvBenchRuns: &runs} {
		if s := os.Getenv(env); s != "" {
			n, err := strconv.Atoi(s)
			require.NoError(t, err, "%s=%q", env, s)
			*v = n
		}
	}
	versions := pgtest.Versions()
	major := versions[len(versions)-1]
	size := int64(gib+2) << 30
	fss := []*pgtest.LoopFS{
		pgtest.MountLoop(t, "btrfs", 2*size),
		pgtest.MountLoop(t, "xfs", 2*size),
		pgtest.MountLoop(t, "ext4", 3*size),
	}
	p := pgtest.StartPrimary(t, major, pgtest.Options{Settings: map[string]string{"max_wal_size": "1GB", "checkpoint_timeout": "30min"}})
	// About 1 KiB per row, a quarter GiB per statement (pgtest's Exec
	// allows a minute each).
	// Autovacuum off for it: freezing it would stream its size in WAL to
	// the staging while the figures are taken.
	p.Exec(t, "CREATE TABLE big (id int, pad text) WITH (autovacuum_enabled = false)")
	const quarter = 275000
	for i := 0; i < 4*gib; i++ {
		p.Exec(t, fmt.Sprintf("INSERT INTO big SELECT g, repeat(md5(g::text), 30) FROM generate_series(%d, %d) g", i*quarter+1, (i+1)*quarter))
	}
	p.Exec(t, "CHECKPOINT")
	bk := pgtest.TakeBackup(t, p, pgtest.BackupOptions{Form: pgtest.Forms(major)[0]})
	for _, fsys := range fss {
		if only := os.Getenv(EnvBenchFS); only != "" && !slices.Contains(strings.Split(only, ","), fsys.Type) {
			continue
		}
		t.Run(fsys.Type, func(t *testing.T) {
			st := newStaging(t, p, bk, fsys, "staging")
			du, err := exec.Command("du", "-sb", st.data).Output()
			require.NoError(t, err)
			t.Logf("bench: PostgreSQL %d staging on %s: %s bytes", major, fsys.Type, strings.Fields(string(du))[0])
			sc, err := snapclone.New(snapclone.Config{DataDir: st.data, BinDir: p.BinDir, ConnString: st.connString()})
			require.NoError(t, err)
			ctx := context.Background()
			// The untarred staging is still in the page cache, dirty
			// (the harness runs fsync = off, so its first start does not
			// sync the data directory as PostgreSQL does with fsync on).
			// A first reflink must write back every file it shares, a
			// first copy competes with that writeback: with
			// PGSTAGE_SNAP_BENCH_WRITEBACK=1 it is done (and timed) first.
			if os.Getenv(EnvBenchWriteback) == "1" {
				t0 := time.Now()
				out, err := exec.Command("sync", "-f", st.data).CombinedOutput()
				require.NoError(t, err, "%s", out)
				t.Logf("bench: %s writeback of the restored staging: %.3f s", fsys.Type, time.Since(t0).Seconds())
			}
			// What Link's first sync does before its snapshot: a
			// restartpoint, which writes what replay dirtied.
			t0 := time.Now()
			execSQL(t, st.connString(), "CHECKPOINT")
			t.Logf("bench: %s restartpoint before the first snapshot (Link's first sync runs one): %.3f s", fsys.Type, time.Since(t0).Seconds())
			for i := 0; i < runs; i++ {
				// On ext4, cp -a of the same directory in the same round,
				// first in every other round: whichever runs second reads
				// a warm page cache.
				cpFirst := fsys.Type == "ext4" && i%2 == 1
				if cpFirst {
					t.Logf("bench: ext4 cp -a round %d (first): %.3f s", i+1, cpA(t, st.data, filepath.Join(fsys.Dir, "cp-a")).Seconds())
				}
				t0 := time.Now()
				snap, err := sc.Snapshot(ctx, filepath.Join(fsys.Dir, fmt.Sprintf("snap%d", i)))
				require.NoError(t, err)
				snapTime := time.Since(t0)
				if fsys.Type == "ext4" && !cpFirst {
					t.Logf("bench: ext4 cp -a round %d (second): %.3f s", i+1, cpA(t, st.data, filepath.Join(fsys.Dir, "cp-a")).Seconds())
				}
				t0 = time.Now()
				c, err := sc.Clone(ctx, snap.Dir, snapclone.CloneOptions{Dir: filepath.Join(fsys.Dir, fmt.Sprintf("clone%d", i)), Port: pgtest.FreePort(t), ListenAddresses: "127.0.0.1"})
				require.NoError(t, err)
				cloneTime := time.Since(t0)
				t.Logf("bench: %s %s round %d: snapshot %.3f s (%s, extra %.1f MiB), clone ready %.3f s (extra %.1f MiB)",
					fsys.Type, snap.Method, i+1, snapTime.Seconds(), snap.Consistency, mib(snap.ExtraBytes), cloneTime.Seconds(), mib(c.ExtraBytes))
				require.NoError(t, sc.DestroyClone(ctx, c.Dir))
				require.NoError(t, sc.DeleteSnapshot(ctx, snap.Dir))
			}
		})
	}
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// cpA times `cp -a` of dir and a sync of its filesystem (the copy method
// syncs too), then removes the copy.
func cpA(t *testing.T, dir, dst string) time.Duration {
	t.Helper()
	t0 := time.Now()
	out, err := exec.Command("cp", "-a", dir, dst).CombinedOutput()
	require.NoError(t, err, "%s", out)
	out, err = exec.Command("sync", "-f", dst).CombinedOutput()
	require.NoError(t, err, "%s", out)
	d := time.Since(t0)
	require.NoError(t, os.RemoveAll(dst))
	return d
}
