package replica_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/internal/pgtest"
	"github.com/pgstage/pgstage/pgconf"
	"github.com/pgstage/pgstage/replica"
)

// restore extracts a backup taken by pgtest into a new data directory
// (plain tar: the backupsel package does this for real).
func restore(t testing.TB, b *pgtest.Backup, skip ...string) (root, data string) {
	t.Helper()
	root = pgtest.TempDir(t)
	data = filepath.Join(root, "data")
	require.NoError(t, os.Mkdir(data, 0o700))
	for _, f := range b.Files {
		var dest string
		if slices.Contains(skip, f) {
			continue
		}
		switch f {
		case "base.tar":
			dest = data
		case "pg_wal.tar":
			dest = filepath.Join(data, "pg_wal")
		default:
			continue // backup_manifest
		}
		out, err := exec.Command("tar", "-xf", filepath.Join(b.Location, f), "-C", dest).CombinedOutput()
		require.NoError(t, err, "%s", out)
	}
	pgtest.Chown(t, root)
	return root, data
}

// newStandby restores b and prepares a standby of p from it.
func newStandby(t *testing.T, p *pgtest.Primary, b *pgtest.Backup, edit func(*replica.Config), skip ...string) (*replica.Standby, string) {
	t.Helper()
	root, data := restore(t, b, skip...)
	cfg := replica.Config{
		DataDir:         data,
		BinDir:          p.BinDir,
		Port:            pgtest.FreePort(t),
		SocketDir:       root,
		ListenAddresses: "127.0.0.1",
		Source:          replica.Source{Host: p.Host, Port: p.Port, User: p.ReplUser, Password: replica.Password(p.ReplPassword)},
		StopTimeout:     10 * time.Second,
	}
	if edit != nil {
		edit(&cfg)
	}
	s, err := replica.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("standby log (%s):\n%s", data, s.LogTail(40))
		}
		assert.NoError(t, s.Stop(context.Background()))
	})
	return s, data
}

