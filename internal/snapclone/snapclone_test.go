package snapclone_test

import (
	"context"
	"fmt"
	"log/slog"
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
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/internal/pgtest"
	"github.com/pgstage/pgstage/internal/snapclone"
	"github.com/pgstage/pgstage/replica"
)

// filesystems are made once per test process and shared by every major.
type filesystems struct {
	btrfs, xfs, ext4, tiny *pgtest.LoopFS
}

func mountAll(t *testing.T) filesystems {
	t.Helper()
	return filesystems{
		btrfs: pgtest.MountLoop(t, "btrfs", 3<<30),
		xfs:   pgtest.MountLoop(t, "xfs", 3<<30),
		ext4:  pgtest.MountLoop(t, "ext4", 3<<30),
		// Too small for a clone: the disk-full case.
		tiny: pgtest.MountLoop(t, "ext4", 24<<20),
	}
}

// staging is a streaming standby of p whose data directory is on fsys.
type staging struct {
	standby *replica.Standby
	data    string
	sock    string
	port    int
}

func (s *staging) connString() string {
	return fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres sslmode=disable", s.sock, s.port)
}

// newStaging restores b into a new data directory on fsys (a subvolume on
// btrfs), each tablespace into a directory beside it, and starts it as a
// streaming standby of p.
func newStaging(t *testing.T, p *pgtest.Primary, b *pgtest.Backup, fsys *pgtest.LoopFS, name string) *staging {
	t.Helper()
	ctx := context.Background()
	data := filepath.Join(fsys.Dir, name)
	_, err := snapclone.CreateDataDir(ctx, data, "")
	require.NoError(t, err)
	t.Cleanup(func() { removeAll(t, data) })
	untar := func(tarFile, dest string) {
		out, err := exec.Command("tar", "-xf", filepath.Join(b.Location, tarFile), "-C", dest).CombinedOutput()
		require.NoError(t, err, "%s", out)
	}
	untar("base.tar", data)
	for _, f := range b.Files {
		switch {
		case f == "pg_wal.tar":
			untar(f, filepath.Join(data, "pg_wal"))
		case strings.HasSuffix(f, ".tar") && f != "base.tar":
			// A tablespace: restored beside the data directory, never
			// at the primary's location on this same host.
			oid := strings.TrimSuffix(f, ".tar")
			ts := filepath.Join(fsys.Dir, name+"-ts"+oid)
			require.NoError(t, os.Mkdir(ts, 0o700))
			t.Cleanup(func() { assert.NoError(t, os.RemoveAll(ts)) })
			untar(f, ts)
			link := filepath.Join(data, "pg_tblspc", oid)
			require.NoError(t, os.RemoveAll(link))
			require.NoError(t, os.Symlink(ts, link))
			require.NoError(t, os.RemoveAll(filepath.Join(data, "tablespace_map")))
			pgtest.Chown(t, ts)
		}
	}
	pgtest.Chown(t, data)
	st := &staging{data: data, sock: pgtest.TempDir(t), port: pgtest.FreePort(t)}
	st.standby, err = replica.New(replica.Config{DataDir: data, BinDir: p.BinDir, Port: st.port, SocketDir: st.sock,
		ListenAddresses: "127.0.0.1", StopTimeout: 10 * time.Second,
		Source: replica.Source{Host: p.Host, Port: p.Port, User: p.ReplUser, Password: replica.Password(p.ReplPassword)}})
	require.NoError(t, err)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("staging log:\n%s", st.standby.LogTail(30))
		}
		assert.NoError(t, st.standby.Stop(context.Background()))
	})
	_, err = st.standby.Setup(ctx)
	require.NoError(t, err)
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	require.NoError(t, st.standby.Start(sctx))
	_, err = st.standby.WaitStreaming(sctx)
	require.NoError(t, err)
	return st
}

// removeAll removes a directory that may be a btrfs subvolume.
func removeAll(t *testing.T, dir string) {
	t.Helper()
	if out, err := exec.Command("btrfs", "subvolume", "delete", dir).CombinedOutput(); err == nil {
		return
	} else if _, serr := os.Stat(dir); serr == nil && len(out) > 0 {
		_ = out // not a subvolume: removed below
	}
	assert.NoError(t, os.RemoveAll(dir))
}

func query(t *testing.T, conn string, sql string) string {
	t.Helper()
	v, err := tryQuery(conn, sql)
	require.NoError(t, err, "%s on %s", sql, conn)
	return v
}

