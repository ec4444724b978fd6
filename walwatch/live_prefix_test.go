package walwatch_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/internal/pgtest"
)

// TestLivePrefixes has a real standby of every major write its log with
// each of prefixes in turn (a session's error, then an outage and its
// recovery: the walsender is terminated on the primary) and checks that
// the watcher reads each stretch, with the prefix given and inferred. With
// -update the stretches are kept in testdata/prefixes/<major>/ for
// TestPrefixFixtures.
func TestLivePrefixes(t *testing.T) {
	pgtest.ForEachMajor(t, func(t *testing.T, major int) {
		t.Parallel()
		p, s := primaryAndStandby(t, major)
		conf := filepath.Join(s.data, "postgresql.conf")
		appendConf(t, conf, "log_destination = 'stderr'\nlog_rotation_size = 0\nlog_filename = 'prefixes.log'\n")
		s.start(t)
		name := filepath.Join(s.logDir, "prefixes.log")
		waitCount(t, name, 0, started[:24], 1)
		out := filepath.Join("testdata", "prefixes", strconv.Itoa(major))
		if *update {
			require.NoError(t, os.RemoveAll(out))
			require.NoError(t, os.MkdirAll(out, 0o755))
		}
		for i, prefix := range prefixes {
			quoted := strings.ReplaceAll(strings.ReplaceAll(prefix, `\`, `\\`), `'`, `''`)
			appendConf(t, conf, fmt.Sprintf("log_line_prefix = '%s'\n", quoted))
			require.NoError(t, s.pgctl("reload"))
			s.waitSetting(t, "log_line_prefix", prefix)
			// A first outage gives a walreceiver started after the reload;
			// the stretch kept begins after it.
			from := fileSize(t, name)
			p.Exec(t, "SELECT pg_terminate_backend($1)", walsenderPID(t, p))
			waitCount(t, name, from, started[:24], 1)
			from = fileSize(t, name)
			s.query(t, "SELECT * FROM no_such_table")
			p.Exec(t, "SELECT pg_terminate_backend($1)", walsenderPID(t, p))
			waitCount(t, name, from, started[:24], 1)
			data, err := os.ReadFile(name)
			require.NoError(t, err)
			stretch := data[from:]
			stretch = stretch[:bytes.LastIndexByte(stretch, '\n')+1]
			checkPrefixStretch(t, prefix, string(stretch))
			if *update {
				base := filepath.Join(out, fmt.Sprintf("%02d", i))
				require.NoError(t, os.WriteFile(base+".log", stretch, 0o644))
				require.NoError(t, os.WriteFile(base+".prefix", []byte(prefix), 0o644))
			}
		}
	})
}

func fileSize(t *testing.T, name string) int64 {
	t.Helper()
	fi, err := os.Stat(name)
	require.NoError(t, err)
	return fi.Size()
}

// waitCount waits until name holds text n times after offset from (the
// deadline guards against a hang).
func waitCount(t *testing.T, name string, from int64, text string, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(name); err == nil && int64(len(b)) >= from && strings.Count(string(b[from:]), text) >= n {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s never said %q %d times", name, text, n)
}

func (s *standby) connString() string {
	return fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres sslmode=disable connect_timeout=5 application_name=psql", s.port)
}

// query runs sql on the standby and ignores its error (the point is the
// log lines it makes).
func (s *standby) query(t *testing.T, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.connString())
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, _ = conn.Exec(ctx, sql)
}

// waitSetting waits until new sessions of the standby see value.
func (s *standby) waitSetting(t *testing.T, name, value string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		conn, err := pgx.Connect(ctx, s.connString())
		require.NoError(t, err)
		var got string
		err = conn.QueryRow(ctx, "SELECT current_setting($1)", name).Scan(&got)
		conn.Close(ctx)
		require.NoError(t, err)
		if got == value {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("standby never took %s = %q", name, value)
}
