package basebackup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"

	"golang.org/x/sys/unix"
)

// folder is the backup's folder while it is written: a dot-prefixed name
// backupsel's selection ignores (ParseName sees no PostgreSQL_T prefix),
// renamed to PostgreSQL_T<YYYYMMDDhhmmss> when every file is whole and
// synced.
type folder struct {
	backupPath string
	final      string // PostgreSQL_T<YYYYMMDDhhmmss>
	tmp        string // full path of the partial folder
}

// newFolder checks the backup path and creates the partial folder in it.
func newFolder(backupPath, final string) (*folder, error) {
	st, err := os.Stat(backupPath)
	switch {
	case err != nil:
		return nil, &pathError{path: backupPath, what: "backup path", hint: "create it, or set BackupPath to an existing directory", err: err}
	case !st.IsDir():
		return nil, &pathError{path: backupPath, what: "backup path", hint: "it is not a directory"}
	}
	if _, err := os.Lstat(filepath.Join(backupPath, final)); err == nil {
		return nil, &pathError{path: filepath.Join(backupPath, final), what: "backup folder already exists:", hint: "another writer (or another backup in the same second) made it; retry in a second, or check who else writes into the backup path"}
	}
	f := &folder{backupPath: backupPath, final: final,
		tmp: filepath.Join(backupPath, fmt.Sprintf(".%s.partial-%d", final, os.Getpid()))}
	if err := os.Mkdir(f.tmp, 0o700); err != nil {
		hint := "the backup path must be writable by this process"
		if errors.Is(err, os.ErrExist) {
			hint = "a partial backup of this process is in the way: remove it"
		}
		return nil, &pathError{path: f.tmp, what: "creating the partial backup folder", hint: hint, err: err}
	}
	return f, nil
}

// remove deletes the partial folder and everything in it.
func (f *folder) remove() { os.RemoveAll(f.tmp) }

// publish checks that the partial folder holds exactly files, syncs it and
// renames it to its final name without replacing anything, then syncs the
// backup path so that the rename survives a crash.
func (f *folder) publish(files []string, noSync bool) (string, error) {
	entries, err := os.ReadDir(f.tmp)
	if err != nil {
		return "", &pathError{path: f.tmp, what: "partial backup folder", hint: "something else removed or changed it while the backup was taken: keep other writers and cleaners out of the backup path's dot-folders", err: err}
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	want := slices.Sorted(slices.Values(files))
	if !slices.Equal(names, want) {
		return "", &pathError{path: f.tmp, what: "partial backup folder", hint: fmt.Sprintf("holds %v, not the %v this backup wrote: another writer uses it; give each writer its own backup path", names, want)}
	}
	if !noSync {
		if err := syncDir(f.tmp); err != nil {
			return "", &pathError{path: f.tmp, what: "syncing", err: err}
		}
	}
	final := filepath.Join(f.backupPath, f.final)
	err = unix.Renameat2(unix.AT_FDCWD, f.tmp, unix.AT_FDCWD, final, unix.RENAME_NOREPLACE)
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOSYS) {
		// File systems without RENAME_NOREPLACE (NFS, some FUSE): a check
		// then a rename, which still never replaces a non-empty folder.
		if _, lerr := os.Lstat(final); lerr == nil {
			err = syscall.EEXIST
		} else {
			err = os.Rename(f.tmp, final)
		}
	}
	if err != nil {
		hint := ""
		if errors.Is(err, syscall.EEXIST) || errors.Is(err, syscall.ENOTEMPTY) {
			hint = "another writer made a backup of the same name while this one was taken; retry, or check who else writes into the backup path"
		}
		return "", &pathError{path: final, what: "renaming the finished backup to", hint: hint, err: err}
	}
	if !noSync {
		if err := syncDir(f.backupPath); err != nil {
			return "", &pathError{path: f.backupPath, what: "syncing", err: err}
		}
	}
	return final, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}
