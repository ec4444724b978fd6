package stage

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/pgstage/pgstage/internal/pgver"
	"github.com/pgstage/pgstage/pgconf"
	"github.com/stretchr/testify/require"
)

// A user setting in effect from a file outside the data directory (an
// absolute include of the source host's) is refused, and that file is left
// as it was.
func TestApplySettingsStaysInsideDataDir(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "source-host.conf")
	require.NoError(t, os.WriteFile(outside, []byte("work_mem = '4MB'\n"), 0o600))
	data := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(data, "postgresql.conf"), []byte("include '"+outside+"'\n"), 0o600))

	for _, set := range []Setting{{Name: "work_mem", Value: "64MB"}, {Name: "work_mem", Comment: true}} {
		err := applySettings(data, []Setting{set}, pgver.V15)
		require.Error(t, err)
		require.True(t, errors.Is(err, pgconf.ErrOutsideRoot), "%v", err)
		require.Contains(t, err.Error(), outside)
		b, err := os.ReadFile(outside)
		require.NoError(t, err)
		require.Equal(t, "work_mem = '4MB'\n", string(b), "the outside file was edited")
	}
}