func tryQuery(connString, sql string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, connString)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	var v string
	err = conn.QueryRow(ctx, sql).Scan(&v)
	return v, err
}

// replayed waits until the staging has the row id.
func (s *staging) replayed(t *testing.T, id int64) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		v, err := tryQuery(s.connString(), "SELECT coalesce(max(id), 0)::text FROM pgstage_rows")
		if n, _ := strconv.ParseInt(v, 10, 64); err == nil && n >= id {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("row %d never reached the staging (last %q, %v)", id, v, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// caughtUp waits until the staging replayed all the WAL p has written,
// and returns that position.
func (s *staging) caughtUp(t *testing.T, p *pgtest.Primary) string {
	t.Helper()
	end := query(t, p.ConnString(), "SELECT pg_current_wal_lsn()::text")
	deadline := time.Now().Add(time.Minute)
	for query(t, s.connString(), "SELECT (pg_last_wal_replay_lsn() >= '"+end+"')::text") != "true" {
		require.True(t, time.Now().Before(deadline), "the staging never replayed up to %s", end)
		time.Sleep(20 * time.Millisecond)
	}
	return end
}

func (s *staging) streaming(t *testing.T) {
	t.Helper()
	assert.Equal(t, "streaming", query(t, s.connString(), "SELECT coalesce((SELECT status FROM pg_stat_wal_receiver), 'none')"))
}

// load inserts rows into p one by one until stopped.
func load(t *testing.T, p *pgtest.Primary) (stop func() int64) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var n atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		conn, err := pgx.Connect(ctx, p.ConnString())
		if err != nil {
			return
		}
		defer conn.Close(context.Background())
		for ctx.Err() == nil {
			if _, err := conn.Exec(ctx, "INSERT INTO pgstage_rows (note) VALUES (md5(random()::text))"); err == nil {
				n.Add(1)
			}
		}
	}()
	return func() int64 { cancel(); wg.Wait(); return n.Load() }
}

const fingerprint = "SELECT count(*)::text || ' ' || coalesce(md5(string_agg(id::text || note, ',' ORDER BY id)), '') FROM pgstage_rows WHERE id <= "

// secretEnv is set in the test's environment: the clone server must not
// inherit it.
const secretEnv = "PGPASSWORD=do-not-inherit"

// serverEnvironment checks that the clone's postmaster runs as the OS user
// with none of this process's environment.
func serverEnvironment(t *testing.T, c *snapclone.Clone) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(c.DataDir, "postmaster.pid"))
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0])
	require.NoError(t, err)
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	require.NoError(t, err)
	assert.NotContains(t, string(env), secretEnv)
	assert.NotContains(t, string(env), "GOPATH=")
	fi, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	require.NoError(t, err)
	assert.Equal(t, uint32(pgtest.OSUser(t).UID), fi.Sys().(*syscall.Stat_t).Uid, "the clone runs as the OS user")
}

// testLog passes the package's log to the test's and counts warnings.
type testLog struct {
	t        *testing.T
	warnings atomic.Int64
}

