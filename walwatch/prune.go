package walwatch

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// Prune bounds a log directory that the logging collector rotates by size
// (log_rotation_size): PostgreSQL never deletes its logs, so the caller
// calls Prune now and then. It removes the oldest files matching pattern
// (a filepath.Match pattern, as Config.Pattern) beyond the keep newest,
// but never a file the watcher may not have read to its end: the file of
// done (the Position after the last event handled, or Watcher.Position)
// and every file written after it. A zero done removes nothing. It returns
// the files removed.
func Prune(dir, pattern string, keep int, done Position) ([]string, error) {
	if done.IsZero() || keep < 1 {
		return nil, nil
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("walwatch: prune %s: %w", dir, err)
	}
	type file struct {
		path string
		fi   os.FileInfo
	}
	var files []file
	for _, e := range ents {
		if ok, _ := filepath.Match(pattern, e.Name()); !ok || !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		files = append(files, file{filepath.Join(dir, e.Name()), fi})
	}
	sort.SliceStable(files, func(i, j int) bool {
		if !files[i].fi.ModTime().Equal(files[j].fi.ModTime()) {
			return files[i].fi.ModTime().Before(files[j].fi.ModTime())
		}
		return files[i].path < files[j].path
	})
	at := -1
	for i := range files {
		if identity(files[i].fi) == (fileID{dev: done.Dev, ino: done.Ino}) {
			at = i
			break
		}
	}
	if at < 0 {
		return nil, nil // the position's file is gone: nothing is known read
	}
	// Keep keep files in all; the position's and later ones always.
	older := max(0, keep-(len(files)-at))
	var removed []string
	var errs []error
	for i := 0; i < at-older; i++ {
		if err := os.Remove(files[i].path); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, files[i].path)
	}
	if len(errs) > 0 {
		return removed, fmt.Errorf("walwatch: prune %s: %w", dir, errors.Join(errs...))
	}
	return removed, nil
}
