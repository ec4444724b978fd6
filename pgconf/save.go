package pgconf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Save writes every changed file atomically: a temporary file in the same
// directory (its name starts with "." so include_dir never reads it) gets
// the contents, the original mode and owner, and is synced and renamed over
// the file; the directory is synced too. Unchanged files are not touched.
//
// With [Config.Root] set, every changed file is checked first (see
// [Config.Writable]) and nothing is written if one lies outside the root;
// a file is then replaced where its directory really is, never through a
// symbolic link.
func (c *Config) Save() error {
	var errs []error
	targets := map[*File]string{}
	for _, f := range c.files {
		if !f.changed {
			continue
		}
		p, err := c.writePath(f.Path)
		if err != nil {
			errs = append(errs, err)
		}
		targets[f] = p
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	for _, f := range c.files {
		if !f.changed {
			continue
		}
		write := WriteFile
		if c.Root != "" {
			write = writeNoFollow
		}
		if err := write(targets[f], f.Bytes()); err != nil {
			errs = append(errs, err)
			continue
		}
		f.changed = false
	}
	return errors.Join(errs...)
}

// WriteFile replaces the file at path with data atomically, keeping its
// mode and owner (a new file gets mode 0600). A symbolic link is followed:
// the file it points to is replaced and the link stays a link.
func WriteFile(path string, data []byte) error {
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	return writeNoFollow(path, data)
}

// Writable reports, as the error Save would return, whether Save may write
// the file at path: always when Root is unset; else only when the file's
// directory, symbolic links resolved, lies inside Root (resolved too) and
// the file is not itself a symbolic link.
func (c *Config) Writable(path string) error {
	_, err := c.writePath(path)
	return err
}

// writePath returns where Save writes the file at path: path itself
// without a Root; with one, the file in its resolved directory, checked to
// be inside Root.
func (c *Config) writePath(path string) (string, error) {
	if c.Root == "" {
		return path, nil
	}
	root, err := filepath.EvalSymlinks(c.Root)
	if err != nil {
		return "", fmt.Errorf("pgconf: resolving the root: %w", err)
	}
	root, err = filepath.Abs(root)
	if err != nil {
		return "", fmt.Errorf("pgconf: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("pgconf: %w", err)
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(abs))
	if err != nil {
		return "", fmt.Errorf("pgconf: resolving the directory of %s: %w", path, err)
	}
	resolved := filepath.Join(dir, filepath.Base(abs))
	if rel, err := filepath.Rel(root, resolved); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return "", &OutsideRootError{File: path, Resolved: resolved, Root: c.Root}
	}
	if st, err := os.Lstat(resolved); err == nil && st.Mode()&os.ModeSymlink != 0 {
		return "", &OutsideRootError{File: path, Resolved: resolved, Root: c.Root, Symlink: true}
	}
	return resolved, nil
}

// writeNoFollow replaces the file at path atomically; a symbolic link
// there would be replaced, not followed.
func writeNoFollow(path string, data []byte) (err error) {
	mode := os.FileMode(0o600)
	uid, gid := -1, -1
	if st, err := os.Lstat(path); err == nil && st.Mode().IsRegular() {
		mode = st.Mode().Perm()
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			uid, gid = int(sys.Uid), int(sys.Gid)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("pgconf: %w", err)
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".pgconf-*")
	if err != nil {
		return fmt.Errorf("pgconf: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(mode); err != nil {
		return fmt.Errorf("pgconf: %w", err)
	}
	if uid >= 0 && (uid != os.Geteuid() || gid != os.Getegid()) {
		if err = tmp.Chown(uid, gid); err != nil {
			return fmt.Errorf("pgconf: keeping the owner of %s: %w", path, err)
		}
	}
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("pgconf: %w", err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("pgconf: %w", err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("pgconf: %w", err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("pgconf: %w", err)
	}
	if d, derr := os.Open(dir); derr == nil {
		derr = d.Sync()
		d.Close()
		if derr != nil {
			return fmt.Errorf("pgconf: syncing %s: %w", dir, derr)
		}
	}
	return nil
}
