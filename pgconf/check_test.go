package pgconf_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/internal/pgtest"
	"github.com/pgstage/pgstage/pgconf"
)

func checker(t *testing.T, major int) *pgconf.Checker {
	t.Helper()
	u := pgtest.OSUser(t)
	k := &pgconf.Checker{BinDir: pgtest.BinDir(t, major), TempDir: pgtest.TempDir(t)}
	if os.Geteuid() == 0 {
		k.Credential = &syscall.Credential{Uid: uint32(u.UID), Gid: uint32(u.GID)}
	}
	return k
}

// testCheck: the binary of each major judges settings, and every problem
// comes back at once, naming the setting and the allowed values.
func testCheck(t *testing.T, p *pgtest.Primary) {
	ctx := context.Background()
	k := checker(t, p.Major)

	ps, err := k.Parameters(ctx)
	require.NoError(t, err)
	found := false
	for _, prm := range ps {
		if prm.Name == "max_connections" {
			found = true
			assert.Equal(t, "INTEGER", prm.Type)
			assert.Equal(t, "postmaster", prm.Context)
			assert.Equal(t, "1", prm.Min)
		}
	}
	assert.True(t, found, "max_connections in --describe-config")

	require.NoError(t, k.Check(ctx, []pgconf.Setting{{Name: "port", Value: "5433"}, {Name: "wal_level", Value: "replica"}, {Name: "myext.x", Value: "1"}}))

	err = k.Check(ctx, []pgconf.Setting{
		{Name: "wal_level", Value: "foo", File: "/x.conf", Line: 3},
		{Name: "work_mem", Value: "8XB"},
		{Name: "max_connections", Value: "0"},
		{Name: "wrok_mem", Value: "1"},
		{Name: "fsync", Value: "maybe"},
		{Name: "port", Value: "5433"},
		{Name: "log_destination", Value: "stderr,carrier-pigeon"},
		{Name: "a b", Value: "1"},
	})
	require.Error(t, err)
	byName := map[string]*pgconf.InvalidSettingError{}
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var ie *pgconf.InvalidSettingError
		require.True(t, errors.As(e, &ie))
		byName[ie.Name] = ie
	}
	require.Len(t, byName, 7, "%v", err)
	assert.ErrorIs(t, err, pgconf.ErrInvalidSetting)
	assert.Contains(t, byName["wal_level"].Reason, "Available values: minimal, replica, logical")
	assert.Equal(t, "/x.conf", byName["wal_level"].File)
	assert.Contains(t, byName["work_mem"].Reason, `Valid units for this parameter are`)
	assert.Contains(t, byName["max_connections"].Reason, "0 is outside the valid range for parameter \"max_connections\" (1 .. ")
	assert.Contains(t, byName["wrok_mem"].Reason, `unrecognized configuration parameter; did you mean "work_mem"?`)
	assert.Contains(t, byName["fsync"].Reason, "requires a Boolean value")
	assert.Contains(t, byName["log_destination"].Reason, `Unrecognized key word: "carrier-pigeon"`, "the DETAIL line")

	// A whole configuration: problems name their file and line.
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "postgresql.conf"), []byte("port = 5432\nwal_level = minimall\n"), 0o644))
	c, err := pgconf.Load(dir)
	require.NoError(t, err)
	err = c.Check(ctx, k)
	var ie *pgconf.InvalidSettingError
	require.ErrorAs(t, err, &ie)
	assert.Equal(t, "wal_level", ie.Name)
	assert.Equal(t, 2, ie.Line)
	_, err = c.Set("wal_level", "replica")
	require.NoError(t, err)
	assert.NoError(t, c.Check(ctx, k))
}

func TestCheckAsRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root is refused")
	}
	k := &pgconf.Checker{BinDir: t.TempDir()}
	assert.ErrorIs(t, k.Check(context.Background(), []pgconf.Setting{{Name: "port", Value: "1"}}), pgconf.ErrRoot)
}
