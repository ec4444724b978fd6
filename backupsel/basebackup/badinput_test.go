package basebackup_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/backupsel/basebackup"
	"github.com/pgstage/pgstage/internal/pgtest"
	"github.com/pgstage/pgstage/internal/secret"
)

// TestTakeBadSource: each way a source refuses a backup is an error that
// wraps the sentinel a caller branches on, names the host and role, says
// what to do, never shows the password, and leaves the backup path empty.
func TestTakeBadSource(t *testing.T) {
	pgtest.ForEachMajor(t, func(t *testing.T, major int) {
		t.Parallel()
		// Three WAL senders: a failed login holds one until its process
		// ends (12+ reserve it before authentication), so one would be too
		// few for the refusals to be told apart. The exhaustion case holds
		// two itself.
		p := pgtest.StartPrimary(t, major, pgtest.Options{
			Settings: map[string]string{"max_wal_senders": "3"},
			HBA:      []string{"host replication nohba 127.0.0.1/32 reject"},
		})
		p.Exec(t, "CREATE ROLE nohba LOGIN REPLICATION PASSWORD 'x'")
		p.Exec(t, "CREATE ROLE norepl LOGIN PASSWORD 'norepl-pw'")
		for _, tc := range []struct {
			name     string
			edit     func(*testing.T, *basebackup.Config)
			sentinel error
			want     []string
		}{
			{"wrong password", func(_ *testing.T, c *basebackup.Config) { c.Password = "not-" + c.Password }, basebackup.ErrRefused,
				[]string{"role replicator", "check the password of role replicator"}},
			{"no replication line in pg_hba.conf", func(_ *testing.T, c *basebackup.Config) { c.User, c.Password = "nohba", "x" }, basebackup.ErrRefused,
				[]string{"role nohba", "pg_hba.conf", "host replication nohba"}},
			{"role without REPLICATION", func(_ *testing.T, c *basebackup.Config) { c.User, c.Password = "norepl", "norepl-pw" }, basebackup.ErrRefused,
				[]string{"role norepl", "REPLICATION attribute"}},
			{"max_wal_senders exhausted", func(t *testing.T, _ *basebackup.Config) { holdWALSenders(t, p, 2) }, basebackup.ErrBusy,
				[]string{"connection", "max_wal_senders"}},
			{"nothing listens", func(_ *testing.T, c *basebackup.Config) { c.Port = pgtest.FreePort(t) }, nil,
				[]string{"check Host and Port"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				path := pgtest.TempDir(t)
				var logs bytes.Buffer
				cfg := configFor(p, path)
				cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
				tc.edit(t, &cfg)
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				_, err := basebackup.Take(ctx, cfg)
				require.Error(t, err)
				t.Logf("error: %v", err)
				if tc.sentinel != nil {
					assert.ErrorIs(t, err, tc.sentinel)
				}
				msg := err.Error()
				assert.True(t, strings.HasPrefix(msg, "basebackup: "), msg)
				assert.Contains(t, msg, "source 127.0.0.1:")
				for _, w := range tc.want {
					assert.Contains(t, msg, w)
				}
				for _, pw := range []string{cfg.Password, p.ReplPassword} {
					assert.False(t, secret.Contains(msg, pw), "password in error: %s", msg)
					assert.False(t, secret.Contains(logs.String(), pw), "password in log: %s", logs.String())
				}
				assert.Empty(t, dirNames(t, path), "nothing left in the backup path")
			})
		}
	})
}

// holdWALSenders opens n replication connections to p, held until the test
// ends. Processes of failed logins may still hold senders for a moment, so
// each is retried until it gets one.
func holdWALSenders(t *testing.T, p *pgtest.Primary, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		var conn *pgconn.PgConn
		require.Eventually(t, func() bool {
			var err error
			conn, err = pgconn.Connect(context.Background(), fmt.Sprintf("host=%s port=%d user=postgres replication=true sslmode=disable", p.Host, p.Port))
			return err == nil
		}, 30*time.Second, 50*time.Millisecond)
		t.Cleanup(func() { conn.Close(context.Background()) })
	}
}

