package snapclone_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/internal/pgtest"
	"github.com/pgstage/pgstage/internal/snapclone"
)

// fakeDataDir makes a data directory of the given PG_VERSION with a few
// files of each kind a copy treats differently, and a tablespace.
func fakeDataDir(t *testing.T, parent, version, walDir string) (data, ts string) {
	t.Helper()
	data = filepath.Join(parent, "data")
	ts = filepath.Join(parent, "ts")
	files := map[string]string{
		"PG_VERSION":                         version + "\n",
		"postgresql.conf":                    "port = 5432\n",
		"global/pg_control":                  "control",
		"base/1/1259":                        "heap",
		"base/pgsql_tmp/pgsql_tmp1.0":        "temporary",
		"pg_stat_tmp/global.stat":            "stats",
		walDir + "/000000010000000000000001": "wal",
		walDir + "/archive_status/000000010000000000000001.done": "",
	}
	for name, content := range files {
		p := filepath.Join(data, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o700))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	}
	require.NoError(t, os.MkdirAll(filepath.Join(ts, "PG_x", "1"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(ts, "PG_x", "1", "16400"), []byte("in a tablespace"), 0o600))
	require.NoError(t, os.MkdirAll(filepath.Join(data, "pg_tblspc"), 0o700))
	require.NoError(t, os.Symlink(ts, filepath.Join(data, "pg_tblspc", "16399")))
	return data, ts
}

// pretendRunning writes a postmaster.pid naming this (live) process.
func pretendRunning(t *testing.T, data string) {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(data, "postmaster.pid"), []byte(strconv.Itoa(os.Getpid())+"\n"+data+"\n"), 0o600))
}

// TestRunning94And95Refused: a running 9.4 or 9.5 staging takes no base
// backup, so reflink and copy snapshots are refused before anything is
// made; 9.6 goes on to connect.
func TestRunning94And95Refused(t *testing.T) {
	for _, version := range []string{"9.4", "9.5"} {
		t.Run(version, func(t *testing.T) {
			root := t.TempDir()
			data, _ := fakeDataDir(t, root, version, "pg_xlog")
			pretendRunning(t, data)
			sc, err := snapclone.New(snapclone.Config{DataDir: data, Method: snapclone.MethodCopy, ConnString: "host=/nonexistent"})
			require.NoError(t, err)
			dir := filepath.Join(root, "snap")
			_, err = sc.Snapshot(context.Background(), dir)
			require.ErrorIs(t, err, snapclone.ErrNoBackupAPI)
			assert.Contains(t, err.Error(), "PostgreSQL "+version+" takes base backups only on a primary")
			assert.Contains(t, err.Error(), "stop the staging")
			assert.NoDirExists(t, dir)
		})
	}
	t.Run("9.6 needs ConnString", func(t *testing.T) {
		root := t.TempDir()
		data, _ := fakeDataDir(t, root, "9.6", "pg_xlog")
		pretendRunning(t, data)
		sc, err := snapclone.New(snapclone.Config{DataDir: data, Method: snapclone.MethodCopy})
		require.NoError(t, err)
		_, err = sc.Snapshot(context.Background(), filepath.Join(root, "snap"))
		require.ErrorIs(t, err, snapclone.ErrInvalidConfig)
		assert.Contains(t, err.Error(), "ConnString is needed")
	})
}

// TestSnapshotStopped: a stopped staging (the way for a 9.4 or 9.5 one) is
// copied as it is, leaving out what a server rebuilds, with its tablespace
// copied and re-pointed.
func TestSnapshotStopped(t *testing.T) {
	for _, tc := range []struct{ version, walDir string }{{"9.4", "pg_xlog"}, {"9.5", "pg_xlog"}, {"15", "pg_wal"}} {
		t.Run(tc.version, func(t *testing.T) {
			root := t.TempDir()
			data, _ := fakeDataDir(t, root, tc.version, tc.walDir)
			sc, err := snapclone.New(snapclone.Config{DataDir: data, Method: snapclone.MethodCopy})
			require.NoError(t, err)
			snap, err := sc.Snapshot(context.Background(), filepath.Join(root, "snap"))
			require.NoError(t, err)
			assert.Equal(t, snapclone.ConsistentStopped, snap.Consistency)
			assert.Equal(t, snapclone.MethodCopy, snap.Method)
			for _, f := range []string{"PG_VERSION", "global/pg_control", "base/1/1259", tc.walDir + "/000000010000000000000001"} {
				assert.FileExists(t, filepath.Join(snap.DataDir, f))
			}
			assert.DirExists(t, filepath.Join(snap.DataDir, "pg_stat_tmp"))
			assert.NoFileExists(t, filepath.Join(snap.DataDir, "pg_stat_tmp/global.stat"), "rebuilt by the server: left out")
			assert.NoDirExists(t, filepath.Join(snap.DataDir, "base/pgsql_tmp"), "temporary files left out")
			assert.NoFileExists(t, filepath.Join(snap.DataDir, "backup_label"))

			require.Len(t, snap.Tablespaces, 1)
			ts := snap.Tablespaces[0]
			assert.Equal(t, filepath.Join(snap.Dir, "tblspc", "16399"), ts.Path)
			link, err := os.Readlink(filepath.Join(snap.DataDir, "pg_tblspc", "16399"))
			require.NoError(t, err)
			assert.Equal(t, ts.Path, link, "the snapshot's link points at its own copy")
			b, err := os.ReadFile(filepath.Join(ts.Path, "PG_x", "1", "16400"))
			require.NoError(t, err)
			assert.Equal(t, "in a tablespace", string(b))

			again, err := snapclone.ReadSnapshot(snap.Dir)
			require.NoError(t, err)
			assert.Equal(t, snap.Consistency, again.Consistency)
			require.NoError(t, sc.DeleteSnapshot(context.Background(), snap.Dir))
			assert.NoDirExists(t, snap.Dir)
		})
	}
}

