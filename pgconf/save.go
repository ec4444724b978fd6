package pgconf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/pgstage/pgstage/internal/atomicfile"
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
		write := writeFollow
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

// writeFollow replaces the file at path with data atomically, keeping its
// mode and owner (a new file gets mode 0600). A symbolic link is followed:
// the file it points to is replaced and the link stays a link.
func writeFollow(path string, data []byte) error {
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

// writeNoFollow replaces the file at path atomically, keeping its mode
// and owner; a symbolic link there would be replaced, not followed.
func writeNoFollow(path string, data []byte) error {
	mode := os.FileMode(0o600)
	var opts []atomicfile.Option
	st, err := os.Lstat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("pgconf: %w", err)
	case !st.Mode().IsRegular():
		return fmt.Errorf("pgconf: %s is not a regular file", path)
	default:
		mode = st.Mode().Perm()
		// Give it away only when it is not ours already: a user who may edit
		// a file of their own need not be allowed to chown it.
		if sys, ok := st.Sys().(*syscall.Stat_t); ok && (int(sys.Uid) != os.Geteuid() || int(sys.Gid) != os.Getegid()) {
			opts = append(opts, atomicfile.Owner(int(sys.Uid), int(sys.Gid)))
		}
	}
	if err := atomicfile.Write(path, data, mode, opts...); err != nil {
		return fmt.Errorf("pgconf: %w", err)
	}
	return nil
}