// standbyQuery returns the first column of the first row of sql on the
// standby, over its socket as the superuser (trust in pgtest's pg_hba.conf).
func standbyQuery(ctx context.Context, s *replica.Standby, sql string) (string, error) {
	cfg := s.Config()
	conn, err := pgx.Connect(ctx, fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres", cfg.SocketDir, cfg.Port))
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	var v string
	err = conn.QueryRow(ctx, sql).Scan(&v)
	return v, err
}

// seesRow waits until the standby has replayed the row with id.
func seesRow(t *testing.T, s *replica.Standby, id int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		v, err := standbyQuery(ctx, s, "SELECT coalesce(max(id), 0)::text FROM pgstage_rows")
		if err == nil {
			if n, _ := strconv.ParseInt(v, 10, 64); n >= id {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("row %d never reached the standby (last: %q, %v)", id, v, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func startStreaming(t *testing.T, s *replica.Standby) *replica.Streaming {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	require.NoError(t, s.Start(ctx))
	st, err := s.WaitStreaming(ctx)
	require.NoError(t, err)
	return st
}

func TestStandbyReal(t *testing.T) {
	pgtest.ForEachMajor(t, func(t *testing.T, major int) {
		t.Parallel()
		// The source keeps some WAL, so that a standby restored without
		// pg_wal.tar can still stream what it lacks after checkpoints.
		keep := map[bool][2]string{true: {"wal_keep_size", "'256MB'"}, false: {"wal_keep_segments", "16"}}[major >= 13]
		// The replication role's name and password both hold a space, ', \,
		// : and =: every test proves both quoting layers and the password
		// file's escapes against the real server.
		p := pgtest.StartPrimary(t, major, pgtest.Options{
			Settings: map[string]string{keep[0]: keep[1]},
			ReplUser: `repl user'\:=`,
		})
		require.Equal(t, pgtest.DefaultReplPassword, p.ReplPassword)
		p.InsertRows(t, 3)
		b := pgtest.TakeBackup(t, p, pgtest.BackupOptions{Form: pgtest.Forms(major)[0]})

		t.Run("group", func(t *testing.T) {
			t.Run("streams", func(t *testing.T) {
				t.Parallel()
				s, _ := newStandby(t, p, b, func(c *replica.Config) { c.ApplicationName = "pgstage streams" })
				res, err := s.Setup(context.Background())
				require.NoError(t, err)
				assert.Equal(t, map[bool]string{true: "standby.signal", false: "recovery.conf"}[major >= 12], res.Method)
				assert.NotContains(t, res.PrimaryConnInfo, p.ReplPassword)

				// A port in use is found before anything starts.
				l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Config().Port)))
				require.NoError(t, err)
				err = s.Start(context.Background())
				l.Close()
				require.ErrorIs(t, err, replica.ErrPortInUse)
				st, err := s.Status(context.Background())
				require.NoError(t, err)
				require.False(t, st.Running)

				streaming := startStreaming(t, s)
				assert.Equal(t, "pg_stat_wal_receiver", streaming.Method)
				id := p.InsertRows(t, 1)
				seesRow(t, s, id)
				assert.Equal(t, "1", p.QueryString(t, "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'pgstage streams'"))
				st, err = s.Status(context.Background())
				require.NoError(t, err)
				assert.True(t, st.Running)
				assert.True(t, st.WalReceiver)

				// The server runs as the OS user, who owns the password file; the
				// password is in no process's arguments.
				u := pgtest.OSUser(t)
				assert.Equal(t, u.UID, procUID(t, st.PID), "postmaster's user")
				fi, err := os.Stat(res.PassFile)
				require.NoError(t, err)
				assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
				assert.Equal(t, uint32(u.UID), fi.Sys().(*syscall.Stat_t).Uid)
				assertPasswordInNoCmdline(t, p.ReplPassword)

				require.NoError(t, s.Stop(context.Background()))
				st, err = s.Status(context.Background())
				require.NoError(t, err)
				assert.False(t, st.Running)
			})
			t.Run("slot", func(t *testing.T) {
				t.Parallel()
				slot := fmt.Sprintf("staging_slot_%d", major)
				s, data := newStandby(t, p, b, func(c *replica.Config) {
					c.SlotName, c.CreateSlot = slot, true
					c.QueryUser = "no_such_role" // refused: WaitStreaming falls back on the log
				})
				// Sources that keep their configuration in /etc (Debian) leave
				// none in the backup: Setup generates minimal files.
				for _, name := range []string{"postgresql.conf", "pg_hba.conf", "pg_ident.conf"} {
					require.NoError(t, os.Remove(filepath.Join(data, name)))
				}
				res, err := s.Setup(context.Background())
				require.NoError(t, err)
				assert.Len(t, res.Generated, 3)
				// The log it falls back on is the logging collector's.
				lower(t, data, "logging_collector", "on")
				assert.True(t, res.SlotCreated)
				assert.Equal(t, "physical", p.QueryString(t, "SELECT slot_type FROM pg_replication_slots WHERE slot_name = $1", slot))
				res, err = s.Setup(context.Background()) // again: the slot exists
				require.NoError(t, err)
				assert.False(t, res.SlotCreated)

				streaming := startStreaming(t, s)
				assert.Equal(t, "log", streaming.Method)
				assert.Contains(t, streaming.LogLine, "started streaming WAL")
				// The generated pg_hba.conf admits local users by peer only, so
				// the source tells: the slot is in use and advances.
				assert.Equal(t, "true", p.QueryString(t, "SELECT active::text FROM pg_replication_slots WHERE slot_name = $1", slot))
				before := p.QueryString(t, "SELECT restart_lsn::text FROM pg_replication_slots WHERE slot_name = $1", slot)
				p.InsertRows(t, 1)
				p.Exec(t, "SELECT pg_switch_wal()")
				waitFor(t, func() bool {
					return p.QueryString(t, "SELECT (restart_lsn > $1::pg_lsn)::text FROM pg_replication_slots WHERE slot_name = $2", before, slot) == "true"
				}, "the slot's restart_lsn to advance past %s", before)
			})
			t.Run("wrong password", func(t *testing.T) {
				t.Parallel()
				const wrong = `not the 'pass\word: =`
				s, data := newStandby(t, p, b, func(c *replica.Config) { c.Source.Password = wrong })
				_, err := s.Setup(context.Background())
				require.NoError(t, err)
				ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
				defer cancel()
				require.NoError(t, s.Start(ctx))
				_, err = s.WaitStreaming(ctx)
				require.ErrorIs(t, err, replica.ErrNotStreaming)
				assert.True(t, replica.Final(err), "an authentication failure does not heal by waiting")
				assert.True(t, replica.HasLogTail(err))
				assert.NoError(t, ctx.Err(), "gave up at the first authentication failure, not at the deadline")
				assert.Contains(t, err.Error(), "password authentication failed")
				assert.NotContains(t, err.Error(), wrong)
				assert.NotContains(t, err.Error(), `pass\word`)
				for _, name := range []string{"postgresql.conf", "postgresql.auto.conf", "recovery.conf", "pgstage.log"} {
					b, _ := os.ReadFile(filepath.Join(data, name))
					assert.NotContains(t, string(b), `pass\word`, name)
				}
			})
			t.Run("raises max_connections", func(t *testing.T) {
				t.Parallel()
				s, data := newStandby(t, p, b, nil)
				_, err := s.Setup(context.Background())
				require.NoError(t, err)
				// A staging whose max_connections is below the source's
				// cannot start as a hot standby: the error says why.
				lower(t, data, "max_connections", "20")
				err = s.Start(context.Background())
				var se *replica.StartError
				require.ErrorAs(t, err, &se)
				assert.ErrorIs(t, err, replica.ErrStart)
				// 10-13: "hot standby is not possible because max_connections = 20 is a
				// lower setting ..."; 14+: "recovery aborted because of insufficient
				// parameter settings", the parameter in the DETAIL.
				assert.Contains(t, se.Reason, "max_connections = 20 is a lower setting")
				assert.Contains(t, err.Error(), se.LogTail)

				res, err := s.Setup(context.Background())
				require.NoError(t, err)
				assert.Contains(t, res.Raised, replica.Raised{Name: "max_connections", From: 20, To: 100})
				startStreaming(t, s)
				seesRow(t, s, p.InsertRows(t, 1))
			})
		})

		t.Run("primary down at start", func(t *testing.T) {
			s, data := newStandby(t, p, b, nil)
			_, err := s.Setup(context.Background())
			require.NoError(t, err)
			// Retry the source every 200 ms instead of 5 s: the test need not
			// wait for the walreceiver's next attempt.
			lower(t, data, "wal_retrieve_retry_interval", "200ms")
			// Without pg_wal.tar the standby cannot become consistent before
			// its WAL streams in: pg_ctl -w gives up, Start does not.
			var noWAL *replica.Standby
			if slices.Contains(b.Files, "pg_wal.tar") {
				var noWALData string
				noWAL, noWALData = newStandby(t, p, b, func(c *replica.Config) { c.StartTimeout = 2 * time.Second }, "pg_wal.tar")
				_, err = noWAL.Setup(context.Background())
				require.NoError(t, err)
				lower(t, noWALData, "wal_retrieve_retry_interval", "200ms")
			}
			p.Stop(t, "fast")
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			require.NoError(t, s.Start(ctx), "the standby starts without its primary")
			if noWAL != nil {
				require.NoError(t, noWAL.Start(ctx), "a standby waiting for WAL runs")
				st, err := noWAL.Status(ctx)
				require.NoError(t, err)
				assert.True(t, st.Running)
			}
			// Once the walreceiver has failed once, WaitStreaming must give up
			// at its deadline naming that fault.
			for !strings.Contains(s.LogTail(100), "could not connect to the primary") {
				require.NoError(t, ctx.Err(), "the walreceiver never tried")
				time.Sleep(50 * time.Millisecond)
			}
			short, cancelShort := context.WithTimeout(ctx, 500*time.Millisecond)
			_, err = s.WaitStreaming(short)
			cancelShort()
			require.ErrorIs(t, err, replica.ErrNotStreaming)
			require.ErrorIs(t, err, context.DeadlineExceeded)
			assert.False(t, replica.Final(err), "a source that is down may come back")
			assert.Contains(t, err.Error(), "could not connect to the primary")
			p.Start(t)
			_, err = s.WaitStreaming(ctx)
			require.NoError(t, err)
			id := p.InsertRows(t, 1)
			seesRow(t, s, id)
			if noWAL != nil {
				_, err = noWAL.WaitStreaming(ctx)
				require.NoError(t, err)
				seesRow(t, noWAL, id)
			}
		})
	})
}

// waitFor polls cond until it holds, failing after a minute.
func waitFor(t *testing.T, cond func() bool, what string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited a minute for "+what, args...)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// procUID returns the real user id of a process, from /proc.
func procUID(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
			uid, err := strconv.Atoi(strings.Fields(rest)[0])
			require.NoError(t, err)
			return uid
		}
	}
	t.Fatalf("no Uid in /proc/%d/status", pid)
	return -1
}

// assertPasswordInNoCmdline checks the arguments of every process.
func assertPasswordInNoCmdline(t *testing.T, password string) {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	require.NoError(t, err)
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		assert.NotContains(t, string(b), password, "arguments of process %s", e.Name())
	}
}

