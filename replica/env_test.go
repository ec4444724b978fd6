package replica

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The server's environment carries PGPASSFILE where libpq has no passfile=
// (9.x) and never this process's own libpq settings.
func TestCommandEnvironment(t *testing.T) {
	t.Setenv("PGPASSWORD", "leaked")
	t.Setenv("PGPASSFILE", "/somewhere/else")
	s, err := New(Config{DataDir: "/d/data", BinDir: "/b", Source: Source{Host: "h", User: "u", Password: "pw"}, OSUser: "postgres"})
	require.NoError(t, err)
	for _, tc := range []struct {
		major Major
		want  bool
	}{{904, true}, {906, true}, {1000, false}, {1800, false}} {
		r, err := rulesFor(tc.major)
		require.NoError(t, err)
		env := s.command(context.Background(), r, "pg_ctl").Env
		assert.Equal(t, tc.want, slices.Contains(env, "PGPASSFILE=/d/.data.pgpass"), "%s: PGPASSFILE", tc.major)
		for _, kv := range env {
			assert.False(t, strings.HasPrefix(kv, "PGPASSWORD="), "%s: PGPASSWORD passed on", tc.major)
			assert.NotEqual(t, "PGPASSFILE=/somewhere/else", kv)
		}
	}
}

func TestVersionTableIsContiguous(t *testing.T) {
	require.Equal(t, Major(904), versionTable[0].from)
	for i := 1; i < len(versionTable); i++ {
		assert.Equal(t, versionTable[i-1].to, versionTable[i].from, "gap or overlap before row %d", i)
	}
	assert.Equal(t, Major(1900), versionTable[len(versionTable)-1].to)
	for _, m := range []Major{904, 905, 906, 1000, 1100, 1200, 1300, 1400, 1500, 1600, 1700, 1800} {
		r, err := rulesFor(m)
		require.NoError(t, err, m)
		assert.Equal(t, m < 1200, r.recoveryConf, "%s recovery.conf", m)
		assert.Equal(t, m >= 906, r.hotStandby, "%s hot standby", m)
		assert.Equal(t, m >= 1000, r.passfileParam, "%s passfile=", m)
	}
	_, err := rulesFor(903)
	assert.ErrorIs(t, err, ErrUnsupportedVersion)
	_, err = rulesFor(1900)
	assert.ErrorIs(t, err, ErrUnsupportedVersion)
}

// Should the server ever log the password (a DBA's log_statement, a
// relayed message), the errors and tails built from its log do not repeat it.
func TestErrorsRedactPassword(t *testing.T) {
	dir := t.TempDir()
	s, err := New(Config{DataDir: dir, BinDir: "/b", Source: Source{Host: "h", User: "u", Password: "hunter22"}})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(s.cfg.LogFile, []byte("LOG:  starting PostgreSQL 15\n"+
		"FATAL:  could not connect to the primary server: bad hunter22\nFATAL:  no hunter22 here\nDETAIL:  hunter22 again\n"), 0o600))

	serr := s.streamError("FATAL:  could not connect to the primary server: bad hunter22", nil)
	var se *StreamError
	require.ErrorAs(t, serr, &se)
	assert.NotContains(t, serr.Error(), "hunter22")
	assert.Contains(t, serr.Error(), "bad ********")

	startErr := s.startError(errors.New("pg_ctl: hunter22"))
	var st *StartError
	require.ErrorAs(t, startErr, &st)
	assert.ErrorIs(t, startErr, ErrStart)
	assert.Equal(t, "FATAL:  no ******** here DETAIL:  ******** again", st.Reason)
	assert.NotContains(t, startErr.Error(), "hunter22")
	assert.NotContains(t, s.LogTail(10), "hunter22")
}
