package pgtest

// An internal test: the failure path of mountLoop (what MountLoop undoes
// when a step fails) cannot be reached from outside without failing the test.

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mountedType returns the type /proc/self/mountinfo gives dir, "" when
// nothing is mounted there.
func mountedType(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		// mount ID, parent ID, major:minor, root, mount point, options, optional fields..., "-", type, ...
		if len(f) < 5 || f[4] != dir {
			continue
		}
		for i, x := range f {
			if x == "-" && i+1 < len(f) {
				return f[i+1]
			}
		}
	}
	return ""
}

// attached reports whether a loop device is backed by image.
func attached(t *testing.T, image string) bool {
	t.Helper()
	out, err := exec.Command("losetup", "-j", image).CombinedOutput()
	require.NoError(t, err, "%s", out)
	return strings.TrimSpace(string(out)) != ""
}

func TestMountLoop(t *testing.T) {
	for _, tc := range []struct {
		fstype string
		size   int64
	}{
		{"btrfs", 128 << 20},
		{"xfs", 300 << 20},
		{"ext4", 32 << 20},
	} {
		t.Run(tc.fstype, func(t *testing.T) {
			var fsys *LoopFS
			t.Run("mounted", func(t *testing.T) {
				fsys = MountLoop(t, tc.fstype, tc.size)
				assert.Equal(t, tc.fstype, mountedType(t, fsys.Dir))
				st, err := os.Stat(fsys.Dir)
				require.NoError(t, err)
				assert.Equal(t, uint32(OSUser(t).UID), st.Sys().(*syscall.Stat_t).Uid, "the mount point belongs to the OS user")
				require.NoError(t, os.WriteFile(filepath.Join(fsys.Dir, "f"), []byte("x"), 0o600))
				assert.True(t, attached(t, fsys.Image))
			})
			if fsys == nil {
				return // skipped: the message says why
			}
			assert.Empty(t, mountedType(t, fsys.Dir), "unmounted at the end of the test")
			assert.NoFileExists(t, fsys.Image, "image removed at the end of the test")
			_, err := os.Stat(fsys.Dir)
			assert.ErrorIs(t, err, os.ErrNotExist, "mount point removed at the end of the test")
		})
	}
}

// TestMountLoopFailureUndoes: mkfs.xfs refuses a 16 MiB image; the image
// and the loop device made before are gone when mountLoop returns.
func TestMountLoopFailureUndoes(t *testing.T) {
	if why := loopMissing("xfs"); why != "" {
		missingTool(t, why)
	}
	before, _ := filepath.Glob(filepath.Join(os.TempDir(), "pgsfs-*.img"))
	dir := t.TempDir()
	fsys, undo, err := mountLoop("xfs", 16<<20, dir)
	require.Error(t, err)
	assert.Nil(t, fsys)
	assert.Nil(t, undo)
	assert.Contains(t, err.Error(), "mkfs.xfs")
	after, _ := filepath.Glob(filepath.Join(os.TempDir(), "pgsfs-*.img"))
	for _, img := range after {
		if !slices.Contains(before, img) {
			t.Errorf("image %s left behind", img)
		}
	}
	assert.Empty(t, mountedType(t, dir))
	// A loop device over a removed image lists it as "(deleted)".
	out, err := exec.Command("losetup", "-a").CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, line := range strings.Split(string(out), "\n") {
		assert.False(t, strings.Contains(line, "pgsfs-") && strings.Contains(line, "(deleted)"), "loop device left attached: %s", line)
	}
}
