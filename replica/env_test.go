package replica

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/internal/pgver"
)

// The servers get only what PostgreSQL needs from this process's
// environment: never PG* settings of ours, never a variable holding the
// password, and PGPASSFILE only where libpq has no passfile= (9.x).
func TestServerEnvironment(t *testing.T) {
	s, err := New(Config{DataDir: "/d/data", BinDir: "/b", Source: Source{Host: "h", User: "u", Password: "pw'd"}, OSUser: "postgres"})
	require.NoError(t, err)
	caller := []string{
		"PATH=/opt/pg/bin:/usr/bin", "LANG=C.UTF-8", "LC_MESSAGES=C", "TZ=UTC", "LD_LIBRARY_PATH=/opt/lib",
		"PGPASSWORD=leaked", "PGPASSFILE=/somewhere/else", "SOURCE_PW=pw'd", "AWS_SECRET_ACCESS_KEY=x",
		"HOME=/root", "LC_ALL=pw\\'d", "SSH_AUTH_SOCK=/tmp/agent", "PATH=/second/path",
	}
	common := []string{"PATH=/opt/pg/bin:/usr/bin", "LANG=C.UTF-8", "LC_MESSAGES=C", "TZ=UTC", "LD_LIBRARY_PATH=/opt/lib"}
	if s.user.Home != "" {
		common = append(common, "HOME="+s.user.Home)
	}
	for _, tc := range []struct {
		major Major
		want  []string
	}{
		{pgver.V9_4, append(slices.Clone(common), "PGPASSFILE=/d/.data.pgpass")},
		{pgver.V9_6, append(slices.Clone(common), "PGPASSFILE=/d/.data.pgpass")},
		{pgver.V10, common},
		{pgver.V18, common},
	} {
		t.Run(tc.major.String(), func(t *testing.T) {
			r, err := rulesFor(tc.major)
			require.NoError(t, err)
			assert.Equal(t, tc.want, s.serverEnv(r, caller))
		})
	}
	// No PATH given: a fixed one, so that the server's shell commands work.
	assert.Equal(t, "PATH=/usr/local/bin:/usr/bin:/bin", s.serverEnv(nil, []string{"X=1"})[0])
}

func TestVersionTableCoversEveryMajor(t *testing.T) {
	for i := 1; i < len(versionTable); i++ {
		assert.Equal(t, versionTable[i-1].To, versionTable[i].From, "gap or overlap before row %d", i)
	}
	assert.Equal(t, pgver.Oldest, versionTable[0].From)
	for m := pgver.Oldest; m <= pgver.Newest; m = next(m) {
		r, err := rulesFor(m)
		require.NoError(t, err, m)
		assert.Equal(t, m < pgver.V12, r.recoveryConf, "%s recovery.conf", m)
		assert.Equal(t, m >= pgver.V9_6, r.hotStandby, "%s hot standby", m)
		assert.Equal(t, m >= pgver.V10, r.passfileParam, "%s passfile=", m)
		assert.Equal(t, m >= pgver.V12, r.tcpUserTimeout, "%s tcp_user_timeout", m)
		assert.Equal(t, m < pgver.V10, strings.Contains(r.funcs.receiveLSN+r.funcs.replayLSN+r.funcs.replayPaused, "xlog"), "%s xlog names", m)
	}
	for _, m := range []Major{pgver.Oldest - 1, pgver.Newest + 100, 0} {
		_, err := rulesFor(m)
		assert.ErrorIs(t, err, ErrUnsupportedVersion, m)
	}
}

// next is the major after m: 9.4, 9.5, 9.6, 10, 11, ...
func next(m Major) Major {
	if m < pgver.V9_6 {
		return m + 1
	}
	if m == pgver.V9_6 {
		return pgver.V10
	}
	return m + 100
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

	assert.True(t, Final(serr), "no context error: the fault is final")
	assert.False(t, Final(s.streamError("", context.DeadlineExceeded)))
	assert.False(t, Final(startErr))
	assert.True(t, HasLogTail(startErr))
	assert.True(t, HasLogTail(fmt.Errorf("wrapped: %w", serr)))
	assert.False(t, HasLogTail(errors.New("pg_ctl failed")))
}
