package pgtest_test

import (
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/internal/pgtest"
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

// A namespace, its link and the cut are gone when the test that made them
// ends.
func TestNetnsCleansUp(t *testing.T) {
	var name string
	t.Run("make", func(t *testing.T) {
		n := pgtest.NewNetns(t)
		name = n.Name
		out, err := exec.Command("ip", "netns", "list").CombinedOutput()
		require.NoError(t, err, "%s", out)
		require.Contains(t, string(out), name)
		n.Cut(t)
		n.Heal(t)
		n.Cut(t) // left cut: cleanup must not care
	})
	if name == "" {
		t.Skip("no namespace was made (not root)")
	}
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.NotContains(t, string(out), name)
}
