// Package atomicfile replaces files so that a reader, PostgreSQL or a
// pgstage process after a crash, finds either the old content or the new,
// never a mix, and never a file whose mode lets others read a secret for an
// instant.
//
// pgconf (configuration files), replica (passfile, signal and recovery
// files) and stage (its state file) all write through [Write]: a temporary
// file in the same directory, named after the file with a leading "." so
// that PostgreSQL's include_dir skips it, is given its mode and owner while
// still empty, then written, synced, closed and renamed over the file; the
// directory is synced so that the rename survives a crash. On an error
// before the rename the temporary file is removed and the old file is left
// as it was.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// An Option changes how [Write] creates the file.
type Option func(*options)

type options struct {
	uid, gid int
}

// Owner gives the new file to uid and gid (as fchown(2): -1 leaves one
// unchanged) before any data is in it. Without it the file belongs to the
// calling process, as any new file does.
func Owner(uid, gid int) Option {
	return func(o *options) { o.uid, o.gid = uid, gid }
}

// Write replaces the file at path with data atomically. The file gets
// exactly the permission bits of perm, whatever the umask, and the owner an
// [Owner] option names; both are set before the data is written, so the
// mode is never widened over a secret.
//
// A symbolic link at path is replaced by the file, not followed: resolve
// it first (filepath.EvalSymlinks) to write through it.
//
// Errors name path and what failed; they are not prefixed, so callers wrap
// them with their own package name.
func Write(path string, data []byte, perm fs.FileMode, opts ...Option) (err error) {
	o := options{uid: -1, gid: -1}
	for _, opt := range opts {
		opt(&o)
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("creating a temporary file for %s: %w", path, err)
	}
	renamed := false
	defer func() {
		if err != nil && !renamed {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	// CreateTemp made it 0600 less the umask: set the exact mode.
	if err = tmp.Chmod(perm.Perm()); err != nil {
		return fmt.Errorf("setting the mode of %s: %w", path, err)
	}
	if o.uid >= 0 || o.gid >= 0 {
		if err = tmp.Chown(o.uid, o.gid); err != nil {
			return fmt.Errorf("giving %s to uid %d gid %d: %w", path, o.uid, o.gid, err)
		}
	}
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replacing %s: %w", path, err)
	}
	renamed = true
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("syncing %s after replacing %s: %w", dir, base, err)
	}
	return nil
}

// syncDir makes a rename in dir durable. As PostgreSQL's fsync_fname does,
// it accepts a directory it may not open (it can write there without read
// permission) and file systems that refuse to sync a directory (EINVAL,
// EBADF); the file is in place by then either way.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return nil
	}
	defer d.Close()
	err = d.Sync()
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.EBADF) {
		return nil
	}
	return err
}
