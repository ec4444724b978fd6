package atomicfile_test

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgstage/pgstage/internal/atomicfile"
)

// The tests in this file change process-wide settings (umask, file size
// limit), so none of them runs in parallel.

// onlyFile checks that dir holds exactly name: no temporary file was left.
func onlyFile(t *testing.T, dir, name string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	assert.Equal(t, []string{name}, names, "no temporary file left behind")
}

// content returns the text of the file at p.
func content(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return string(b)
}

func TestWriteMode(t *testing.T) {
	for _, tc := range []struct {
		name  string
		umask int
		perm  os.FileMode
		old   bool
	}{
		{"secret under umask 022", 0o022, 0o600, false},
		{"secret under umask 0", 0o000, 0o600, false},
		{"readable under umask 077", 0o077, 0o644, false},
		{"group under umask 027", 0o027, 0o640, false},
		{"narrowed over a wider file", 0o022, 0o600, true},
		{"widened over a narrower file", 0o077, 0o604, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "f.conf")
			if tc.old {
				require.NoError(t, os.WriteFile(p, []byte("old\n"), 0o644))
				require.NoError(t, os.Chmod(p, 0o777^tc.perm))
			}
			old := syscall.Umask(tc.umask)
			err := atomicfile.Write(p, []byte("new\n"), tc.perm)
			syscall.Umask(old)
			require.NoError(t, err)
			st, err := os.Lstat(p)
			require.NoError(t, err)
			assert.Equal(t, tc.perm, st.Mode(), "got mode %v, want %v", st.Mode(), tc.perm)
			assert.Equal(t, "new\n", content(t, p))
			onlyFile(t, dir, "f.conf")
		})
	}
}

// A write that fails half-way (here the file size limit stops it) leaves
// the old file as it was and no temporary file.
func TestWriteFailureKeepsOld(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	require.NoError(t, os.WriteFile(p, []byte("old"), 0o600))

	var lim syscall.Rlimit
	require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_FSIZE, &lim))
	small := lim
	small.Cur = 4096
	require.NoError(t, syscall.Setrlimit(syscall.RLIMIT_FSIZE, &small))
	// Go ignores SIGXFSZ: the write returns EFBIG instead.
	err := atomicfile.Write(p, bytes.Repeat([]byte("x"), 64<<10), 0o600)
	require.NoError(t, syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim))

	require.ErrorIs(t, err, syscall.EFBIG)
	assert.Contains(t, err.Error(), p)
	assert.Equal(t, "old", content(t, p))
	onlyFile(t, dir, "state.json")
}

// A rename that fails (a directory is in the way) removes the temporary
// file and leaves the directory alone.
func TestWriteRenameFailure(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "pg_wal")
	require.NoError(t, os.Mkdir(p, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(p, "keep"), []byte("k"), 0o600))
	err := atomicfile.Write(p, []byte("x"), 0o600)
	require.ErrorContains(t, err, "replacing "+p)
	onlyFile(t, dir, "pg_wal")
	onlyFile(t, p, "keep")
}

func TestWriteMissingDir(t *testing.T) {
	dir := t.TempDir()
	err := atomicfile.Write(filepath.Join(dir, "no", "f"), []byte("x"), 0o600)
	require.ErrorIs(t, err, os.ErrNotExist)
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, ents)
}

// A symbolic link is replaced, not followed: the file it pointed to keeps
// its content.
func TestWriteReplacesSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(t.TempDir(), "elsewhere.conf")
	require.NoError(t, os.WriteFile(target, []byte("theirs"), 0o644))
	p := filepath.Join(dir, "postgresql.auto.conf")
	require.NoError(t, os.Symlink(target, p))
	require.NoError(t, atomicfile.Write(p, []byte("mine"), 0o600))
	st, err := os.Lstat(p)
	require.NoError(t, err)
	assert.True(t, st.Mode().IsRegular(), "got %v, want a regular file", st.Mode())
	assert.Equal(t, "theirs", content(t, target))
	assert.Equal(t, "mine", content(t, p))
}

func TestWriteOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("giving files away needs root")
	}
	for _, tc := range []struct {
		name             string
		uid, gid         int
		wantUID, wantGID uint32
	}{
		{"both", 54321, 54322, 54321, 54322},
		{"user only", 54321, -1, 54321, uint32(os.Getegid())},
		{"none", -1, -1, uint32(os.Geteuid()), uint32(os.Getegid())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "passfile")
			require.NoError(t, atomicfile.Write(p, []byte("x"), 0o600, atomicfile.Owner(tc.uid, tc.gid)))
			st, err := os.Stat(p)
			require.NoError(t, err)
			sys := st.Sys().(*syscall.Stat_t)
			assert.Equal(t, []uint32{tc.wantUID, tc.wantGID}, []uint32{sys.Uid, sys.Gid})
			assert.Equal(t, os.FileMode(0o600), st.Mode())
		})
	}
}

// Refused ownership (as a user who may not give files away) fails before
// any data is written and leaves nothing behind.
func TestWriteOwnerRefused(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root may give files to anyone")
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "passfile")
	require.NoError(t, os.WriteFile(p, []byte("old"), 0o600))
	err := atomicfile.Write(p, []byte("new"), 0o600, atomicfile.Owner(os.Geteuid()+1, -1))
	require.ErrorIs(t, err, syscall.EPERM)
	assert.Equal(t, "old", content(t, p))
	onlyFile(t, dir, "passfile")
}
