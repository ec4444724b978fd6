package pgstage_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgstage/pgstage/backupsel"
	"github.com/pgstage/pgstage/internal/pgtest"
	"github.com/pgstage/pgstage/stage"
	"github.com/pgstage/pgstage/walwatch"
	"github.com/stretchr/testify/require"
)

// waitLimit bounds every wait for something the servers do; it is a
// timeout, not a timing assertion.
const waitLimit = 90 * time.Second

// TestLinker runs the whole job for every major: one primary per major, and
// one staging per backup layout linked from it. All three fault when the
// primary stops, refuse snapshots, recover when it starts again and take
// snapshots; the folder staging resyncs onto a newer folder, the direct one
// is disabled and enabled, the zip one is closed and opened again.
func TestLinker(t *testing.T) {
	pgtest.ForEachMajor(t, func(t *testing.T, major int) {
		t.Parallel()
		p := pgtest.StartPrimary(t, major, pgtest.Options{Settings: keepWAL(major), Tablespace: true})
		p.InsertRows(t, 5)
		ctx := context.Background()

		forms := map[pgtest.Layout]pgtest.Form{}
		fs := pgtest.Forms(major)
		forms[pgtest.LayoutFolder] = fs[0]
		forms[pgtest.LayoutDirect] = pick(fs, pgtest.FormFetch, pgtest.FormServer)
		forms[pgtest.LayoutZip] = pick(fs, pgtest.FormGzip, pgtest.FormServerGzip)

		stagings := map[pgtest.Layout]*staging{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		backupTime := time.Now().Add(-time.Hour)
		for _, layout := range pgtest.Layouts {
			b := pgtest.TakeBackup(t, p, pgtest.BackupOptions{Layout: layout, Form: forms[layout], Time: backupTime})
			s := newStaging(t, p, b.Path)
			require.NoError(t, s.l.Preflight(ctx), "preflight %v", layout)
			wg.Add(1)
			go func() { // link the three stagings at once
				defer wg.Done()
				err := s.l.Link(ctx)
				mu.Lock()
				defer mu.Unlock()
				s.linkErr = err
				stagings[layout] = s
			}()
		}
		wg.Wait()
		for layout, s := range stagings {
			require.NoError(t, s.linkErr, "link %v (%v)", layout, forms[layout])
			st, err := s.l.Status(ctx)
			require.NoError(t, err)
			require.Equal(t, stage.StateStreaming, st.State, "%v: %+v", layout, st)
			require.Equal(t, strconv.Itoa(major), st.Backup.PGVersion)
			require.Len(t, s.l.Snapshots(), 1, "link takes the first snapshot")
		}
		require.Equal(t, "PostgreSQL_T"+backupTime.Format("20060102150405"), stagings[pgtest.LayoutFolder].status(t).Backup.Name)

		// A row written on the source arrives on every staging.
		id := p.InsertRows(t, 3)
		for _, s := range stagings {
			s.waitRow(t, id)
		}
		// The tablespace came along, beside the data directory, not at the
		// source's location.
		for layout, s := range stagings {
			require.Equal(t, "1", s.query(t, "SELECT count(*) FROM pgstage_ts_rows"), "%v", layout)
			loc := s.query(t, "SELECT pg_tablespace_location(oid) FROM pg_tablespace WHERE spcname = 'pgstage_ts'")
			require.True(t, strings.HasPrefix(loc, s.cfg.Staging.DataDir+".tablespaces/"), "%v: tablespace at %s", layout, loc)
		}

		// The source stops: every staging faults and refuses snapshots.
		p.Stop(t, "fast")
		for layout, s := range stagings {
			ev := s.waitEvent(t, walwatch.KindFault)
			require.NotEmpty(t, ev.Reason, "%v", layout)
			_, err := s.l.Snapshot(ctx)
			require.ErrorIs(t, err, stage.ErrFaulted, "%v", layout)
			var f *stage.Fault
			require.ErrorAs(t, err, &f)
			require.Equal(t, ev.Reason, f.Reason)
			require.Equal(t, stage.StateFaulted, s.status(t).State)
		}

		// It starts again: every staging recovers and snapshots again.
		p.Start(t)
		for layout, s := range stagings {
			s.waitEvent(t, walwatch.KindRecovered)
			snap, err := s.l.Snapshot(ctx)
			require.NoError(t, err, "%v", layout)
			require.NotEmpty(t, snap.ReplayLSN)
			require.NotZero(t, snap.Timeline)
			faults := s.l.Faults()
			require.NotEmpty(t, faults)
			require.False(t, faults[len(faults)-1].Open(), "the fault is cleared")
		}
		id = p.InsertRows(t, 1)
		for _, s := range stagings {
			s.waitRow(t, id)
		}

		// Resync onto a newer timestamped folder; the history is kept.
		folder := stagings[pgtest.LayoutFolder]
		newer := pgtest.TakeBackup(t, p, pgtest.BackupOptions{Layout: pgtest.LayoutFolder, Form: forms[pgtest.LayoutFolder], Path: folder.backupPath})
		before := len(folder.l.Snapshots())
		require.NoError(t, folder.l.Resync(ctx))
		st := folder.status(t)
		require.Equal(t, filepath.Base(newer.Location), st.Backup.Name)
		require.Equal(t, stage.StateStreaming, st.State)
		require.Len(t, folder.l.Snapshots(), before+1)
		id = p.InsertRows(t, 1)
		folder.waitRow(t, id)

		// Disable: no server, no snapshots; Enable: streaming again.
		direct := stagings[pgtest.LayoutDirect]
		require.NoError(t, direct.l.Disable(ctx))
		require.Equal(t, stage.StateDisabled, direct.status(t).State)
		_, err := direct.l.Snapshot(ctx)
		require.ErrorIs(t, err, stage.ErrDisabled)
		require.NoError(t, direct.l.Enable(ctx))
		id = p.InsertRows(t, 1)
		direct.waitRow(t, id)
		_, err = direct.l.Snapshot(ctx)
		require.NoError(t, err)

		// The Snapshotter saw every snapshot; the post-sync hook every sync.
		for layout, s := range stagings {
			require.EqualValues(t, len(s.l.Snapshots()), s.snapshots.Load(), "%v", layout)
		}
		hook, err := os.ReadFile(filepath.Join(folder.cfg.Staging.DataDir+".pgstage", "post-sync.txt"))
		require.NoError(t, err)
		lines := strings.Split(strings.TrimSpace(string(hook)), "\n")
		require.Len(t, lines, 2, "link and resync each sync once: %q", hook)
		require.True(t, strings.HasPrefix(lines[1], fmt.Sprintf("resync %d %s", folder.cfg.Staging.Port, folder.l.Snapshots()[before].ReplayLSN)), "%q", lines[1])

		// Close and Open from the state file: the new Linker carries on.
		zip := stagings[pgtest.LayoutZip]
		require.NoError(t, zip.l.Close())
		data, err := os.ReadFile(filepath.Join(zip.cfg.Staging.DataDir+".pgstage", "state.json"))
		require.NoError(t, err)
		require.NotContains(t, string(data), p.ReplPassword)
		info, err := os.Stat(filepath.Join(zip.cfg.Staging.DataDir+".pgstage", "state.json"))
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
		l2, err := stage.Open(ctx, stage.Config{Staging: stage.Staging{DataDir: zip.cfg.Staging.DataDir}, Source: stage.Source{Password: stage.Password(p.ReplPassword)}})
		require.NoError(t, err)
		zip.l = l2
		require.Equal(t, stage.StateStreaming, zip.status(t).State)
		_, err = l2.Snapshot(ctx)
		require.NoError(t, err)
	})
}

// TestLinkerBadInputs checks that preflight refuses, before touching
// anything, each input the job cannot work with, and says why.
func TestLinkerBadInputs(t *testing.T) {
	pgtest.ForEachMajor(t, func(t *testing.T, major int) {
		t.Parallel()
		ctx := context.Background()
		// The subtests link from b one after the other: the primary keeps
		// the WAL b needs however busy the machine.
		p := pgtest.StartPrimary(t, major, pgtest.Options{Settings: keepWAL(major)})
		form := pgtest.Forms(major)[0]
		b := pgtest.TakeBackup(t, p, pgtest.BackupOptions{Layout: pgtest.LayoutFolder, Form: form})
		other := pgtest.StartPrimary(t, major, pgtest.Options{})
		ob := pgtest.TakeBackup(t, other, pgtest.BackupOptions{Layout: pgtest.LayoutFolder, Form: form})
		busy, err := net.Listen("tcp", "127.0.0.1:0") // a port something else uses
		require.NoError(t, err)
		defer busy.Close()
		otherMajor := 15
		if major == 15 {
			otherMajor = 16
		}

		cases := []struct {
			name  string
			edit  func(c *stage.Config)
			check string // a word the problem must say
			is    error
		}{
			{"wrong password", func(c *stage.Config) { c.Source.Password = "not the password" }, "password", nil},
			{"backup of another source", func(c *stage.Config) { c.BackupPath = ob.Path }, "belongs to database system", nil},
			{"port in use", func(c *stage.Config) { c.Staging.Port = busy.Addr().(*net.TCPAddr).Port }, "in use", nil},
			{"version mismatch", func(c *stage.Config) { c.Staging.BinDir = pgtest.BinDir(t, otherMajor) }, "staging binaries", nil},
			{"no backup", func(c *stage.Config) { c.BackupPath = pgtest.TempDir(t) }, "no usable backup", backupsel.ErrNoBackup},
			{"data directory not empty", func(c *stage.Config) {
				require.NoError(t, os.WriteFile(filepath.Join(c.Staging.DataDir, "x"), nil, 0o600))
			}, "not empty", nil},
			{"every problem at once", func(c *stage.Config) {
				c.Source.Password = "not the password"
				c.Staging.Port = busy.Addr().(*net.TCPAddr).Port
				c.Staging.BinDir = pgtest.BinDir(t, otherMajor)
			}, "3 problem(s)", nil},
			{"unknown setting", func(c *stage.Config) { c.Settings = []stage.Setting{{Name: "no_such_setting", Value: "1"}} }, "no_such_setting", nil},
			{"setting the watcher needs", func(c *stage.Config) { c.Settings = []stage.Setting{{Name: "lc_messages", Value: "de_DE.UTF-8"}} }, "lc_messages is managed by pgstage", nil},
			{"log level that hides the walreceiver's faults", func(c *stage.Config) {
				c.Settings = []stage.Setting{{Name: "log_min_messages", Value: "fatal"}}
			}, "log_min_messages = fatal would blind the watcher", nil},
			{"no receiver timeout", func(c *stage.Config) {
				c.Settings = []stage.Setting{{Name: "wal_receiver_timeout", Value: "0"}}
			}, "wal_receiver_timeout = 0 would blind the watcher", nil},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				cfg := stagingConfig(t, p, b.Path)
				require.NoError(t, os.MkdirAll(cfg.Staging.DataDir, 0o700))
				tc.edit(&cfg)
				l, err := stage.New(cfg)
				require.NoError(t, err)
				defer l.Close()
				err = l.Link(ctx)
				t.Log(err)
				require.ErrorIs(t, err, stage.ErrPreflight)
				require.Contains(t, err.Error(), tc.check)
				if tc.is != nil {
					require.ErrorIs(t, err, tc.is)
				}
				require.NotContains(t, err.Error(), p.ReplPassword)
				require.NotContains(t, err.Error(), cfg.Source.Password.Reveal(), "the password supplied must not be in the error either")
				entries, _ := os.ReadDir(cfg.Staging.DataDir)
				for _, e := range entries {
					require.Equal(t, "x", e.Name(), "preflight touched the data directory")
				}
			})
		}

		t.Run("setting below the source's hot-standby minimum", func(t *testing.T) {
			cfg := stagingConfig(t, p, b.Path)
			cfg.Settings = append(cfg.Settings, stage.Setting{Name: "max_connections", Value: "7"})
			l, err := stage.New(cfg)
			require.NoError(t, err)
			defer l.Close()
			err = l.Link(ctx)
			var se *stage.StepError
			require.ErrorAs(t, err, &se, "%v", err)
			require.Equal(t, stage.StepSettings, se.Step, "refused before the server is started")
			want := p.QueryString(t, "SHOW max_connections")
			require.Contains(t, err.Error(), "max_connections = 7 is below the source's "+want)
		})

		t.Run("failed start, then link again", func(t *testing.T) {
			cfg := stagingConfig(t, p, b.Path)
			cfg.Settings = append(cfg.Settings, stage.Setting{Name: "shared_preload_libraries", Value: "no_such_library"})
			l, err := stage.New(cfg)
			require.NoError(t, err)
			err = l.Link(ctx)
			var se *stage.StepError
			require.ErrorAs(t, err, &se, "%v", err)
			require.Equal(t, stage.StepStart, se.Step)
			require.Contains(t, err.Error(), "no_such_library", "the error carries the server's reason")
			require.NotContains(t, err.Error(), p.ReplPassword)
			entries, _ := os.ReadDir(cfg.Staging.DataDir)
			require.Empty(t, entries, "a failed link leaves the data directory empty")
			require.NoError(t, l.Close())

			cfg.Settings = cfg.Settings[:len(cfg.Settings)-1]
			l, err = stage.New(cfg)
			require.NoError(t, err)
			defer l.Close()
			require.NoError(t, l.Link(ctx), "Link again recovers")
			require.NoError(t, l.Disable(ctx))
		})

		t.Run("no free WAL sender", func(t *testing.T) {
			// Take every WAL sender of the source (max_wal_senders = 10).
			var conns []*pgconn.PgConn
			defer func() {
				for _, c := range conns {
					c.Close(context.Background())
				}
				// Wait for the WAL senders to exit, so the next subtests find them free.
				for deadline := time.Now().Add(waitLimit); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
					if p.QueryString(t, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'walsender'") == "0" {
						return
					}
				}
				t.Errorf("the WAL senders did not exit")
			}()
			for i := 0; i < 10; i++ {
				c, err := pgconn.Connect(ctx, fmt.Sprintf("host=%s port=%d user=postgres dbname=replication replication=true sslmode=disable", p.Host, p.Port))
				require.NoError(t, err)
				conns = append(conns, c)
			}
			cfg := stagingConfig(t, p, b.Path)
			l, err := stage.New(cfg)
			require.NoError(t, err)
			defer l.Close()
			err = l.Preflight(ctx)
			require.ErrorIs(t, err, stage.ErrPreflight)
			require.Contains(t, err.Error(), "raise max_wal_senders on the source")
		})

		t.Run("backup without WAL", func(t *testing.T) {
			if major > 15 {
				t.Skip("the server-side backups of 16+ hold their WAL in base.tar")
			}
			// A backup whose WAL is moved out to a folder of segments.
			walDir := pgtest.TempDir(t)
			nw := pgtest.TakeBackup(t, p, pgtest.BackupOptions{Layout: pgtest.LayoutFolder, Form: pgtest.FormStream, Extra: func(raw string) {
				out, err := exec.Command("tar", "-xf", filepath.Join(raw, "pg_wal.tar"), "-C", walDir).CombinedOutput()
				require.NoError(t, err, "%s", out)
				require.NoError(t, os.Remove(filepath.Join(raw, "pg_wal.tar")))
			}})
			link := func(edit func(c *stage.Config)) error {
				cfg := stagingConfig(t, p, nw.Path)
				edit(&cfg)
				l, err := stage.New(cfg)
				require.NoError(t, err)
				defer l.Close()
				if err := l.Link(ctx); err != nil {
					return err
				}
				return l.Disable(ctx)
			}
			err := link(func(c *stage.Config) {})
			require.ErrorIs(t, err, backupsel.ErrNoBackup, "no WAL, no WAL path, no streaming")
			require.NoError(t, link(func(c *stage.Config) { c.Restore.WALPath = walDir }), "WAL from the WAL path")
			require.NoError(t, link(func(c *stage.Config) { c.Restore.StreamWhenNoWAL = true; c.Restore.WALPath = "/nonexistent" }),
				"streamed from the source; StreamWhenNoWAL takes precedence over the WAL path")
		})

		t.Run("WAL removed needs a resync", func(t *testing.T) {
			// A primary of its own, keeping no WAL but what a slot holds:
			// the slot keeps the backup's WAL until the staging streams,
			// however long that takes; dropped, it lets the checkpoints
			// below recycle it.
			wp := pgtest.StartPrimary(t, major, pgtest.Options{})
			wp.Exec(t, "SELECT pg_create_physical_replication_slot('pgstage_hold', true)")
			wb := pgtest.TakeBackup(t, wp, pgtest.BackupOptions{Layout: pgtest.LayoutFolder, Form: form})
			cfg := stagingConfig(t, wp, wb.Path)
			l, err := stage.New(cfg)
			require.NoError(t, err)
			defer l.Close()
			s := &staging{cfg: cfg, l: l}
			require.NoError(t, l.Link(ctx))
			require.NoError(t, l.Disable(ctx))
			recycleWAL(t, wp)
			err = l.Enable(ctx)
			require.Error(t, err, "the staging cannot stream")
			ev := s.waitEvent(t, walwatch.KindFault)
			for ev.Reason != walwatch.ReasonWALRemoved { // a first fault may come before the reason is known
				ev = s.waitEvent(t, walwatch.KindFault)
			}
			_, err = l.Snapshot(ctx)
			var f *stage.Fault
			require.ErrorAs(t, err, &f)
			require.True(t, f.NeedsResync, "%+v", f)
			require.True(t, stage.NeedsResync(err))
			require.Contains(t, err.Error(), "Resync")
			st := s.status(t)
			require.Equal(t, stage.StateFaulted, st.State)
			require.True(t, st.Fault.NeedsResync)

			newer := pgtest.TakeBackup(t, wp, pgtest.BackupOptions{Layout: pgtest.LayoutFolder, Form: form, Path: wb.Path, Time: time.Now().Add(time.Hour)})
			require.NoError(t, l.Resync(ctx))
			st = s.status(t)
			require.Equal(t, stage.StateStreaming, st.State)
			require.Equal(t, filepath.Base(newer.Location), st.Backup.Name)
			require.NoError(t, l.Disable(ctx))
		})

		t.Run("second linker", func(t *testing.T) {
			cfg := stagingConfig(t, p, b.Path)
			l, err := stage.New(cfg)
			require.NoError(t, err)
			defer l.Close()
			_, err = stage.New(cfg)
			require.ErrorIs(t, err, stage.ErrLocked)
			require.NoError(t, l.Close())
			l3, err := stage.New(cfg) // the lock is free again
			require.NoError(t, err)
			l3.Close()
		})

		// Last, on a backup of its own: the subtests above have let the
		// primary recycle the WAL that b needs.
		//
		// A zip whose base.tar carries another system's pg_control: Select
		// does not inflate base.tar of a zip, and takes the identity from
		// pg_wal.tar (this source's), so preflight passes; Restore finds the
		// mismatch and leaves the data directory as it was.
		if form == pgtest.FormStream {
			t.Run("zip whose pg_control is another system's", func(t *testing.T) {
				fresh := pgtest.TakeBackup(t, p, pgtest.BackupOptions{Layout: pgtest.LayoutFolder, Form: form})
				dir := pgtest.TempDir(t)
				foreign := tarMember(t, filepath.Join(ob.Location, "base.tar"), "global/pg_control")
				replaceTarMember(t, filepath.Join(fresh.Location, "base.tar"), filepath.Join(dir, "base.tar"), "global/pg_control", foreign)
				args := []string{"-q", "-j", filepath.Join(dir, "PostgreSQL_T20261124.zip"), filepath.Join(dir, "base.tar"), filepath.Join(fresh.Location, "pg_wal.tar")}
				if _, err := os.Stat(filepath.Join(fresh.Location, "backup_manifest")); err == nil {
					args = append(args, filepath.Join(fresh.Location, "backup_manifest"))
				}
				out, err := exec.Command("zip", args...).CombinedOutput()
				require.NoError(t, err, "%s", out)
				require.NoError(t, os.Remove(filepath.Join(dir, "base.tar")))
				old := time.Now().Add(-time.Hour)
				require.NoError(t, os.Chtimes(filepath.Join(dir, "PostgreSQL_T20261124.zip"), old, old))

				cfg := stagingConfig(t, p, dir)
				require.NoError(t, os.MkdirAll(cfg.Staging.DataDir, 0o700))
				l, err := stage.New(cfg)
				require.NoError(t, err)
				defer l.Close()
				err = l.Link(ctx)
				var nw *backupsel.NotWholeError
				require.ErrorAs(t, err, &nw, "%v", err)
				var se *stage.StepError
				require.ErrorAs(t, err, &se)
				require.Equal(t, stage.StepRestore, se.Step)
				require.Contains(t, err.Error(), fmt.Sprintf("global/pg_control has system identifier %d", other.SystemIdentifier(t)))
				require.Contains(t, err.Error(), "no other backup can be used")
				entries, err := os.ReadDir(cfg.Staging.DataDir)
				require.NoError(t, err)
				require.Empty(t, entries, "the data directory is left as it was")
				l.Close()

				// The next backup is checked as preflight checks the first:
				// a whole zip of another system is refused, not restored.
				foreignZip := filepath.Join(dir, "PostgreSQL_T20261122.zip")
				fargs := []string{"-q", "-j", foreignZip, filepath.Join(ob.Location, "base.tar"), filepath.Join(ob.Location, "pg_wal.tar")}
				if _, err := os.Stat(filepath.Join(ob.Location, "backup_manifest")); err == nil {
					fargs = append(fargs, filepath.Join(ob.Location, "backup_manifest"))
				}
				out, err = exec.Command("zip", fargs...).CombinedOutput()
				require.NoError(t, err, "%s", out)
				require.NoError(t, os.Chtimes(foreignZip, old, old))
				lf, err := stage.New(cfg)
				require.NoError(t, err)
				err = lf.Link(ctx)
				lf.Close()
				require.ErrorAs(t, err, &se, "%v", err)
				require.Equal(t, stage.StepRestore, se.Step)
				require.Contains(t, err.Error(), "no other backup can be used")
				require.Contains(t, err.Error(), "belongs to database system")
				entries, err = os.ReadDir(cfg.Staging.DataDir)
				require.NoError(t, err)
				require.Empty(t, entries, "the other system's backup was not restored")
				require.NoError(t, os.Remove(foreignZip))

				// With a second bad zip, newer, and an older whole one beside
				// them, Link passes over both bad ones, as Select would have,
				// and links the older.
				out, err = exec.Command("cp", "-p", filepath.Join(dir, "PostgreSQL_T20261124.zip"), filepath.Join(dir, "PostgreSQL_T20261125.zip")).CombinedOutput()
				require.NoError(t, err, "%s", out)
				good := filepath.Join(dir, "PostgreSQL_T20261123.zip")
				args = []string{"-q", "-j", good, filepath.Join(fresh.Location, "base.tar"), filepath.Join(fresh.Location, "pg_wal.tar")}
				if _, err := os.Stat(filepath.Join(fresh.Location, "backup_manifest")); err == nil {
					args = append(args, filepath.Join(fresh.Location, "backup_manifest"))
				}
				out, err = exec.Command("zip", args...).CombinedOutput()
				require.NoError(t, err, "%s", out)
				require.NoError(t, os.Chtimes(good, old, old))
				l2, err := stage.New(cfg)
				require.NoError(t, err)
				defer l2.Close()
				require.NoError(t, l2.Link(ctx))
				st, err := l2.Status(ctx)
				require.NoError(t, err)
				require.Equal(t, stage.StateStreaming, st.State, "%+v", st)
				require.Equal(t, "PostgreSQL_T20261123.zip", st.Backup.Name)
				require.Len(t, st.Backup.PassedOver, 2, "%+v", st.Backup.PassedOver)
				for _, pb := range st.Backup.PassedOver {
					require.Contains(t, pb.Reason, "not whole", pb.Name)
				}
				require.NoError(t, l2.Disable(ctx))
			})
		}
	})
}

