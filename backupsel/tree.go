package backupsel

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// tree is what a restore has made under its targets: it refuses to go
// through anything it did not make, and undoes itself on failure.
type tree struct {
	fm    *fileMaker
	dirs  map[string]bool // directories known to exist (created or checked)
	files map[string]bool // regular files restored: hard-link targets, names written twice
	links map[string]bool // symbolic links created
	roots []string        // the prepared targets: the data directory and tablespace directories
	// undo: directories whose contents to remove on failure, and ones to remove.
	emptyOnFail, removeOnFail []string
}

func newTree(fm *fileMaker) *tree {
	return &tree{fm: fm, dirs: map[string]bool{}, files: map[string]bool{}, links: map[string]bool{}}
}

// prepareDir makes dir an empty directory of ours: created if absent,
// refused if not empty (cleared when overwrite).
func (t *tree) prepareDir(dir string, overwrite bool, what string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// A failed restore removes what it made: the highest directory
		// missing here (such as <dataDir>.tablespaces above a
		// tablespace's own) holds nothing else.
		made := highestMissing(dir)
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return fmt.Errorf("backupsel: %s: %w", what, err)
		}
		if err := os.Mkdir(dir, t.fm.dirMode); err != nil {
			return fmt.Errorf("backupsel: %s: %w", what, err)
		}
		t.removeOnFail = append(t.removeOnFail, made)
	case err != nil:
		if errors.Is(err, fs.ErrPermission) {
			return &PermissionError{Path: dir, Need: "read+write+execute", Err: err}
		}
		return fmt.Errorf("backupsel: %s: %w", what, err)
	default:
		if len(entries) > 0 && !overwrite {
			return fmt.Errorf("%w: %s %s holds %d entries (first %s); empty it or set Overwrite",
				ErrNotEmpty, what, dir, len(entries), entries[0].Name())
		}
		for _, e := range entries {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return fmt.Errorf("backupsel: clearing %s: %w", what, err)
			}
		}
		t.emptyOnFail = append(t.emptyOnFail, dir)
	}
	// An existing directory keeps its mode unless set here.
	if err := os.Chmod(dir, t.fm.dirMode); err != nil {
		return fmt.Errorf("backupsel: %s: %w", what, err)
	}
	if t.fm.chown {
		if err := os.Chown(dir, t.fm.uid, t.fm.gid); err != nil {
			return fmt.Errorf("backupsel: %s: %w", what, err)
		}
	}
	t.dirs[dir] = true
	t.roots = append(t.roots, dir)
	return nil
}

// undo removes what the restore wrote.
func (t *tree) undo() {
	for _, d := range t.removeOnFail {
		os.RemoveAll(d)
	}
	for _, d := range t.emptyOnFail {
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			os.RemoveAll(filepath.Join(d, e.Name()))
		}
	}
}

// highestMissing returns the highest of dir and its parents that does not
// exist: the one directory to remove to take away everything made below.
func highestMissing(dir string) string {
	for {
		parent := filepath.Dir(dir)
		if parent == dir {
			return dir
		}
		if _, err := os.Lstat(parent); err == nil || !errors.Is(err, fs.ErrNotExist) {
			return dir
		}
		dir = parent
	}
}

// errNotDir is wrapped when a directory to create is taken by something
// else (a link or file restored earlier): going through it could leave the
// target.
var errNotDir = errors.New("exists and is not a directory (a link or file restored earlier)")

// mkdirAll creates dir and its missing parents inside a known directory,
// refusing to go through anything that is not a real directory (such as a
// symbolic link restored earlier).
func (t *tree) mkdirAll(dir string) error {
	if t.dirs[dir] {
		return nil
	}
	parent := path.Dir(dir)
	if parent == dir {
		return fmt.Errorf("backupsel: %s is outside the restore target", dir)
	}
	if err := t.mkdirAll(parent); err != nil {
		return err
	}
	err := t.fm.mkdir(dir)
	switch {
	case err == nil:
	case errors.Is(err, fs.ErrExist):
		info, lerr := os.Lstat(dir)
		if lerr != nil || !info.IsDir() {
			return fmt.Errorf("%s %w", dir, errNotDir)
		}
	default:
		return err
	}
	t.dirs[dir] = true
	return nil
}

// symlink creates the symbolic link link to target.
func (t *tree) symlink(target, link string) error {
	if err := os.Symlink(target, link); err != nil {
		return err
	}
	t.links[link] = true
	if t.fm.chown {
		return os.Lchown(link, t.fm.uid, t.fm.gid)
	}
	return nil
}

// syncAll waits until everything written under the restore's targets is
// durable: one syncfs per target filesystem writes out every dirty file and
// directory of it (and reports a write-back error of any since Restore
// opened the target, Linux 5.8+), where an fsync per file would wait for a
// journal commit per file.
func (t *tree) syncAll() error {
	for _, root := range t.roots {
		f, err := os.Open(root)
		if err != nil {
			return err
		}
		err = unix.Syncfs(int(f.Fd()))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("syncfs %s: %w", root, err)
		}
	}
	return nil
}
