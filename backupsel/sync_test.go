package backupsel_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pgstage/pgstage/backupsel"
	"github.com/pgstage/pgstage/internal/pgtest"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestRestoreSyncDurable checks what RestoreOptions.Sync promises: when
// Restore returns, nothing it wrote is left for the kernel to write. It
// restores into a filesystem of its own on a loop device, then runs one
// more syncfs and counts the bytes that reach the device: without Sync most
// of the restore is still to be written, with Sync almost nothing is. The
// backup holds both kinds of files Sync treats apart: small ones, written
// out together by its syncfs, and large ones, whose write-out starts as
// each is closed. No background write lands in the count: mkfs on an image
// file zeroes the inode tables by punching holes (every group is
// ITABLE_ZEROED), so the kernel's lazy init has nothing to write.
func TestRestoreSyncDurable(t *testing.T) {
	fsys := pgtest.MountLoop(t, "ext4", 256<<20)
	files := map[string]string{}
	for i := range 400 {
		files[fmt.Sprintf("base/1/%d", 20000+i)] = strings.Repeat(fmt.Sprintf("%07d\n", i), 1024) // 8 KiB
	}
	for i := range 3 {
		files[fmt.Sprintf("base/1/big%d", i)] = strings.Repeat(fmt.Sprintf("%015d\n", i), 300000+i) // 4.6 MiB
	}
	path := t.TempDir()
	writeFiles(t, path, fixture{WAL: "archive", Files: files}.build(t))
	b, err := backupsel.Select(context.Background(), path, backupsel.Options{Verify: true})
	require.NoError(t, err)

	// written restores into fsys with opts and returns the bytes the
	// restore had written when it returned, and the bytes a syncfs after
	// it still had to write.
	written := func(name string, opts backupsel.RestoreOptions) (restored, after int64) {
		dir := filepath.Join(fsys.Dir, name)
		res, err := b.Restore(context.Background(), dir, opts)
		require.NoError(t, err)
		before := deviceWrites(t, fsys.Device)
		f, err := os.Open(fsys.Dir)
		require.NoError(t, err)
		defer f.Close()
		require.NoError(t, unix.Syncfs(int(f.Fd())))
		after = deviceWrites(t, fsys.Device) - before
		t.Logf("%s: restored %d bytes; a syncfs after Restore wrote %d", name, res.Bytes, after)
		return res.Bytes, after
	}
	restored, after := written("nosync", backupsel.RestoreOptions{})
	require.Greater(t, restored, int64(14<<20))
	// The measure itself: without Sync, the restore is mostly in memory.
	require.Greater(t, after, restored/2, "without Sync, a syncfs after Restore wrote only %d of %d bytes: the device count does not see the restore, or the kernel wrote it out during Restore (dirty page limits: see /proc/sys/vm/dirty_*)", after, restored)

	restored, after = written("sync", backupsel.RestoreOptions{Sync: true})
	require.Less(t, after, restored/20, "with Sync, a syncfs after Restore still wrote %d of %d bytes", after, restored)
	require.Equal(t, treeSums(t, filepath.Join(fsys.Dir, "nosync")), treeSums(t, filepath.Join(fsys.Dir, "sync")))
}

// deviceWrites returns the bytes written to the block device dev (/dev/loopN)
// since it was set up: the seventh field of /sys/block/loopN/stat counts
// 512-byte sectors.
func deviceWrites(t *testing.T, dev string) int64 {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("/sys/block", filepath.Base(dev), "stat"))
	require.NoError(t, err)
	fields := strings.Fields(string(data))
	require.GreaterOrEqual(t, len(fields), 7, "%s/stat: %q", dev, data)
	sectors, err := strconv.ParseInt(fields[6], 10, 64)
	require.NoError(t, err)
	return sectors * 512
}