func (l *testLog) Write(b []byte) (int, error) {
	if strings.Contains(string(b), "level=WARN") {
		l.warnings.Add(1)
	}
	l.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// source is a primary and a backup of it to make stagings from.
type source struct {
	p *pgtest.Primary
	b *pgtest.Backup
}

func newSource(t *testing.T, major int, tablespace bool) source {
	t.Helper()
	// Stagings are made from the backup one after the other while the
	// source takes writes: it keeps the WAL they need to catch up.
	settings := map[string]string{"max_wal_size": "64MB", "checkpoint_timeout": "30s", "wal_keep_size": "512MB"}
	if major < 13 {
		delete(settings, "wal_keep_size")
		settings["wal_keep_segments"] = "32"
	}
	p := pgtest.StartPrimary(t, major, pgtest.Options{Tablespace: tablespace, Settings: settings})
	return source{p, pgtest.TakeBackup(t, p, pgtest.BackupOptions{Form: pgtest.Forms(major)[0]})}
}

// TestSnapshotCloneReal takes, for every major, a snapshot of a streaming
// staging on btrfs, XFS and ext4 while the source is under write load, and
// clones it: rows before the snapshot are in the clone, rows after are not,
// the clone matches the source at its last row and takes writes, and the
// staging keeps streaming. The staging on btrfs has no tablespace (the one
// instant snapshot); those on XFS and ext4 have one, as has, for the first
// major, a second one on btrfs (btrfs under the backup API).
func TestSnapshotCloneReal(t *testing.T) {
	k, v, _ := strings.Cut(secretEnv, "=")
	t.Setenv(k, v)
	fss := mountAll(t)
	first := true
	pgtest.ForEachMajor(t, func(t *testing.T, major int) {
		plain, withTS := newSource(t, major, false), newSource(t, major, true)
		errorCases := first
		first = false
		type tcase struct {
			name   string
			fsys   *pgtest.LoopFS
			src    source
			method snapclone.Method
			cons   snapclone.Consistency
		}
		cases := []tcase{
			{"btrfs", fss.btrfs, plain, snapclone.MethodBtrfs, snapclone.ConsistentCrash},
			{"xfs", fss.xfs, withTS, snapclone.MethodReflink, snapclone.ConsistentBackup},
			{"ext4", fss.ext4, withTS, snapclone.MethodCopy, snapclone.ConsistentBackup},
		}
		if errorCases {
			cases = append(cases, tcase{"btrfs-tablespace", fss.btrfs, withTS, snapclone.MethodBtrfs, snapclone.ConsistentBackup})
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				p := tc.src.p
				name := fmt.Sprintf("pg%d-%s", major, tc.name)
				st := newStaging(t, p, tc.src.b, tc.fsys, name+"-staging")
				logs := &testLog{t: t}
				sc, err := snapclone.New(snapclone.Config{DataDir: st.data, BinDir: p.BinDir, ConnString: st.connString(),
					Logger: slog.New(slog.NewTextHandler(logs, nil))})
				require.NoError(t, err)
				snap, c := snapshotAndClone(t, sc, st, p, tc.fsys, name, tc.method, tc.cons)
				assert.Zero(t, logs.warnings.Load(), "no warning (a slot that could not hold the WAL)")
				if p.TablespaceDir != "" {
					cs := c.ConnString() + " user=postgres sslmode=disable"
					require.Len(t, c.Tablespaces, 1)
					assert.True(t, strings.HasPrefix(c.Tablespaces[0].Path, c.Dir+"/"), "the clone's tablespace %s is its own", c.Tablespaces[0].Path)
					link, err := os.Readlink(filepath.Join(c.DataDir, "pg_tblspc", c.Tablespaces[0].OID))
					require.NoError(t, err)
					assert.Equal(t, c.Tablespaces[0].Path, link)
					assert.Equal(t, "in a tablespace", query(t, cs, "SELECT string_agg(note, ',') FROM pgstage_ts_rows"))
					query(t, cs, "INSERT INTO pgstage_ts_rows (note) VALUES ('clone') RETURNING id::text")
					assert.Equal(t, "1", query(t, st.connString(), "SELECT count(*)::text FROM pgstage_ts_rows"))
				}
				if tc.name == "xfs" {
					segmentBoundary(t, sc, st, p, tc.fsys, name)
				}
				if errorCases {
					switch tc.name {
					case "xfs":
						crossFSError(t, sc, snap, fss.ext4)
					case "ext4":
						portAndSpaceErrors(t, sc, snap, fss)
						stoppedSnapshot(t, sc, st, p, tc.fsys, name)
					}
				}
			})
		}
	})
}

