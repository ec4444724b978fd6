package snapclone

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// copyOpts says how copyTree copies.
type copyOpts struct {
	reflink bool // FICLONE each file; else copy (io.Copy: copy_file_range)
	// fallback: copy a file that FICLONE refuses (another filesystem, one
	// without reflink) instead of failing.
	fallback bool
	// exclude, given a path relative to the source root, says to leave the
	// file out, or to make the directory but leave its contents out.
	exclude func(rel string, dir bool) (skip, emptyDir bool)
	// last lists relative paths copied after everything else
	// (global/pg_control, which must be no older than any data file).
	last []string
}

// copyTree copies the tree src into dst, which must not exist, keeping
// modes, owners (when root) and symbolic links as they are. Files that
// vanish while it runs (a running server drops and recycles files) are
// left out, as pg_basebackup does. It does not sync: its callers sync the
// destination's filesystem once, when everything is copied (a syncfs per
// tree paid for the same writeback again each time).
func copyTree(ctx context.Context, src, dst string, o copyOpts) error {
	lastSet := map[string]bool{}
	for _, l := range o.last {
		lastSet[l] = true
	}
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p != src {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		if lastSet[rel] {
			return nil
		}
		emptyDir := false
		if o.exclude != nil && rel != "." {
			var skip bool
			if skip, emptyDir = o.exclude(rel, d.IsDir()); skip {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		if err := copyEntry(p, filepath.Join(dst, rel), d, o); err != nil {
			return err
		}
		if emptyDir {
			return filepath.SkipDir
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, l := range o.last {
		s := filepath.Join(src, l)
		fi, err := os.Lstat(s)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if err := copyEntry(s, filepath.Join(dst, l), fs.FileInfoToDirEntry(fi), o); err != nil {
			return err
		}
	}
	return nil
}

// copyEntry copies one directory (made empty), symbolic link or regular
// file; other kinds (sockets, fifos) are left out.
func copyEntry(src, dst string, d fs.DirEntry, o copyOpts) error {
	fi, err := d.Info()
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	switch {
	case fi.IsDir():
		if err := os.Mkdir(dst, fi.Mode().Perm()); err != nil {
			return err
		}
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(src)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := os.Symlink(target, dst); err != nil {
			return err
		}
	case fi.Mode().IsRegular():
		if err := copyFile(src, dst, fi.Mode().Perm(), o); err != nil {
			return err
		}
	default:
		return nil
	}
	return keepOwnerMode(dst, fi)
}

func copyFile(src, dst string, perm fs.FileMode, o copyOpts) (err error) {
	in, err := os.Open(src)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // vanished: the server removed it
	}
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}()
	if o.reflink {
		err := unix.IoctlFileClone(int(out.Fd()), int(in.Fd()))
		if err == nil {
			return nil
		}
		if !o.fallback || !cloneRefused(err) {
			return fmt.Errorf("FICLONE %s to %s: %w", src, dst, err)
		}
	}
	// io.Copy between files uses copy_file_range, which stays in the kernel.
	if _, err := io.Copy(out, in); err != nil {
		return fmt.Errorf("copying %s to %s: %w", src, dst, err)
	}
	return nil
}

// cloneRefused: FICLONE cannot work for these files (another filesystem,
// no reflink support), as opposed to failing (ENOSPC, EIO).
func cloneRefused(err error) bool {
	return errors.Is(err, unix.EXDEV) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL) ||
		errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.ENOSYS)
}

// keepOwnerMode gives dst the owner (when root) and permission bits of fi
// (the umask may have narrowed them).
func keepOwnerMode(dst string, fi fs.FileInfo) error {
	if os.Geteuid() == 0 {
		st := fi.Sys().(*syscall.Stat_t)
		if err := os.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
			return err
		}
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return nil
	}
	return os.Chmod(dst, fi.Mode().Perm())
}

// syncFS flushes the filesystem holding dir: one call instead of an fsync
// per file.
func syncFS(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Syncfs(int(f.Fd()))
}

// noSpace turns a copy's ENOSPC or EDQUOT into an fsError naming the
// destination's filesystem; other errors pass through.
func noSpace(err error, dst, what string) error {
	if !errors.Is(err, unix.ENOSPC) && !errors.Is(err, unix.EDQUOT) {
		return err
	}
	t, _ := FSType(filepath.Dir(dst))
	return &fsError{Path: dst, FSType: t, What: what + ": the filesystem is full", Cause: err,
		Hint: "what was copied is removed; free space there or choose a directory on a larger filesystem", Err: ErrNoSpace}
}