func TestNotSnapshotNotClone(t *testing.T) {
	root := t.TempDir()
	data, _ := fakeDataDir(t, root, "15", "pg_wal")
	sc, err := snapclone.New(snapclone.Config{DataDir: data})
	require.NoError(t, err)
	err = sc.DeleteSnapshot(context.Background(), data)
	require.ErrorIs(t, err, snapclone.ErrNotSnapshot)
	err = sc.DestroyClone(context.Background(), data)
	require.ErrorIs(t, err, snapclone.ErrNotClone)
	assert.FileExists(t, filepath.Join(data, "PG_VERSION"), "nothing removed")
}

func TestNewReportsEveryProblem(t *testing.T) {
	_, err := snapclone.New(snapclone.Config{DataDir: "relative", Method: "zfs", BinDir: "/nonexistent"})
	require.ErrorIs(t, err, snapclone.ErrInvalidConfig)
	for _, want := range []string{`DataDir "relative" must be an absolute path`, `Method "zfs"`, "BinDir /nonexistent: no pg_ctl"} {
		assert.Contains(t, err.Error(), want)
	}
	_, err = snapclone.New(snapclone.Config{})
	require.ErrorIs(t, err, snapclone.ErrInvalidConfig)
	assert.Contains(t, err.Error(), "DataDir is required")
}

func TestCloneOptionsChecked(t *testing.T) {
	root := t.TempDir()
	data, _ := fakeDataDir(t, root, "15", "pg_wal")
	bin := filepath.Join(root, "bin")
	require.NoError(t, os.Mkdir(bin, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(bin, "pg_ctl"), nil, 0o755))
	sc, err := snapclone.New(snapclone.Config{DataDir: data, BinDir: bin})
	require.NoError(t, err)
	_, err = sc.Clone(context.Background(), filepath.Join(root, "snap"), snapclone.CloneOptions{Port: 70000,
		SocketDir: filepath.Join(root, "a-socket-directory-whose-path-is-much-too-long-for-a-unix-socket-name-to-fit-in")})
	require.ErrorIs(t, err, snapclone.ErrInvalidConfig)
	for _, want := range []string{"Dir is required", "Port 70000", "longer than 107 bytes"} {
		assert.Contains(t, err.Error(), want)
	}
}

// TestMethodPerFilesystem: the method picked on each filesystem, and a
// method the filesystem cannot do refused naming its type.
func TestMethodPerFilesystem(t *testing.T) {
	fss := map[string]*pgtest.LoopFS{
		"btrfs": pgtest.MountLoop(t, "btrfs", 128<<20),
		"xfs":   pgtest.MountLoop(t, "xfs", 300<<20),
		"ext4":  pgtest.MountLoop(t, "ext4", 32<<20),
	}
	ctx := context.Background()
	sub := filepath.Join(fss["btrfs"].Dir, "subvolume")
	isSub, err := snapclone.CreateDataDir(ctx, sub, "")
	require.NoError(t, err)
	assert.True(t, isSub)
	plain := filepath.Join(fss["xfs"].Dir, "plain")
	isSub, err = snapclone.CreateDataDir(ctx, plain, "")
	require.NoError(t, err)
	assert.False(t, isSub)
	for _, tc := range []struct {
		name, dir, fstype string
		subvolume         bool
		method            snapclone.Method
	}{
		{"btrfs subvolume", sub, "btrfs", true, snapclone.MethodBtrfs},
		{"btrfs directory", filepath.Join(fss["btrfs"].Dir, "dir"), "btrfs", false, snapclone.MethodReflink},
		{"xfs", plain, "xfs", false, snapclone.MethodReflink},
		{"ext4", filepath.Join(fss["ext4"].Dir, "dir"), "ext4", false, snapclone.MethodCopy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, os.MkdirAll(tc.dir, 0o700))
			require.NoError(t, os.WriteFile(filepath.Join(tc.dir, "PG_VERSION"), []byte("15\n"), 0o600))
			d, err := snapclone.Detect(tc.dir, filepath.Dir(tc.dir))
			require.NoError(t, err)
			assert.Equal(t, tc.fstype, d.FSType)
			assert.Equal(t, tc.subvolume, d.Subvolume)
			assert.Equal(t, tc.method, d.Method)
		})
	}
	refused := []struct {
		dir    string
		method snapclone.Method
		want   string
	}{
		{plain, snapclone.MethodBtrfs, "btrfs snapshots need a btrfs filesystem: " + plain + " (xfs)"},
		{filepath.Join(fss["btrfs"].Dir, "dir"), snapclone.MethodBtrfs, "need the data directory to be a subvolume"},
		{filepath.Join(fss["ext4"].Dir, "dir"), snapclone.MethodReflink, "cannot clone files (FICLONE refused): " + filepath.Join(fss["ext4"].Dir, "dir") + " (ext4)"},
	}
	for _, tc := range refused {
		t.Run("refused "+string(tc.method)+" "+filepath.Base(filepath.Dir(tc.dir)), func(t *testing.T) {
			sc, err := snapclone.New(snapclone.Config{DataDir: tc.dir, Method: tc.method})
			require.NoError(t, err)
			snapDir := filepath.Join(filepath.Dir(tc.dir), "snap-"+string(tc.method))
			_, err = sc.Snapshot(ctx, snapDir)
			require.ErrorIs(t, err, snapclone.ErrMethod)
			assert.Contains(t, err.Error(), tc.want)
			assert.NoDirExists(t, snapDir)
		})
	}
}