// lower sets a staging setting behind Setup's back.
func lower(t *testing.T, data, name, value string) {
	t.Helper()
	c, err := pgconf.Load(data)
	require.NoError(t, err)
	_, err = c.Set(name, value)
	require.NoError(t, err)
	require.NoError(t, c.Save())
}

func TestVersionMismatch(t *testing.T) {
	_, data := goldenDataDir(t, "13", "../internal/pgcontrol/testdata/pg_control.13")
	s, err := replica.New(replica.Config{DataDir: data, BinDir: fakeBinDir(t, "15.4"), Source: replica.Source{Host: "h", User: "u"}})
	require.NoError(t, err)
	_, err = s.Setup(context.Background())
	require.ErrorIs(t, err, replica.ErrVersionMismatch)
	assert.Contains(t, err.Error(), "PostgreSQL 13")
	assert.Contains(t, err.Error(), "are 15")
}

func TestNewReportsEveryProblem(t *testing.T) {
	_, err := replica.New(replica.Config{SlotName: "Bad-Name", Port: 70000})
	require.ErrorIs(t, err, replica.ErrInvalidConfig)
	for _, want := range []string{"DataDir", "BinDir", "Source.Host", "Source.User", "ports", "SlotName"} {
		assert.Contains(t, err.Error(), want)
	}
}