// keepWAL makes the primary keep the WAL that the backups taken one after
// the other would otherwise recycle before every staging streams.
func keepWAL(major int) map[string]string {
	if major >= 13 {
		return map[string]string{"wal_keep_size": "'256MB'"}
	}
	return map[string]string{"wal_keep_segments": "16"}
}

// TestMain runs this test binary as the helper process of
// TestLinkerKilled when PGSTAGE_HELPER_CONFIG says so, and as the tests
// otherwise.
func TestMain(m *testing.M) {
	if raw := os.Getenv("PGSTAGE_HELPER_CONFIG"); raw != "" {
		linkAndDie(raw, stage.Step(os.Getenv("PGSTAGE_HELPER_KILL_AT")))
		os.Exit(3) // not reached: the helper dies by SIGKILL
	}
	os.Exit(m.Run())
}

// helperConfig is what the helper process needs of a stage.Config.
type helperConfig struct {
	BackupPath string
	Source     stage.Source
	Password   string
	Staging    stage.Staging
	Settings   []stage.Setting
}

// linkAndDie links a staging and kills itself (SIGKILL, as a crash or
// kill -9) when Link enters the step at: for the restore, once some of the
// backup is written.
func linkAndDie(raw string, at stage.Step) {
	var hc helperConfig
	if err := json.Unmarshal([]byte(raw), &hc); err != nil {
		fmt.Println("helper:", err)
		return
	}
	cfg := stage.Config{BackupPath: hc.BackupPath, Restore: stage.RestoreConfig{Settle: -1}, Source: hc.Source, Staging: hc.Staging, Settings: hc.Settings}
	cfg.Source.Password = stage.Password(hc.Password)
	cfg.Progress = func(p stage.Progress) {
		if p.Step == at && (at != stage.StepRestore || p.Done > 0) {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	}
	l, err := stage.New(cfg)
	if err != nil {
		fmt.Println("helper:", err)
		return
	}
	fmt.Println("helper: Link returned:", l.Link(context.Background()))
}

// TestLinkerKilled kills a Linker (kill -9) at every step of Link, and
// runs Link again in a new process, as an operator would: it carries on,
// whatever the dead process left (a half-restored data directory, a running
// server). Then: Open right after an outage ended while nothing watched
// reports the present state, not the saved fault.
func TestLinkerKilled(t *testing.T) {
	pgtest.ForEachMajor(t, func(t *testing.T, major int) {
		t.Parallel()
		ctx := context.Background()
		p := pgtest.StartPrimary(t, major, pgtest.Options{Settings: keepWAL(major)})
		b := pgtest.TakeBackup(t, p, pgtest.BackupOptions{Layout: pgtest.LayoutFolder, Form: pgtest.Forms(major)[0]})

		for _, step := range []stage.Step{stage.StepPreflight, stage.StepRestore, stage.StepConfigure, stage.StepSettings,
			stage.StepStart, stage.StepStream, stage.StepWatch, stage.StepSync} {
			t.Run("killed at "+string(step), func(t *testing.T) {
				cfg := stagingConfig(t, p, b.Path)
				data, err := json.Marshal(helperConfig{BackupPath: cfg.BackupPath, Source: cfg.Source, Password: cfg.Source.Password.Reveal(),
					Staging: cfg.Staging, Settings: cfg.Settings})
				require.NoError(t, err)
				cmd := exec.Command(os.Args[0])
				cmd.Env = append(os.Environ(), "PGSTAGE_HELPER_CONFIG="+string(data), "PGSTAGE_HELPER_KILL_AT="+string(step))
				out, err := cmd.CombinedOutput()
				var ee *exec.ExitError
				require.ErrorAs(t, err, &ee, "the helper should have been killed: %s", out)
				ws, _ := ee.Sys().(syscall.WaitStatus)
				require.True(t, ws.Signaled() && ws.Signal() == syscall.SIGKILL, "the helper should have been killed at %s: %v\n%s", step, err, out)

				l, err := stage.New(cfg)
				require.NoError(t, err)
				s := &staging{cfg: cfg, l: l}
				t.Cleanup(func() { l.Disable(ctx); l.Close() })
				st := s.status(t)
				require.Equal(t, stage.StateUnlinked, st.State)
				require.Equal(t, stage.JobLink, st.Job)
				require.Equal(t, step, st.Step)
				require.NoError(t, l.Link(ctx), "the same command again carries on")
				st = s.status(t)
				require.Equal(t, stage.StateStreaming, st.State)
				require.Empty(t, st.Job)
				id := p.InsertRows(t, 1)
				s.waitRow(t, id)
			})
		}

		t.Run("status after Open is the present state", func(t *testing.T) {
			s := newStaging(t, p, b.Path)
			require.NoError(t, s.l.Link(ctx))
			p.Stop(t, "fast")
			s.waitEvent(t, walwatch.KindFault)
			require.NoError(t, s.l.Close())
			logDir := filepath.Join(s.cfg.Staging.DataDir+".pgstage", "log")
			started := logCount(t, logDir, "started streaming WAL from primary")
			p.Start(t)
			// Streaming resumes while nothing watches. The walreceiver says
			// "streaming" from the moment it starts, before it connects: what
			// Open must find is the log's word that it streams again.
			for deadline := time.Now().Add(waitLimit); logCount(t, logDir, "started streaming WAL from primary") == started ||
				s.query(t, "SELECT coalesce((SELECT status FROM pg_stat_wal_receiver), 'none')") != "streaming"; time.Sleep(50 * time.Millisecond) {
				require.True(t, time.Now().Before(deadline), "the staging did not stream again")
			}
			l, err := stage.Open(ctx, stage.Config{Staging: stage.Staging{DataDir: s.cfg.Staging.DataDir}, Source: stage.Source{Password: stage.Password(p.ReplPassword)}})
			require.NoError(t, err)
			s.l = l
			st := s.status(t)
			require.Equal(t, stage.StateStreaming, st.State, "%+v", st)
			require.Nil(t, st.Fault)
		})
	})
}

func pick(forms []pgtest.Form, want ...pgtest.Form) pgtest.Form {
	for _, w := range want {
		for _, f := range forms {
			if f == w {
				return f
			}
		}
	}
	return forms[0]
}

type staging struct {
	snapshots  atomic.Int32 // calls of the Snapshotter
	cfg        stage.Config
	l          *stage.Linker
	backupPath string
	linkErr    error
}

// stagingConfig is a staging of p restored from backupPath, in a new
// directory, on a free port.
func stagingConfig(t *testing.T, p *pgtest.Primary, backupPath string) stage.Config {
	t.Helper()
	dir := pgtest.TempDir(t)
	return stage.Config{
		BackupPath: backupPath,
		Restore:    stage.RestoreConfig{Settle: -1}, // the backups here are whole when taken
		Source:     stage.Source{Host: p.Host, Port: p.Port, User: p.ReplUser, Password: stage.Password(p.ReplPassword), SSLMode: "disable"},
		Staging: stage.Staging{
			DataDir:   filepath.Join(dir, "data"),
			Port:      pgtest.FreePort(t),
			BinDir:    pgtest.BinDir(t, p.Major),
			SocketDir: dir,
		},
		// Retry the source quickly after an outage; skip fsync: test data.
		Settings: []stage.Setting{
			{Name: "wal_retrieve_retry_interval", Value: "200ms"},
			{Name: "fsync", Value: "off"},
		},
	}
}

func newStaging(t *testing.T, p *pgtest.Primary, backupPath string) *staging {
	t.Helper()
	return newStagingWith(t, p, backupPath, nil)
}

// newStagingWith is newStaging with the configuration changed by edit.
func newStagingWith(t *testing.T, p *pgtest.Primary, backupPath string, edit func(*stage.Config)) *staging {
	t.Helper()
	cfg := stagingConfig(t, p, backupPath)
	if edit != nil {
		edit(&cfg)
	}
	s := &staging{backupPath: backupPath}
	cfg.Snapshotter = stage.SnapshotterFunc(func(ctx context.Context, snap stage.Snapshot) error {
		if snap.ReplayLSN == "" || snap.DataDir != cfg.Staging.DataDir {
			return fmt.Errorf("snapshot without position: %+v", snap)
		}
		s.snapshots.Add(1)
		return nil
	})
	// A post-sync hook command sees the staging and the snapshot in its environment.
	cfg.Hooks.PostSync = []stage.Hook{{Command: `printf '%s %s %s\n' "$PGSTAGE_JOB" "$PGSTAGE_PORT" "$PGSTAGE_SNAPSHOT_REPLAY_LSN" >> post-sync.txt`}}
	l, err := stage.New(cfg)
	require.NoError(t, err)
	s.cfg, s.l = cfg, l
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if t.Failed() {
			t.Logf("staging %s log:\n%s", cfg.Staging.DataDir, newestLog(filepath.Join(cfg.Staging.DataDir+".pgstage", "log")))
		}
		s.l.Disable(ctx) // stops the server; fails harmlessly when not linked
		s.l.Close()
	})
	return s
}

