package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// LoopFS is a filesystem made for one test on a loop device: an image file,
// a loop device over it and a mount point that the OS user owns.
type LoopFS struct {
	Type   string // "btrfs", "xfs" (with reflink) or "ext4"
	Dir    string // the mount point
	Device string // /dev/loopN
	Image  string // the image file
}

// mkfsArgs is how each filesystem type is made. XFS gets reflink explicitly:
// older xfsprogs leave it off.
var mkfsArgs = map[string][]string{
	"btrfs": {"mkfs.btrfs", "-q", "-f"},
	"xfs":   {"mkfs.xfs", "-q", "-f", "-m", "reflink=1"},
	"ext4":  {"mkfs.ext4", "-q", "-F"},
}

// mkfsPackage names the Debian package of each mkfs tool.
var mkfsPackage = map[string]string{"btrfs": "btrfs-progs", "xfs": "xfsprogs", "ext4": "e2fsprogs"}

// MountLoop makes a filesystem of fstype ("btrfs", "xfs" or "ext4") in a
// sparse image file of size bytes, mounts it on a new directory and gives its
// root to the OS user. Everything it made is undone when the test ends
// (unmount, loop device detached, image removed), and at once when a step
// fails. XFS needs at least 300 MiB.
//
// It needs root, a free loop device, the kernel's support for fstype and the
// mkfs tool: without one the test skips, naming what is missing; under
// PGSTAGE_REQUIRE_PG=1 (make test) it fails instead.
func MountLoop(tb testing.TB, fstype string, size int64) *LoopFS {
	tb.Helper()
	if why := loopMissing(fstype); why != "" {
		missingTool(tb, why)
	}
	dir := TempDir(tb)
	fsys, undo, err := mountLoop(fstype, size, dir)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	tb.Cleanup(func() {
		if err := undo(); err != nil {
			tb.Errorf("pgtest: %v", err)
		}
	})
	Chown(tb, dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	return fsys
}

// Mount is MountLoop for programs that are not tests (the demo): it makes
// and mounts the filesystem on dir, an existing empty directory, and
// returns undo, which the caller must run (unmount, detach, remove the
// image); on failure nothing is left. It says what is missing when the
// machine cannot (no root, no loop device, no mkfs tool).
func Mount(fstype string, size int64, dir string) (fsys *LoopFS, undo func() error, err error) {
	if why := loopMissing(fstype); why != "" {
		return nil, nil, errors.New("pgtest: loop-mounted filesystem unavailable: " + why)
	}
	return mountLoop(fstype, size, dir)
}

// missingTool skips tb or, under make test, fails it.
func missingTool(tb testing.TB, why string) {
	tb.Helper()
	msg := "pgtest: loop-mounted filesystem unavailable: " + why
	if required() {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
}

// loopMissing says what this machine lacks to mount fstype on a loop
// device, or "" when nothing.
func loopMissing(fstype string) string {
	args, ok := mkfsArgs[fstype]
	if !ok {
		return fmt.Sprintf("filesystem type %q is not one the harness makes (btrfs, xfs, ext4)", fstype)
	}
	if os.Geteuid() != 0 {
		return "not running as root (losetup and mount need root)"
	}
	for _, tool := range []string{"losetup", "mount", "umount", args[0]} {
		if _, err := exec.LookPath(tool); err != nil {
			pkg := mkfsPackage[fstype]
			if tool != args[0] {
				pkg = "mount"
			}
			return fmt.Sprintf("%s not found (apt-get install %s; scripts/install-postgres does it)", tool, pkg)
		}
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		return "no /dev/loop-control (the kernel has no loop device support here: load the loop module)"
	}
	fss, err := os.ReadFile("/proc/filesystems")
	if err != nil {
		return fmt.Sprintf("cannot read /proc/filesystems: %v", err)
	}
	for _, line := range strings.Split(string(fss), "\n") {
		if strings.TrimSpace(strings.TrimPrefix(line, "nodev")) == fstype {
			return ""
		}
	}
	// The module may load on the first mount; modprobe says whether it can.
	if out, err := exec.Command("modprobe", fstype).CombinedOutput(); err != nil {
		return fmt.Sprintf("the kernel does not support %s (not in /proc/filesystems, modprobe %s: %v %s)", fstype, fstype, err, strings.TrimSpace(string(out)))
	}
	return ""
}

// mountLoop makes the filesystem and mounts it on dir. On failure it undoes
// what it did before returning; on success undo unmounts and removes it.
func mountLoop(fstype string, size int64, dir string) (fsys *LoopFS, undo func() error, err error) {
	args, ok := mkfsArgs[fstype]
	if !ok {
		return nil, nil, fmt.Errorf("filesystem type %q is not one the harness makes (btrfs, xfs, ext4)", fstype)
	}
	// The undo steps capture f and undoAll, not the named results, which a
	// failing return sets to nil before the deferred undo runs.
	f := &LoopFS{Type: fstype, Dir: dir}
	var undos []func() error
	undoAll := func() error {
		var errs []error
		for i := len(undos) - 1; i >= 0; i-- {
			errs = append(errs, undos[i]())
		}
		return errors.Join(errs...)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, undoAll())
		}
	}()

	img, err := os.CreateTemp("", "pgsfs-*.img")
	if err != nil {
		return nil, nil, err
	}
	f.Image = img.Name()
	undos = append(undos, func() error { return os.Remove(f.Image) })
	err = errors.Join(img.Truncate(size), img.Close())
	if err != nil {
		return nil, nil, err
	}

	// losetup -f races with other processes taking loop devices; it
	// reports the lost race as busy, and another try gets the next one.
	for attempt := 0; ; attempt++ {
		out, lerr := exec.Command("losetup", "--find", "--show", f.Image).CombinedOutput()
		if lerr == nil {
			f.Device = strings.TrimSpace(string(out))
			break
		}
		if attempt == 4 {
			return nil, nil, fmt.Errorf("losetup --find --show %s: %v: %s", f.Image, lerr, strings.TrimSpace(string(out)))
		}
		time.Sleep(100 * time.Millisecond)
	}
	undos = append(undos, func() error { return runTool("losetup", "-d", f.Device) })

	if err := runTool(args[0], append(args[1:], f.Device)...); err != nil {
		return nil, nil, err
	}
	if err := runTool("mount", f.Device, dir); err != nil {
		return nil, nil, err
	}
	undos = append(undos, func() error { return unmount(dir) })
	return f, undoAll, nil
}

// unmount unmounts dir, waiting a little for processes that still hold
// files there to go (a server stopped by an earlier cleanup), then lazily.
func unmount(dir string) error {
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		if err = runTool("umount", dir); err == nil {
			return nil
		}
		time.Sleep(250 * time.Millisecond)
	}
	if lerr := runTool("umount", "-l", dir); lerr != nil {
		return errors.Join(err, lerr)
	}
	return fmt.Errorf("%s was busy and was unmounted lazily: %w", dir, err)
}

func runTool(name string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
