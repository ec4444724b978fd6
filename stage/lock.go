package stage

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

const lockName = "lock"

// fileLock is an exclusive lock on a file, held for the Linker's life.
//
// Across processes it is a POSIX record lock (fcntl F_SETLK): the kernel
// drops it when the process dies, so a crash leaves no stale lock, and unlike
// flock it is not shared with children forked by other goroutines (an flock
// would stay held by a child between fork and exec, after Close). Within a
// process, where POSIX locks do not exclude, a registry of held paths does.
// The file's text (a pid, and for the data directory's lock the state
// directory that owns it) feeds the error message.
type fileLock struct {
	f    *os.File
	path string
	// keep is the text left in the file on release.
	keep string
}

var held = struct {
	sync.Mutex
	paths map[string]bool
}{paths: map[string]bool{}}

// lockStateDir locks dir/lock, creating dir (not its parents: a missing
// parent is a mistake to report, not to paper over as root).
func lockStateDir(dir string) (*fileLock, error) {
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: the parent of the state directory %s, %s, does not exist: create it (owned by the staging's OS user) or choose another Staging.StateDir",
				ErrInvalidConfig, dir, filepath.Dir(dir))
		}
		return nil, fmt.Errorf("stage: state directory %s: %w", dir, err)
	}
	lk, err := lockFile(filepath.Join(dir, lockName), "", "one Linker per staging")
	if err != nil {
		return nil, err
	}
	return lk.fileLock, nil
}

// dataDirLockPath is the lock of a data directory: beside it (the data
// directory itself must be empty before Link, and may be a mount point).
func dataDirLockPath(dataDir string) string {
	return filepath.Join(filepath.Dir(dataDir), "."+filepath.Base(dataDir)+".pgstage-lock")
}

// lockDataDir locks the data directory for the staging whose state is in
// stateDir, so that two Linkers with different state directories never
// restore into one data directory. The lock file also records which state
// directory owns the data directory: one another state directory owns is
// refused even when nothing holds the lock.
func lockDataDir(dataDir, stateDir string) (*fileLock, error) {
	path := dataDirLockPath(dataDir)
	if _, err := os.Stat(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("%w: the parent of the data directory %s, %s, does not exist: create it (owned by the staging's OS user) or choose another Staging.DataDir",
			ErrInvalidConfig, dataDir, filepath.Dir(dataDir))
	}
	lk, err := lockFile(path, "state "+stateDir+"\n", "one Linker per data directory")
	if err != nil {
		return nil, err
	}
	if owner := lk.owner; owner != "" && owner != stateDir && ownedBy(owner, dataDir) {
		lk.keep = "state " + owner + "\n"
		lk.fileLock.release()
		return nil, fmt.Errorf("%w: the data directory %s belongs to the staging whose state is in %s: Open that one (set Staging.StateDir to it), or remove that state directory to give the data directory up",
			ErrLocked, dataDir, owner)
	}
	return lk.fileLock, nil
}

// ownedBy reports whether the state in stateDir claims dataDir.
func ownedBy(stateDir, dataDir string) bool {
	st, err := loadState(stateDir)
	if err != nil {
		return false
	}
	owns := st.Linked || st.Backup != nil || st.Job != "" && st.Step != StepPreflight
	return owns && filepath.Clean(st.Config.Staging.DataDir) == filepath.Clean(dataDir)
}

// lockedFile is a fileLock just taken, with the owner its text named.
type lockedFile struct {
	*fileLock
	owner string
}

func lockFile(name, keep, rule string) (*lockedFile, error) {
	name, err := filepath.Abs(name)
	if err != nil {
		return nil, err
	}
	held.Lock()
	defer held.Unlock()
	if held.paths[name] {
		return nil, fmt.Errorf("%w: a Linker of this process holds %s; close it first (%s)", ErrLocked, name, rule)
	}
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("stage: lock file: %w", err)
	}
	text, _ := io.ReadAll(f)
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: io.SeekStart}
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_SETLK, &lk); err != nil {
		f.Close()
		if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EACCES) {
			who := "another process"
			if pid := field(string(text), "pid"); pid != "" {
				who = "pid " + pid
			}
			return nil, fmt.Errorf("%w: %s holds %s; close it first (%s)", ErrLocked, who, name, rule)
		}
		return nil, fmt.Errorf("stage: lock %s: %w", name, err)
	}
	f.Truncate(0)
	f.WriteAt([]byte(keep+"pid "+strconv.Itoa(os.Getpid())+"\n"), 0)
	held.paths[name] = true
	return &lockedFile{fileLock: &fileLock{f: f, path: name, keep: keep}, owner: field(string(text), "state")}, nil
}

// field returns the value of the line "key value" in text.
func field(text, key string) string {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, key+" "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func (l *fileLock) release() error {
	if l == nil || l.f == nil {
		return nil
	}
	held.Lock()
	defer held.Unlock()
	l.f.Truncate(0)
	l.f.WriteAt([]byte(l.keep), 0)
	err := l.f.Close() // closing the descriptor releases the lock
	l.f = nil
	delete(held.paths, l.path)
	return err
}