func TestNewRefusesLineBreaks(t *testing.T) {
	const pw = "first line\nsecond"
	_, err := replica.New(replica.Config{DataDir: t.TempDir(), BinDir: "/bin", Source: replica.Source{Host: "h", User: "u\r", Password: pw}})
	require.ErrorIs(t, err, replica.ErrInvalidConfig)
	assert.Contains(t, err.Error(), "Source.User holds a line break")
	assert.Contains(t, err.Error(), "Source.Password holds a line break")
	assert.NotContains(t, err.Error(), "second", "the password must not be in the error")
}

func TestUnsupportedVersion(t *testing.T) {
	_, data := goldenDataDir(t, "9.3", "testdata/pg_control.9.4")
	s, err := replica.New(replica.Config{DataDir: data, BinDir: fakeBinDir(t, "9.3.25"), Source: replica.Source{Host: "h", User: "u"}})
	require.NoError(t, err)
	_, err = s.Setup(context.Background())
	require.True(t, errors.Is(err, replica.ErrUnsupportedVersion), "%v", err)
}

func TestPassFileUnreachable(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the server's OS user differs from ours only then")
	}
	_, data := goldenDataDir(t, "15", "../internal/pgcontrol/testdata/pg_control.15")
	closed := t.TempDir() // 0700, root's
	s, err := replica.New(replica.Config{DataDir: data, BinDir: fakeBinDir(t, "15.4"),
		PassFile: filepath.Join(closed, "pgpass"), Source: replica.Source{Host: "h", User: "u", Password: "secret-pw"}})
	require.NoError(t, err)
	_, err = s.Setup(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "so the server cannot read "+filepath.Join(closed, "pgpass"))
	assert.NotContains(t, err.Error(), "secret-pw")
}

func TestSetupRefusesBrokenConfiguration(t *testing.T) {
	_, data := goldenDataDir(t, "15", "../internal/pgcontrol/testdata/pg_control.15")
	f, err := os.OpenFile(filepath.Join(data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString("include 'conf.d/missing.conf'\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())
	s, err := replica.New(replica.Config{DataDir: data, BinDir: fakeBinDir(t, "15.4"), Source: replica.Source{Host: "h", User: "u"}})
	require.NoError(t, err)
	_, err = s.Setup(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "missing.conf")
}

func TestSocketDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the server's OS user differs from ours only then")
	}
	root, data := goldenDataDir(t, "15", "../internal/pgcontrol/testdata/pg_control.15")
	newStandbyAt := func(sock string) error {
		s, err := replica.New(replica.Config{DataDir: data, BinDir: fakeBinDir(t, "15.4"), SocketDir: sock,
			Source: replica.Source{Host: "h", User: "u"}})
		require.NoError(t, err)
		_, err = s.Setup(context.Background())
		return err
	}
	// Missing: made, and the OS user's.
	sock := filepath.Join(root, "run", "pg")
	require.NoError(t, newStandbyAt(sock))
	st, err := os.Stat(sock)
	require.NoError(t, err)
	assert.Equal(t, uint32(pgtest.OSUser(t).UID), st.Sys().(*syscall.Stat_t).Uid)
	// Closed to the OS user: refused with what to do.
	closed := t.TempDir()
	err = newStandbyAt(closed)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cannot create its socket in "+closed)
}

func fileUID(t *testing.T, path string) int {
	t.Helper()
	st, err := os.Stat(path)
	require.NoError(t, err)
	return int(st.Sys().(*syscall.Stat_t).Uid)
}