// snapshotAndClone snapshots the staging while p takes inserts, clones
// the snapshot and checks what the clone holds.
func snapshotAndClone(t *testing.T, sc *snapclone.Staging, st *staging, p *pgtest.Primary, fsys *pgtest.LoopFS, name string,
	method snapclone.Method, cons snapclone.Consistency) (*snapclone.Snapshot, *snapclone.Clone) {
	t.Helper()
	ctx := context.Background()
	before := p.InsertRows(t, 100)
	st.replayed(t, before)
	stopLoad := load(t, p)
	// The load must run into the snapshot: wait until the staging has
	// replayed some of it.
	st.replayed(t, before+20)
	snap, err := sc.Snapshot(ctx, filepath.Join(fsys.Dir, name+"-snap"))
	stopLoad()
	require.NoError(t, err)
	t.Cleanup(func() {
		assert.NoError(t, sc.DeleteSnapshot(context.Background(), snap.Dir))
		assert.NoDirExists(t, snap.Dir)
	})
	assert.Equal(t, method, snap.Method)
	assert.Equal(t, cons, snap.Consistency)
	after := p.InsertRows(t, 10)

	c, err := sc.Clone(ctx, snap.Dir, snapclone.CloneOptions{Dir: filepath.Join(fsys.Dir, name+"-clone"), Port: pgtest.FreePort(t),
		ListenAddresses: "127.0.0.1", Settings: map[string]string{"work_mem": "7MB", "application_name": "a clone's"}})
	require.NoError(t, err)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("clone log:\n%s", pgtest.Tail(c.LogFile, 30))
		}
		assert.NoError(t, sc.DestroyClone(context.Background(), c.Dir))
		assert.NoDirExists(t, c.Dir)
	})
	cs := c.ConnString() + " user=postgres sslmode=disable"
	marker, err := strconv.ParseInt(query(t, cs, "SELECT max(id)::text FROM pgstage_rows"), 10, 64)
	require.NoError(t, err)
	assert.Greater(t, marker, before, "rows written before the snapshot, and some of the load, are in the clone")
	assert.Less(t, marker, after-9, "rows written after the snapshot are not in the clone")
	assert.Equal(t, query(t, p.ConnString(), fingerprint+strconv.FormatInt(marker, 10)), query(t, cs, fingerprint+strconv.FormatInt(marker, 10)),
		"the clone's table matches the source's up to its last row %d", marker)
	assert.Equal(t, "false", query(t, cs, "SELECT pg_is_in_recovery()::text"))
	assert.Equal(t, "7MB", query(t, cs, "SHOW work_mem"), "the caller's settings")
	assert.Equal(t, "a clone's", query(t, cs, "SELECT current_setting('application_name')"))
	assert.Equal(t, strconv.Itoa(c.Port), query(t, cs, "SHOW port"))
	assert.Equal(t, "0", query(t, cs, "SELECT count(*)::text FROM pg_stat_wal_receiver"), "the clone follows no one")
	if p.Major >= 12 {
		assert.Empty(t, query(t, cs, "SHOW primary_conninfo"))
	}
	assert.NoFileExists(t, filepath.Join(c.DataDir, "standby.signal"))
	assert.NoFileExists(t, filepath.Join(c.DataDir, "recovery.conf"))
	serverEnvironment(t, c)
	query(t, cs, "INSERT INTO pgstage_rows (note) VALUES ('on the clone') RETURNING id::text")
	assert.Equal(t, "0", query(t, st.connString(), "SELECT count(*)::text FROM pgstage_rows WHERE note = 'on the clone'"))
	st.replayed(t, after)
	st.streaming(t)
	return snap, c
}

// segmentBoundary: a snapshot of an idle staging right after a WAL switch
// (its stop point on a segment boundary, the next segment not there yet)
// makes a clone that opens: this once failed with "recovery ended before
// configured recovery target was reached" under recovery_target = 'immediate'.
func segmentBoundary(t *testing.T, sc *snapclone.Staging, st *staging, p *pgtest.Primary, fsys *pgtest.LoopFS, name string) {
	t.Run("segment boundary", func(t *testing.T) {
		ctx := context.Background()
		last := p.InsertRows(t, 1)
		p.Exec(t, "SELECT pg_switch_wal()")
		end := st.caughtUp(t, p)
		snap, err := sc.Snapshot(ctx, filepath.Join(fsys.Dir, name+"-idle-snap"))
		require.NoError(t, err)
		defer func() { assert.NoError(t, sc.DeleteSnapshot(ctx, snap.Dir)) }()
		t.Logf("stop point %s (WAL switched at %s)", snap.StopLSN, end)
		c, err := sc.Clone(ctx, snap.Dir, snapclone.CloneOptions{Dir: filepath.Join(fsys.Dir, name+"-idle-clone"), Port: pgtest.FreePort(t)})
		require.NoError(t, err)
		defer func() { assert.NoError(t, sc.DestroyClone(ctx, c.Dir)) }()
		assert.Equal(t, strconv.FormatInt(last, 10), query(t, c.ConnString()+" user=postgres sslmode=disable", "SELECT max(id)::text FROM pgstage_rows"))
	})
}