func (s *staging) status(t *testing.T) stage.Status {
	t.Helper()
	st, err := s.l.Status(context.Background())
	require.NoError(t, err)
	return st
}

// waitEvent reads the Linker's events until one of kind (any, "") arrives.
func (s *staging) waitEvent(t *testing.T, kind walwatch.Kind) walwatch.Event {
	t.Helper()
	timeout := time.After(waitLimit)
	var seen []string
	for {
		select {
		case ev, ok := <-s.l.Events():
			require.True(t, ok, "events closed")
			if ev.Kind == kind || kind == "" {
				return ev
			}
			seen = append(seen, ev.String())
		case <-timeout:
			t.Fatalf("no %s event for %s within %v; saw:\n%s", kind, s.cfg.Staging.DataDir, waitLimit, strings.Join(seen, "\n"))
		}
	}
}

// connect connects to the staging as postgres through its socket.
func (s *staging) connect(t *testing.T, ctx context.Context) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctx, fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres sslmode=disable", s.cfg.Staging.SocketDir, s.cfg.Staging.Port))
	require.NoError(t, err)
	return conn
}

// query runs sql on the staging and returns the first column of the first row.
func (s *staging) query(t *testing.T, sql string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	conn := s.connect(t, ctx)
	defer conn.Close(context.Background())
	var v string
	require.NoError(t, conn.QueryRow(ctx, sql).Scan(&v), sql)
	return v
}

