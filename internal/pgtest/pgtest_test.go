package pgtest_test

import (
	"testing"

	"github.com/pgstage/pgstage/internal/pgtest"
	"github.com/stretchr/testify/require"
)

func TestStartPrimary(t *testing.T) {
	pgtest.ForEachMajor(t, func(t *testing.T, major int) {
		t.Parallel()
		p := pgtest.StartPrimary(t, major, pgtest.Options{})
		require.Equal(t, "replica", p.QueryString(t, "SHOW wal_level"))
		id := p.InsertRows(t, 3)
		require.Equal(t, int64(3), id)
		require.NotZero(t, p.SystemIdentifier(t))
		p.Restart(t)
		require.Equal(t, "3", p.QueryString(t, "SELECT count(*) FROM pgstage_rows"))
	})
}
