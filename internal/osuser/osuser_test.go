package osuser_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/internal/osuser"
)

func TestRunAs(t *testing.T) {
	if os.Geteuid() != 0 {
		u, err := osuser.RunAs("anyone")
		require.NoError(t, err)
		assert.Equal(t, os.Geteuid(), u.UID, "not root: servers run as this process's user")
		return
	}
	_, err := osuser.RunAs("root")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "uid 0")
	_, err = osuser.RunAs("no-such-user-pgstage")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"no-such-user-pgstage"`)
	u, err := osuser.RunAs("")
	if err != nil {
		t.Fatalf("root needs the %q user for the servers: %v", osuser.DefaultName, err)
	}
	assert.Equal(t, osuser.DefaultName, u.Name)
	assert.NotZero(t, u.UID)
	assert.True(t, u.InGroup(u.GID))
}

func TestChown(t *testing.T) {
	u, err := osuser.RunAs("")
	require.NoError(t, err)
	p := filepath.Join(t.TempDir(), "f")
	require.NoError(t, os.WriteFile(p, nil, 0o600))
	require.NoError(t, u.Chown(p))
	fi, err := os.Lstat(p)
	require.NoError(t, err)
	assert.Equal(t, u.UID, statUID(fi))
}