// stoppedSnapshot: the way for a 9.4 or 9.5 staging (no backup API on a
// standby): stop the staging, snapshot the stopped data directory, start
// it again; the clone opens with every row the staging had.
func stoppedSnapshot(t *testing.T, sc *snapclone.Staging, st *staging, p *pgtest.Primary, fsys *pgtest.LoopFS, name string) {
	t.Run("stopped staging", func(t *testing.T) {
		ctx := context.Background()
		last := p.InsertRows(t, 5)
		st.replayed(t, last)
		require.NoError(t, st.standby.Stop(ctx))
		snap, err := sc.Snapshot(ctx, filepath.Join(fsys.Dir, name+"-stopped-snap"))
		require.NoError(t, err)
		defer func() { assert.NoError(t, sc.DeleteSnapshot(ctx, snap.Dir)) }()
		assert.Equal(t, snapclone.ConsistentStopped, snap.Consistency)
		sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		require.NoError(t, st.standby.Start(sctx))
		_, err = st.standby.WaitStreaming(sctx)
		require.NoError(t, err)
		c, err := sc.Clone(ctx, snap.Dir, snapclone.CloneOptions{Dir: filepath.Join(fsys.Dir, name+"-stopped-clone"), Port: pgtest.FreePort(t)})
		require.NoError(t, err)
		defer func() { assert.NoError(t, sc.DestroyClone(ctx, c.Dir)) }()
		cs := c.ConnString() + " user=postgres sslmode=disable"
		assert.Equal(t, strconv.FormatInt(last, 10), query(t, cs, "SELECT max(id)::text FROM pgstage_rows"))
		assert.Equal(t, "false", query(t, cs, "SELECT pg_is_in_recovery()::text"))
	})
}

// crossFSError: a reflink snapshot on XFS cloned onto ext4 fails naming
// both, before anything is copied.
func crossFSError(t *testing.T, sc *snapclone.Staging, snap *snapclone.Snapshot, other *pgtest.LoopFS) {
	t.Run("reflink across filesystems", func(t *testing.T) {
		dir := filepath.Join(other.Dir, "cross-clone")
		_, err := sc.Clone(context.Background(), snap.Dir, snapclone.CloneOptions{Dir: dir, Port: pgtest.FreePort(t)})
		require.ErrorIs(t, err, snapclone.ErrCrossFilesystem)
		assert.Contains(t, err.Error(), snap.Dir+" (xfs)")
		assert.Contains(t, err.Error(), dir+" (ext4)")
		assert.NoDirExists(t, dir)
	})
}

// portAndSpaceErrors: a port in use and a full disk each fail clearly
// and leave nothing behind; the snapshot is untouched.
func portAndSpaceErrors(t *testing.T, sc *snapclone.Staging, snap *snapclone.Snapshot, fss filesystems) {
	ctx := context.Background()
	t.Run("port in use", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer l.Close()
		dir := filepath.Join(fss.ext4.Dir, "busy-clone")
		_, err = sc.Clone(ctx, snap.Dir, snapclone.CloneOptions{Dir: dir, Port: l.Addr().(*net.TCPAddr).Port, ListenAddresses: "127.0.0.1"})
		require.ErrorIs(t, err, snapclone.ErrPortInUse)
		assert.Contains(t, err.Error(), l.Addr().String())
		assert.NoDirExists(t, dir)
	})
	t.Run("snapshot disk full", func(t *testing.T) {
		dir := filepath.Join(fss.tiny.Dir, "full-snap")
		_, err := sc.Snapshot(ctx, dir)
		require.ErrorIs(t, err, snapclone.ErrNoSpace)
		assert.Contains(t, err.Error(), "(ext4)")
		assert.NoDirExists(t, dir, "the partial snapshot is removed")
	})
	t.Run("server refuses a setting", func(t *testing.T) {
		dir := filepath.Join(fss.ext4.Dir, "bad-clone")
		_, err := sc.Clone(ctx, snap.Dir, snapclone.CloneOptions{Dir: dir, Port: pgtest.FreePort(t), Settings: map[string]string{"shared_buffers": "lots"}})
		require.ErrorIs(t, err, snapclone.ErrStart)
		assert.Contains(t, err.Error(), "shared_buffers")
		assert.NoDirExists(t, dir)
	})
	t.Run("disk full", func(t *testing.T) {
		list := func() string {
			out, err := exec.Command("find", snap.Dir, "-printf", "%P %s %T@\n").CombinedOutput()
			require.NoError(t, err, "%s", out)
			return string(out)
		}
		was := list()
		dir := filepath.Join(fss.tiny.Dir, "full-clone")
		_, err := sc.Clone(ctx, snap.Dir, snapclone.CloneOptions{Dir: dir, Port: pgtest.FreePort(t)})
		require.ErrorIs(t, err, snapclone.ErrNoSpace)
		assert.Contains(t, err.Error(), "(ext4)")
		assert.NoDirExists(t, dir, "the partial clone is removed")
		assert.Equal(t, was, list(), "the snapshot is untouched")
	})
}
