package replica_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/internal/pgtest"
	"github.com/pgstage/pgstage/internal/secret"
)

// An embedding program that keeps the source's password in a variable of
// its own must not hand it to the staging server: neither the postmaster's
// environment (/proc/<pid>/environ) nor what a staging superuser sees with
// COPY ... TO PROGRAM 'env' holds it. Not parallel: it sets this process's
// environment.
func TestServerEnvironmentHoldsNoPassword(t *testing.T) {
	pgtest.ForEachMajor(t, func(t *testing.T, major int) {
		p := pgtest.StartPrimary(t, major, pgtest.Options{})
		t.Setenv("SOURCE_PW", p.ReplPassword)
		t.Setenv("APP_DSN", "host=db1 password="+p.ReplPassword)
		b := pgtest.TakeBackup(t, p, pgtest.BackupOptions{Form: pgtest.Forms(major)[0]})
		s, data := newStandby(t, p, b, nil)
		_, err := s.Setup(context.Background())
		require.NoError(t, err)
		startStreaming(t, s) // the walreceiver has read the password file
		st, err := s.Status(context.Background())
		require.NoError(t, err)

		environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", st.PID))
		require.NoError(t, err)
		env := strings.ReplaceAll(string(environ), "\x00", "\n")
		assert.Contains(t, env, "PATH=", "read the postmaster's environment")
		assertNoSecret(t, env, p.ReplPassword, "postmaster environment")
		assert.False(t, strings.Contains(env, "SOURCE_PW="), "SOURCE_PW passed on")

		// What a superuser of the staging can read from a backend's. The
		// program reads its input first: one that exits before the server
		// has written the row fails the COPY with a broken pipe.
		out := filepath.Join(data, "env.txt")
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres", s.Config().SocketDir, s.Config().Port))
		require.NoError(t, err)
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, "COPY (SELECT 1) TO PROGRAM 'cat >/dev/null; env > "+out+"'")
		require.NoError(t, err)
		b2, err := os.ReadFile(out)
		require.NoError(t, err)
		assert.Contains(t, string(b2), "PATH=")
		assertNoSecret(t, string(b2), p.ReplPassword, "backend environment")
	})
}

func assertNoSecret(t *testing.T, text, password, where string) {
	t.Helper()
	assert.False(t, secret.Contains(text, password), "the password is in the %s:\n%s", where, secret.Redact(text, password))
}