// TestTakeBadBackupPath: a backup path that cannot take the backup.
func TestTakeBadBackupPath(t *testing.T) {
	major := pgtest.Versions()[len(pgtest.Versions())-1]
	p := pgtest.StartPrimary(t, major, pgtest.Options{})
	p.InsertRows(t, 10)
	ctx := context.Background()

	t.Run("missing", func(t *testing.T) {
		missing := filepath.Join(pgtest.TempDir(t), "nope")
		_, err := basebackup.Take(ctx, configFor(p, missing))
		require.ErrorIs(t, err, basebackup.ErrBackupPath)
		assert.Contains(t, err.Error(), missing)
		assert.Contains(t, err.Error(), "create it")
	})
	t.Run("folder of that name exists", func(t *testing.T) {
		path := pgtest.TempDir(t)
		cfg := configFor(p, path)
		cfg.Time = time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
		require.NoError(t, os.Mkdir(filepath.Join(path, "PostgreSQL_T20261124090000"), 0o700))
		_, err := basebackup.Take(ctx, cfg)
		require.ErrorIs(t, err, basebackup.ErrBackupPath)
		assert.Contains(t, err.Error(), filepath.Join(path, "PostgreSQL_T20261124090000"))
		assert.Contains(t, err.Error(), "another writer")
		assert.Equal(t, []string{"PostgreSQL_T20261124090000"}, dirNames(t, path))
	})
	t.Run("another writer in the partial folder", func(t *testing.T) {
		path := pgtest.TempDir(t)
		cfg := configFor(p, path)
		dropped := false
		cfg.Progress = func(done, total int64) {
			if dropped {
				return
			}
			for _, n := range dirNames(t, path) {
				if strings.HasPrefix(n, ".") {
					require.NoError(t, os.WriteFile(filepath.Join(path, n, "base.tar.gz"), []byte("x"), 0o600))
					dropped = true
				}
			}
		}
		_, err := basebackup.Take(ctx, cfg)
		require.True(t, dropped)
		require.ErrorIs(t, err, basebackup.ErrBackupPath)
		t.Logf("error: %v", err)
		assert.Contains(t, err.Error(), "another writer")
		assert.Empty(t, dirNames(t, path), "partial folder removed")
	})
	t.Run("cancelled", func(t *testing.T) {
		path := pgtest.TempDir(t)
		cfg := configFor(p, path)
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		cfg.Progress = func(done, total int64) { cancel() }
		_, err := basebackup.Take(cctx, cfg)
		require.ErrorIs(t, err, context.Canceled)
		assert.Empty(t, dirNames(t, path), "partial folder removed")
	})
	t.Run("disk full", func(t *testing.T) {
		path := smallFS(t, 2<<20)
		// Plain archives are written in the receiving goroutine; gzip ones
		// in the compressor's.
		for _, c := range []basebackup.Compression{basebackup.None, basebackup.Gzip} {
			cfg := configFor(p, path)
			cfg.Compression = c
			_, err := basebackup.Take(ctx, cfg)
			require.ErrorIs(t, err, basebackup.ErrBackupPath, "%v", c)
			t.Logf("error (%v): %v", c, err)
			assert.Contains(t, err.Error(), "no space left on device")
			assert.Contains(t, err.Error(), "free space in the backup path")
			assert.Contains(t, err.Error(), path)
			assert.Equal(t, []string{"lost+found"}, dirNames(t, path), "partial folder removed")
		}
	})
	t.Run("invalid config", func(t *testing.T) {
		_, err := basebackup.Take(ctx, basebackup.Config{Compression: basebackup.None, CompressionLevel: 3, MaxRate: 10})
		require.ErrorIs(t, err, basebackup.ErrInvalidConfig)
		for _, w := range []string{"Host is empty", "User is empty", "BackupPath is empty", "CompressionLevel 3 given without a Compression", "MaxRate 10"} {
			assert.Contains(t, err.Error(), w)
		}
		var joined interface{ Unwrap() []error }
		require.True(t, errors.As(err, &joined))
	})
}
