package pgconf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Save writes every changed file atomically: a temporary file in the same
// directory (its name starts with "." so include_dir never reads it) gets
// the contents, the original mode and owner, and is synced and renamed over
// the file; the directory is synced too. Unchanged files are not touched.
func (c *Config) Save() error {
	var errs []error
	for _, f := range c.files {
		if !f.changed {
			continue
		}
		if err := WriteFile(f.Path, f.Bytes()); err != nil {
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
func WriteFile(path string, data []byte) (err error) {
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	mode := os.FileMode(0o600)
	uid, gid := -1, -1
	if st, err := os.Stat(path); err == nil {
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
