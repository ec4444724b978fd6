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
			var copySum, cpSum time.Duration
			for i := 0; i < runs; i++ {
				// On ext4, cp -a of the same directory in the same round,
				// first in every other round, each after an untimed sync of
				// the loop and host filesystems: neither pays for what the
				// other (or the restore, or the last round's clone) left
				// dirty. Both read the staging from the page cache (the
				// restore left it there).
				ext4 := fsys.Type == "ext4"
				cpFirst := ext4 && i%2 == 1
				if cpFirst {
					settle(t, fsys, i+1, "cp -a")
					d, msg := cpA(t, st.data, filepath.Join(fsys.Dir, "cp-a"))
					cpSum += d
					t.Logf("bench: ext4 cp -a round %d (first): %s", i+1, msg)
				}
				if ext4 {
					settle(t, fsys, i+1, "the copy")
				}
				t0 := time.Now()
				snap, err := sc.Snapshot(ctx, filepath.Join(fsys.Dir, fmt.Sprintf("snap%d", i)))
				require.NoError(t, err)
				snapTime := time.Since(t0)
				copySum += snapTime
				if ext4 && !cpFirst {
					settle(t, fsys, i+1, "cp -a")
					d, msg := cpA(t, st.data, filepath.Join(fsys.Dir, "cp-a"))
					cpSum += d
					t.Logf("bench: ext4 cp -a round %d (second): %s", i+1, msg)
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
			if fsys.Type == "ext4" && runs > 0 {
				// Over the run: a round's pair swings with the shared
				// disk's writeback, the sums less.
				t.Logf("bench: ext4 over %d rounds: copy %.3f s, cp -a %.3f s, ratio %.2f",
					runs, copySum.Seconds(), cpSum.Seconds(), copySum.Seconds()/cpSum.Seconds())
			}
		})
	}
}

// pageCache reports /proc/meminfo's Dirty and Writeback (what the kernel
// has yet to write, which a sync in the timed step would pay for) and the
// load average.
func pageCache(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/meminfo")
	require.NoError(t, err)
	var parts []string
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && (f[0] == "Dirty:" || f[0] == "Writeback:") {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			require.NoError(t, err)
			parts = append(parts, fmt.Sprintf("%s %.1f MiB", strings.TrimSuffix(f[0], ":"), float64(kb)/1024))
		}
	}
	load, err := os.ReadFile("/proc/loadavg")
	require.NoError(t, err)
	return strings.Join(parts, ", ") + "; load " + strings.Join(strings.Fields(string(load))[:3], " ")
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// cpA times `cp -a` of dir and a sync of its filesystem (the copy method
// syncs too), then removes the copy. It returns the total and, for the
// log, the two parts.
func cpA(t *testing.T, dir, dst string) (time.Duration, string) {
	t.Helper()
	t0 := time.Now()
	out, err := exec.Command("cp", "-a", dir, dst).CombinedOutput()
	require.NoError(t, err, "%s", out)
	t1 := time.Now()
	out, err = exec.Command("sync", "-f", dst).CombinedOutput()
	require.NoError(t, err, "%s", out)
	t2 := time.Now()
	require.NoError(t, os.RemoveAll(dst))
	return t2.Sub(t0), fmt.Sprintf("%.3f s (cp %.3f s, sync %.3f s)", t2.Sub(t0).Seconds(), t1.Sub(t0).Seconds(), t2.Sub(t1).Seconds())
}

// settle syncs the loop filesystem, then the host filesystem holding its
// image (untimed in the figures, logged with the page cache's state)
// before the timed step named what. The host's share matters most: the
// loop device writes into the image's page cache, and the source server
// (fsync = off), its backup and the restore left gigabytes there for the
// kernel to write back during whichever step came first.
func settle(t *testing.T, fsys *pgtest.LoopFS, round int, what string) {
	t.Helper()
	before := pageCache(t)
	t0 := time.Now()
	out, err := exec.Command("sync", "-f", fsys.Dir, fsys.Image).CombinedOutput()
	require.NoError(t, err, "%s", out)
	t.Logf("bench: ext4 round %d, before %s: sync -f %.3f s (before it %s; after it %s)", round, what, time.Since(t0).Seconds(), before, pageCache(t))
}