// waitRow waits until the staging has replayed the row with this id.
func (s *staging) waitRow(t *testing.T, id int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	cs := fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres sslmode=disable", s.cfg.Staging.SocketDir, s.cfg.Staging.Port)
	var last error
	for ctx.Err() == nil {
		conn, err := pgx.Connect(ctx, cs)
		if err == nil {
			var n int64
			err = conn.QueryRow(ctx, "SELECT count(*) FROM pgstage_rows WHERE id = $1", id).Scan(&n)
			conn.Close(context.Background())
			if err == nil && n == 1 {
				return
			}
			if err == nil {
				err = errors.New("row not there yet")
			}
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("row %d never reached the staging on port %d: %v", id, s.cfg.Staging.Port, last)
}

// tarMember returns the content of the regular file name in the tar at path.
func tarMember(t *testing.T, path, name string) []byte {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		require.NoError(t, err, "%s has no %s", path, name)
		if strings.TrimPrefix(h.Name, "./") == name {
			data, err := io.ReadAll(tr)
			require.NoError(t, err)
			return data
		}
	}
}

// replaceTarMember copies the tar at src to dst with the content of the
// regular file name replaced by data.
func replaceTarMember(t *testing.T, src, dst, name string, data []byte) {
	t.Helper()
	in, err := os.Open(src)
	require.NoError(t, err)
	defer in.Close()
	out, err := os.Create(dst)
	require.NoError(t, err)
	defer out.Close()
	tr, tw := tar.NewReader(in), tar.NewWriter(out)
	replaced := false
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		body := io.Reader(tr)
		if strings.TrimPrefix(h.Name, "./") == name {
			h.Size, body, replaced = int64(len(data)), bytes.NewReader(data), true
		}
		require.NoError(t, tw.WriteHeader(h))
		_, err = io.Copy(tw, body)
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	require.True(t, replaced, "%s has no %s", src, name)
}
