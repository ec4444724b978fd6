package snapclone

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/pgstage/pgstage/internal/osuser"
)

// btrfs subvolumes are made, snapshotted and deleted with Debian's
// btrfs-progs command, not the ioctls: golang.org/x/sys/unix has no btrfs
// ioctl numbers or argument structs (hand-written ones are easy to get
// wrong, and btrfs_ioctl_vol_args_v2 is a 4 KiB union), deleting a
// subvolume by ioctl also needs the parent's fd and name, and the command
// is the interface btrfs documents; `btrfs filesystem du` has no ioctl
// counterpart at all. Each call costs a few milliseconds.

func btrfs(ctx context.Context, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, "btrfs", args...).CombinedOutput()
	if err != nil {
		if errors, ok := err.(*exec.Error); ok {
			return "", fmt.Errorf("snapclone: btrfs command: %w (install btrfs-progs)", errors)
		}
		return "", fmt.Errorf("snapclone: btrfs %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// isSubvolume reports whether dir is the root of a btrfs subvolume.
func isSubvolume(dir string) bool {
	if t, err := FSType(dir); err != nil || t != "btrfs" {
		return false
	}
	fi, err := os.Stat(dir)
	return err == nil && fi.Sys().(*syscall.Stat_t).Ino == btrfsSubvolIno
}

// CreateDataDir makes dir, a new data directory for the staging: a btrfs
// subvolume when its parent is on btrfs (so that btrfs snapshots of it are
// possible later: a plain directory cannot become one in place), else a
// plain directory. It is given mode 0700 and, when this process is root, to
// the OS user osUser (default "postgres"). It reports whether dir is a
// subvolume.
func CreateDataDir(ctx context.Context, dir, osUser string) (subvolume bool, err error) {
	u, err := osuser.RunAs(osUser)
	if err != nil {
		return false, fmt.Errorf("snapclone: %w", err)
	}
	parent := filepath.Dir(filepath.Clean(dir))
	t, err := FSType(parent)
	if err != nil {
		return false, err
	}
	if t == "btrfs" {
		if _, err := os.Lstat(dir); err == nil {
			return false, fmt.Errorf("snapclone: %s already exists: a data directory to be made a subvolume must not exist yet", dir)
		}
		if _, err := btrfs(ctx, "subvolume", "create", dir); err != nil {
			return false, err
		}
		subvolume = true
	} else if err := os.Mkdir(dir, 0o700); err != nil {
		return false, fmt.Errorf("snapclone: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return subvolume, fmt.Errorf("snapclone: %w", err)
	}
	if err := u.Chown(dir); err != nil {
		return subvolume, fmt.Errorf("snapclone: %w", err)
	}
	return subvolume, nil
}

// removeTree removes dir and everything in it, deleting the btrfs
// subvolumes in it first (a subvolume is not removed by unlinking its
// files: its root directory stays, and a read-only one refuses).
func removeTree(ctx context.Context, dir string) error {
	if _, err := os.Lstat(dir); os.IsNotExist(err) {
		return nil
	}
	var subvols []string
	if t, _ := FSType(dir); t == "btrfs" {
		_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() && isSubvolume(p) {
				subvols = append(subvols, p)
			}
			return nil
		})
	}
	// The deepest first: a subvolume holding another cannot be deleted.
	for i := len(subvols) - 1; i >= 0; i-- {
		if _, err := btrfs(ctx, "subvolume", "delete", subvols[i]); err != nil {
			return err
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("snapclone: removing %s: %w", dir, err)
	}
	return nil
}

// exclusiveBytes is what `btrfs filesystem du` counts as exclusive to
// path: extents no other file, snapshot or clone shares, i.e. the disk
// that removing path would free.
func exclusiveBytes(ctx context.Context, path string) (int64, error) {
	out, err := btrfs(ctx, "filesystem", "du", "-s", "--raw", path)
	if err != nil {
		return 0, err
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	f := strings.Fields(lines[len(lines)-1])
	if len(f) < 3 {
		return 0, fmt.Errorf("snapclone: btrfs filesystem du %s: unexpected output %q", path, out)
	}
	n, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("snapclone: btrfs filesystem du %s: unexpected output %q", path, out)
	}
	return n, nil
}
