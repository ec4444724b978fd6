package backupsel_test

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/pgstage/pgstage/backupsel"
	"github.com/pgstage/pgstage/internal/pgtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const permDirEnv = "BACKUPSEL_PERMISSION_DIR"

// TestPermissionDenied checks the errors for a backup path and a backup file
// the process may not read. Root reads everything, so when the tests run as
// root the checks run in a copy of this test binary started as the
// unprivileged OS user of the harness (TestPermissionChecks); otherwise they
// run in this process.
func TestPermissionDenied(t *testing.T) {
	root, err := os.MkdirTemp("", "bsperm")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(root) })
	require.NoError(t, os.Chmod(root, 0o755))

	// noread: a backup path without read permission (search only).
	writeFiles(t, filepath.Join(root, "noread"), fixture{}.build(t))
	require.NoError(t, os.Chmod(filepath.Join(root, "noread"), 0o311))
	// mixed: the newest folder's base.tar is unreadable; an older one is fine.
	mixed := filepath.Join(root, "mixed")
	writeFiles(t, filepath.Join(mixed, "PostgreSQL_T20261124100000"), fixture{}.build(t))
	writeFiles(t, filepath.Join(mixed, "PostgreSQL_T20261124090000"), fixture{}.build(t))
	require.NoError(t, os.Chmod(filepath.Join(mixed, "PostgreSQL_T20261124100000", "base.tar"), 0o600))
	for _, d := range []string{mixed, filepath.Join(mixed, "PostgreSQL_T20261124100000"), filepath.Join(mixed, "PostgreSQL_T20261124090000")} {
		require.NoError(t, os.Chmod(d, 0o755))
	}

	only := filepath.Join(root, "onlyunreadable", "PostgreSQL_T20261124100000")
	writeFiles(t, only, fixture{}.build(t))
	require.NoError(t, os.Chmod(filepath.Join(only, "base.tar"), 0o600))
	require.NoError(t, os.Chmod(only, 0o755))
	require.NoError(t, os.Chmod(filepath.Dir(only), 0o755))

	if os.Geteuid() != 0 {
		t.Setenv(permDirEnv, root)
		TestPermissionChecks(t)
		return
	}
	user := pgtest.OSUser(t)
	self, err := os.Executable()
	require.NoError(t, err)
	bin := filepath.Join(pgtest.TempDir(t), "backupsel.test")
	copyFile(t, self, bin)
	cmd := exec.Command(bin, "-test.run=^TestPermissionChecks$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), permDirEnv+"="+root)
	cmd.Dir = filepath.Dir(bin)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(user.UID), Gid: uint32(user.GID)}}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "checks as %s:\n%s", user.Name, out)
	assert.Contains(t, string(out), "--- PASS: TestPermissionChecks", "checks ran as %s:\n%s", user.Name, out)
	assert.NotContains(t, string(out), "SKIP")
}

// TestPermissionChecks runs only inside TestPermissionDenied.
func TestPermissionChecks(t *testing.T) {
	root := os.Getenv(permDirEnv)
	if root == "" {
		t.Skip("run by TestPermissionDenied")
	}
	if os.Geteuid() == 0 {
		t.Fatal("permission checks cannot run as root")
	}
	ctx := context.Background()
	_, err := backupsel.Select(ctx, filepath.Join(root, "noread"), backupsel.Options{})
	var pe *backupsel.PermissionError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, filepath.Join(root, "noread"), pe.Path)
	assert.Equal(t, "read+execute", pe.Need)
	assert.ErrorIs(t, err, os.ErrPermission)

	b, err := backupsel.Select(ctx, filepath.Join(root, "mixed"), backupsel.Options{})
	require.NoError(t, err)
	assert.Equal(t, "PostgreSQL_T20261124090000", b.Name)
	require.NotEmpty(t, b.Passed)
	c := b.Passed[0]
	assert.Equal(t, "PostgreSQL_T20261124100000", c.Name)
	require.ErrorAs(t, c.Err, &pe)
	assert.Equal(t, filepath.Join(root, "mixed", "PostgreSQL_T20261124100000", "base.tar"), pe.Path)
	assert.Equal(t, "read", pe.Need)
	assert.Contains(t, c.Reason, "base.tar needs read permission")

	// With the readable folder gone, nothing is usable: the error still
	// carries the permission problem.
	_, err = backupsel.Select(ctx, filepath.Join(root, "onlyunreadable"), backupsel.Options{})
	require.ErrorIs(t, err, backupsel.ErrNoBackup)
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "read", pe.Need)
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	require.NoError(t, err)
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o755)
	require.NoError(t, err)
	_, err = io.Copy(out, in)
	require.NoError(t, err)
	require.NoError(t, out.Close())
}
